"""Google RCS Business Messaging (RBM API v1): send, capability, revoke, webhook events.

REST calls (``base_url`` is ``https://rcsbusinessmessaging.googleapis.com`` in production):

* ``POST /v1/phones/{E164}/agentMessages?messageId={uuid}&agentId={agent}``, body the
  ``AgentMessage`` from :mod:`engine.channels.rcs` (with ``ttl``). "The platform ignores
  any agent message sent with an ID that was used by an earlier message or event sent
  from the same agent" (``phones.agentMessages.create`` reference), so a retry with the
  same id never reaches the user twice: the adapter is *idempotent*. See :func:`_accepted`
  for what a repeated id is answered with.
* ``GET /v1/phones/{E164}/capabilities?requestId={uuid}&agentId={agent}`` -> ``features``.
* ``DELETE /v1/phones/{E164}/agentMessages/{id}?agentId={agent}``: a 200 proves nothing;
  the TTL / DELIVERED events say what happened. 404 (already gone) is not an error.

Statuses: 403/404 -> :class:`NotReachable` (not RCS-capable, or agent not launched on
the carrier); 400 -> :class:`UnsupportedFeature`; 429 / 5xx -> retryable.

Auth is a bearer token from ``token`` (a string, or an async callable returning a fresh
OAuth2 access token for the service account: minting it is left to the caller).

Webhooks arrive in a Pub/Sub-style envelope ``{"message": {"data": base64(json)}}``
signed with ``X-Goog-Signature = base64(HMAC-SHA512(client_token, event))``, where the
event is ``message.data`` base64-decoded (Google's webhook guide verifies exactly that,
not the raw HTTP body: a proxy re-serializing the envelope must not break signatures).
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import json
import uuid
from collections.abc import Awaitable, Callable, Mapping
from typing import Any

from engine.channels.prepare import Prepared
from engine.channels.providers.base import (
    Capability,
    Ignored,
    InboundEvent,
    NotReachable,
    ProviderEvent,
    ReceiptEvent,
    SendResult,
    UnsupportedFeature,
)
from engine.channels.providers.http import DEFAULT_TIMEOUT_S, Answer, HttpClient, raise_for_status
from engine.core.effects import Revoke, SendRequest
from engine.core.inputs import ReceiptStatus
from engine.durations import parse_ts_ms
from engine.errors import RetryableProviderError

RBM_BASE_URL = "https://rcsbusinessmessaging.googleapis.com"
TokenSource = str | Callable[[], Awaitable[str]]

#: server / user event types that are receipts
RECEIPT_EVENTS: dict[str, ReceiptStatus] = {
    "DELIVERED": "delivered",
    "READ": "read",
    "TTL_EXPIRATION_REVOKED": "revoked",
    "TTL_EXPIRATION_REVOKE_FAILED": "revoke_failed",
}


class RbmProvider:
    name = "rbm"
    idempotent = True

    def __init__(
        self,
        *,
        agent_id: str,
        token: TokenSource,
        base_url: str = RBM_BASE_URL,
        timeout_s: float = DEFAULT_TIMEOUT_S,
    ) -> None:
        self.agent_id = agent_id
        self._token = token
        self._http = HttpClient(base_url, timeout_s=timeout_s)

    async def _auth(self) -> dict[str, str]:
        token = self._token if isinstance(self._token, str) else await self._token()
        return {"Authorization": f"Bearer {token}"}

    async def _call(self, method: str, path: str, what: str, **kw: Any) -> Answer:
        return await self._http.request(method, path, what=what, headers=await self._auth(), **kw)

    async def send(self, msg: Prepared, req: SendRequest) -> SendResult:
        answer = await self._call(
            "POST",
            f"/v1/phones/{msg.to}/agentMessages",
            "rbm send",
            params={"messageId": msg.message_id, "agentId": self.agent_id},
            json_body=msg.payload,
        )
        if not _accepted(answer):
            _raise(answer, "rbm send")
        body = answer.json()
        name = body.get("name") if isinstance(body, dict) else None
        if not isinstance(name, str):  # a 409's body is the error, not the message
            name = f"phones/{msg.to}/agentMessages/{msg.message_id}"
        return SendResult(provider_id=name)

    async def capability(self, phone: str, profile: Mapping[str, Any] | None = None) -> Capability:
        answer = await self._call(
            "GET",
            f"/v1/phones/{phone}/capabilities",
            "rbm capability",
            params={"requestId": str(uuid.uuid4()), "agentId": self.agent_id},
        )
        try:
            _raise(answer, "rbm capability")
        except NotReachable:
            return Capability(reachable=False)
        body = answer.json()
        features = body.get("features") if isinstance(body, dict) else None
        if not isinstance(features, list):
            return Capability(reachable=True)
        return Capability(reachable=True, features=frozenset(str(f) for f in features))

    async def revoke(self, phone: str, rev: Revoke) -> None:
        answer = await self._call(
            "DELETE",
            f"/v1/phones/{phone}/agentMessages/{rev.message_id}",
            "rbm revoke",
            params={"agentId": self.agent_id},
        )
        if answer.status == 404:  # delivered or expired already: the events tell which
            return
        _raise(answer, "rbm revoke")

    async def close(self) -> None:
        await self._http.close()
        close = getattr(self._token, "close", None)  # a ServiceAccountTokenSource's session
        if close is not None:
            await close()


def _accepted(answer: Answer) -> bool:
    """Did the platform take (or already have) the message?

    Google documents that a repeated ``messageId`` is *ignored*, not which status says
    so. A repeat is answered either like the first send (200) or with the standard
    Google API conflict, ``409`` + ``"status": "ALREADY_EXISTS"``; both mean the message
    is with the platform once, so both count as accepted (after a crash, the retry of a
    send whose outcome was unknown is exactly such a repeat). A 409 with another status
    (``ABORTED``: a concurrency conflict) did not take the message: it is retried like
    any other transient error (safe, the id makes it idempotent).
    """
    if answer.ok:
        return True
    if answer.status != 409:
        return False
    body = answer.json()
    error = body.get("error") if isinstance(body, dict) else None
    status = error.get("status") if isinstance(error, dict) else None
    return status in (None, "ALREADY_EXISTS")


def _raise(answer: Answer, what: str) -> None:
    if answer.ok:
        return
    body = answer.json()
    error = body.get("error") if isinstance(body, dict) else None
    detail = str(error.get("message", "")) if isinstance(error, dict) else ""
    if answer.status in (403, 404):
        raise NotReachable(f"{what}: HTTP {answer.status} {detail}".strip(), status=answer.status)
    if answer.status == 400:
        raise UnsupportedFeature(f"{what}: HTTP 400 {detail}".strip(), status=400)
    if answer.status == 409:  # ABORTED: nothing was done, try again
        raise RetryableProviderError(f"{what}: HTTP 409 {detail}".strip(), status=409)
    raise_for_status(answer, what, detail)


# --------------------------------------------------------------------------- webhooks


def signed_bytes(body: bytes) -> bytes:
    """The bytes RBM signs for a webhook body: the envelope's ``message.data`` decoded.

    A body that is no such envelope is signed as it is: it can't come from Google, but a
    sender holding the client token gets a 200 and a dead letter (it is unreadable), while
    anyone else still gets a 401."""
    try:
        data = json.loads(body)["message"]["data"]
        return base64.b64decode(data, validate=True)
    except (ValueError, KeyError, TypeError, binascii.Error):
        return body


def sign_event(client_token: str, event: bytes) -> str:
    """``base64(HMAC-SHA512(client_token, event))``: the ``X-Goog-Signature`` of an event."""
    digest = hmac.new(client_token.encode(), event, hashlib.sha512).digest()
    return base64.b64encode(digest).decode()


def sign(client_token: str, body: bytes) -> str:
    """The ``X-Goog-Signature`` RBM puts on a webhook body (see :func:`signed_bytes`)."""
    return sign_event(client_token, signed_bytes(body))


def verify_signature(client_token: str, body: bytes, signature: str | None) -> bool:
    if not client_token or not signature:
        return False
    return hmac.compare_digest(sign(client_token, body), signature.strip())


def decode_envelope(body: bytes) -> dict[str, Any]:
    """The event inside ``{"message": {"data": base64(json)}}``; ValueError when malformed."""
    try:
        envelope = json.loads(body)
        data = envelope["message"]["data"]
        event = json.loads(base64.b64decode(data, validate=True))
    except (ValueError, KeyError, TypeError, binascii.Error) as exc:
        raise ValueError(f"not an RBM webhook envelope: {exc}") from exc
    if not isinstance(event, dict):
        raise ValueError("the RBM event is not a JSON object")
    return event


def encode_envelope(event: Mapping[str, Any]) -> bytes:
    """The inverse of :func:`decode_envelope` (for tests and the fake provider)."""
    data = base64.b64encode(json.dumps(event).encode()).decode()
    return json.dumps({"message": {"data": data}}).encode()


def _ts(value: object) -> int | None:
    if not isinstance(value, str):
        return None
    try:
        return parse_ts_ms(value)
    except ValueError:
        return None


def _str(event: Mapping[str, Any], key: str) -> str | None:
    value = event.get(key)
    return value if isinstance(value, str) and value else None


def parse_event(event: Mapping[str, Any]) -> ProviderEvent:
    """One decoded RBM event -> a receipt, an inbound message, or nothing to do.

    DELIVERED / READ / TTL_EXPIRATION_REVOKED / TTL_EXPIRATION_REVOKE_FAILED are receipts
    for ``messageId`` (ours); UNSUBSCRIBE is an opt-out (the text ``UNSUBSCRIBE``); a
    suggestion tap carries its ``postbackData``; free text goes on as it is (the core
    classifies STOP / START / HELP); a shared location becomes the text
    ``geo:<lat>,<lng>``. SUBSCRIBE and IS_TYPING change nothing (a subscription is not
    consent to marketing). Files are not understood yet: they are dead-lettered, not
    dropped.
    """
    phone = _str(event, "senderPhoneNumber") or _str(event, "phoneNumber")
    message_id = _str(event, "messageId")
    event_type = _str(event, "eventType")
    ts = _ts(event.get("sendTime"))
    key = _str(event, "eventId") or (
        f"{event_type or 'message'}:{message_id}" if message_id else None
    )
    if event_type in RECEIPT_EVENTS and key is not None:
        return ReceiptEvent(
            RECEIPT_EVENTS[event_type], key, message_id=message_id, phone=phone, ts=ts
        )
    if phone is None or key is None:
        return Ignored(key, "an RBM event without phone number or ids", dead_letter=True)
    if event_type == "UNSUBSCRIBE":
        return InboundEvent(phone, key, text="UNSUBSCRIBE", ts=ts)  # the core: an opt-out
    if event_type is not None:
        return Ignored(key, f"event {event_type}")
    response = event.get("suggestionResponse")
    if isinstance(response, Mapping) and isinstance(response.get("postbackData"), str):
        return InboundEvent(
            phone, key, postback=response["postbackData"], message_id=message_id, ts=ts
        )
    text = event.get("text")
    if isinstance(text, str):
        return InboundEvent(phone, key, text=text, message_id=message_id, ts=ts)
    location = event.get("location")
    if isinstance(location, Mapping):
        lat, lng = location.get("latitude"), location.get("longitude")
        if isinstance(lat, int | float) and isinstance(lng, int | float):
            return InboundEvent(phone, key, text=f"geo:{lat},{lng}", message_id=message_id, ts=ts)
    kinds = sorted(k for k in ("userFile", "location", "suggestionResponse") if k in event)
    return Ignored(key, f"user message not understood: {', '.join(kinds) or 'empty'}", True)
