"""An SMS REST adapter in the common Twilio shape, and its status / inbound callbacks.

``POST {base}/2010-04-01/Accounts/{sid}/Messages.json`` with form fields ``To``, ``From``
(or ``MessagingServiceSid``), ``Body`` and ``StatusCallback``; HTTP basic auth with the
account sid and auth token; ``201 {"sid": "SM...", "status": "queued"}`` on success and
``{"code": 21211, "message": "..."}`` on errors.

Our ``message_id`` rides in the status callback URL (``?mid=...``), so a delivery report
names the message without a lookup; the provider's ``sid`` is kept as a second key.

A plain SMS API has no idempotency key, so the adapter is *not idempotent*: after a
timeout or a 500 the message may have gone out, and the gateway does not repeat it
blindly (at most once). 429 and 503 are refusals and are retried.

For a send whose fate is unknown (a timeout, a 500, or the gateway died between its claim
and the answer), :meth:`TwilioSmsProvider.lookup` asks the Messages list resource whether
a message with that body went to that number since the claim: found -> it was sent (its
``sid``); not found -> no message was created (yet).

The sender (``JOURNEYS_TWILIO_FROM``) is a phone number (``From``) or a messaging service
SID ``MG...`` (``MessagingServiceSid``): :func:`sender_fields` tells them apart.

Callbacks (``parse_callback``) come as Twilio form posts (``MessageSid``,
``MessageStatus``, ``ErrorCode``; inbound: ``From``, ``Body``) or as JSON delivery reports
with an SMPP ``stat`` (docs/channels.md): DELIVRD -> delivered; UNDELIV, REJECTD,
EXPIRED, DELETED -> failed; ENROUTE, ACCEPTD, UNKNOWN -> nothing yet (not proof).
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import re
from collections.abc import Mapping
from dataclasses import dataclass
from email.utils import parsedate_to_datetime
from typing import Any, Final
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

from engine.channels.prepare import Prepared
from engine.channels.providers.base import (
    Ignored,
    InboundEvent,
    ProviderEvent,
    ProviderRejected,
    ReceiptEvent,
    SendResult,
)
from engine.channels.providers.http import (
    DEFAULT_TIMEOUT_S,
    Answer,
    HttpClient,
    raise_for_status,
)
from engine.core.effects import SendRequest
from engine.core.inputs import ReceiptStatus

TWILIO_BASE_URL: Final = "https://api.twilio.com"
E164: Final = re.compile(r"^\+[1-9]\d{1,14}$")
MESSAGING_SERVICE_SID: Final = re.compile(r"^MG[0-9a-fA-F]{32}$")
LOOKUP_PAGE_SIZE: Final = 100
LOOKUP_MAX_PAGES: Final = 10

SMPP_STAT: Final[dict[str, ReceiptStatus]] = {
    "DELIVRD": "delivered",
    "UNDELIV": "failed",
    "REJECTD": "failed",
    "EXPIRED": "failed",
    "DELETED": "failed",
}
SMPP_NOT_YET: Final = frozenset({"ENROUTE", "ACCEPTD", "UNKNOWN"})
TWILIO_STATUS: Final[dict[str, ReceiptStatus]] = {
    "delivered": "delivered",
    "read": "read",
    "undelivered": "failed",
    "failed": "failed",
    "canceled": "failed",
}
TWILIO_NOT_YET: Final = frozenset(
    {"queued", "accepted", "scheduled", "sending", "sent", "partially_delivered"}
)


class TwilioSmsProvider:
    name = "twilio"
    idempotent = False  # no idempotency key: an ambiguous send is looked up, never repeated

    def __init__(
        self,
        *,
        account_sid: str,
        auth_token: str,
        from_number: str | None = None,
        messaging_service_sid: str | None = None,
        status_callback: str | None = None,
        base_url: str = TWILIO_BASE_URL,
        timeout_s: float = DEFAULT_TIMEOUT_S,
        lookup_slack_s: float = 2.0,
    ) -> None:
        """``status_callback`` is the webhook URL Twilio reports each status to (our
        message id is added as ``?mid=``); ``lookup_slack_s`` allows for the clocks of this
        host and Twilio's to differ in :meth:`lookup`."""
        if not (from_number or messaging_service_sid):
            raise ValueError("an SMS sender needs from_number or messaging_service_sid")
        self.account_sid = account_sid
        self.from_number = from_number
        self.messaging_service_sid = messaging_service_sid
        self.status_callback = status_callback
        self.lookup_slack_s = lookup_slack_s
        basic = base64.b64encode(f"{account_sid}:{auth_token}".encode()).decode()
        self._http = HttpClient(
            base_url, timeout_s=timeout_s, headers={"Authorization": f"Basic {basic}"}
        )

    def __repr__(self) -> str:  # never the auth token
        sender = self.messaging_service_sid or self.from_number
        return f"TwilioSmsProvider({self.account_sid!r}, sender={sender!r})"

    async def send(self, msg: Prepared, req: SendRequest) -> SendResult:
        form = {"To": msg.to, "Body": str(msg.payload["body"])}
        if self.messaging_service_sid:
            form["MessagingServiceSid"] = self.messaging_service_sid
        if self.from_number:
            form["From"] = self.from_number
        if self.status_callback:
            form["StatusCallback"] = with_query(self.status_callback, mid=msg.message_id)
        answer = await self._http.request(
            "POST",
            f"/2010-04-01/Accounts/{self.account_sid}/Messages.json",
            what="sms send",
            form=form,
        )
        body = answer.json()
        if not answer.ok:
            detail = str(body.get("message", "")) if isinstance(body, dict) else ""
            code = body.get("code") if isinstance(body, dict) else None
            if 400 <= answer.status < 500 and answer.status not in (408, 429):
                raise ProviderRejected(
                    f"sms send: HTTP {answer.status} {detail}".strip(),
                    status=answer.status,
                    code=None if code is None else str(code),
                )
            raise_for_status(answer, "sms send", detail)
        sid = body.get("sid") if isinstance(body, dict) else None
        return SendResult(provider_id=sid if isinstance(sid, str) else None)

    async def lookup(self, to: str, body: str, since_ms: int) -> SendResult | None:
        """The message sent to ``to`` with text ``body`` created at or after ``since_ms``
        (epoch ms, the claim's time), or ``None`` if Twilio has none.

        ``GET /2010-04-01/Accounts/{sid}/Messages.json?To=...`` lists the number's
        messages, most recent first, in pages (``next_page_uri``); each has ``sid``,
        ``status``, ``body``, ``direction`` and ``date_created`` (RFC 2822, whole seconds).
        The listing stops after the page where messages older than ``since_ms`` begin.
        No ``DateSent`` filter: a message still in Twilio's queue has no ``date_sent``
        yet and would be missed. Errors raise like :meth:`send`.

        Twilio may rewrite the body (smart encoding, an appended opt-out footer): a body
        that only *starts* with ours matches too.
        """
        found = await self.lookup_message(to, body, since_ms)
        return None if found is None else SendResult(provider_id=found.sid)

    async def lookup_message(self, to: str, body: str, since_ms: int) -> LookedUp | None:
        """:meth:`lookup` with the message's status and creation time."""
        # date_created has whole seconds: compare at that resolution, minus the slack
        floor_s = int(since_ms // 1000 - self.lookup_slack_s)
        path: str | None = f"/2010-04-01/Accounts/{self.account_sid}/Messages.json"
        params: dict[str, str] | None = {"To": to, "PageSize": str(LOOKUP_PAGE_SIZE)}
        matches: list[LookedUp] = []
        for _ in range(LOOKUP_MAX_PAGES):
            if path is None:
                break
            answer = await self._http.request("GET", path, what="sms lookup", params=params)
            page = _page(answer)
            older = False
            for item in page.get("messages") or ():
                created = _created_s(item)
                if created is not None and created < floor_s:
                    older = True  # the rest of the listing is older still
                    continue
                found = _match(item, to, body, floor_s)
                if found is not None:
                    matches.append(found)
            nxt = page.get("next_page_uri")
            if older or not (isinstance(nxt, str) and nxt):
                break
            path, params = nxt, None
        # more than one would mean it went out twice already: name the first
        return min(matches, key=lambda m: m.created_s) if matches else None

    async def close(self) -> None:
        await self._http.close()


@dataclass(frozen=True, slots=True)
class LookedUp:
    """A message found by :meth:`TwilioSmsProvider.lookup_message`."""

    sid: str
    status: str
    created_s: int  # date_created, epoch seconds


def _page(answer: Answer) -> Mapping[str, Any]:
    body = answer.json()
    if not answer.ok:
        detail = str(body.get("message", "")) if isinstance(body, dict) else ""
        raise_for_status(answer, "sms lookup", detail)
    if not isinstance(body, dict):
        raise ProviderRejected("sms lookup: the answer is not a JSON object", status=answer.status)
    return body


def _created_s(item: object) -> int | None:
    created = item.get("date_created") if isinstance(item, dict) else None
    if not isinstance(created, str):
        return None
    try:
        return int(parsedate_to_datetime(created).timestamp())
    except (TypeError, ValueError):
        return None


def _match(item: object, to: str, body: str, floor_s: int) -> LookedUp | None:
    if not isinstance(item, dict):
        return None
    sid, text, created_s = item.get("sid"), item.get("body"), _created_s(item)
    if not (isinstance(sid, str) and isinstance(text, str)) or created_s is None:
        return None
    if item.get("to") not in (None, to):
        return None
    direction = item.get("direction")
    if isinstance(direction, str) and not direction.startswith("outbound"):
        return None
    if text != body and not text.startswith(body):
        return None
    if created_s < floor_s:
        return None
    return LookedUp(sid, str(item.get("status", "")), created_s)


def sender_fields(sender: str) -> dict[str, str]:
    """The constructor arguments for a sender: an E.164 number is ``from_number``, a
    messaging service SID (``MG`` + 32 hex digits) is ``messaging_service_sid``;
    ValueError for anything else."""
    sender = sender.strip()
    if MESSAGING_SERVICE_SID.match(sender):
        return {"messaging_service_sid": sender}
    if E164.match(sender):
        return {"from_number": sender}
    raise ValueError(
        "an SMS sender is an E.164 number (+15551234567) or a messaging service SID "
        "(MG followed by 32 hex digits)"
    )


def with_query(url: str, **params: str) -> str:
    """``url`` with ``params`` added to its query string."""
    parts = urlsplit(url)
    query = parse_qsl(parts.query, keep_blank_values=True) + list(params.items())
    return urlunsplit(parts._replace(query=urlencode(query)))


# --------------------------------------------------------------------------- callbacks


def twilio_signature(auth_token: str, url: str, params: Mapping[str, str]) -> str:
    """Twilio's ``X-Twilio-Signature``: base64 HMAC-SHA1 of the URL followed by every
    form field name and value, sorted by name."""
    data = url + "".join(k + params[k] for k in sorted(params))
    digest = hmac.new(auth_token.encode(), data.encode(), hashlib.sha1).digest()
    return base64.b64encode(digest).decode()


def _first(fields: Mapping[str, str], *keys: str) -> str | None:
    for key in keys:
        value = fields.get(key)
        if value:
            return value
    return None


def parse_callback(fields: Mapping[str, str], message_id: str | None = None) -> ProviderEvent:
    """A status callback, delivery report or inbound SMS -> event. ``message_id`` is ours
    (from the callback URL), when known."""
    provider_id = _first(fields, "MessageSid", "SmsSid", "message_sid", "id")
    message_id = message_id or _first(fields, "message_id", "client_ref")
    event_id = _first(fields, "event_id", "eventId")
    stat = _first(fields, "stat")
    status = _first(fields, "MessageStatus", "SmsStatus", "status")
    body = fields.get("Body", fields.get("text"))
    if body is not None and stat is None and (status is None or status.lower() == "received"):
        phone = _first(fields, "From", "from", "msisdn")
        key = event_id or (f"in:{provider_id}" if provider_id else None)
        if phone is None or key is None:
            return Ignored(key, "an inbound SMS without sender or id", dead_letter=True)
        return InboundEvent(phone, key, text=body)
    ref = provider_id or message_id
    if ref is None:
        return Ignored(event_id, "a delivery report without message id", dead_letter=True)
    phone = _first(fields, "To", "to", "msisdn")
    error = _first(fields, "err", "ErrorCode", "error_code")
    if stat is not None:
        stat = stat.upper()
        key = event_id or f"dlr:{ref}:{stat}"
        if stat in SMPP_NOT_YET:
            return Ignored(key, f"stat {stat} is not proof of anything")
        mapped = SMPP_STAT.get(stat)
        raw = stat
    elif status is not None:
        raw = status.lower()
        key = event_id or f"dlr:{ref}:{raw}"
        if raw in TWILIO_NOT_YET:
            return Ignored(key, f"status {raw}: not final")
        mapped = TWILIO_STATUS.get(raw)
    else:
        return Ignored(event_id, "a callback with neither status nor body", dead_letter=True)
    if mapped is None:
        return Ignored(key, f"unknown delivery status {raw!r}", dead_letter=True)
    reason = None
    if mapped == "failed":
        has_error = error is not None and error.strip("0") != ""
        reason = f"sms.{raw}" + (f":{error}" if has_error else "")
    return ReceiptEvent(
        mapped, key, message_id=message_id, provider_id=provider_id, phone=phone, reason=reason
    )
