"""Poison input for the gateway: arbitrary bytes, JSON and near-valid send requests go
through the same handler the Kafka gateway uses (``GatewayRuntime.handle``, on an
in-memory backend). No exception escapes, the sender goes idle, and every record the
wire module refuses is dead-lettered exactly once."""

from __future__ import annotations

import asyncio
from typing import Any

import orjson
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from prop_world import examples

from engine.core import wire
from engine.errors import InputError
from tests.unit.test_gateway_runtime import REQUESTS, World, request

INTS = st.integers(min_value=-(2**63), max_value=2**63 - 1)  # what JSON encoders take
json_values = st.recursive(
    st.none() | st.booleans() | INTS | st.floats(allow_nan=False) | st.text(max_size=20),
    lambda inner: st.lists(inner, max_size=4)
    | st.dictionaries(st.text(max_size=8), inner, max_size=4),
    max_leaves=12,
)
timestamps = st.sampled_from(
    ["2026-11-30T10:00:00Z", "9999-12-31T23:59:59Z", "1970-01-01T00:00:00Z", "-5", "", "now"]
) | INTS | st.floats(allow_nan=True)


@st.composite
def near_valid(draw: st.DrawFn) -> bytes:
    """A real send request or revoke with some fields replaced by anything."""
    base: dict[str, Any] = orjson.loads(wire.send_request_value(request(draw(st.integers(0, 50)))))
    if draw(st.booleans()):
        base = {"type": "revoke", "message_id": base["message_id"], "user_id": "u1",
                "ts": base["ts"]}  # fmt: skip
    for key in draw(st.lists(st.sampled_from(sorted(base)), max_size=3)):
        base[key] = draw(timestamps) if key == "ts" else draw(json_values)
    if draw(st.booleans()):
        base["ts"] = draw(timestamps)
    return orjson.dumps(base)


records = st.lists(
    st.binary(max_size=64)
    | json_values.map(orjson.dumps)
    | near_valid(),
    min_size=1,
    max_size=12,
)


def _refused(raw: bytes) -> bool:
    try:
        wire.decode_gateway_request(raw)
    except InputError:
        return True
    return False


@settings(
    max_examples=examples(150),
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.filter_too_much],
)
@given(records)
def test_no_record_stops_the_gateway_and_refused_ones_are_dead_lettered(
    raws: list[bytes],
) -> None:
    async def run() -> None:
        w = World()
        for offset, raw in enumerate(raws):
            async with w.checkpoint.lock:
                await w.runtime.handle(REQUESTS, 0, offset, b"u1", raw, None)
                w.checkpoint.processed(REQUESTS, 0, offset)
        await w.idle()
        letters = w.backend.records(w.settings.topics.dead_letters)
        assert len(letters) == sum(1 for raw in raws if _refused(raw))

    asyncio.run(run())
