"""How many records a topic holds, and when the first and the last were written.

Throughputs are measured between the broker timestamps of the first and the last output
record, so the time to start a process, recover its tables and poll for the end does not
count. Reading one record at each end of every partition is enough: a partition is
written by one producer at a time, in time order.
"""

from __future__ import annotations

import asyncio
import time
from dataclasses import dataclass

from aiokafka import AIOKafkaConsumer, TopicPartition

from engine.stream.common.settings import Settings


@dataclass(frozen=True)
class Span:
    records: int
    first_ms: int
    last_ms: int

    @property
    def seconds(self) -> float:
        # One millisecond at least: a span of one batch would otherwise divide by zero.
        return max(self.last_ms - self.first_ms, 1) / 1000


async def _consumer(
    settings: Settings, topic: str
) -> tuple[AIOKafkaConsumer, list[TopicPartition]]:
    consumer = AIOKafkaConsumer(
        bootstrap_servers=settings.bootstrap_servers,
        enable_auto_commit=False,
        auto_offset_reset="earliest",
        max_partition_fetch_bytes=64 * 1024,
        **settings.security.aiokafka_kwargs(),
    )
    await consumer.start()
    parts: set[int] | None = None
    for _ in range(100):
        parts = consumer.partitions_for_topic(topic)
        if parts:
            break
        await consumer._client.force_metadata_update()
        await asyncio.sleep(0.1)
    tps = [TopicPartition(topic, p) for p in sorted(parts or ())]
    consumer.assign(tps)
    return consumer, tps


async def count(settings: Settings, topic: str) -> int:
    """The records of ``topic`` now (the sum of its end offsets)."""
    consumer, tps = await _consumer(settings, topic)
    try:
        return sum((await consumer.end_offsets(tps)).values()) if tps else 0
    finally:
        await consumer.stop()


async def wait_for_records(
    settings: Settings, topic: str, expected: int, timeout_s: float, on_tick: object = None
) -> int:
    """Poll the end offsets until ``topic`` holds ``expected`` records or ``timeout_s``
    passes; returns the last count."""
    deadline = time.monotonic() + timeout_s
    consumer, tps = await _consumer(settings, topic)
    try:
        while True:
            n = sum((await consumer.end_offsets(tps)).values()) if tps else 0
            if n >= expected or time.monotonic() > deadline:
                return n
            if callable(on_tick):
                on_tick()
            await asyncio.sleep(0.25)
    finally:
        await consumer.stop()


async def span(settings: Settings, topic: str) -> Span:
    """Records now, and the broker timestamps (epoch ms) of the first and the last."""
    consumer, tps = await _consumer(settings, topic)
    try:
        begin = await consumer.beginning_offsets(tps)
        end = await consumer.end_offsets(tps)
        firsts: list[int] = []
        lasts: list[int] = []
        for tp in tps:
            if end[tp] <= begin[tp]:
                continue
            firsts.append(await _timestamp_at(consumer, tp, begin[tp]))
            lasts.append(await _timestamp_at(consumer, tp, end[tp] - 1))
        total = sum(end[tp] - begin[tp] for tp in tps)
        if not firsts:
            return Span(0, 0, 0)
        return Span(total, min(firsts), max(lasts))
    finally:
        await consumer.stop()


async def _timestamp_at(consumer: AIOKafkaConsumer, tp: TopicPartition, offset: int) -> int:
    consumer.seek(tp, offset)
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        batch = await consumer.getmany(tp, timeout_ms=500, max_records=1)
        for record in batch.get(tp, ()):
            return int(record.timestamp)
    raise TimeoutError(f"no record at {tp.topic}[{tp.partition}]@{offset} within 30 s")


async def volumes(
    settings: Settings, topics: list[str], sample: int = 2000
) -> dict[str, tuple[int, float]]:
    """Per topic: its records now, and their mean size in bytes (key + value) over the
    first ``sample`` of each partition: what the broker stores and replicates per record.
    One consumer reads them all (a consumer per topic costs a second each to start)."""
    consumer = AIOKafkaConsumer(
        bootstrap_servers=settings.bootstrap_servers,
        enable_auto_commit=False,
        auto_offset_reset="earliest",
        **settings.security.aiokafka_kwargs(),
    )
    await consumer.start()
    try:
        await consumer._client.force_metadata_update()
        tps = [
            TopicPartition(t, p)
            for t in topics
            for p in sorted(consumer.partitions_for_topic(t) or ())
        ]
        consumer.assign(tps)
        begin = await consumer.beginning_offsets(tps)
        end = await consumer.end_offsets(tps)
        want = {tp: min(sample, end[tp] - begin[tp]) for tp in tps}
        for tp in tps:
            consumer.seek(tp, begin[tp])
        sizes: dict[str, list[int]] = {t: [] for t in topics}
        got = dict.fromkeys(tps, 0)
        deadline = time.monotonic() + 60
        while any(got[tp] < want[tp] for tp in tps) and time.monotonic() < deadline:
            batch = await consumer.getmany(timeout_ms=500)
            for tp, records in batch.items():
                for record in records[: max(0, want[tp] - got[tp])]:
                    sizes[tp.topic].append(len(record.key or b"") + len(record.value or b""))
                    got[tp] += 1
                if got[tp] >= want[tp]:
                    consumer.pause(tp)
        out: dict[str, tuple[int, float]] = {}
        for t in topics:
            n = sum(end[tp] - begin[tp] for tp in tps if tp.topic == t)
            out[t] = (n, sum(sizes[t]) / len(sizes[t]) if sizes[t] else 0.0)
        return out
    finally:
        await consumer.stop()
