"""Fuzz the worker's per-input handler (issue 11): arbitrary bytes and JSON -- near-valid
events, receipts, inbound messages and wake-ups with poisoned fields, timestamps of every
shape -- go through :meth:`EngineRuntime.handle`, the function the faust agent calls, over
the in-memory backend and the real checkpoint, with the sample journeys.

For every input: no exception escapes, and the input ends either processed (no dead
letter; whatever it produced decodes) or dead-lettered exactly once with a known reason.
Checkpoints in between make the buffered states durable, so later inputs read states
the earlier ones wrote.
"""

from __future__ import annotations

import asyncio
import json
from pathlib import Path
from typing import Any

import orjson
from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st
from prop_world import examples

from engine.core import wire
from engine.core.ids import wake_token
from engine.durations import format_ts, parse_iso_instant
from engine.lint.linter import load_journeys
from engine.stream.common.settings import Settings
from engine.stream.devtools.memory import memory_runtime

ROOT = Path(__file__).resolve().parents[2]
JOURNEYS = load_journeys([ROOT / "journeys"])
NOW = parse_iso_instant("2026-11-30T12:00:00Z")
SETTINGS = Settings.from_env_and_args(env={}, partitions=2)
T = SETTINGS.topics
INPUTS = T.engine_inputs()

REASONS = {
    "bad_json",
    "not_an_object",
    "missing_field",
    "wrong_type",
    "bad_timestamp",
    "oversized",
    "unknown_type",
    "missing_value",
    "missing_key",
    "key_mismatch",
    "unknown_topic",
    "processing_error",
    "effect_too_large",
    "state_too_large",
    "profile_limit",  # a profile update past the profile's limits (engine.core.profile)
}

USERS = ["u1", "u2", "u3"]
# The user events of the sample files (with a profile: those that enter journeys).
SAMPLE_EVENTS = [
    d
    for f in sorted((ROOT / "journeys" / "events").glob("*.jsonl"))
    for line in f.read_text().splitlines()
    if line.startswith("{")
    for d in [orjson.loads(line)]
    if "type" not in d and d.get("profile")
]

POISON_TS: list[Any] = [
    1e17,
    -1e17,
    1e300,
    9e18,
    -5,
    0,
    2**63,
    1.5,
    "9999-12-31T23:59:59Z",
    "0001-01-01T00:00:00Z",
    "1970-01-01",
    "1970-01-01T00:00:00Z",
    "2026-11-30",
    "2026-11-30T12:00:00+99:99",
    "2026-02-30T12:00:00Z",
    "",
    None,
    True,
    [],
    {},
]

poison_timestamps = st.one_of(
    st.sampled_from(POISON_TS),
    st.integers(-(2**70), 2**70),
    st.floats(allow_nan=False, allow_infinity=False),
    st.text(max_size=30),
    st.datetimes().map(lambda d: d.isoformat() + "Z"),
)


timestamps_anytime = st.integers(NOW - 400 * 86_400_000, NOW + 400 * 86_400_000).map(format_ts)
leaf = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(-(2**64), 2**64),
    st.floats(allow_nan=False, allow_infinity=False),
    st.text(max_size=20),
    poison_timestamps,
    timestamps_anytime,
)
json_value = st.recursive(
    leaf,
    lambda inner: (
        st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=8), inner, max_size=3)
    ),
    max_leaves=8,
)
# Properties and profiles with the keys the sample journeys read (waits until a property,
# time zones, phone numbers, RCS capability), poisoned or not.
attrs = st.dictionaries(
    st.sampled_from(
        [
            "starts_at",
            "ends_at",
            "renewal_date",
            "due",
            "timezone",
            "phone",
            "rcs_capable",
            "first_name",
            "order_id",
            "tier",
            "days_inactive",
        ]
    )
    | st.text(max_size=6),
    st.one_of(
        json_value,
        st.sampled_from(["+14155550100", "+447700900123", "America/New_York", "Mars/Olympus"]),
    ),
    max_size=6,
)


def dumps(value: Any) -> bytes:
    """JSON as any producer may write it: the stdlib writes integers of any size."""
    return json.dumps(value).encode()


def record(kind: str, draw: st.DrawFn, message_ids: list[str], now: int) -> dict[str, Any]:
    """A well-formed record of ``kind``, then up to two fields poisoned or dropped."""
    user = draw(st.sampled_from(USERS))
    inside = st.integers(now - 40 * 86_400_000, now + 3_600_000).map(format_ts)
    d: dict[str, Any] = {"user_id": user, "ts": draw(inside)}
    if kind == "event":
        # An event of the sample files (entry conditions met), one of its properties or
        # profile fields perhaps poisoned (a wait until that property, a time zone...).
        template = draw(st.sampled_from(SAMPLE_EVENTS))
        properties, profile = dict(template.get("properties", {})), dict(template["profile"])
        for where in draw(st.lists(st.sampled_from([properties, profile]), max_size=2)):
            where |= draw(attrs)
        d |= {
            "event_id": draw(st.sampled_from(["e1", "e2", "e3"]) | st.text(max_size=5)),
            "name": template["name"],
            "properties": properties,
            "profile": profile,
        }
    elif kind == "receipt":
        d |= {
            "type": "receipt",
            "message_id": draw(st.sampled_from(message_ids or ["m"])),
            "status": draw(
                st.sampled_from(["delivered", "read", "failed", "not_capable", "revoked"])
            ),
        }
    elif kind == "inbound":
        d |= {
            "type": "inbound",
            "text": draw(st.sampled_from(["STOP", "START", "HELP", "yes", "CONFIRM"])),
            "postback": draw(st.sampled_from(["confirm", "keep", "shop", "more"])),
            "message_id": draw(st.sampled_from(message_ids or ["m"])),
        }
    else:
        d |= {"type": "wake"}
    for name in draw(st.lists(st.sampled_from(sorted(d)), max_size=2, unique=True)):
        how = draw(st.sampled_from(["drop", "anything", "timestamp"]))
        if how == "drop":
            del d[name]
        else:
            d[name] = draw(poison_timestamps if how == "timestamp" else json_value)
    return d


@st.composite
def one_input(
    draw: st.DrawFn, message_ids: list[str], timers: list[tuple[str, int, str]], now: int
) -> tuple[str, bytes | None, bytes | None]:
    topic = draw(st.sampled_from([T.user_events] * 4 + [*INPUTS[1:], "elsewhere"]))
    shape = draw(st.sampled_from(["record"] * 6 + ["json", "bytes", "none", "due", "due"]))
    if shape == "due" and timers:  # the wake-up of a pending timer, as the ticker makes it
        user, at, token = draw(st.sampled_from(timers))
        return T.timers, user.encode(), wire.wake_value(user, at, token)
    if shape in ("bytes", "due"):
        value: bytes | None = draw(st.binary(max_size=64))
    elif shape == "none":
        value = None
    elif shape == "json":
        value = dumps(draw(json_value))
    else:
        by_topic = {T.channel_receipts: "receipt", T.inbound: "inbound", T.timers: "wake"}
        kind = by_topic.get(topic) or draw(st.sampled_from(["event"] * 4 + ["receipt", "inbound"]))
        d = record(kind, draw, message_ids, now)
        if kind == "event" and draw(st.booleans()):
            d.pop("type", None)
        value = dumps(d)
    user = draw(st.sampled_from(USERS))
    key = draw(st.one_of(st.just(user.encode()), st.none(), st.binary(max_size=4)))
    if value is not None and shape == "record":
        try:
            uid = orjson.loads(value).get("user_id")
        except Exception:
            uid = None
        if isinstance(uid, str) and draw(st.integers(0, 3)):
            key = uid.encode()
    return topic, key, value


def sent_message_ids(produced: list[tuple[str, bytes | None, bytes, int | None]]) -> list[str]:
    ids = []
    for topic, _k, v, _p in produced:
        if topic == T.send_requests:
            req = orjson.loads(v)
            if "message_id" in req:  # sends and revokes (not webhook calls, forgets)
                ids.append(req["message_id"])
    return ids


@settings(
    max_examples=examples(120),
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)
@given(st.data())
def test_every_input_ends_processed_or_dead_lettered_once(data: st.DataObject) -> None:
    asyncio.run(_run(data))


async def _run(data: st.DataObject) -> None:
    now = [NOW]
    runtime, backend = memory_runtime(JOURNEYS, SETTINGS, clock=lambda: now[0])
    n = data.draw(st.integers(1, 16))
    for offset in range(n):
        now[0] += data.draw(st.sampled_from([0, 1000, 3_600_000, 86_400_000, 3 * 86_400_000]))
        timers = [(d.user_id, d.at, wake_token(d.user_id, d.at)) for d in runtime.timers.pending()]
        ids = sent_message_ids(backend.produced)
        topic, key, value = data.draw(one_input(ids, timers, now[0]))
        partition = offset % 2
        before = len(backend.produced)
        await runtime.handle(topic, partition, offset, key, value)  # must not raise
        new = backend.produced[before:]
        letters = [orjson.loads(v) for t, _k, v, _p in new if t == T.dead_letters]
        assert len(letters) <= 1
        event(f"dead letter: {letters[0]['reason']}" if letters else "processed")
        if any(t == T.send_requests for t, _k, _v, _p in new):
            event("a send request")
        if topic == T.timers and not letters and new:
            event("a wake-up that did something")
        if letters:
            [letter] = letters
            assert letter["reason"] in REASONS, letter
            assert (letter["topic"], letter["offset"]) == (topic, offset)
            assert len(new) == 1, "a dead-lettered input produced something else too"
        else:
            for t, _k, v, _p in new:
                if t == T.outcomes:
                    wire.decode_outcome(v)
                elif t == T.send_requests:
                    wire.decode_gateway_request(v)
        if data.draw(st.booleans()):
            await runtime.checkpoint.commit("fuzz")
            for raw in backend.store.values():
                wire.state_from_record(raw)
    # Due timers are writable wake-ups.
    for due in runtime.timers.pop_due(2**62):
        wire.wake_value(due.user_id, due.at, wake_token(due.user_id, due.at))
