"""``journeys ingest``'s mapping never fails in any other way than a refusal: any JSON a
sender posts (near-valid Segment calls and batches, or anything) either maps to user
events the worker reads back as they were written, is ignored, or raises
:class:`~engine.errors.InputError` (the 400 with its reason). An exception of another kind
would be a 500 and no dead letter."""

from __future__ import annotations

from typing import Any

import orjson
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from prop_world import examples

from engine.core import wire
from engine.core.wire import TimeWindow
from engine.durations import parse_iso_instant
from engine.errors import InputError
from engine.stream.ingest import segment

NOW = parse_iso_instant("2026-11-30T12:00:00Z")
WINDOW = TimeWindow(parse_iso_instant("2000-01-01T00:00:00Z"), NOW + 3_600_000)

# What orjson.loads can give the server: integers within 64 bits, finite floats.
scalars = (
    st.none()
    | st.booleans()
    | st.integers(-(2**63), 2**64 - 1)
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.text(max_size=12)
)
json_values = st.recursive(
    scalars,
    lambda inner: (
        st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=8), inner, max_size=3)
    ),
    max_leaves=8,
)
instants = (
    st.sampled_from(
        [
            "2026-11-30T11:00:00Z",
            "2026-11-30T11:00:00.5+02:00",
            "2015-2-02T00:30:08.276Z",
            "1999-01-01T00:00:00Z",
            "2100-01-01T00:00:01Z",
            "now",
            "",
        ]
    )
    | json_values
)
fields: dict[str, st.SearchStrategy[Any]] = {
    "type": st.sampled_from(["track", "identify", "page", "alias", "purchase", ""]) | json_values,
    "userId": st.sampled_from(["u-1", "", "019mr8mf4r"]) | json_values,
    "anonymousId": st.just("anon-1") | json_values,
    "messageId": st.just("m-1") | json_values,
    "event": st.sampled_from(["Order Completed", ""]) | json_values,
    "properties": st.dictionaries(st.text(max_size=5), json_values, max_size=3) | json_values,
    "traits": st.dictionaries(st.text(max_size=5), json_values, max_size=3) | json_values,
    "context": st.fixed_dictionaries(
        {},
        optional={
            "traits": json_values | st.just({"firstName": "Asha"}),
            "timezone": json_values | st.just("Europe/Paris"),
        },
    )
    | json_values,
    "timestamp": instants,
    "originalTimestamp": instants,
    "sentAt": instants,
}
calls = st.fixed_dictionaries({}, optional=fields) | json_values


def _check(item: Any, path_type: str | None, **kw: Any) -> None:
    try:
        out = segment.map_call(item, path_type, received_at=NOW, window=WINDOW, **kw)
    except InputError as exc:
        assert exc.reason and exc.detail
        return
    if isinstance(out, segment.Record):
        record = wire.user_event(wire.loads(out.value))
        assert out.key == record.user_id.encode() and record.event_id == out.event_id
        assert WINDOW.earliest <= record.ts <= WINDOW.latest


@settings(
    max_examples=examples(300),
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.filter_too_much],
)
@given(calls, st.sampled_from(["track", "identify", "page", None]))
def test_a_call_maps_or_is_refused_with_a_reason(call: Any, path_type: str | None) -> None:
    _check(call, path_type)


@settings(
    max_examples=examples(150),
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.filter_too_much],
)
@given(
    st.fixed_dictionaries(
        {},
        optional={
            "batch": st.lists(calls, max_size=4) | json_values,
            "context": fields["context"],
            "sentAt": instants,
        },
    )
    | json_values
)
def test_a_batch_maps_item_by_item_or_is_refused_with_a_reason(body: Any) -> None:
    try:
        batch = segment.batch(body)
    except InputError as exc:
        assert exc.reason
        return
    for item in batch.items:
        assert segment.item_size(item) == len(orjson.dumps(item))
        _check(item, None, batch_context=batch.context, batch_sent_at=batch.sent_at)
