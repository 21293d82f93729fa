"""Everything Kafka holds about one user: their inputs, outcomes, trace records and state.

Every topic of the runtime is keyed by user_id and co-partitioned, so one user's records sit
in one partition of each: the one Kafka's default partitioner picks for the key (murmur2,
as aiokafka and the Java client do; ``journeys produce`` uses it). This reads that
partition of each topic from the beginning to the end it had when the read started, keeps
the records whose key is the user's, and decodes them with :mod:`engine.core.wire`:

* inputs: ``journey.user-events`` (events, and the receipt / inbound lines of a simulation
  file), ``journey.channel-receipts``, ``journey.inbound``, ``journey.timers``;
* ``journey.outcomes`` and ``journey.traces`` (deduplicated on their ids: an at-least-once
  replay may write a record twice);
* the state: the last value for the key on the engine's table changelog,
  ``{app_id}-user-states-changelog`` (written at checkpoints, so at most a commit interval
  behind).

Reading whole partitions is what makes this simple and exact; on a big topic it takes the
time of reading one partition of each topic. Used by ``journeys explain`` and the
dashboard's user search.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from aiokafka import AIOKafkaConsumer, TopicPartition
from aiokafka.partitioner import murmur2

from engine.core import wire
from engine.core.effects import Outcome
from engine.core.inputs import Input
from engine.core.state import UserState
from engine.core.trace import Trace
from engine.errors import InputError
from engine.stream.common.settings import Settings
from engine.stream.worker.service import STATE_TABLE


def partition_for(key: bytes, partitions: int) -> int:
    """The partition Kafka's default partitioner gives ``key`` (murmur2, positive, modulo)."""
    return int(murmur2(key) & 0x7FFFFFFF) % partitions


def changelog_topic(settings: Settings) -> str:
    """The engine's state table changelog (faust: ``{app id}-{table}-changelog``)."""
    return f"{settings.app_id}-{STATE_TABLE}-changelog"


@dataclass
class UserRecords:
    user_id: str
    partition: int | None = None  # of journey.user-events (all topics: the same number)
    inputs: list[Input] = field(default_factory=list)  # in offset order, per topic
    outcomes: list[Outcome] = field(default_factory=list)
    traces: list[Trace] = field(default_factory=list)
    state: UserState | None = None
    state_found: bool = False  # the changelog topic exists and was read
    notes: list[str] = field(default_factory=list)  # topics missing, records unreadable


async def read_user(settings: Settings, user_id: str, *, timeout_s: float = 300.0) -> UserRecords:
    """The user's records from every topic (see the module doc)."""
    key = user_id.encode()
    t = settings.topics
    found = UserRecords(user_id)
    inputs: dict[str, Callable[[dict[str, Any]], Input]] = {
        t.user_events: wire.decode_line,
        t.channel_receipts: wire.receipt,
        t.inbound: wire.inbound,
        t.timers: wire.timer_record,
    }
    changelog = changelog_topic(settings)
    topics = [*inputs, t.outcomes, t.traces, changelog]
    consumer = AIOKafkaConsumer(
        bootstrap_servers=settings.bootstrap_servers,
        enable_auto_commit=False,
        auto_offset_reset="earliest",
        **settings.security.aiokafka_kwargs(),
    )
    await consumer.start()
    try:
        tps = await _user_partitions(consumer, topics, key, found)
        records = await _read(consumer, tps, key, timeout_s)
    finally:
        await consumer.stop()
    found.partition = next((tp.partition for tp in tps if tp.topic == t.user_events), None)
    found.state_found = any(tp.topic == changelog for tp in tps)
    seen: set[str] = set()  # outcome and trace ids (hashes of different things: no clash)
    for topic, value in records:
        try:
            if topic in inputs:
                if value is not None:
                    found.inputs.append(inputs[topic](wire.loads(value)))
            elif topic == t.outcomes and value is not None:
                o = wire.decode_outcome(value)
                if o.outcome_id not in seen:
                    seen.add(o.outcome_id)
                    found.outcomes.append(o)
            elif topic == t.traces and value is not None:
                tr = wire.decode_trace(value)
                if tr.trace_id not in seen:
                    seen.add(tr.trace_id)
                    found.traces.append(tr)
            elif topic == changelog:
                found.state = None if value is None else wire.state_from_record(value)[1]
        except (InputError, ValueError, KeyError, TypeError) as exc:
            found.notes.append(f"{topic}: a record of {user_id} is unreadable ({exc}); skipped")
    return found


async def _user_partitions(
    consumer: AIOKafkaConsumer, topics: list[str], key: bytes, found: UserRecords
) -> list[TopicPartition]:
    """The key's partition of each topic that exists (a note for each that doesn't)."""
    tps: list[TopicPartition] = []
    for topic in topics:
        parts = None
        for _ in range(20):
            parts = consumer.partitions_for_topic(topic)
            if parts:
                break
            await consumer._client.force_metadata_update()
            await asyncio.sleep(0.05)
        if not parts:
            found.notes.append(f"topic {topic} does not exist (yet)")
            continue
        tps.append(TopicPartition(topic, partition_for(key, len(parts))))
    return tps


async def _read(
    consumer: AIOKafkaConsumer, tps: list[TopicPartition], key: bytes, timeout_s: float
) -> list[tuple[str, bytes | None]]:
    """(topic, value) of the records with ``key``, each topic in offset order, up to the
    end offsets found at the start."""
    if not tps:
        return []
    consumer.assign(tps)
    await consumer.seek_to_beginning(*tps)
    end = await consumer.end_offsets(tps)
    first = await consumer.beginning_offsets(tps)
    remaining = {tp for tp in tps if end[tp] > first[tp]}
    out: dict[TopicPartition, list[tuple[str, bytes | None]]] = {tp: [] for tp in tps}
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout_s
    while remaining:
        if loop.time() > deadline:
            raise TimeoutError(f"reading {sorted(tp.topic for tp in remaining)} took too long")
        batch = await consumer.getmany(*remaining, timeout_ms=500)
        for tp, records in batch.items():
            for r in records:
                if r.offset < end[tp] and r.key == key:
                    out[tp].append((tp.topic, r.value))
                if r.offset + 1 >= end[tp]:
                    remaining.discard(tp)
        for tp in list(remaining):
            if await consumer.position(tp) >= end[tp]:
                remaining.discard(tp)
    return [rec for tp in tps for rec in out[tp]]
