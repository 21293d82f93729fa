"""Segment / RudderStack calls -> user events (engine/stream/ingest/segment.py): the docs'
example payloads, every reason a call is refused, and the timestamp rule."""

from __future__ import annotations

import copy
from typing import Any

import orjson
import pytest

from engine.core import wire
from engine.core.wire import TimeWindow
from engine.durations import parse_iso_instant
from engine.errors import InputError
from engine.stream.ingest import segment
from engine.stream.ingest.segment import Ignored, Record, map_call
from tests.fakes import tracking_calls as calls

NOW = parse_iso_instant("2026-11-30T12:00:00Z")
T = {"userId": "u", "event": "E"}  # a valid track call (the tests spoil it)
WINDOW = TimeWindow(parse_iso_instant("2000-01-01T00:00:00Z"), NOW + 3_600_000)


def mapped(msg: Any, kind: str | None, **kw: Any) -> dict[str, Any]:
    out = map_call(msg, kind, received_at=NOW, window=WINDOW, **kw)
    assert isinstance(out, Record)
    record = orjson.loads(out.value)
    assert out.key == record["user_id"].encode()
    assert out.kind == (kind or msg["type"])
    wire.user_event(record)  # the worker reads it
    return dict(record)


def refused(msg: Any, kind: str | None, **kw: Any) -> InputError:
    with pytest.raises(InputError) as info:
        map_call(msg, kind, received_at=NOW, window=WINDOW, **kw)
    return info.value


# ---------------------------------------------------------------- the docs' examples


def test_segment_track_becomes_a_user_event_keyed_by_user_id() -> None:
    record = mapped(calls.SEGMENT_TRACK, "track")
    event_id = record.pop("event_id")
    assert record == {
        "user_id": "019mr8mf4r",
        "name": "Item Purchased",
        "ts": "2012-12-02T00:30:12.984Z",
        "properties": {"name": "Leap to Conclusions Mat", "revenue": 14.99},
    }
    # No messageId in the example: the id derives from the call, so a retry is one event.
    assert event_id.startswith("ingest-")
    assert mapped(copy.deepcopy(calls.SEGMENT_TRACK), "track")["event_id"] == event_id
    other = {**calls.SEGMENT_TRACK, "properties": {"revenue": 1}}
    assert mapped(other, "track")["event_id"] != event_id


def test_segment_identify_becomes_the_profile_event() -> None:
    record = mapped(calls.SEGMENT_IDENTIFY, "identify")
    traits = {"email": "pgibbons@example.com", "name": "Peter Gibbons", "industry": "Technology"}
    assert record["name"] == "profile_updated"
    assert record["user_id"] == "019mr8mf4r"
    assert record["ts"] == "2012-12-02T00:30:08.276Z"
    assert record["profile"] == traits
    assert record["properties"] == traits
    renamed = mapped(calls.SEGMENT_IDENTIFY, "identify", profile_event="traits_changed")
    assert renamed["name"] == "traits_changed"


@pytest.mark.parametrize(
    "msg,kind",
    [
        (calls.SEGMENT_PAGE, "page"),
        (calls.SEGMENT_GROUP, "group"),
        (calls.SEGMENT_ALIAS, "alias"),
        ({"userId": "u", "name": "Home"}, "screen"),
    ],
)
def test_page_screen_group_and_alias_are_ignored(msg: dict[str, Any], kind: str) -> None:
    assert map_call(msg, kind, received_at=NOW, window=WINDOW) == Ignored(kind)


def test_rudderstack_identify_takes_the_context_traits() -> None:
    record = mapped(calls.RUDDERSTACK_IDENTIFY, "identify")
    assert record["user_id"] == "identified user id"
    assert record["profile"] == record["properties"] == {"trait1": "new-val"}


def test_rudderstack_track() -> None:
    record = mapped(calls.RUDDERSTACK_TRACK, "track")
    assert (record["name"], record["ts"]) == ("Product Purchased new", "2020-02-02T00:23:09.544Z")
    assert record["properties"] == {"name": "Shirt", "revenue": 4.99}
    assert "profile" not in record  # no context.traits


def test_rudderstack_batch_items_dispatch_on_their_type() -> None:
    body = segment.batch(calls.RUDDERSTACK_BATCH)
    out = [map_call(item, None, received_at=NOW, window=WINDOW) for item in body.items]
    assert [o.kind for o in out] == ["identify", "track", "page", "screen", "group", "alias"]
    assert [type(o) for o in out] == [Record, Record, Ignored, Ignored, Ignored, Ignored]


def test_segment_batch_context_is_merged_into_each_item() -> None:
    body = segment.batch(
        {"batch": [{"type": "track", "userId": "u", "event": "E", "context": {"traits": {"a": 1}}}],
         "context": {"timezone": "Europe/Paris", "traits": {"b": 2}}}
    )  # fmt: skip
    out = map_call(body.items[0], None, received_at=NOW, window=WINDOW, batch_context=body.context)
    assert isinstance(out, Record)
    # The item's context wins key by key; context.timezone fills the profile's timezone.
    assert orjson.loads(out.value)["profile"] == {"a": 1, "timezone": "Europe/Paris"}


def test_segment_batch_example_refuses_its_non_iso_timestamps() -> None:
    body = segment.batch(calls.SEGMENT_BATCH)
    assert map_call(body.items[0], None, received_at=NOW, window=WINDOW).kind == "identify"
    assert map_call(body.items[1], None, received_at=NOW, window=WINDOW).kind == "track"
    for item in body.items[2:]:
        assert refused(item, None).reason == "bad_timestamp"


# ---------------------------------------------------------------- fields


def test_message_id_is_the_event_id() -> None:
    msg = {**calls.SEGMENT_TRACK, "messageId": "ajs-1f8b"}
    assert mapped(msg, "track")["event_id"] == "ajs-1f8b"


def test_a_numeric_user_id_is_taken_as_text() -> None:
    assert mapped({"userId": 42, "event": "E"}, "track")["user_id"] == "42"


def test_track_context_traits_become_the_profile_with_the_engine_names() -> None:
    msg = {
        "userId": "u1",
        "event": "Order Completed",
        "context": {
            "traits": {"firstName": "Asha", "phone": "+14155550123"},
            "timezone": "America/New_York",
        },
    }
    assert mapped(msg, "track")["profile"] == {
        "firstName": "Asha",
        "first_name": "Asha",
        "phone": "+14155550123",
        "timezone": "America/New_York",
    }
    # A trait already named the engine's way is kept as sent.
    msg["context"]["traits"] = {"firstName": "Asha", "first_name": "A.", "timezone": "UTC"}
    profile = mapped(msg, "track")["profile"]
    assert (profile["first_name"], profile["timezone"]) == ("A.", "UTC")


def test_identify_traits_win_over_context_traits() -> None:
    msg = {
        "userId": "u",
        "traits": {"plan": "pro"},
        "context": {"traits": {"plan": "free", "x": 1}},
    }
    assert mapped(msg, "identify")["profile"] == {"plan": "pro", "x": 1}


# ---------------------------------------------------------------- timestamps


def test_timestamp_wins() -> None:
    msg = {
        **T,
        "timestamp": "2026-11-30T11:00:00Z",
        "originalTimestamp": "2026-11-30T10:00:00Z",
        "sentAt": "2026-11-30T10:00:05Z",
    }
    assert mapped(msg, "track")["ts"] == "2026-11-30T11:00:00Z"


def test_original_timestamp_is_moved_by_the_senders_clock_skew() -> None:
    # The device's clock is 5 minutes behind: it sent at 11:55 (its time), we got it at 12:00.
    msg = {"userId": "u", "event": "E", "originalTimestamp": "2026-11-30T11:50:00Z",
           "sentAt": "2026-11-30T11:55:00Z"}  # fmt: skip
    assert mapped(msg, "track")["ts"] == "2026-11-30T11:55:00Z"
    # The batch's sentAt serves when the item has none.
    del msg["sentAt"]
    out = map_call(
        msg,
        "track",
        received_at=NOW,
        window=WINDOW,
        batch_sent_at=parse_iso_instant("2026-11-30T11:55:00Z"),
    )
    assert isinstance(out, Record)
    assert orjson.loads(out.value)["ts"] == "2026-11-30T11:55:00Z"
    # Without any sentAt, originalTimestamp as it is.
    assert mapped(msg, "track")["ts"] == "2026-11-30T11:50:00Z"


def test_no_timestamp_at_all_is_the_receive_time() -> None:
    assert mapped({"userId": "u", "event": "E"}, "track")["ts"] == "2026-11-30T12:00:00Z"


# ---------------------------------------------------------------- refusals (400 reasons)


@pytest.mark.parametrize(
    "msg,kind,reason,says",
    [
        ([1, 2], "track", "not_an_object", "JSON object"),
        ({"anonymousId": "a-1", "event": "E"}, "track", "missing_user_id", "anonymousId"),
        ({"event": "E"}, "track", "missing_user_id", "'userId' is required"),
        ({**T, "userId": ""}, "track", "missing_user_id", "userId"),
        ({**T, "userId": True}, "track", "wrong_type", "'userId'"),
        ({"userId": "u"}, "track", "missing_field", "'event' is required"),
        ({**T, "event": ["E"]}, "track", "wrong_type", "'event'"),
        ({**T, "properties": [1]}, "track", "wrong_type", "'properties'"),
        ({**T, "context": "x"}, "track", "wrong_type", "'context'"),
        ({**T, "context": {"traits": 3}}, "track", "wrong_type", "'traits'"),
        ({"userId": "u", "traits": "gold"}, "identify", "wrong_type", "'traits'"),
        ({**T, "messageId": 3.5}, "track", "wrong_type", "'messageId'"),
        ({**T, "timestamp": 1354408212}, "track", "bad_timestamp", "ISO"),
        ({**T, "timestamp": "yesterday"}, "track", "bad_timestamp", "yesterday"),
        ({**T, "timestamp": "1999-12-31T00:00:00Z"}, "track", "bad_timestamp", "outside"),
        ({**T, "timestamp": "2026-11-30T14:00:00Z"}, "track", "bad_timestamp", "outside"),
        (
            {**T, "originalTimestamp": "2026-11-30T11:00:00Z", "sentAt": 5},
            "track",
            "bad_timestamp",
            "'sentAt'",
        ),
        (T, None, "missing_field", "'type' is required"),
        ({"userId": "u", "type": "purchase"}, None, "unknown_type", "purchase"),
        ({"userId": "u", "type": 7}, None, "unknown_type", "not a Segment call"),
    ],
)
def test_every_refusal_says_what_is_wrong(
    msg: Any, kind: str | None, reason: str, says: str
) -> None:
    err = refused(msg, kind)
    assert (err.reason, says in err.detail) == (reason, True), err.detail


def test_batch_body_refusals() -> None:
    for body, reason in [
        ([], "not_an_object"),
        ({}, "missing_field"),
        ({"batch": {"type": "track"}}, "wrong_type"),
        ({"batch": [], "context": 1}, "wrong_type"),
        ({"batch": [], "sentAt": "soon"}, "bad_timestamp"),
    ]:
        with pytest.raises(InputError) as info:
            segment.batch(body)
        assert info.value.reason == reason


def test_a_too_large_record_for_the_worker_is_refused_here() -> None:
    # Within 32 KB a call can't reach the worker's 256 KB; the check still holds the line.
    big = {"userId": "u", "event": "E", "properties": {"x": "y" * (wire.MAX_MESSAGE_BYTES + 1)}}
    assert refused(big, "track").reason == "oversized"
