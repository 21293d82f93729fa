"""Webhook receiver: provider callbacks -> receipts and inbound messages.

An ``aiohttp.web`` application with two routes:

* ``POST /webhooks/rbm``: RBM events in a Pub/Sub-style envelope. The raw body must be
  signed (``X-Goog-Signature`` = base64 HMAC-SHA512 with the client token) or the answer
  is 401 and nothing is emitted. RBM's one-time webhook verification (``clientToken`` +
  ``secret``) is answered with the secret.
* ``POST /webhooks/sms``: Twilio-shaped status callbacks and inbound SMS (form posts) or
  JSON delivery reports with an SMPP ``stat``. With ``sms_auth_token`` set, requests must
  carry a valid ``X-Twilio-Signature`` (JSON bodies also a matching ``bodySHA256``).

Each event is deduplicated on its event id (RBM ``eventId``; for SMS the provider id and
status) before anything is emitted, and marked only after the sink took it: a sink
failure answers 500 so the provider retries. The user is found from the message id (the
:class:`MessageDirectory` the gateway fills on send) or the sender's phone. Events that
can't be used go to ``dead_letter`` with a reason and are acknowledged (no retry storm).
"""

from __future__ import annotations

import hashlib
import hmac
import json
import logging
from collections.abc import Awaitable, Callable, Mapping
from typing import Any
from urllib.parse import parse_qsl

from aiohttp import web

from engine.channels.gateway import (
    DedupeStore,
    InMemoryDedupeStore,
    MessageDirectory,
    NowMs,
    wall_ms,
)
from engine.channels.phone import normalize_phone
from engine.channels.providers import rbm, twilio
from engine.channels.providers.base import Ignored, InboundEvent, ProviderEvent, ReceiptEvent
from engine.core.inputs import Inbound, Receipt

log = logging.getLogger(__name__)

Event = Receipt | Inbound
Sink = Callable[[Event], Awaitable[None]]
DeadLetterSink = Callable[[str, Mapping[str, Any]], Awaitable[None]]

RBM_PATH = "/webhooks/rbm"
SMS_PATH = "/webhooks/sms"
_EMPTY_TWIML = '<?xml version="1.0" encoding="UTF-8"?><Response></Response>'


async def _log_dead_letter(reason: str, raw: Mapping[str, Any]) -> None:
    log.warning("webhook dead-lettered: %s", reason)


def _phone(raw: str | None) -> str | None:
    if raw is None:
        return None
    check = normalize_phone(raw)
    return check.e164 if check.ok else raw


class WebhookReceiver:
    def __init__(
        self,
        *,
        sink: Sink,
        directory: MessageDirectory,
        dedupe: DedupeStore | None = None,
        rbm_client_token: str | None = None,
        sms_auth_token: str | None = None,
        public_url: str | None = None,
        dead_letter: DeadLetterSink | None = None,
        now_ms: NowMs = wall_ms,
    ) -> None:
        """``public_url`` is this server's address as providers call it (for SMS
        signatures behind a proxy); the request URL is used when it is not given."""
        self.sink = sink
        self.directory = directory
        self.dedupe: DedupeStore = dedupe or InMemoryDedupeStore()
        self.rbm_client_token = rbm_client_token
        self.sms_auth_token = sms_auth_token
        self.public_url = public_url.rstrip("/") if public_url else None
        self.dead_letter = dead_letter or _log_dead_letter
        self._now_ms = now_ms
        self._inflight: set[str] = set()
        self._runner: web.AppRunner | None = None

    def app(self) -> web.Application:
        app = web.Application()
        app.router.add_post(RBM_PATH, self.handle_rbm)
        app.router.add_post(SMS_PATH, self.handle_sms)
        return app

    async def start(self, host: str = "127.0.0.1", port: int = 0) -> int:
        """Serve :meth:`app` on ``host:port`` (0: any free port); returns the port."""
        self._runner = web.AppRunner(self.app())
        await self._runner.setup()
        site = web.TCPSite(self._runner, host, port)
        await site.start()
        address = self._runner.addresses[0]
        return int(address[1])

    async def stop(self) -> None:
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None

    # -- RBM

    async def handle_rbm(self, request: web.Request) -> web.Response:
        body = await request.read()
        token = self.rbm_client_token
        if not token:
            log.error("RBM webhook called but no client token is configured: refused")
            return web.Response(status=401, text="not configured")
        handshake = _verification(body)
        if handshake is not None:
            client_token, secret = handshake
            if hmac.compare_digest(client_token.encode(), token.encode()):
                return web.json_response({"secret": secret})
            return web.Response(status=401, text="bad client token")
        if not rbm.verify_signature(token, body, request.headers.get("X-Goog-Signature")):
            log.warning("RBM webhook with a missing or bad signature: refused")
            return web.Response(status=401, text="bad signature")
        try:
            event = rbm.decode_envelope(body)
        except ValueError as exc:
            await self.dead_letter(f"bad_webhook: {exc}", {"body": body.decode(errors="replace")})
            return web.Response(status=200, text="unreadable, dead-lettered")
        return await self._answer(rbm.parse_event(event), event, "rbm")

    async def _answer(
        self, event: ProviderEvent, raw: Mapping[str, Any], ns: str, ok: str = ""
    ) -> web.Response:
        try:
            await self.process(event, raw, ns)
        except Exception:
            log.exception("%s webhook: could not hand the event on; the provider will retry", ns)
            return web.Response(status=500, text="try again")
        return web.Response(status=200, text=ok, content_type="text/xml" if ok else "text/plain")

    # -- SMS

    async def handle_sms(self, request: web.Request) -> web.Response:
        body = await request.read()
        is_json = request.content_type == "application/json"
        try:
            fields = _json_fields(body) if is_json else dict(parse_qsl(body.decode()))
        except ValueError as exc:
            await self.dead_letter(f"bad_webhook: {exc}", {"body": body.decode(errors="replace")})
            return web.Response(status=200, text="unreadable, dead-lettered")
        if self.sms_auth_token and not self._sms_signed(request, body, fields, is_json):
            log.warning("SMS webhook with a missing or bad signature: refused")
            return web.Response(status=401, text="bad signature")
        event = twilio.parse_callback(fields, request.query.get("mid"))
        return await self._answer(event, fields, "sms", "" if is_json else _EMPTY_TWIML)

    def _sms_signed(
        self, request: web.Request, body: bytes, fields: Mapping[str, str], is_json: bool
    ) -> bool:
        token = self.sms_auth_token or ""
        url = self.public_url + request.path_qs if self.public_url else str(request.url)
        given = request.headers.get("X-Twilio-Signature", "")
        if is_json:
            digest = hashlib.sha256(body).hexdigest()
            if not hmac.compare_digest(request.query.get("bodySHA256", ""), digest):
                return False
            fields = {}
        expected = twilio.twilio_signature(token, url, fields)
        return hmac.compare_digest(expected, given)

    # -- events

    async def process(self, event: ProviderEvent, raw: Mapping[str, Any], ns: str) -> list[Event]:
        """Dedupe, resolve the user, hand to the sink; returns what was emitted."""
        if isinstance(event, Ignored):
            if event.dead_letter:
                await self.dead_letter(event.why, raw)
            else:
                log.debug("%s webhook ignored: %s", ns, event.why)
            return []
        key = f"{ns}:{event.dedupe_key}"
        if key in self._inflight or await self.dedupe.seen(key):
            log.info("%s webhook %s: duplicate, ignored", ns, key)
            return []
        self._inflight.add(key)
        try:
            item = await self._resolve(event, key)
            if item is None:
                await self.dead_letter(f"unknown_recipient: {type(event).__name__}", raw)
                await self.dedupe.mark(key, "dead_letter")
                return []
            await self.sink(item)
            await self.dedupe.mark(key, "handled")
            return [item]
        finally:
            self._inflight.discard(key)

    async def _resolve(self, event: ReceiptEvent | InboundEvent, key: str) -> Event | None:
        phone = _phone(event.phone)
        ts = event.ts if event.ts is not None else self._now_ms()
        if isinstance(event, ReceiptEvent):
            sent = None
            if event.message_id:
                sent = await self.directory.by_message_id(event.message_id)
            if sent is None and event.provider_id:
                sent = await self.directory.by_provider_id(event.provider_id)
            if sent is not None:
                return Receipt(sent.user_id, ts, event.status, sent.message_id, reason=event.reason)
            user = await self.directory.user_for_phone(phone) if phone else None
            if user is None or event.message_id is None:
                return None
            return Receipt(user, ts, event.status, event.message_id, reason=event.reason)
        user = await self.directory.user_for_phone(phone) if phone else None
        message_id = None
        if event.message_id:  # ours only if we sent it (RBM user messages have their own)
            sent = await self.directory.by_message_id(event.message_id)
            if sent is not None:
                message_id = sent.message_id
                user = user or sent.user_id
        if user is None:
            return None
        return Inbound(
            user, ts, event.postback, event.text, message_id, event.keyword, event_id=key
        )


def _verification(body: bytes) -> tuple[str, str] | None:
    """RBM's webhook verification request: ``{"clientToken": ..., "secret": ...}``."""
    try:
        data = json.loads(body)
    except ValueError:
        return None
    if not isinstance(data, dict) or "message" in data:
        return None
    token, secret = data.get("clientToken"), data.get("secret")
    if isinstance(token, str) and isinstance(secret, str):
        return token, secret
    return None


def _json_fields(body: bytes) -> dict[str, str]:
    data = json.loads(body)
    if not isinstance(data, dict):
        raise ValueError("a delivery report is a JSON object")
    return {str(k): str(v) for k, v in data.items() if v is not None and not isinstance(v, dict)}
