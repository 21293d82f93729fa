"""Segment-spec calls -> user events (pure: the receive time and the accepted window come
from the caller; nothing here reads a clock).

The mapping (docs/ingest.md, "What maps to what"):

* ``track`` -> a user event: ``messageId`` -> ``event_id``, ``userId`` -> ``user_id``
  (the record's key), ``event`` -> ``name``, ``properties`` -> ``properties``,
  ``context.traits`` -> ``profile``.
* ``identify`` -> the deployment's profile event (``profile_updated``): ``traits`` (over
  ``context.traits``, key by key) -> ``profile``, and the same traits as ``properties``.
* ``page``, ``screen``, ``group``, ``alias`` -> nothing: the engine has no use for them
  (no page journeys, no accounts, no identity graph). They are answered 200 and counted.
* ``ts``: ``timestamp``; else ``originalTimestamp`` moved by the sender's clock skew
  (``receivedAt - sentAt``, as Segment computes ``timestamp``); else the receive time.

A call that can't be mapped raises :class:`~engine.errors.InputError` with a reason (the
dead-letter reason and the 400's ``reason``) and a message that says what to send.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from typing import Any

import orjson

from engine.core import wire
from engine.core.wire import TimeWindow
from engine.durations import format_ts, parse_iso_instant
from engine.errors import InputError

#: Segment's limits: 32 KB per call (and per item of a batch), 500 KB per batch.
MAX_CALL_BYTES = 32 * 1024
MAX_BATCH_BYTES = 500 * 1024

#: The calls that become user events.
MAPPED_TYPES = ("track", "identify")
#: Valid Segment calls the engine does not use: answered 200, counted, not produced.
IGNORED_TYPES = ("page", "screen", "group", "alias")

DEFAULT_PROFILE_EVENT = "profile_updated"

# Fields that differ between two sends of the same call (a retry): left out of the
# derived event id, so that a retried call without messageId is still one event.
_VOLATILE = ("writeKey", "sentAt", "receivedAt", "requestId")

# Segment's reserved traits in camelCase -> the engine's profile fields (added only when
# the profile doesn't carry the engine's name already; the original key stays too).
_PROFILE_ALIASES = (("firstName", "first_name"), ("lastName", "last_name"))


@dataclass(frozen=True, slots=True)
class Record:
    """A user event ready for ``journey.user-events``: key = user id."""

    kind: str  # track | identify
    key: bytes
    value: bytes
    event_id: str


@dataclass(frozen=True, slots=True)
class Ignored:
    """A valid call of a type the engine does not use."""

    kind: str


Mapped = Record | Ignored


def _text(msg: dict[str, Any], key: str, what: str) -> str | None:
    v = msg.get(key)
    if v is None:
        return None
    if isinstance(v, bool) or not isinstance(v, str | int):
        raise InputError("wrong_type", f"'{key}' must be a string ({what})")
    s = str(v)
    return s if s else None


def _object(msg: dict[str, Any], key: str) -> dict[str, Any] | None:
    v = msg.get(key)
    if v is None:
        return None
    if not isinstance(v, dict):
        raise InputError("wrong_type", f"'{key}' must be a JSON object, not {type(v).__name__}")
    return v


def _instant(msg: dict[str, Any], key: str) -> int | None:
    v = msg.get(key)
    if v is None:
        return None
    if not isinstance(v, str):
        raise InputError(
            "bad_timestamp",
            f"'{key}' must be ISO-8601 text like 2012-12-02T00:30:08.276Z, not {type(v).__name__}",
        )
    try:
        return parse_iso_instant(v)
    except ValueError as exc:
        raise InputError("bad_timestamp", f"'{key}': {exc}") from exc


def event_time(msg: dict[str, Any], received_at: int, sent_at: int | None = None) -> int:
    """When the call happened, epoch ms: ``timestamp``; else ``originalTimestamp`` plus the
    sender's clock skew (``received_at - sentAt``) when ``sentAt`` is known (the call's own,
    else the batch's ``sent_at``); else ``originalTimestamp``; else ``received_at``."""
    ts = _instant(msg, "timestamp")
    if ts is not None:
        return ts
    original = _instant(msg, "originalTimestamp")
    if original is None:
        return received_at
    sent = _instant(msg, "sentAt")
    sent = sent if sent is not None else sent_at
    return original if sent is None else original + (received_at - sent)


def _event_id(msg: dict[str, Any], ts: int) -> str:
    """``messageId``, or one derived from the call's content and time: a retried call
    (same body) gets the same id, so the engine sees it once."""
    mid = _text(msg, "messageId", "the call's unique id")
    if mid is not None:
        return mid
    stable = {k: v for k, v in msg.items() if k not in _VOLATILE}
    digest = hashlib.sha256(orjson.dumps(stable, option=orjson.OPT_SORT_KEYS))
    digest.update(str(ts).encode())
    return f"ingest-{digest.hexdigest()[:32]}"


def _user_id(msg: dict[str, Any]) -> str:
    user = _text(msg, "userId", "your id of the user")
    if user is not None:
        return user
    if msg.get("anonymousId") is not None:
        raise InputError(
            "missing_user_id",
            "this call has only an anonymousId: the engine keys users by 'userId' and does "
            "not resolve anonymous ids; send userId (filter anonymous calls at the source)",
        )
    raise InputError("missing_user_id", "'userId' is required (the engine keys users by it)")


def _profile(
    traits: dict[str, Any] | None, context: dict[str, Any] | None
) -> dict[str, Any] | None:
    """The traits as the engine's profile: the engine's names for Segment's reserved
    ``firstName`` / ``lastName``, and ``context.timezone`` as ``timezone`` (quiet hours and
    send windows read it), each only when the traits don't set it already."""
    if traits is None:
        return None
    profile = dict(traits)
    for segment_name, engine_name in _PROFILE_ALIASES:
        if engine_name not in profile and profile.get(segment_name) is not None:
            profile[engine_name] = profile[segment_name]
    tz = (context or {}).get("timezone")
    if "timezone" not in profile and isinstance(tz, str) and tz:
        profile["timezone"] = tz
    return profile


def message_type(msg: dict[str, Any], path_type: str | None) -> str:
    """The call's type: the endpoint's (``/v1/track``), else the ``type`` field (batch items,
    ``/v1/webhook``)."""
    if path_type is not None:
        return path_type
    kind = msg.get("type")
    if kind is None:
        raise InputError(
            "missing_field",
            "'type' is required here (track, identify, page, screen, group or alias)",
        )
    if not isinstance(kind, str) or kind not in MAPPED_TYPES + IGNORED_TYPES:
        raise InputError(
            "unknown_type",
            f"type {str(kind)[:40]!r} is not a Segment call: use track, identify, page, screen, "
            "group or alias",
        )
    return kind


def map_call(
    msg: Any,
    path_type: str | None,
    *,
    received_at: int,
    window: TimeWindow,
    profile_event: str = DEFAULT_PROFILE_EVENT,
    batch_context: dict[str, Any] | None = None,
    batch_sent_at: int | None = None,
) -> Mapped:
    """One Segment call (a body, or an item of a batch) -> its user event, or
    :class:`Ignored`. ``path_type``: the endpoint's type, None where the ``type`` field
    decides. Raises :class:`InputError`."""
    if not isinstance(msg, dict):
        raise InputError("not_an_object", f"a call is a JSON object, not {type(msg).__name__}")
    kind = message_type(msg, path_type)
    if kind in IGNORED_TYPES:
        return Ignored(kind)
    user = _user_id(msg)
    context = _object(msg, "context")
    if batch_context is not None:  # Segment: the batch's context is merged into each call's
        context = {**batch_context, **(context or {})}
    ts = window.check(event_time(msg, received_at, batch_sent_at), "timestamp")
    event_id = _event_id(msg, ts)
    context_traits = _object(context, "traits") if context is not None else None
    if kind == "track":
        name = _text(msg, "event", "the event's name")
        if name is None:
            raise InputError("missing_field", "'event' is required in a track call (its name)")
        properties = _object(msg, "properties") or {}
        profile = _profile(context_traits, context)
    else:
        name = profile_event
        traits = _object(msg, "traits")
        merged = {**(context_traits or {}), **(traits or {})}
        profile = _profile(merged, context) or {}
        properties = merged
    record: dict[str, Any] = {
        "event_id": event_id,
        "user_id": user,
        "name": name,
        "ts": format_ts(ts),
        "properties": properties,
    }
    if profile is not None:
        record["profile"] = profile
    value = wire.dumps(record)
    wire.user_event(wire.loads(value))  # what the worker will read: refused here, not there
    return Record(kind, user.encode(), value, event_id)


@dataclass(frozen=True, slots=True)
class Batch:
    items: list[Any]
    context: dict[str, Any] | None
    sent_at: int | None


def batch(body: Any) -> Batch:
    """The items of a ``/v1/batch`` body, with its ``context`` (merged into every item's)
    and ``sentAt``. Raises :class:`InputError` when the body isn't a batch."""
    if not isinstance(body, dict):
        raise InputError("not_an_object", f"a batch is a JSON object, not {type(body).__name__}")
    items = body.get("batch")
    if items is None:
        raise InputError("missing_field", "'batch' is required: an array of calls")
    if not isinstance(items, list):
        raise InputError("wrong_type", "'batch' must be an array of calls")
    return Batch(items, _object(body, "context"), _instant(body, "sentAt"))


def item_size(item: Any) -> int:
    """The size of one call of a batch, as JSON."""
    return len(orjson.dumps(item))
