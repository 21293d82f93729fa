"""A topic's records between two times: the offsets (``offsets_for_times``) per partition,
then the records of one partition between them.

The window is by *record* time (the timestamp Kafka keeps with each record: when it was
produced, unless the producer set it), the replay by *event* time (each line's ``ts``).
Nothing is committed and no consumer group is joined: a backtest never disturbs the
engine's own reading of the topic.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from dataclasses import dataclass

from aiokafka import AIOKafkaConsumer, TopicPartition

from engine.errors import ConfigError
from engine.stream.common.settings import Settings

METADATA_TRIES = 50
BATCH_RECORDS = 5000


@dataclass(frozen=True, slots=True)
class Slice:
    """Offsets ``start`` (included) to ``end`` (excluded) of one partition of ``topic``."""

    topic: str
    partition: int
    start: int
    end: int

    @property
    def records(self) -> int:
        return max(0, self.end - self.start)


def _consumer(settings: Settings) -> AIOKafkaConsumer:
    return AIOKafkaConsumer(
        bootstrap_servers=settings.bootstrap_servers,
        enable_auto_commit=False,
        auto_offset_reset="earliest",
        **settings.security.aiokafka_kwargs(),
    )


async def _partitions(consumer: AIOKafkaConsumer, settings: Settings, topic: str) -> list[int]:
    for _ in range(METADATA_TRIES):
        found = consumer.partitions_for_topic(topic)
        if found:
            return sorted(found)
        await consumer._client.force_metadata_update()
        await asyncio.sleep(0.1)
    raise ConfigError(
        f"topic {topic} not found on {settings.bootstrap}: check --topic (with a "
        "JOURNEYS_TOPIC_PREFIX, pass the full name, or --topic alone for the prefixed "
        "user-events topic)"
    )


async def plan(settings: Settings, topic: str, since_ms: int, until_ms: int | None) -> list[Slice]:
    """Per partition, the offsets of its records from ``since_ms`` (included) to
    ``until_ms`` (excluded; the end of the partition now when None)."""
    consumer = _consumer(settings)
    await consumer.start()
    try:
        parts = await _partitions(consumer, settings, topic)
        tps = [TopicPartition(topic, p) for p in parts]
        end = await consumer.end_offsets(tps)
        first = await consumer.offsets_for_times(dict.fromkeys(tps, since_ms))
        last = {}
        if until_ms is not None:
            last = await consumer.offsets_for_times(dict.fromkeys(tps, until_ms))
        slices = []
        for tp in tps:
            stop = last[tp].offset if last.get(tp) is not None else end[tp]
            start = first[tp].offset if first[tp] is not None else stop
            slices.append(Slice(topic, tp.partition, start, max(start, stop)))
        return slices
    finally:
        await consumer.stop()


async def read(
    settings: Settings, part: Slice, on_batch: Callable[[int], None] = lambda n: None
) -> list[tuple[int, bytes | None]]:
    """(offset, value) of the records of ``part``, in offset order; ``on_batch(n)`` after
    each batch of ``n`` records."""
    out: list[tuple[int, bytes | None]] = []
    if not part.records:
        return out
    consumer = _consumer(settings)
    await consumer.start()
    try:
        tp = TopicPartition(part.topic, part.partition)
        consumer.assign([tp])
        consumer.seek(tp, part.start)
        # Until the position passes the end, not until a record at end - 1: compaction and
        # transaction markers leave offsets without a record.
        while await consumer.position(tp) < part.end:
            batch = await consumer.getmany(tp, timeout_ms=1000, max_records=BATCH_RECORDS)
            records = [r for r in batch.get(tp, ()) if r.offset < part.end]
            out.extend((r.offset, r.value) for r in records)
            if records:
                on_batch(len(records))
        return out
    finally:
        await consumer.stop()
