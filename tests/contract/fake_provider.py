"""A local fake provider: Google RBM REST plus a Twilio-shaped SMS API, on 127.0.0.1.

It answers the way the real APIs do (as far as our contract goes) and can call our
webhook receiver back with signed events, like the real platforms:

* ``POST /v1/phones/{phone}/agentMessages?messageId=&agentId=`` -> 200, or a scripted
  404 / 429 (with ``Retry-After``) / 500...; a repeated ``messageId`` is ignored.
* ``GET /v1/phones/{phone}/capabilities`` -> features, or 404 for unreachable phones.
* ``DELETE /v1/phones/{phone}/agentMessages/{id}`` -> always 200; an undelivered message
  is revoked and a TTL_EXPIRATION_REVOKED (or ..._REVOKE_FAILED) event is pushed.
* ``POST /2010-04-01/Accounts/{sid}/Messages.json`` (form: To, From, Body,
  StatusCallback; basic auth) -> 201 ``{"sid": ...}``, or a scripted error.
"""

from __future__ import annotations

import base64
import itertools
from dataclasses import dataclass, field
from typing import Any

import aiohttp
from aiohttp import web

from engine.channels.gateway import ChannelGateway
from engine.channels.providers import rbm, twilio
from engine.channels.providers.rbm import RbmProvider
from engine.channels.providers.twilio import TwilioSmsProvider
from engine.channels.webhooks import WebhookReceiver
from engine.core.inputs import Inbound, Receipt

DEFAULT_FEATURES = [
    "RICHCARD_STANDALONE",
    "RICHCARD_CAROUSEL",
    "ACTION_DIAL",
    "ACTION_OPEN_URL",
    "ACTION_VIEW_LOCATION",
    "ACTION_SHARE_LOCATION",
    "ACTION_CREATE_CALENDAR_EVENT",
]


@dataclass
class Call:
    method: str
    path: str
    query: dict[str, str]
    headers: dict[str, str]
    body: bytes


@dataclass
class RbmState:
    send_script: list[int] = field(default_factory=list)  # statuses for the next POSTs
    capability_script: list[int] = field(default_factory=list)
    revoke_script: list[int] = field(default_factory=list)
    unreachable: set[str] = field(default_factory=set)  # phones: 404 on send + capability
    features: dict[str, list[str]] = field(default_factory=dict)  # phone -> features
    revoke_fails: bool = False
    messages: dict[str, dict[str, Any]] = field(default_factory=dict)


@dataclass
class SmsState:
    send_script: list[int] = field(default_factory=list)
    messages: dict[str, dict[str, str]] = field(default_factory=dict)  # sid -> form


class FakeProvider:
    def __init__(
        self,
        *,
        bearer: str = "test-token",
        agent_id: str = "test-agent",
        client_token: str = "client-token",
        account_sid: str = "AC0001",
        auth_token: str = "sms-auth-token",
    ) -> None:
        self.bearer, self.agent_id, self.client_token = bearer, agent_id, client_token
        self.account_sid, self.auth_token = account_sid, auth_token
        self.rbm = RbmState()
        self.sms = SmsState()
        self.calls: list[Call] = []
        self.webhook_base: str | None = None  # our receiver, e.g. http://127.0.0.1:1234
        self._sids = itertools.count(1)
        self._events = itertools.count(1)
        self._runner: web.AppRunner | None = None
        self._client: aiohttp.ClientSession | None = None
        self.base_url = ""

    # -- lifecycle

    async def start(self) -> str:
        app = web.Application()
        app.router.add_post("/v1/phones/{phone}/agentMessages", self._rbm_send)
        app.router.add_get("/v1/phones/{phone}/capabilities", self._rbm_capability)
        app.router.add_delete("/v1/phones/{phone}/agentMessages/{mid}", self._rbm_revoke)
        app.router.add_post("/2010-04-01/Accounts/{sid}/Messages.json", self._sms_send)
        self._runner = web.AppRunner(app)
        await self._runner.setup()
        site = web.TCPSite(self._runner, "127.0.0.1", 0)
        await site.start()
        host, port = self._runner.addresses[0][:2]
        self.base_url = f"http://{host}:{port}"
        self._client = aiohttp.ClientSession()
        return self.base_url

    async def stop(self) -> None:
        if self._client is not None:
            await self._client.close()
        if self._runner is not None:
            await self._runner.cleanup()

    def calls_to(self, method: str, fragment: str) -> list[Call]:
        return [c for c in self.calls if c.method == method and fragment in c.path]

    async def _record(self, request: web.Request) -> Call:
        call = Call(
            request.method,
            request.path,
            dict(request.query),
            dict(request.headers),
            await request.read(),
        )
        self.calls.append(call)
        return call

    # -- RBM

    def _rbm_error(self, status: int) -> web.Response:
        names = {
            400: "INVALID_ARGUMENT",
            401: "UNAUTHENTICATED",
            403: "PERMISSION_DENIED",
            404: "NOT_FOUND",
            429: "RESOURCE_EXHAUSTED",
            500: "INTERNAL",
            503: "UNAVAILABLE",
        }
        body = {
            "error": {
                "code": status,
                "message": f"fake {status}",
                "status": names.get(status, "UNKNOWN"),
            }
        }
        headers = {"Retry-After": "1"} if status == 429 else None
        return web.json_response(body, status=status, headers=headers)

    def _rbm_auth(self, request: web.Request) -> bool:
        return (
            request.headers.get("Authorization") == f"Bearer {self.bearer}"
            and request.query.get("agentId") == self.agent_id
        )

    async def _rbm_send(self, request: web.Request) -> web.Response:
        await self._record(request)
        if not self._rbm_auth(request):
            return self._rbm_error(401)
        if self.rbm.send_script and (status := self.rbm.send_script.pop(0)) != 200:
            return self._rbm_error(status)
        phone, mid = request.match_info["phone"], request.query.get("messageId")
        if not mid:
            return self._rbm_error(400)
        if phone in self.rbm.unreachable:
            return self._rbm_error(404)
        if mid not in self.rbm.messages:  # a repeated messageId is ignored
            self.rbm.messages[mid] = {
                "phone": phone,
                "payload": await request.json(),
                "state": "pending",
            }
        return web.json_response({"name": f"phones/{phone}/agentMessages/{mid}"})

    async def _rbm_capability(self, request: web.Request) -> web.Response:
        await self._record(request)
        if not self._rbm_auth(request):
            return self._rbm_error(401)
        if self.rbm.capability_script and (s := self.rbm.capability_script.pop(0)) != 200:
            return self._rbm_error(s)
        phone = request.match_info["phone"]
        if phone in self.rbm.unreachable:
            return self._rbm_error(404)
        return web.json_response({"features": self.rbm.features.get(phone, DEFAULT_FEATURES)})

    async def _rbm_revoke(self, request: web.Request) -> web.Response:
        await self._record(request)
        if not self._rbm_auth(request):
            return self._rbm_error(401)
        if self.rbm.revoke_script and (s := self.rbm.revoke_script.pop(0)) != 200:
            return self._rbm_error(s)
        mid = request.match_info["mid"]
        message = self.rbm.messages.get(mid)
        if message is not None and message["state"] == "pending":
            if self.rbm.revoke_fails:
                await self.push_rbm(message["phone"], mid, "TTL_EXPIRATION_REVOKE_FAILED")
            else:
                message["state"] = "revoked"
                await self.push_rbm(message["phone"], mid, "TTL_EXPIRATION_REVOKED")
        return web.json_response({})  # 200 whatever happened: the events tell

    async def deliver(self, mid: str, *, read: bool = False) -> None:
        """The device got the message: DELIVERED (and READ) webhooks."""
        message = self.rbm.messages[mid]
        if message["state"] != "pending":
            return
        message["state"] = "delivered"
        await self.push_rbm(message["phone"], mid, "DELIVERED")
        if read:
            await self.push_rbm(message["phone"], mid, "READ")

    async def push_rbm(
        self, phone: str, mid: str | None, event_type: str | None, **extra: Any
    ) -> int:
        event: dict[str, Any] = {"agentId": self.agent_id, "sendTime": "2026-11-29T10:00:00Z"}
        event[
            "phoneNumber" if event_type and event_type.startswith("TTL") else "senderPhoneNumber"
        ] = phone
        if mid is not None:
            event["messageId"] = mid
        if event_type is not None:
            event["eventType"] = event_type
            event["eventId"] = f"EV-{next(self._events)}"
        event.update(extra)
        return await self.post_rbm_raw(rbm.encode_envelope(event))

    async def post_rbm_raw(self, body: bytes, signature: str | None = None) -> int:
        assert self._client is not None and self.webhook_base is not None
        sig = rbm.sign(self.client_token, body) if signature is None else signature
        async with self._client.post(
            f"{self.webhook_base}/webhooks/rbm",
            data=body,
            headers={"X-Goog-Signature": sig, "Content-Type": "application/json"},
        ) as resp:
            return resp.status

    # -- SMS (Twilio shape)

    async def _sms_send(self, request: web.Request) -> web.Response:
        await self._record(request)
        expected = (
            "Basic " + base64.b64encode(f"{self.account_sid}:{self.auth_token}".encode()).decode()
        )
        if (
            request.headers.get("Authorization") != expected
            or request.match_info["sid"] != self.account_sid
        ):
            return web.json_response({"code": 20003, "message": "Authenticate"}, status=401)
        if self.sms.send_script and (status := self.sms.send_script.pop(0)) != 201:
            code = {400: 21211, 429: 20429}.get(status, 20500)
            headers = {"Retry-After": "2"} if status == 429 else None
            return web.json_response(
                {"code": code, "message": f"fake {status}", "status": status},
                status=status,
                headers=headers,
            )
        form = {k: str(v) for k, v in (await request.post()).items()}
        if (
            not form.get("To")
            or not form.get("Body")
            or not (form.get("From") or form.get("MessagingServiceSid"))
        ):
            return web.json_response({"code": 21604, "message": "missing field"}, status=400)
        sid = f"SM{next(self._sids):032x}"
        self.sms.messages[sid] = form
        return web.json_response({"sid": sid, "status": "queued", "to": form["To"]}, status=201)

    async def sms_status(self, sid: str, status: str, error_code: str | None = None) -> int:
        """Call the message's StatusCallback like Twilio: signed form post."""
        assert self._client is not None
        form = self.sms.messages[sid]
        fields = {
            "MessageSid": sid,
            "MessageStatus": status,
            "To": form["To"],
            "AccountSid": self.account_sid,
        }
        if error_code:
            fields["ErrorCode"] = error_code
        return await self._twilio_post(form["StatusCallback"], fields)

    async def sms_inbound(self, from_phone: str, body: str) -> int:
        assert self.webhook_base is not None
        fields = {
            "MessageSid": f"SM{next(self._sids):032x}",
            "From": from_phone,
            "To": "+15005550006",
            "Body": body,
            "SmsStatus": "received",
        }
        return await self._twilio_post(f"{self.webhook_base}/webhooks/sms", fields)

    async def _twilio_post(self, url: str, fields: dict[str, str]) -> int:
        assert self._client is not None
        signature = twilio.twilio_signature(self.auth_token, url, fields)
        async with self._client.post(
            url, data=fields, headers={"X-Twilio-Signature": signature}
        ) as resp:
            return resp.status


NOW_MS = 1_800_000_000_000


@dataclass
class Stack:
    fake: FakeProvider
    gateway: ChannelGateway
    receiver: WebhookReceiver
    rbm: RbmProvider
    sms: TwilioSmsProvider
    emitted: list[Receipt | Inbound] = field(default_factory=list)
    dead: list[tuple[str, Any]] = field(default_factory=list)
    sleeps: list[float] = field(default_factory=list)
