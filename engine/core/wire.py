"""Decode wire messages (JSON, one object each) into core inputs.

Every way a message can be unusable maps to an :class:`~engine.errors.InputError` with a
short stable ``reason`` (``bad_json``, ``not_an_object``, ``missing_field``,
``wrong_type``, ``bad_timestamp``, ``oversized``, ``unknown_type``): adapters put the
reason and the original bytes on the dead-letter topic.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, cast

import orjson

from engine.core.inputs import (
    RECEIPT_STATUSES,
    Inbound,
    Input,
    Receipt,
    ReceiptStatus,
    UserEvent,
    Wake,
)
from engine.durations import parse_ts_ms
from engine.errors import InputError

MAX_MESSAGE_BYTES = 256 * 1024


def loads(raw: bytes | str) -> dict[str, Any]:
    if len(raw) > MAX_MESSAGE_BYTES:
        raise InputError("oversized", f"{len(raw)} bytes; the limit is {MAX_MESSAGE_BYTES}")
    try:
        data = orjson.loads(raw)
    except orjson.JSONDecodeError as exc:
        raise InputError("bad_json", str(exc)) from exc
    if not isinstance(data, dict):
        raise InputError("not_an_object", f"expected a JSON object, got {type(data).__name__}")
    return data


def _str(d: dict[str, Any], key: str, *, required: bool = True) -> str | None:
    v = d.get(key)
    if v is None:
        if required:
            raise InputError("missing_field", f"'{key}' is required")
        return None
    if not isinstance(v, str) or (required and not v):
        raise InputError("wrong_type", f"'{key}' must be a non-empty string")
    return v


def _ts(d: dict[str, Any]) -> int:
    v = d.get("ts")
    if v is None:
        raise InputError("missing_field", "'ts' is required (ISO-8601, e.g. 2026-11-29T10:00:00Z)")
    if isinstance(v, bool):
        raise InputError("bad_timestamp", "'ts' must be an ISO-8601 string")
    if isinstance(v, int | float):
        return int(v * 1000) if v < 1e11 else int(v)
    if not isinstance(v, str):
        raise InputError("bad_timestamp", "'ts' must be an ISO-8601 string")
    try:
        return parse_ts_ms(v)
    except ValueError as exc:
        raise InputError("bad_timestamp", f"{v!r} is not ISO-8601") from exc


def _obj(d: dict[str, Any], key: str) -> dict[str, Any] | None:
    v = d.get(key)
    if v is None:
        return None
    if not isinstance(v, dict):
        raise InputError("wrong_type", f"'{key}' must be an object")
    return v


def user_event(d: dict[str, Any]) -> UserEvent:
    return UserEvent(
        event_id=_str(d, "event_id") or "",
        user_id=_str(d, "user_id") or "",
        name=_str(d, "name") or "",
        ts=_ts(d),
        properties=_obj(d, "properties") or {},
        profile=_obj(d, "profile"),
    )


def receipt(d: dict[str, Any]) -> Receipt:
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


def wake(d: dict[str, Any]) -> Wake:
    return Wake(_str(d, "user_id") or "", _ts(d), _str(d, "token", required=False) or "")


DECODERS: dict[str, Callable[[dict[str, Any]], Input]] = {
    "event": user_event,
    "receipt": receipt,
    "inbound": inbound,
    "wake": wake,
}


def decode_line(d: dict[str, Any]) -> Input:
    """A simulation-file line: a user event, or ``{"type": "receipt"|"inbound", ...}``."""
    kind = d.get("type", "event")
    decoder = DECODERS.get(kind) if isinstance(kind, str) else None
    if decoder is None:
        raise InputError("unknown_type", f"'type' must be one of {', '.join(DECODERS)}")
    return decoder(d)
