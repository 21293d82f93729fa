"""Input continuity: every offset of every input partition is processed, in order, once
per incarnation -- whatever faust delivers.

faust-streaming can lose fetched records around rebalances: it drops what it fetched
while its flow was stopped and re-seeks with aiokafka's ``seek_to_committed``, which
leaves partitions without a committed offset (or with offset 0) where they were; and it
can cancel a ``getmany`` half-way when the generation changes. Seen in the kill -9 test:
receipts produced while the worker was down were skipped by its replacement. Since the
runtime commits the offset after the last message it processed, a skipped record would
be committed past, i.e. lost.

So the runtime keeps, per assigned input partition, the next offset it expects
(initialised from the group's committed offset, or the partition's beginning, when the
partition is assigned) and checks every message faust hands over:

* ``offset == expected``: process it;
* ``offset < expected``: a redelivery of a message already processed: skip it;
* ``offset > expected``: a gap. Offsets may legitimately skip (transaction markers), so the
  records in ``[expected, offset)`` are read directly from the broker with a plain
  aiokafka consumer (no group): whatever is there is processed first, in order, then the
  message at hand. A gap with nothing in it is just a gap.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

from aiokafka import AIOKafkaConsumer, TopicPartition
from aiokafka.errors import OffsetOutOfRangeError

from engine.stream.common.logs import event
from engine.stream.common.settings import Settings

log = logging.getLogger("engine.stream.positions")

TPKey = tuple[str, int]
PROCESS, DUPLICATE, GAP, UNKNOWN = "process", "duplicate", "gap", "unknown"


@dataclass
class Positions:
    expected: dict[TPKey, int] = field(default_factory=dict)
    duplicates: int = 0
    gaps: int = 0
    filled: int = 0

    def reset(self, positions: dict[TPKey, int]) -> None:
        self.expected.update(positions)

    def drop(self, tps: Iterable[TPKey]) -> None:
        for tp in tps:
            self.expected.pop(tp, None)

    def check(self, topic: str, partition: int, offset: int) -> str:
        want = self.expected.get((topic, partition))
        if want is None:
            return UNKNOWN
        if offset == want:
            return PROCESS
        if offset < want:
            self.duplicates += 1
            return DUPLICATE
        self.gaps += 1
        return GAP

    def advance(self, topic: str, partition: int, offset: int) -> None:
        self.expected[(topic, partition)] = offset + 1


class GapReader:
    """Reads records straight from the broker: the beginning of partitions, and what lies
    in an offset gap."""

    def __init__(self, settings: Settings, client_id: str) -> None:
        self.settings = settings
        self.client_id = client_id
        self._consumer: AIOKafkaConsumer | None = None
        # One consumer, assigned and seeked per read: the feed's gap fills and its tail
        # check run in different tasks.
        self._lock = asyncio.Lock()

    async def _get(self) -> AIOKafkaConsumer:
        if self._consumer is None:
            c = AIOKafkaConsumer(
                bootstrap_servers=self.settings.bootstrap_servers,
                client_id=self.client_id,
                group_id=None,
                enable_auto_commit=False,
                auto_offset_reset="none",
                **self.settings.security.aiokafka_kwargs(),
            )
            await c.start()
            self._consumer = c
        return self._consumer

    async def beginnings(self, tps: Iterable[TPKey]) -> dict[TPKey, int]:
        async with self._lock:
            c = await self._get()
            got = await c.beginning_offsets([TopicPartition(t, p) for t, p in tps])
        return {(tp.topic, tp.partition): off for tp, off in got.items()}

    async def ends(self, tps: Iterable[TPKey]) -> dict[TPKey, int]:
        """The end offset (the next offset to be written) of each partition."""
        async with self._lock:
            c = await self._get()
            got = await c.end_offsets([TopicPartition(t, p) for t, p in tps])
        return {(tp.topic, tp.partition): off for tp, off in got.items()}

    async def read(
        self, topic: str, partition: int, start: int, end: int, timeout_s: float = 30.0
    ) -> list[Any]:
        """Records with ``start <= offset < end`` (all of them: the caller saw ``end``)."""
        async with self._lock:
            return await self._read(topic, partition, start, end, timeout_s)

    async def _read(
        self, topic: str, partition: int, start: int, end: int, timeout_s: float
    ) -> list[Any]:
        c = await self._get()
        tp = TopicPartition(topic, partition)
        c.assign([tp])
        c.seek(tp, start)
        out: list[Any] = []
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout_s
        while True:
            try:
                batch = await c.getmany(tp, timeout_ms=500)
            except OffsetOutOfRangeError:
                event(
                    log,
                    "gap_out_of_range",
                    logging.WARNING,
                    topic=topic,
                    partition=partition,
                    start=start,
                    end=end,
                )
                return out  # deleted by retention: nothing left to read
            for r in batch.get(tp, ()):
                if r.offset >= end:
                    return out
                if r.offset >= start:
                    out.append(r)
            if await c.position(tp) >= end:
                return out
            if loop.time() > deadline:
                raise TimeoutError(f"could not read {topic}:{partition} [{start}, {end})")

    async def close(self) -> None:
        if self._consumer is not None:
            await self._consumer.stop()
            self._consumer = None


async def committed_positions(
    settings: Settings, group_id: str, tps: set[TPKey], reader: GapReader
) -> dict[TPKey, int]:
    """Where each partition resumes: the group's committed offset, else the beginning."""
    from engine.stream.common.topics import admin_client

    admin = admin_client(settings, f"{group_id}-positions")
    await admin.start()
    try:
        committed = await admin.list_consumer_group_offsets(group_id)
    finally:
        await admin.close()
    found = {
        (tp.topic, tp.partition): meta.offset
        for tp, meta in committed.items()
        if (tp.topic, tp.partition) in tps and meta.offset is not None and meta.offset >= 0
    }
    missing = tps - set(found)
    if missing:
        found.update(await reader.beginnings(missing))
    return found
