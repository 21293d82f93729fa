"""Webhook receiver: provider callbacks -> receipts and inbound messages.

An ``aiohttp.web`` application, served by ``journeys gateway`` on
``JOURNEYS_WEBHOOK_PORT`` (see :mod:`engine.stream.gateway.ingress`):

* ``POST /webhooks/rbm``: RBM events in a Pub/Sub-style envelope, signed with
  ``X-Goog-Signature`` (base64 HMAC-SHA512 of the decoded event, keyed with the client
  token). RBM's one-time webhook verification (``clientToken`` + ``secret``) is answered
  with the secret, as plain text.
* ``POST /webhooks/twilio``: Twilio status callbacks of our SMS and inbound SMS (form
  posts), signed with ``X-Twilio-Signature`` over the public URL plus the path.
* ``GET /healthz``: 200 once the receiver can resolve messages, 503 before.

What comes in, and what goes back:

=====================================  ==================================================
a bad or missing signature             401 (RBM) / 403 (Twilio); nothing produced
a body that can't be read              400 and a dead letter
an event that can't be used            a dead letter (RBM: 200, so Google stops retrying;
                                       Twilio: 400)
a message id or phone nobody sent to   a dead letter with its reason, 200
an event seen before (its id)          200, nothing produced again
IS_TYPING, ``queued``/``sent``...      200, nothing produced
anything else                          the receipt or inbound message, then 200
=====================================  ==================================================

The 200 goes back only once the sink says Kafka has the record and the event's id is
recorded (:class:`EventLog`): if anything fails on the way, the answer is 500 and the
provider retries. The user is found from our message id, the provider's id (Twilio's
SID) or the sender's phone, through a :class:`MessageDirectory`; a lookup that misses
waits ``lookup_wait_s`` (the directory may be catching up with another gateway
instance's sends) before the event is dead-lettered.
"""

from __future__ import annotations

import asyncio
import hmac
import json
import logging
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Protocol, TypeVar
from urllib.parse import parse_qsl

from aiohttp import web

from engine.channels.phone import normalize_phone
from engine.channels.providers import rbm, twilio
from engine.channels.providers.base import Ignored, InboundEvent, ProviderEvent, ReceiptEvent
from engine.core.inputs import Inbound, Receipt

log = logging.getLogger(__name__)

T = TypeVar("T")
Event = Receipt | Inbound
NowMs = Callable[[], int]

RBM_PATH = "/webhooks/rbm"
TWILIO_PATH = "/webhooks/twilio"
HEALTH_PATH = "/healthz"
_EMPTY_TWIML = '<?xml version="1.0" encoding="UTF-8"?><Response></Response>'


@dataclass(frozen=True, slots=True)
class SentMessage:
    """What the receiver needs to turn a provider event back into a receipt: whose
    message it was, and where that user's records go (``partition``: the stream's)."""

    message_id: str
    user_id: str
    phone: str
    channel: str
    provider: str
    journey_id: str | None = None
    node_id: str | None = None
    partition: int | None = None
    provider_id: str | None = None


class MessageDirectory(Protocol):
    """Sent messages by our id and by the provider's id, and the latest one per phone."""

    def by_message_id(self, message_id: str) -> SentMessage | None: ...

    def by_provider_id(self, provider_id: str) -> SentMessage | None: ...

    def latest_for_phone(self, phone: str) -> SentMessage | None: ...


class EventLog(Protocol):
    """Ids of the webhook events already handed on, kept across restarts."""

    def seen(self, key: str) -> bool: ...

    async def mark(self, key: str) -> None:
        """Record ``key``; return once it is durable."""
        ...


#: hand on a receipt or inbound message of the user of ``sent``; returns once it is durable
Sink = Callable[[Event, SentMessage], Awaitable[None]]
#: (reason, detail, path, body): an event that can't be used, for operators
DeadLetterSink = Callable[[str, str, str, bytes], Awaitable[None]]


def wall_ms() -> int:
    return time.time_ns() // 1_000_000


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
        events: EventLog,
        dead_letter: DeadLetterSink,
        rbm_client_token: str | None = None,
        twilio_auth_token: str | None = None,
        public_url: str | None = None,
        lookup_wait_s: float = 2.0,
        ready: Callable[[], bool] = lambda: True,
        now_ms: NowMs = wall_ms,
    ) -> None:
        """``public_url`` is this server's address as providers call it (Twilio signs
        it); the request's own URL is used when it is not given. A provider whose token
        is not given has no webhook here (404). ``ready()`` says the directory is loaded:
        until then callbacks get 503 (the providers retry)."""
        self.sink = sink
        self.directory = directory
        self.events = events
        self.dead_letter = dead_letter
        self.rbm_client_token = rbm_client_token
        self.twilio_auth_token = twilio_auth_token
        self.public_url = public_url.rstrip("/") if public_url else None
        self.lookup_wait_s = lookup_wait_s
        self.ready = ready
        self._now_ms = now_ms
        self._inflight: set[str] = set()
        self.counts: dict[str, int] = {}

    def app(self) -> web.Application:
        app = web.Application(client_max_size=1024 * 1024)
        app.router.add_post(RBM_PATH, self.handle_rbm)
        app.router.add_post(TWILIO_PATH, self.handle_twilio)
        app.router.add_get(HEALTH_PATH, self.handle_health)
        return app

    def _count(self, what: str) -> None:
        self.counts[what] = self.counts.get(what, 0) + 1

    async def handle_health(self, request: web.Request) -> web.Response:
        if not self.ready():
            return web.Response(status=503, text="loading")
        return web.Response(text="ok")

    # -- RBM

    async def handle_rbm(self, request: web.Request) -> web.Response:
        token = self.rbm_client_token
        if not token:
            return web.Response(status=404, text="no RBM webhook here (--rcs rbm)")
        body = await request.read()
        handshake = _verification(body)
        if handshake is not None:
            client_token, secret = handshake
            if hmac.compare_digest(client_token.encode(), token.encode()):
                return web.Response(text=secret)  # the verification wants the secret back
            return web.Response(status=401, text="bad client token")
        if not rbm.verify_signature(token, body, request.headers.get("X-Goog-Signature")):
            log.warning("RBM webhook with a missing or bad signature: refused")
            self._count("refused")
            return web.Response(status=401, text="bad signature")
        try:
            event = rbm.decode_envelope(body)
        except ValueError as exc:
            await self.dead_letter("malformed_webhook", str(exc), RBM_PATH, body)
            self._count("malformed")
            return web.Response(status=400, text="unreadable envelope")
        return await self._answer(rbm.parse_event(event), "rbm", RBM_PATH, body, unusable=200)

    # -- Twilio

    async def handle_twilio(self, request: web.Request) -> web.Response:
        token = self.twilio_auth_token
        if not token:
            return web.Response(status=404, text="no Twilio webhook here (--sms twilio)")
        body = await request.read()
        try:
            fields = dict(parse_qsl(body.decode(), keep_blank_values=True, strict_parsing=True))
        except (UnicodeDecodeError, ValueError) as exc:
            fields = None
            problem = str(exc)
        url = self.public_url + request.path_qs if self.public_url else str(request.url)
        given = request.headers.get("X-Twilio-Signature", "")
        expected = twilio.twilio_signature(token, url, fields or {})
        if not given or not hmac.compare_digest(expected, given):
            log.warning("Twilio webhook with a missing or bad signature: refused")
            self._count("refused")
            return web.Response(status=403, text="bad signature")
        if fields is None:
            await self.dead_letter("malformed_webhook", problem, TWILIO_PATH, body)
            self._count("malformed")
            return web.Response(status=400, text="unreadable form")
        event = twilio.parse_callback(fields, request.query.get("mid"))
        return await self._answer(event, "twilio", TWILIO_PATH, body, unusable=400)

    # -- events

    async def _answer(
        self, event: ProviderEvent, ns: str, path: str, body: bytes, *, unusable: int
    ) -> web.Response:
        ok = web.Response(
            text=_EMPTY_TWIML if ns == "twilio" else "",
            content_type="text/xml" if ns == "twilio" else "text/plain",
        )
        if isinstance(event, Ignored):
            if not event.dead_letter:
                log.debug("%s webhook ignored: %s", ns, event.why)
                self._count("ignored")
                return ok
            await self.dead_letter("unusable_webhook", event.why, path, body)
            self._count("unusable")
            return ok if unusable == 200 else web.Response(status=unusable, text=event.why)
        if not self.ready():
            return web.Response(status=503, text="starting; try again")
        key = f"{ns}:{event.dedupe_key}"
        if key in self._inflight or self.events.seen(key):
            log.info("%s webhook %s: seen before, ignored", ns, key)
            self._count("replayed")
            return ok
        self._inflight.add(key)
        try:
            resolved = await self._resolve(event, key)
            if isinstance(resolved, str):
                await self.dead_letter(resolved, type(event).__name__, path, body)
                await self.events.mark(key)
                self._count("unknown")
                return ok
            item, sent = resolved
            await self.sink(item, sent)
            await self.events.mark(key)
        except Exception:
            log.exception("%s webhook: could not hand the event on; the provider will retry", ns)
            return web.Response(status=500, text="try again")
        finally:
            self._inflight.discard(key)
        self._count("receipt" if isinstance(item, Receipt) else "inbound")
        return ok

    async def _wait_for(self, find: Callable[[], T | None]) -> T | None:
        """``find()``, tried again for ``lookup_wait_s``: the directory may be catching up."""
        deadline = time.monotonic() + self.lookup_wait_s
        while True:
            found = find()
            if found is not None or time.monotonic() >= deadline:
                return found
            await asyncio.sleep(0.05)

    async def _resolve(
        self, event: ReceiptEvent | InboundEvent, key: str
    ) -> tuple[Event, SentMessage] | str:
        """The receipt or inbound message and the message it belongs to, or the reason
        it can't be used."""
        ts = event.ts if event.ts is not None else self._now_ms()
        d = self.directory
        if isinstance(event, ReceiptEvent):
            mid, pid = event.message_id, event.provider_id

            def find() -> SentMessage | None:
                sent = d.by_message_id(mid) if mid else None
                return sent if sent is not None or not pid else d.by_provider_id(pid)

            sent = await self._wait_for(find)
            if sent is None:
                return "unknown_message"
            return Receipt(
                sent.user_id, ts, event.status, sent.message_id, reason=event.reason
            ), sent
        phone = _phone(event.phone)
        if phone is None:
            return "unknown_recipient"
        latest = await self._wait_for(lambda: d.latest_for_phone(phone))
        if latest is None:
            return "unknown_recipient"
        ours = d.by_message_id(event.message_id) if event.message_id else None
        message_id = ours.message_id if ours is not None else None  # RBM: the user's own id
        inbound = Inbound(
            latest.user_id, ts, event.postback, event.text, message_id, None, event_id=key
        )
        return inbound, latest


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
