"""``journeys outcomes [--follow]``: print ``journey.outcomes`` as JSON lines.

Reads every partition from the beginning, without a consumer group (nothing is
committed, any number of readers). Without ``follow`` it stops at the end offsets it
found when it started and prints in time order (``ts``, then partition order), with
duplicates (the same ``outcome_id``, from an at-least-once replay) printed once. With
``follow`` it prints what arrives, as it arrives, until interrupted, still dropping
repeated ``outcome_id`` values.
"""

from __future__ import annotations

import asyncio
import sys
from collections.abc import AsyncIterator, Callable
from typing import Any, BinaryIO

import orjson
from aiokafka import AIOKafkaConsumer, TopicPartition

from engine.stream.common.settings import Settings


async def _consumer(
    settings: Settings, topic: str
) -> tuple[AIOKafkaConsumer, list[TopicPartition]]:
    consumer = AIOKafkaConsumer(
        bootstrap_servers=settings.bootstrap_servers,
        enable_auto_commit=False,
        auto_offset_reset="earliest",
        **settings.security.aiokafka_kwargs(),
    )
    await consumer.start()
    parts = None
    for _ in range(50):
        parts = consumer.partitions_for_topic(topic)
        if parts:
            break
        await consumer._client.force_metadata_update()
        await asyncio.sleep(0.1)
    tps = [TopicPartition(topic, p) for p in sorted(parts or ())]
    consumer.assign(tps)
    if tps:
        await consumer.seek_to_beginning(*tps)
    return consumer, tps


async def read_topic(
    settings: Settings, topic: str, *, follow: bool, idle_s: float | None = None
) -> AsyncIterator[tuple[bytes | None, bytes]]:
    """(key, value) of every record of ``topic``; stops at the end offsets found at start
    unless ``follow``."""
    consumer, tps = await _consumer(settings, topic)
    try:
        if not tps:
            return
        end = await consumer.end_offsets(tps) if not follow else {}
        remaining = {tp for tp in tps if not follow and end[tp] > 0}
        if not follow and not remaining:
            return
        while True:
            batch = await consumer.getmany(timeout_ms=500)
            for tp, records in batch.items():
                for r in records:
                    if r.value is not None:
                        yield r.key, r.value
                    if not follow and r.offset + 1 >= end[tp]:
                        remaining.discard(tp)
            if not follow and not remaining:
                return
    finally:
        await consumer.stop()


async def collect_outcomes(settings: Settings) -> list[dict[str, Any]]:
    """Every outcome on the topic now, deduplicated on outcome_id, in time order."""
    seen: set[str] = set()
    out: list[dict[str, Any]] = []
    async for _k, v in read_topic(settings, settings.topics.outcomes, follow=False):
        try:
            o = orjson.loads(v)
        except orjson.JSONDecodeError:
            continue
        oid = o.get("outcome_id")
        if oid in seen:
            continue
        seen.add(oid)
        out.append(o)
    out.sort(key=lambda o: str(o.get("ts")))
    return out


async def _follow(settings: Settings, write: Callable[[bytes], Any]) -> None:
    seen: set[str] = set()
    async for _k, v in read_topic(settings, settings.topics.outcomes, follow=True):
        try:
            oid = orjson.loads(v).get("outcome_id")
        except orjson.JSONDecodeError:
            oid = None
        if oid is not None:
            if oid in seen:
                continue
            seen.add(oid)
        write(v + b"\n")


def print_outcomes(settings: Settings, follow: bool, out: BinaryIO | None = None) -> int:
    """Print the outcomes as JSON lines on stdout. Returns an exit code (0; 130 when
    interrupted while following)."""
    stream = out or sys.stdout.buffer

    def write(b: bytes) -> None:
        stream.write(b)
        stream.flush()

    try:
        if follow:
            asyncio.run(_follow(settings, write))
        else:
            for o in asyncio.run(collect_outcomes(settings)):
                stream.write(orjson.dumps(o) + b"\n")
            stream.flush()
    except KeyboardInterrupt:
        return 130
    return 0


async def outcomes_with_broker_time(settings: Settings) -> list[tuple[int, dict[str, Any]]]:
    """Every outcome so far with the broker's timestamp of its record (epoch ms): when it
    was written, for the benchmarks' lateness and recovery figures."""
    consumer, tps = await _consumer(settings, settings.topics.outcomes)
    out: list[tuple[int, dict[str, Any]]] = []
    try:
        end = await consumer.end_offsets(tps)
        left = {tp for tp in tps if end[tp] > 0}
        while left:
            for tp, recs in (await consumer.getmany(timeout_ms=500)).items():
                for r in recs:
                    out.append((r.timestamp, orjson.loads(r.value)))
                    if r.offset + 1 >= end[tp]:
                        left.discard(tp)
    finally:
        await consumer.stop()
    return out
