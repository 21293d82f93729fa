"""Batched stream processing without a broker: the outbox (effects in record batches per
topic-partition), the input feed taking a batch under one lock, and the runtime keeping a
user's decoded state within a batch -- each with the per-record guarantees of one input at
a time (order, dead letters, gaps, duplicates, the same outcomes and states)."""

from __future__ import annotations

import asyncio
from types import SimpleNamespace
from typing import Any, Literal

import orjson
import pytest
import yaml

from engine.core import wire
from engine.durations import format_ts, parse_iso_instant
from engine.journey.model import Journey
from engine.stream.common.checkpoint import Checkpoint
from engine.stream.common.outbox import Outbox
from engine.stream.common.settings import Settings
from engine.stream.devtools.memory import MemoryBackend, memory_feed, memory_runtime, message
from engine.stream.worker.runtime import EngineRuntime

NOW = parse_iso_instant("2026-11-30T12:00:00Z")

JOURNEY = """
id: batches
version: 1
name: Batches test journey
entry: {event: signed_up}
start: hello
nodes:
  hello: {type: send, channel: sms, marketing: false, text: "Hi", next: pause}
  pause: {type: wait_for, paths: [{event: bought, next: thanks}], timeout: 1d, on_timeout: done}
  thanks: {type: send, channel: sms, marketing: false, text: "Thanks", next: done}
  done: {type: exit}
"""


def journeys() -> list[Journey]:
    return [Journey.model_validate(yaml.safe_load(JOURNEY))]


def event(user: str, name: str, at: int, eid: str | None = None) -> bytes:
    return orjson.dumps(
        {
            "event_id": eid or f"{user}-{name}-{at}",
            "user_id": user,
            "name": name,
            "ts": format_ts(at),
            "profile": {"phone": "+14155550100"},
        }
    )


class Builder:
    """aiokafka's BatchBuilder, holding at most ``room`` records."""

    def __init__(self, room: int) -> None:
        self.room = room
        self.records: list[tuple[bytes | None, bytes | None]] = []
        self.closed = False

    def append(self, *, timestamp: float | None, key: bytes | None, value: bytes | None) -> Any:
        if self.closed or len(self.records) >= self.room:
            return None
        self.records.append((key, value))
        return object()

    def close(self) -> None:
        self.closed = True


class Batches:
    """A batch producer that lands every record in a :class:`MemoryBackend`."""

    def __init__(self, backend: MemoryBackend, room: int = 3) -> None:
        self.backend = backend
        self.room = room
        self.sent: list[tuple[str, int, int]] = []  # (topic, partition, records)
        self.refuse = False

    def create_batch(self) -> Builder:
        return Builder(self.room)

    async def send_batch(self, batch: Any, topic: str, partition: int) -> Any:
        if self.refuse:
            raise RuntimeError("producer closed")
        assert batch.closed  # nothing may be added once it is handed over
        self.sent.append((topic, partition, len(batch.records)))
        for key, value in batch.records:
            self.backend.produced.append((topic, key, value, partition))
        fut: asyncio.Future[Any] = asyncio.get_running_loop().create_future()
        fut.set_result(None)
        return fut


class CountingLock(asyncio.Lock):
    def __init__(self) -> None:
        super().__init__()
        self.taken = 0

    async def acquire(self) -> Literal[True]:
        self.taken += 1
        return await super().acquire()


@pytest.fixture
def settings() -> Settings:
    return Settings.from_env_and_args(env={})


def batched(settings: Settings, room: int = 3) -> tuple[EngineRuntime, MemoryBackend, Batches]:
    runtime, backend = memory_runtime(journeys(), settings, clock=lambda: NOW)
    batches = Batches(backend, room)
    runtime.outbox = Outbox(runtime.checkpoint, backend.send, batches)
    return runtime, backend, batches


def per_partition(backend: MemoryBackend) -> dict[tuple[str, int | None], list[bytes]]:
    out: dict[tuple[str, int | None], list[bytes]] = {}
    for topic, _key, value, partition in backend.produced:
        out.setdefault((topic, partition), []).append(value)
    return out


class Stop(Exception):
    pass


def stop(reason: str, **fields: Any) -> None:
    raise Stop(reason)


# --------------------------------------------------------------------------- the outbox


async def test_the_outbox_keeps_each_partitions_order_across_full_batches() -> None:
    backend = MemoryBackend()
    cp = Checkpoint(backend=backend, on_fail=stop)
    batches = Batches(backend, room=3)
    box = Outbox(cp, backend.send, batches)
    for i in range(7):
        box.put("t", 0, b"k", f"a{i}".encode(), f"record a{i}")
    box.put("t", 1, b"k", b"b0", "record b0")
    box.put("u", 0, b"k", b"c0", "record c0")
    assert backend.produced == []  # nothing goes out before the flush
    await cp.flush()
    assert batches.sent == [("t", 0, 3), ("t", 0, 3), ("t", 0, 1), ("t", 1, 1), ("u", 0, 1)]
    assert [v for t, _k, v, p in backend.produced if (t, p) == ("t", 0)] == [
        f"a{i}".encode() for i in range(7)
    ]
    assert [label for label, _f in cp.effects] == [
        "3 records to t:0, from record a0",
        "3 records to t:0, from record a3",
        "1 records to t:0, from record a6",
        "1 records to t:1, from record b0",
        "1 records to u:0, from record c0",
    ]
    await cp.flush()  # nothing left: nothing sent twice
    assert len(batches.sent) == 5


async def test_without_a_batch_producer_the_outbox_sends_each_record() -> None:
    backend = MemoryBackend()
    cp = Checkpoint(backend=backend, on_fail=stop)
    box = Outbox(cp, backend.send)
    box.put("t", 0, b"k", b"v0", "record 0")
    box.put("t", 0, b"k", b"v1", "record 1")
    await cp.commit("test")  # a commit flushes first (step 0)
    assert [v for _t, _k, v, _p in backend.produced] == [b"v0", b"v1"]
    assert box.records == 2 and not box.pending


async def test_a_batch_the_producer_refuses_stops_before_anything_is_committed() -> None:
    backend = MemoryBackend(topics=("in",))
    cp = Checkpoint(backend=backend, on_fail=stop)
    batches = Batches(backend)
    box = Outbox(cp, backend.send, batches)
    box.put("t", 0, b"k", b"v", "record")
    cp.processed("in", 0, 5)
    batches.refuse = True
    with pytest.raises(Stop, match="effect_not_produced"):
        await cp.commit("test")
    assert backend.committed == {} and backend.changelog == []


# --------------------------------------------------------------------------- the feed


async def test_a_batch_takes_the_lock_once_and_gives_the_outcomes_of_one_at_a_time(
    settings: Settings,
) -> None:
    t = settings.topics.user_events
    inputs = [
        (0, b"a", event("a", "signed_up", NOW)),
        (1, b"b", event("b", "signed_up", NOW)),
        (2, b"a", event("a", "bought", NOW + 1000)),
        (3, b"c", event("c", "signed_up", NOW + 2000)),
        (4, b"b", event("b", "bought", NOW + 3000)),
    ]
    single, single_backend = memory_runtime(journeys(), settings, clock=lambda: NOW)
    single_feed = memory_feed(single, single_backend)
    for offset, key, value in inputs:
        await single_feed.feed(message(t, 0, offset, key, value))

    runtime, backend, batches = batched(settings)
    lock = runtime.checkpoint.lock = CountingLock()
    feed = memory_feed(runtime, backend)
    await feed.feed_batch([message(t, 0, o, k, v) for o, k, v in inputs])

    assert lock.taken == 1
    assert batches.sent  # through record batches, not one send per record
    # the same records, in the same order on each topic-partition (Kafka orders no more)
    assert per_partition(backend) == per_partition(single_backend)
    assert runtime.checkpoint.dirty == single.checkpoint.dirty  # the same states
    assert runtime.checkpoint.offsets == {(t, 0): 5}
    assert runtime.checkpoint.inputs == 5


async def test_a_bad_record_in_a_batch_is_dead_lettered_alone(settings: Settings) -> None:
    t = settings.topics.user_events
    runtime, backend, _ = batched(settings)
    feed = memory_feed(runtime, backend)
    await feed.feed_batch(
        [
            message(t, 0, 0, b"a", event("a", "signed_up", NOW)),
            message(t, 0, 1, b"x", b"{not json"),
            message(t, 0, 2, b"b", event("b", "signed_up", NOW)),
        ]
    )
    [letter] = [orjson.loads(v) for v in backend.on(settings.topics.dead_letters)]
    assert (letter["reason"], letter["offset"]) == ("bad_json", 1)
    users = {orjson.loads(v)["user_id"] for v in backend.on(settings.topics.outcomes)}
    assert users == {"a", "b"}
    assert runtime.checkpoint.offsets == {(t, 0): 3}


async def test_a_record_that_fails_twice_in_a_batch_is_dead_lettered_and_the_others_go_on(
    settings: Settings,
) -> None:
    t = settings.topics.user_events
    runtime, backend, _ = batched(settings)
    feed = memory_feed(runtime, backend)
    calls: list[int] = []
    handle = feed.handle

    async def flaky(topic: str, partition: int, offset: int, *rest: Any) -> None:
        calls.append(offset)
        if offset == 1:
            raise ConnectionError("the broker went away")
        await handle(topic, partition, offset, *rest)

    feed.handle = flaky
    await feed.feed_batch(
        [message(t, 0, i, f"u{i}".encode(), event(f"u{i}", "signed_up", NOW)) for i in range(3)]
    )
    assert calls == [0, 1, 1, 2]
    [letter] = [orjson.loads(v) for v in backend.on(settings.topics.dead_letters)]
    assert (letter["reason"], letter["offset"]) == ("processing_error", 1)
    assert "failed 2 times" in letter["detail"]
    users = {orjson.loads(v)["user_id"] for v in backend.on(settings.topics.outcomes)}
    assert users == {"u0", "u2"}
    assert runtime.checkpoint.offsets == {(t, 0): 3} and feed.failures == {}


async def test_a_batch_with_a_redelivery_and_a_gap_processes_every_offset_once_in_order(
    settings: Settings,
) -> None:
    t = settings.topics.user_events
    runtime, backend, _ = batched(settings)
    feed = memory_feed(runtime, backend)
    lock = runtime.checkpoint.lock

    def record(offset: int) -> SimpleNamespace:
        user = f"u{offset}"
        return SimpleNamespace(
            topic=t,
            partition=0,
            offset=offset,
            key=user.encode(),
            value=event(user, "signed_up", NOW),
            timestamp=None,
        )

    class Reader:
        def __init__(self) -> None:
            self.reads: list[tuple[int, int]] = []

        async def read(self, topic: str, partition: int, start: int, end: int) -> list[Any]:
            assert not lock.locked()  # a commit may run while the gap is read
            self.reads.append((start, end))
            return [record(o) for o in range(start, end)]

        async def close(self) -> None:
            pass

    reader = feed.reader = Reader()  # type: ignore[assignment]
    seen: list[int] = []
    handle = feed.handle

    async def noting(topic: str, partition: int, offset: int, *rest: Any) -> None:
        seen.append(offset)
        await handle(topic, partition, offset, *rest)

    feed.handle = noting
    await feed.feed_batch(
        [
            message(t, 0, 0, b"u0", event("u0", "signed_up", NOW)),
            message(t, 0, 1, b"u1", event("u1", "signed_up", NOW)),
            message(t, 0, 0, b"u0", event("u0", "signed_up", NOW)),  # redelivered
            message(t, 0, 4, b"u4", event("u4", "signed_up", NOW)),  # after a gap
            message(t, 0, 5, b"u5", event("u5", "signed_up", NOW)),
        ]
    )
    assert seen == [0, 1, 2, 3, 4, 5]
    assert reader.reads == [(2, 4)]
    assert feed.positions.duplicates == 1 and feed.positions.filled == 2
    assert runtime.checkpoint.offsets == {(t, 0): 6}
    assert feed.positions.expected[(t, 0)] == 6
    sent = [orjson.loads(v)["user_id"] for v in backend.on(settings.topics.send_requests)]
    assert sent == [f"u{i}" for i in range(6)]


async def test_records_left_at_the_tail_of_a_quiet_partition_are_read_and_processed_once(
    settings: Settings,
) -> None:
    # faust can drop what it fetched around a restart; with no later record on the
    # partition, no gap is ever seen: the tail check reads them after two idle checks.
    t = settings.topics.user_events
    runtime, backend, _ = batched(settings)
    feed = memory_feed(runtime, backend)

    def record(offset: int) -> SimpleNamespace:
        user = f"u{offset}"
        return SimpleNamespace(
            topic=t,
            partition=0,
            offset=offset,
            key=user.encode(),
            value=event(user, "signed_up", NOW),
            timestamp=None,
        )

    class Reader:
        def __init__(self) -> None:
            self.end = 4
            self.reads: list[tuple[int, int]] = []

        async def ends(self, tps: Any) -> dict[tuple[str, int], int]:
            return {tp: self.end if tp == (t, 0) else 0 for tp in tps}  # others: empty

        async def read(self, topic: str, partition: int, start: int, end: int) -> list[Any]:
            self.reads.append((start, end))
            return [record(o) for o in range(start, end)]

        async def close(self) -> None:
            pass

    reader = feed.reader = Reader()  # type: ignore[assignment]
    await feed.feed_batch([message(t, 0, 0, b"u0", event("u0", "signed_up", NOW))])
    assert await feed.catch_up() == 0  # records past offset 1: noted, not read yet
    await feed.feed_batch([message(t, 0, 1, b"u1", event("u1", "signed_up", NOW))])
    assert await feed.catch_up() == 0  # it moved: still not stuck
    assert reader.reads == []
    assert await feed.catch_up() == 2  # no progress since the last check: read 2 and 3
    assert reader.reads == [(2, 4)]
    assert feed.positions.expected[(t, 0)] == 4
    assert runtime.checkpoint.offsets == {(t, 0): 4}
    # faust delivers them after all: redeliveries, skipped
    await feed.feed_batch([message(t, 0, 2, b"u2", event("u2", "signed_up", NOW))])
    assert feed.positions.duplicates == 1
    assert await feed.catch_up() == 0  # caught up: nothing to read
    sent = [orjson.loads(v)["user_id"] for v in backend.on(settings.topics.send_requests)]
    assert sent == ["u0", "u1", "u2", "u3"]


# --------------------------------------------------------------------------- the runtime


async def test_a_users_state_is_decoded_once_per_batch(
    settings: Settings, monkeypatch: pytest.MonkeyPatch
) -> None:
    t = settings.topics.user_events
    decoded: list[bytes] = []
    decode = wire.state_from_record

    def counting(raw: bytes) -> Any:
        decoded.append(raw)
        return decode(raw)

    monkeypatch.setattr(wire, "state_from_record", counting)
    runtime, backend, _ = batched(settings)
    feed = memory_feed(runtime, backend)
    await feed.feed_batch(
        [
            message(t, 0, 0, b"a", event("a", "signed_up", NOW)),
            message(t, 0, 1, b"a", event("a", "bought", NOW + 1000)),
        ]
    )
    assert decoded == []  # a new user, then the state the first input left
    await feed.feed_batch([message(t, 0, 2, b"a", event("a", "bought", NOW + 2000, eid="x"))])
    assert len(decoded) == 1  # a new batch reads the buffered state again


async def test_a_step_that_fails_half_way_leaves_the_state_of_the_input_before(
    settings: Settings,
) -> None:
    t = settings.topics.user_events
    inputs = [
        message(t, 0, 0, b"a", event("a", "signed_up", NOW)),
        message(t, 0, 1, b"a", event("a", "bought", NOW + 1000, eid="boom")),
        message(t, 0, 2, b"a", event("a", "bought", NOW + 2000)),
    ]

    def exploding(runtime: EngineRuntime) -> None:
        advance = runtime.engine.advance

        def maybe_explode(state: Any, inp: Any, now: int) -> Any:
            if getattr(inp, "event_id", None) == "boom":
                state.opted_out = True  # changed half-way, then the core fails
                raise RuntimeError("a bug in the core")
            return advance(state, inp, now)

        runtime.engine.advance = maybe_explode  # type: ignore[method-assign]

    single, single_backend = memory_runtime(journeys(), settings, clock=lambda: NOW)
    exploding(single)
    single_feed = memory_feed(single, single_backend)
    for m in inputs:
        await single_feed.feed(m)

    runtime, backend, _ = batched(settings)
    exploding(runtime)
    await memory_feed(runtime, backend).feed_batch(inputs)

    effects, single_effects = per_partition(backend), per_partition(single_backend)
    dead = (settings.topics.dead_letters, 0)
    assert effects.pop(dead) and single_effects.pop(dead)  # (their wall-clock times differ)
    assert effects == single_effects
    assert runtime.checkpoint.dirty == single.checkpoint.dirty
    raw = runtime.checkpoint.dirty[b"a"][1]
    assert raw is not None
    state = wire.state_from_record(raw)[1]
    assert not state.opted_out
    [letter] = [orjson.loads(v) for v in backend.on(settings.topics.dead_letters)]
    assert (letter["reason"], letter["offset"]) == ("processing_error", 1)
    thanks = [orjson.loads(v) for v in backend.on(settings.topics.send_requests)]
    assert [s["node_id"] for s in thanks] == ["hello", "thanks"]  # the third input went on


async def test_the_changelog_goes_out_in_one_batch_per_partition_with_its_last_offset() -> None:
    from engine.stream.common.faust_glue import FaustBackend

    persisted: list[tuple[str, int, int]] = []
    sent: list[tuple[str, int, list[tuple[bytes | None, bytes | None]]]] = []

    class Producer:
        def create_batch(self) -> Builder:
            return Builder(room=2)

        async def send_batch(self, batch: Builder, topic: str, *, partition: int) -> Any:
            sent.append((topic, partition, batch.records))
            fut: asyncio.Future[Any] = asyncio.get_running_loop().create_future()
            fut.set_result(SimpleNamespace(offset=100 * partition + 10 * len(sent)))
            return fut

    producer = Producer()
    app = SimpleNamespace(producer=SimpleNamespace(_ensure_producer=lambda: producer))
    table = SimpleNamespace(
        changelog_topic=SimpleNamespace(get_topic_name=lambda: "states-changelog"),
        data=SimpleNamespace(
            set_persisted_offset=lambda tp, off: persisted.append((tp.topic, tp.partition, off))
        ),
    )
    backend = FaustBackend(app, table)  # type: ignore[arg-type]
    dirty: dict[bytes, tuple[int, bytes | None]] = {
        b"a": (0, b"A"),
        b"b": (1, b"B"),
        b"c": (0, b"C"),
        b"d": (0, None),  # a forgotten user: a tombstone
    }
    futures = await backend.send_changelog_batches(dirty)
    await asyncio.gather(*(f for _label, f in futures))
    assert sent == [
        ("states-changelog", 0, [(b"a", b"A"), (b"c", b"C")]),
        ("states-changelog", 0, [(b"d", None)]),
        ("states-changelog", 1, [(b"b", b"B")]),
    ]
    assert [label for label, _f in futures] == [
        "changelog p0 (2 states)",
        "changelog p0 (1 states)",
        "changelog p1 (1 states)",
    ]
    # the store's persisted offset: the last record of each acknowledged batch (base + n - 1)
    assert persisted == [
        ("states-changelog", 0, 11),
        ("states-changelog", 0, 20),
        ("states-changelog", 1, 130),
    ]
