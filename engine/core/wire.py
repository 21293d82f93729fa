"""The wire: every record the engine reads or writes, to bytes and back (JSON, one object).

This is the one module that knows the wire formats; adapters (the simulator, the stream
runtime, the gateway, stats) call it and never build or pick apart records themselves.
The pydantic models in :mod:`engine.core.schema` describe exactly these records, and
generate the JSON Schemas in ``docs/schemas/`` (``tests/unit/test_wire_schema.py`` checks
both ways that models and this module agree).

Records, where they travel, and the functions that write / read them:

* user event (``journey.user-events``): :func:`user_event_wire` / :func:`user_event`;
* channel receipt (``journey.channel-receipts``): :func:`receipt_wire` / :func:`receipt`;
* inbound message (``journey.inbound``): :func:`inbound_wire` / :func:`inbound`;
* wake-up, the record a due ``ScheduleWake`` becomes (``journey.timers``):
  :func:`wake_value` / :func:`wake_from`; a scheduled-entry tick on the same topic:
  :func:`scheduled_value` / :func:`timer_record` (reads both);
* a simulation-file line (any input): :func:`input_wire` / :func:`decode_line`;
* send request and revoke (``journey.send-requests``): :func:`send_request_value`,
  :func:`revoke_value` / :func:`decode_gateway_request`;
* webhook request (``journey.send-requests``, ``"type": "webhook"``) and its result
  (``journey.channel-receipts``, ``"type": "webhook_result"``):
  :func:`webhook_request_wire` / :func:`webhook_request`, :func:`webhook_result_wire` /
  :func:`webhook_result` (:func:`receipt` reads both kinds of receipt);
* outcome (``journey.outcomes``): :func:`outcome_value` / :func:`outcome`, or
  :func:`outcome_record` for a plain dict (stats);
* user state (the engine's table value): :func:`state_record` / :func:`parse_state_record`;
  a line of a states file: :func:`state_line` / :func:`state_wire` (reads both);
* dead letter (``journey.dead-letters``): :func:`dead_letter` / :func:`decode_dead_letter`;
* split decision (``journey.control``): :func:`split_decision_value` /
  :func:`decode_split_decision`.
* trace record (``journey.traces``, traced users only): :func:`trace_value` /
  :func:`decode_trace`.

Timestamps are written as ISO-8601 UTC with milliseconds when not zero
(:func:`engine.durations.format_ts`), and read only in the documented ISO-8601 form
(:data:`engine.durations.ISO_INSTANT_PATTERN`): an epoch number, a date without a time or
anything else is ``bad_timestamp``. Adapters also check every input's ``ts`` against a
:class:`TimeWindow` (``bad_timestamp`` outside it).

Pure like the rest of the core: no clock (a dead letter's time is the caller's argument),
no I/O. Every way a message can be unusable maps to an :class:`~engine.errors.InputError`
with a short stable ``reason`` (``bad_json``, ``not_an_object``, ``missing_field``,
``wrong_type``, ``bad_timestamp``, ``oversized``, ``unknown_type``, ``missing_value``;
``unsupported_version`` for an outcome):
adapters put the reason and the original bytes on the dead-letter topic.
"""

from __future__ import annotations

import base64
import binascii
import zlib
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, cast

import orjson

from engine.core.effects import SCHEMA_VERSION, Outcome, Revoke, SendRequest, WebhookRequest
from engine.core.ids import wake_token
from engine.core.inputs import (
    RECEIPT_STATUSES,
    Forget,
    Inbound,
    Input,
    Receipt,
    ReceiptStatus,
    Scheduled,
    UserEvent,
    Wake,
    WebhookResult,
)
from engine.core.state import UserState
from engine.core.trace import Trace
from engine.core.winner import SplitDecision
from engine.durations import (
    MAX_INSTANT_MS,
    MIN_INSTANT_MS,
    clamp_instant,
    format_ts,
    parse_iso_instant,
)
from engine.errors import InputError

MAX_MESSAGE_BYTES = 256 * 1024

#: A dead letter carries the original bytes; past this size they are cut (and flagged):
#: the dead-letter topic is created with room for a whole 1 MiB input in base64.
DEAD_LETTER_MAX_ORIGINAL = 2 * 1024 * 1024
DEAD_LETTER_MAX_DETAIL = 2000


def dumps(obj: dict[str, Any]) -> bytes:
    return orjson.dumps(obj)


# ---------------------------------------------------------------- reading helpers


def _object(raw: bytes | str) -> dict[str, Any]:
    try:
        data = orjson.loads(raw)
    except orjson.JSONDecodeError as exc:
        raise InputError("bad_json", str(exc)) from exc
    if not isinstance(data, dict):
        raise InputError("not_an_object", f"expected a JSON object, got {type(data).__name__}")
    return data


def loads(raw: bytes | str) -> dict[str, Any]:
    """An input message as a dict: size-checked, valid JSON, an object."""
    if len(raw) > MAX_MESSAGE_BYTES:
        raise InputError("oversized", f"{len(raw)} bytes; the limit is {MAX_MESSAGE_BYTES}")
    return _object(raw)


def _present(raw: bytes | None) -> bytes:
    if raw is None:
        raise InputError("missing_value", "the message has no value (a tombstone?)")
    return raw


def _str(d: dict[str, Any], key: str, *, required: bool = True) -> str | None:
    v = d.get(key)
    if v is None:
        if required:
            raise InputError("missing_field", f"'{key}' is required")
        return None
    if not isinstance(v, str) or (required and not v):
        raise InputError("wrong_type", f"'{key}' must be a non-empty string")
    return v


def _int(d: dict[str, Any], key: str) -> int | None:
    """An optional integer (a JSON ``true`` is not one)."""
    v = d.get(key)
    if v is not None and (not isinstance(v, int) or isinstance(v, bool)):
        raise InputError("wrong_type", f"'{key}' must be an integer")
    return v


def _ts(d: dict[str, Any], key: str = "ts") -> int:
    v = d.get(key)
    if v is None:
        raise InputError(
            "missing_field", f"'{key}' is required (ISO-8601, e.g. 2026-11-29T10:00:00Z)"
        )
    if not isinstance(v, str):
        # Epoch numbers are refused: 1e17 or -5 would pass as "seconds or milliseconds"
        # and put a user decades away (docs/schemas: a timestamp is ISO-8601 text).
        raise InputError(
            "bad_timestamp",
            f"'{key}' must be ISO-8601 text like 2026-11-29T10:00:00Z, not {type(v).__name__}",
        )
    try:
        return parse_iso_instant(v)
    except ValueError as exc:
        raise InputError("bad_timestamp", f"'{key}': {exc}") from exc


@dataclass(frozen=True, slots=True)
class TimeWindow:
    """The instants an input may carry: ``earliest <= ts <= latest``. The adapter builds
    it from its settings and its wall clock (``latest`` = the configured bound or now plus
    the allowed skew, whichever is earlier): the core never reads a clock."""

    earliest: int
    latest: int

    def check(self, ts: int, what: str = "ts") -> int:
        """``ts``, or :class:`InputError` ``bad_timestamp`` when it is outside."""
        if not self.earliest <= ts <= self.latest:
            raise InputError(
                "bad_timestamp",
                f"'{what}' {format_ts(clamp_instant(ts))} is outside the accepted window "
                f"{format_ts(self.earliest)} .. {format_ts(self.latest)}",
            )
        return ts


def _obj(d: dict[str, Any], key: str) -> dict[str, Any] | None:
    v = d.get(key)
    if v is None:
        return None
    if not isinstance(v, dict):
        raise InputError("wrong_type", f"'{key}' must be an object")
    return v


# ---------------------------------------------------------------- inputs


def user_event(d: dict[str, Any]) -> UserEvent:
    # The common case first, checked in one expression: ids and name non-empty text,
    # properties an object, profile an object or absent. Anything else takes the checks
    # below, which say what is wrong.
    get = d.get
    event_id, user_id, name = get("event_id"), get("user_id"), get("name")
    props, profile = get("properties"), get("profile")
    if (
        type(event_id) is str
        and event_id
        and type(user_id) is str
        and user_id
        and type(name) is str
        and name
        and type(props) is dict
        and (profile is None or type(profile) is dict)
    ):
        return UserEvent(event_id, user_id, name, _ts(d), props, profile)
    return UserEvent(
        event_id=_str(d, "event_id") or "",
        user_id=_str(d, "user_id") or "",
        name=_str(d, "name") or "",
        ts=_ts(d),
        properties=_obj(d, "properties") or {},
        profile=_obj(d, "profile"),
    )


def user_event_wire(e: UserEvent) -> dict[str, Any]:
    w: dict[str, Any] = {
        "event_id": e.event_id,
        "user_id": e.user_id,
        "name": e.name,
        "ts": format_ts(e.ts),
        "properties": e.properties,
    }
    if e.profile is not None:
        w["profile"] = e.profile
    return w


def receipt(d: dict[str, Any]) -> Receipt | WebhookResult:
    """A record of ``journey.channel-receipts``: a message's receipt, or a webhook's result."""
    if d.get("type") == "webhook_result":
        return webhook_result(d)
    return message_receipt(d)


def message_receipt(d: dict[str, Any]) -> Receipt:
    status = _str(d, "status") or ""
    if status not in RECEIPT_STATUSES:
        raise InputError("wrong_type", f"'status' must be one of {', '.join(RECEIPT_STATUSES)}")
    message_id, node = _str(d, "message_id", required=False), _str(d, "node", required=False)
    if message_id is None and node is None:
        raise InputError("missing_field", "a receipt names its 'message_id' (or 'node')")
    return Receipt(
        _str(d, "user_id") or "",
        _ts(d),
        cast(ReceiptStatus, status),
        message_id,
        node,
        _str(d, "reason", required=False),
    )


def receipt_wire(r: Receipt) -> dict[str, Any]:
    """The gateway's receipt (``message_id`` always written, null or not); ``node`` only
    in simulation files."""
    w: dict[str, Any] = {
        "type": "receipt",
        "user_id": r.user_id,
        "ts": format_ts(r.ts),
        "message_id": r.message_id,
        "status": r.status,
    }
    if r.node is not None:
        w["node"] = r.node
    if r.reason is not None:
        w["reason"] = r.reason
    return w


def receipt_from_wire(w: dict[str, Any]) -> Receipt:
    return message_receipt(w)


def inbound(d: dict[str, Any], keyword: Any = None) -> Inbound:
    postback, text = _str(d, "postback", required=False), _str(d, "text", required=False)
    if postback is None and text is None:
        raise InputError("missing_field", "an inbound message has 'postback' or 'text'")
    kw = d.get("keyword", keyword)
    if kw not in (None, "opt_out", "opt_in", "help"):
        raise InputError("wrong_type", "'keyword' must be opt_out, opt_in or help")
    return Inbound(
        _str(d, "user_id") or "",
        _ts(d),
        postback,
        text,
        _str(d, "message_id", required=False),
        kw,
        _str(d, "event_id", required=False),
    )


def inbound_wire(i: Inbound) -> dict[str, Any]:
    w: dict[str, Any] = {"type": "inbound", "user_id": i.user_id, "ts": format_ts(i.ts)}
    for key in ("postback", "text", "message_id", "keyword", "event_id"):
        v = getattr(i, key)
        if v is not None:
            w[key] = v
    return w


def wake(d: dict[str, Any]) -> Wake:
    """A wake-up record. One without a token (a hand-written line) stands for the wake-up
    scheduled at its time, so the core drops it unless a timer is due then."""
    user_id, ts = _str(d, "user_id") or "", _ts(d)
    return Wake(user_id, ts, _str(d, "token", required=False) or wake_token(user_id, ts))


def wake_wire(w: Wake) -> dict[str, Any]:
    return {"type": "wake", "user_id": w.user_id, "ts": format_ts(w.ts), "token": w.token}


def wake_value(user_id: str, at: int, token: str) -> bytes:
    """The ``journey.timers`` record of a due :class:`~engine.core.effects.ScheduleWake`."""
    return dumps(wake_wire(Wake(user_id, at, token)))


def wake_from(raw: bytes | None) -> Wake:
    return wake(loads(_present(raw)))


def forget(d: dict[str, Any]) -> Forget:
    """``journeys forget``'s request, on journey.user-events (keyed by user_id)."""
    return Forget(_str(d, "user_id") or "", _ts(d), _str(d, "request_id", required=False) or "")


def forget_wire(f: Forget) -> dict[str, Any]:
    w: dict[str, Any] = {"type": "forget", "user_id": f.user_id, "ts": format_ts(f.ts)}
    if f.request_id:
        w["request_id"] = f.request_id
    return w


def scheduled(d: dict[str, Any]) -> Scheduled:
    """A scheduled-entry tick on ``journey.timers`` (:mod:`engine.core.audience`)."""
    return Scheduled(
        _str(d, "user_id") or "",
        _ts(d),
        _str(d, "journey_id") or "",
        _str(d, "occurrence") or "",
    )


def scheduled_wire(s: Scheduled) -> dict[str, Any]:
    return {
        "type": "scheduled",
        "user_id": s.user_id,
        "ts": format_ts(s.ts),
        "journey_id": s.journey_id,
        "occurrence": s.occurrence,
    }


def scheduled_value(s: Scheduled) -> bytes:
    return dumps(scheduled_wire(s))


def timer_record(d: dict[str, Any]) -> Wake | Scheduled:
    """A ``journey.timers`` record: a wake-up, or a scheduled-entry tick."""
    return scheduled(d) if d.get("type") == "scheduled" else wake(d)


DECODERS: dict[str, Callable[[dict[str, Any]], Input]] = {
    "event": user_event,
    "receipt": receipt,
    "inbound": inbound,
    "wake": wake,
    "forget": forget,
    "webhook_result": lambda d: webhook_result(d),
    "scheduled": scheduled,
}


def decode_line(d: dict[str, Any]) -> Input:
    """A simulation-file line: a user event, or ``{"type": "receipt"|"inbound", ...}``."""
    kind = d.get("type", "event")
    decoder = DECODERS.get(kind) if isinstance(kind, str) else None
    if decoder is None:
        raise InputError("unknown_type", f"'type' must be one of {', '.join(DECODERS)}")
    return decoder(d)


def input_wire(inp: Input) -> dict[str, Any]:
    """Any input as a line :func:`decode_line` reads back (a user event has no ``type``)."""
    match inp:
        case UserEvent():
            return user_event_wire(inp)
        case Receipt():
            return receipt_wire(inp)
        case Inbound():
            return inbound_wire(inp)
        case Forget():
            return forget_wire(inp)
        case Wake():
            return wake_wire(inp)
        case WebhookResult():
            return webhook_result_wire(inp)
        case Scheduled():
            return scheduled_wire(inp)


def input_value(inp: Input) -> bytes:
    return dumps(input_wire(inp))


# ---------------------------------------------------------------- effects: engine -> gateway


def send_request_wire(req: SendRequest) -> dict[str, Any]:
    return {"type": "send", **req.to_wire()}


def send_request_value(req: SendRequest) -> bytes:
    return dumps(send_request_wire(req))


def revoke_wire(rev: Revoke) -> dict[str, Any]:
    return {
        "type": "revoke",
        "message_id": rev.message_id,
        "user_id": rev.user_id,
        "ts": format_ts(rev.ts),
    }


def revoke_value(rev: Revoke) -> bytes:
    return dumps(revoke_wire(rev))


def _send_rate(d: dict[str, Any]) -> dict[str, int] | None:
    """A send request's ``send_rate``: absent (or null), or ``{"max", "per_ms"}``, both
    positive integers."""
    rate = _obj(d, "send_rate")
    if rate is None:
        return None
    out: dict[str, int] = {}
    for key in ("max", "per_ms"):
        v = rate.get(key)
        if not isinstance(v, int) or isinstance(v, bool) or v < 1:
            raise InputError("wrong_type", f"'send_rate.{key}' must be a positive integer")
        out[key] = v
    return out


def send_request(d: dict[str, Any]) -> SendRequest:
    ttl = _int(d, "ttl_ms")
    version = _int(d, "journey_version")
    channel = _str(d, "channel") or ""
    if channel not in ("rcs", "sms"):
        raise InputError("wrong_type", "'channel' must be rcs or sms")
    return SendRequest(
        message_id=_str(d, "message_id") or "",
        ts=_ts(d),
        user_id=_str(d, "user_id") or "",
        to=_str(d, "to", required=False) or "",
        channel=channel,
        content=_obj(d, "content") or {},
        journey_id=_str(d, "journey_id", required=False),
        journey_version=version,
        instance_id=_str(d, "instance_id", required=False),
        node_id=_str(d, "node_id", required=False),
        ttl_ms=ttl,
        purpose=_str(d, "purpose", required=False) or "journey",
        fallback_of=_str(d, "fallback_of", required=False),
        profile=_obj(d, "profile") or {},
        send_rate=_send_rate(d),
    )


def revoke(d: dict[str, Any]) -> Revoke:
    return Revoke(_str(d, "message_id") or "", _str(d, "user_id") or "", _ts(d))


GatewayRequest = SendRequest | Revoke | Forget | WebhookRequest


def gateway_request(d: dict[str, Any]) -> GatewayRequest:
    """A send, a revoke, a webhook call, or a forgotten user (the engine forwards
    ``journeys forget`` so the gateway drops its records of the user)."""
    kind = d.get("type", "send")
    if kind == "revoke":
        return revoke(d)
    if kind == "forget":
        return forget(d)
    if kind == "webhook":
        return webhook_request(d)
    if kind != "send":
        raise InputError("unknown_type", "'type' must be send, revoke, webhook or forget")
    return send_request(d)


def decode_gateway_request(raw: bytes | None) -> GatewayRequest:
    """A ``journey.send-requests`` message; :class:`InputError` when unusable."""
    return gateway_request(loads(_present(raw)))


# ---------------------------------------------------------------- webhooks

#: a webhook result carries at most this much of the response body (for ``save:``)
WEBHOOK_BODY_KEPT = 4096


def webhook_request_wire(req: WebhookRequest) -> dict[str, Any]:
    return {
        "type": "webhook",
        "action_id": req.action_id,
        "ts": format_ts(req.ts),
        "user_id": req.user_id,
        "url": req.url,
        "method": req.method,
        "body": req.body,
        "headers": req.headers,
        "timeout_ms": req.timeout_ms,
        "allow": req.allow,
        "journey_id": req.journey_id,
        "journey_version": req.journey_version,
        "instance_id": req.instance_id,
        "node_id": req.node_id,
    }


def webhook_request_value(req: WebhookRequest) -> bytes:
    return dumps(webhook_request_wire(req))


def _str_map(d: dict[str, Any], key: str) -> dict[str, str]:
    v = _obj(d, key) or {}
    if not all(isinstance(x, str) for x in v.values()):
        raise InputError("wrong_type", f"'{key}' must map names to strings")
    return v


def _str_list(d: dict[str, Any], key: str) -> list[str]:
    v = d.get(key) or []
    if not isinstance(v, list) or not all(isinstance(x, str) for x in v):
        raise InputError("wrong_type", f"'{key}' must be a list of strings")
    return v


def webhook_request(d: dict[str, Any]) -> WebhookRequest:
    timeout, version = _int(d, "timeout_ms"), _int(d, "journey_version")
    if timeout is None or timeout < 1:
        raise InputError("wrong_type", "'timeout_ms' must be a positive integer")
    if version is None:
        raise InputError("missing_field", "'journey_version' is required")
    return WebhookRequest(
        action_id=_str(d, "action_id") or "",
        ts=_ts(d),
        user_id=_str(d, "user_id") or "",
        url=_str(d, "url") or "",
        method=_str(d, "method") or "",
        body=_str(d, "body", required=False),
        headers=_str_map(d, "headers"),
        timeout_ms=timeout,
        allow=_str_list(d, "allow"),
        journey_id=_str(d, "journey_id") or "",
        journey_version=version,
        instance_id=_str(d, "instance_id") or "",
        node_id=_str(d, "node_id") or "",
    )


def webhook_result_wire(r: WebhookResult) -> dict[str, Any]:
    w: dict[str, Any] = {
        "type": "webhook_result",
        "user_id": r.user_id,
        "ts": format_ts(r.ts),
        "action_id": r.action_id,
        "status": r.status,
        "code": r.code,
    }
    if r.reason is not None:
        w["reason"] = r.reason
    if r.body is not None:
        w["body"] = r.body[:WEBHOOK_BODY_KEPT]
    return w


def webhook_result(d: dict[str, Any]) -> WebhookResult:
    status = _str(d, "status") or ""
    if status not in ("called", "failed"):
        raise InputError("wrong_type", "'status' of a webhook result must be called or failed")
    body = _str(d, "body", required=False)
    return WebhookResult(
        _str(d, "user_id") or "",
        _ts(d),
        _str(d, "action_id") or "",
        cast(Any, status),
        _int(d, "code"),
        _str(d, "reason", required=False),
        None if body is None else body[:WEBHOOK_BODY_KEPT],
    )


# ---------------------------------------------------------------- outcomes


def outcome_wire(o: Outcome) -> dict[str, Any]:
    return o.to_wire()


def outcome_value(o: Outcome) -> bytes:
    return dumps(o.to_wire())


def outcome_record(raw: bytes | str) -> dict[str, Any]:
    """An outcome as the plain dict it is on the wire: valid JSON and an object, fields not
    checked one by one. For readers that count outcomes by the hundred thousand (stats) and
    check only the fields they use; :func:`outcome` checks them all."""
    return _object(raw)


def outcome(d: dict[str, Any]) -> Outcome:
    """An outcome record -> :class:`~engine.core.effects.Outcome`. A newer
    ``schema_version`` (a breaking change) is refused rather than read wrong; readers of
    plain dicts (:func:`outcome_record`) decide for themselves."""
    version = _int(d, "journey_version")
    schema_version = _int(d, "schema_version")
    if schema_version is None:
        raise InputError("missing_field", "'schema_version' is required")
    if schema_version > SCHEMA_VERSION:
        raise InputError(
            "unsupported_version",
            f"schema_version {schema_version}; this reader knows up to {SCHEMA_VERSION}",
        )
    return Outcome(
        outcome_id=_str(d, "outcome_id") or "",
        type=_str(d, "type") or "",
        ts=_ts(d),
        user_id=_str(d, "user_id") or "",
        journey_id=_str(d, "journey_id", required=False),
        journey_version=version,
        instance_id=_str(d, "instance_id", required=False),
        node_id=_str(d, "node_id", required=False),
        channel=_str(d, "channel", required=False),
        message_id=_str(d, "message_id", required=False),
        attributes=_obj(d, "attributes") or {},
    )


def decode_outcome(raw: bytes | str) -> Outcome:
    return outcome(outcome_record(raw))


# ---------------------------------------------------------------- trace records


def trace_wire(t: Trace) -> dict[str, Any]:
    return {
        "trace_id": t.trace_id,
        "ts": format_ts(t.ts),
        "user_id": t.user_id,
        "kind": t.kind,
        "reason": t.reason,
        "journey_id": t.journey_id,
        "journey_version": t.journey_version,
        "instance_id": t.instance_id,
        "node_id": t.node_id,
        "values": t.values,
        "schema_version": SCHEMA_VERSION,
    }


def trace_value(t: Trace) -> bytes:
    return dumps(trace_wire(t))


def trace(d: dict[str, Any]) -> Trace:
    """A trace record -> :class:`~engine.core.trace.Trace` (a newer ``schema_version`` is
    refused, as for outcomes)."""
    schema_version = _int(d, "schema_version")
    if schema_version is not None and schema_version > SCHEMA_VERSION:
        raise InputError(
            "unsupported_version",
            f"schema_version {schema_version}; this reader knows up to {SCHEMA_VERSION}",
        )
    return Trace(
        trace_id=_str(d, "trace_id") or "",
        ts=_ts(d),
        user_id=_str(d, "user_id") or "",
        kind=_str(d, "kind") or "",
        reason=_str(d, "reason") or "",
        journey_id=_str(d, "journey_id", required=False),
        journey_version=_int(d, "journey_version"),
        instance_id=_str(d, "instance_id", required=False),
        node_id=_str(d, "node_id", required=False),
        values=_obj(d, "values") or {},
    )


def decode_trace(raw: bytes | str) -> Trace:
    return trace(_object(raw))


# ---------------------------------------------------------------- state (the table value)


#: The compact table value: this byte, then the JSON record ``{"p": .., "s": ..}`` in raw
#: DEFLATE with a preset dictionary of what every state record repeats (the keys, the empty
#: run fields, the first digits of epoch-ms times). A waiting user's record goes from about
#: 210 bytes to about 90 (docs/benchmarks.md, R4); encoding costs ~5 us, decoding ~1 us.
#: A value that starts with ``{`` is the plain JSON record written before: still read.
STATE_COMPACT = b"\x01"
_STATE_ZDICT = (
    b'"sent","delivered","read","failed","rcs","sms",[],null,null,null]],'
    b'{"p":0,"s":{"u":"","c":17,"a":{},"s":[""],"l":[17],'
    b'"m":[["","","",1,"","sms",17,"sent",[],null,null,null]],'
    b'"i":[["","",1,"",17,{},{},1,17,null,{}]],"h":{"":[1,17,[],[]]},"w":17'
)
_STATE_WBITS = -10  # raw DEFLATE, a 1 KiB window: a small one is what keeps encoding cheap
_STATE_MAX_BYTES = 4 * 1024 * 1024  # far above MAX_RECORD_BYTES of the runtime


def state_record(partition: int, state: UserState) -> bytes:
    """Table value: the user's partition (for the timer index) and the state's wire form
    (:meth:`~engine.core.state.UserState.to_wire`, short keys), compact (see
    :data:`STATE_COMPACT`)."""
    plain = orjson.dumps({"p": partition, "s": state.to_wire()})
    z = zlib.compressobj(6, zlib.DEFLATED, _STATE_WBITS, 1, zlib.Z_DEFAULT_STRATEGY, _STATE_ZDICT)
    return STATE_COMPACT + z.compress(plain) + z.flush()


def state_json(raw: bytes) -> bytes:
    """The JSON record (``{"p": .., "s": ..}``) of a table value, compact or plain."""
    if raw[:1] != STATE_COMPACT:
        return raw
    try:
        z = zlib.decompressobj(_STATE_WBITS, _STATE_ZDICT)
        plain = z.decompress(raw[1:], _STATE_MAX_BYTES)
    except zlib.error as exc:
        raise InputError("bad_state", f"a compact user state does not inflate: {exc}") from None
    if not z.eof:
        raise InputError("bad_state", "a compact user state is cut short or too large")
    return plain


def parse_state_record(raw: bytes) -> tuple[int, dict[str, Any]]:
    """(partition, the state's wire form) of a table value (compact or plain JSON)."""
    d = orjson.loads(state_json(raw))
    return int(d["p"]), d["s"]


def state_from_record(raw: bytes) -> tuple[int, UserState]:
    partition, wire = parse_state_record(raw)
    return partition, UserState.from_wire(wire)


def state_line(state: UserState) -> bytes:
    """One line of a states file (``journeys simulate --states-out``): the state's wire
    form, as in the table value's ``s``."""
    return orjson.dumps(state.to_wire())


def state_wire(raw: bytes | str) -> dict[str, Any]:
    """A state's wire form from a states-file line or a table value (``{"p": .., "s": ..}``);
    an :class:`~engine.errors.InputError` when it is neither."""
    if isinstance(raw, bytes):
        raw = state_json(raw)
    d = _object(raw)
    if isinstance(d.get("s"), dict) and "p" in d:
        d = d["s"]
    if not isinstance(d.get("u"), str):
        raise InputError("missing_field", "a user state has its user id in 'u'")
    return d


def state_wake_at(raw: bytes) -> tuple[int, int | None]:
    """(partition, the earliest timer the state last scheduled): what rebuilding the timer
    index needs, without building the whole state."""
    partition, wire = parse_state_record(raw)
    return partition, wire.get("w")


# ---------------------------------------------------------------- dead letters


@dataclass(frozen=True, slots=True)
class DeadLetter:
    """An unusable input: why, where from, and the original bytes."""

    reason: str
    detail: str
    stage: str  # engine | gateway
    topic: str
    partition: int
    offset: int
    timestamp: int | None  # the original record's Kafka timestamp, epoch ms
    key: bytes | None
    value: bytes | None  # the original bytes, cut at DEAD_LETTER_MAX_ORIGINAL
    size: int | None  # the original length (None: the record had no value)
    truncated: bool
    dead_lettered_at: int  # epoch ms


def dead_letter_wire(dl: DeadLetter) -> dict[str, Any]:
    """``{"reason", "detail", "stage", "topic", "partition", "offset", "timestamp",
    "key", "key_b64", "value_b64", "size", "truncated", "dead_lettered_at"}``: ``key`` is
    the key as text when it is UTF-8, ``*_b64`` the bytes in base64."""
    key_text: str | None
    try:
        key_text = dl.key.decode() if dl.key is not None else None
    except UnicodeDecodeError:
        key_text = None
    return {
        "reason": dl.reason,
        "detail": dl.detail,
        "stage": dl.stage,
        "topic": dl.topic,
        "partition": dl.partition,
        "offset": dl.offset,
        # A producer may stamp a record with any Kafka timestamp: unwritable ones are left
        # out rather than failing the dead letter itself.
        "timestamp": format_ts(dl.timestamp)
        if dl.timestamp and MIN_INSTANT_MS <= dl.timestamp <= MAX_INSTANT_MS
        else None,
        "key": key_text,
        "key_b64": base64.b64encode(dl.key).decode() if dl.key is not None else None,
        "value_b64": base64.b64encode(dl.value).decode() if dl.value is not None else None,
        "size": dl.size,
        "truncated": dl.truncated,
        "dead_lettered_at": format_ts(dl.dead_lettered_at),
    }


def dead_letter(
    *,
    reason: str,
    detail: str,
    stage: str,
    topic: str,
    partition: int,
    offset: int,
    key: bytes | None,
    value: bytes | None,
    dead_lettered_at: int,
    timestamp_ms: int | None = None,
) -> bytes:
    """The dead-letter record of an unusable input (``detail`` and the original bytes cut
    to their limits). ``dead_lettered_at``: the adapter's wall clock, epoch ms."""
    return dumps(
        dead_letter_wire(
            DeadLetter(
                reason=reason,
                detail=detail[:DEAD_LETTER_MAX_DETAIL],
                stage=stage,
                topic=topic,
                partition=partition,
                offset=offset,
                timestamp=timestamp_ms,
                key=key,
                value=value[:DEAD_LETTER_MAX_ORIGINAL] if value is not None else None,
                size=len(value) if value is not None else None,
                truncated=value is not None and len(value) > DEAD_LETTER_MAX_ORIGINAL,
                dead_lettered_at=dead_lettered_at,
            )
        )
    )


def _b64(d: dict[str, Any], key: str) -> bytes | None:
    text = _str(d, key, required=False)
    try:
        return base64.b64decode(text, validate=True) if text is not None else None
    except binascii.Error as exc:
        raise InputError("wrong_type", f"'{key}' must be base64") from exc


def _required_int(d: dict[str, Any], key: str) -> int:
    v = _int(d, key)
    if v is None:
        raise InputError("missing_field", f"'{key}' is required")
    return v


def dead_letter_from_wire(d: dict[str, Any]) -> DeadLetter:
    truncated = d.get("truncated")
    if not isinstance(truncated, bool):
        raise InputError("wrong_type", "'truncated' must be true or false")
    return DeadLetter(
        reason=_str(d, "reason") or "",
        detail=_str(d, "detail", required=False) or "",
        stage=_str(d, "stage") or "",
        topic=_str(d, "topic") or "",
        partition=_required_int(d, "partition"),
        offset=_required_int(d, "offset"),
        timestamp=_ts(d, "timestamp") if d.get("timestamp") is not None else None,
        key=_b64(d, "key_b64"),
        value=_b64(d, "value_b64"),
        size=_int(d, "size"),
        truncated=truncated,
        dead_lettered_at=_ts(d, "dead_lettered_at"),
    )


def decode_dead_letter(raw: bytes | str) -> DeadLetter:
    return dead_letter_from_wire(_object(raw))


# ---------------------------------------------------------------- split decisions
# (journey.control, compacted; key: journey:version:node, engine.core.winner.split_key_text)


def split_decision_wire(d: SplitDecision) -> dict[str, Any]:
    return {
        "type": "split_decision",
        "journey_id": d.journey_id,
        "journey_version": d.version,
        "node_id": d.node_id,
        "variant": d.variant,
        "metric": d.metric,
        "decided_at": format_ts(d.decided_at),
        "effective_at": format_ts(d.effective_at),
        "first_entry_at": format_ts(d.first_entry_at),
        "min_users": d.min_users,
        "after_ms": d.after_ms,
        "figures": d.figures,
        "schema_version": SCHEMA_VERSION,
    }


def split_decision_value(d: SplitDecision) -> bytes:
    return dumps(split_decision_wire(d))


def split_decision(d: dict[str, Any]) -> SplitDecision:
    if d.get("type") != "split_decision":
        raise InputError("unknown_type", f"type {d.get('type')!r}; expected 'split_decision'")
    version = _required_int(d, "schema_version")
    if version > SCHEMA_VERSION:
        raise InputError(
            "unsupported_version",
            f"schema_version {version}; this reader knows up to {SCHEMA_VERSION}",
        )
    return SplitDecision(
        journey_id=_str(d, "journey_id") or "",
        version=_required_int(d, "journey_version"),
        node_id=_str(d, "node_id") or "",
        variant=_str(d, "variant") or "",
        metric=_str(d, "metric") or "",
        decided_at=_ts(d, "decided_at"),
        effective_at=_ts(d, "effective_at"),
        first_entry_at=_ts(d, "first_entry_at"),
        min_users=_required_int(d, "min_users"),
        after_ms=_required_int(d, "after_ms"),
        figures=_obj(d, "figures") or {},
    )


def decode_split_decision(raw: bytes | None) -> SplitDecision:
    return split_decision(loads(_present(raw)))
