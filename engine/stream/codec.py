"""Wire formats of the stream runtime (JSON, one object per message).

Inputs from outside (user events, receipts, inbound) are decoded by
:mod:`engine.core.wire`. This module adds what the runtime itself puts on Kafka:

* ``journey.send-requests``: ``{"type": "send", ...SendRequest.to_wire()}`` and
  ``{"type": "revoke", "message_id", "user_id", "ts"}``;
* ``journey.channel-receipts`` (from the gateway):
  ``{"type": "receipt", "user_id", "ts", "message_id", "status", "reason"?}``;
* ``journey.timers``: ``{"type": "wake", "user_id", "ts", "token"}``;
* ``journey.dead-letters``: see :func:`dead_letter`.

Timestamps are ISO-8601 with milliseconds (``engine.durations.format_ts``).
"""

from __future__ import annotations

import base64
import time
from typing import Any

import orjson

from engine.core.effects import Revoke, SendRequest
from engine.core.inputs import Receipt, Wake
from engine.core.wire import _obj, _str, _ts, loads
from engine.durations import format_ts
from engine.errors import InputError

#: A dead letter carries the original bytes; past this size they are cut (and flagged):
#: the dead-letter topic is created with room for a whole 1 MiB input in base64.
DEAD_LETTER_MAX_ORIGINAL = 2 * 1024 * 1024


def dumps(obj: dict[str, Any]) -> bytes:
    return orjson.dumps(obj)


# ---------------------------------------------------------------- engine -> gateway


def send_request_value(req: SendRequest) -> bytes:
    return dumps({"type": "send", **req.to_wire()})


def revoke_value(rev: Revoke) -> bytes:
    return dumps(
        {
            "type": "revoke",
            "message_id": rev.message_id,
            "user_id": rev.user_id,
            "ts": format_ts(rev.ts),
        }
    )


def decode_gateway_request(raw: bytes | None) -> SendRequest | Revoke:
    """A ``journey.send-requests`` message; :class:`InputError` when unusable."""
    if raw is None:
        raise InputError("missing_value", "the message has no value (a tombstone?)")
    d = loads(raw)
    kind = d.get("type", "send")
    if kind == "revoke":
        return Revoke(_str(d, "message_id") or "", _str(d, "user_id") or "", _ts(d))
    if kind != "send":
        raise InputError("unknown_type", "'type' must be send or revoke")
    ttl = d.get("ttl_ms")
    version = d.get("journey_version")
    if ttl is not None and (not isinstance(ttl, int) or isinstance(ttl, bool)):
        raise InputError("wrong_type", "'ttl_ms' must be an integer")
    if version is not None and (not isinstance(version, int) or isinstance(version, bool)):
        raise InputError("wrong_type", "'journey_version' must be an integer")
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
    )


# ---------------------------------------------------------------- gateway -> engine


def receipt_wire(r: Receipt) -> dict[str, Any]:
    w: dict[str, Any] = {
        "type": "receipt",
        "user_id": r.user_id,
        "ts": format_ts(r.ts),
        "message_id": r.message_id,
        "status": r.status,
    }
    if r.reason is not None:
        w["reason"] = r.reason
    return w


def receipt_from_wire(w: dict[str, Any]) -> Receipt:
    from engine.core.wire import receipt

    return receipt(w)


# ---------------------------------------------------------------- engine -> engine


def wake_value(user_id: str, at: int, token: str) -> bytes:
    return dumps({"type": "wake", "user_id": user_id, "ts": format_ts(at), "token": token})


def wake_from(raw: bytes | None) -> Wake:
    from engine.core.wire import wake

    if raw is None:
        raise InputError("missing_value", "the message has no value (a tombstone?)")
    return wake(loads(raw))


# ---------------------------------------------------------------- dead letters


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
    timestamp_ms: int | None = None,
) -> bytes:
    """The dead-letter record: why, where from, and the original bytes in base64.

    ``{"reason", "detail", "stage", "topic", "partition", "offset", "timestamp",
    "key", "key_b64", "value_b64", "size", "truncated", "dead_lettered_at"}``
    """
    original = value or b""
    truncated = len(original) > DEAD_LETTER_MAX_ORIGINAL
    if truncated:
        original = original[:DEAD_LETTER_MAX_ORIGINAL]
    key_text: str | None
    try:
        key_text = key.decode() if key is not None else None
    except UnicodeDecodeError:
        key_text = None
    return dumps(
        {
            "reason": reason,
            "detail": detail[:2000],
            "stage": stage,
            "topic": topic,
            "partition": partition,
            "offset": offset,
            "timestamp": format_ts(timestamp_ms) if timestamp_ms else None,
            "key": key_text,
            "key_b64": base64.b64encode(key).decode() if key is not None else None,
            "value_b64": base64.b64encode(original).decode() if value is not None else None,
            "size": len(value) if value is not None else None,
            "truncated": truncated,
            "dead_lettered_at": format_ts(int(time.time() * 1000)),
        }
    )
