"""The input feed: every input message reaches the handler once, in offset order, under
the checkpoint's lock -- whatever faust delivers.

faust can skip fetched records around rebalances and deliver some twice (see
:mod:`engine.stream.common.positions`); the feed checks each message against the next
offset it expects for its partition, drops redeliveries, and reads the records of a gap
from the broker before the message at hand. It imports no faust: the app is passed in,
and only its consumer's assignment is read.
"""

from __future__ import annotations

import logging
import traceback
from collections.abc import Awaitable, Callable, Sequence
from typing import Any

from engine.stream.common.checkpoint import Checkpoint
from engine.stream.common.dead_letters import DeadLetters
from engine.stream.common.logs import event
from engine.stream.common.positions import (
    DUPLICATE,
    GAP,
    PROCESS,
    UNKNOWN,
    GapReader,
    Positions,
    committed_positions,
)
from engine.stream.common.settings import Settings

# The logger these lines have always had (they were written by faust_glue).
log = logging.getLogger("engine.stream.faust")

#: How often the handler is tried on one record before it is dead-lettered.
MAX_ATTEMPTS = 2

#: What a service does with one input: (topic, partition, offset, key, value, timestamp_ms).
Handler = Callable[[str, int, int, bytes | None, bytes | None, int | None], Awaitable[None]]


class InputFeed:
    """Hands input messages to a handler in offset order, each once (see
    :mod:`engine.stream.common.positions`), under the checkpoint's lock."""

    def __init__(
        self,
        settings: Settings,
        group_id: str,
        topics: set[str],
        checkpoint: Checkpoint,
        handle: Handler,
        assigned: Callable[[], set[tuple[str, int]]],
        dead_letters: DeadLetters | None = None,
    ) -> None:
        self.settings = settings
        self.group_id = group_id
        self.topics = topics
        self.checkpoint = checkpoint
        self.handle = handle
        self.assigned = assigned  # () -> {(topic, partition)} currently assigned
        self.positions = Positions()
        self.reader = GapReader(settings, f"{group_id}-gaps")
        # A record the handler raised on, twice, is dead-lettered instead of retried again
        # (without a dead-letter producer, the error propagates: the agent crashes).
        self.dead_letters = dead_letters
        self.failures: dict[tuple[str, int, int], tuple[int, str]] = {}
        self.batches = 0  # input batches fed (the stats line: inputs / batches)
        # The tail check (catch_up): each partition's expected offset at the last check.
        self._stuck_at: dict[tuple[str, int], int] = {}

    async def on_assigned(self, app: Any) -> None:
        """After recovery: where each assigned input partition resumes."""
        consumer: Any = app.consumer
        tps = {(tp.topic, tp.partition) for tp in consumer.assignment() if tp.topic in self.topics}
        self.positions.drop([tp for tp in list(self.positions.expected) if tp not in tps])
        if tps:
            self.positions.reset(
                await committed_positions(self.settings, self.group_id, tps, self.reader)
            )

    def on_revoked(self, revoked: Any) -> None:
        self.positions.drop((tp.topic, tp.partition) for tp in revoked)

    async def feed(self, m: Any) -> None:
        """One message: a batch of one (tools and tests)."""
        await self.feed_batch((m,))

    async def feed_batch(self, messages: Sequence[Any]) -> None:
        """Messages as faust delivered them (each partition's in offset order). The
        checkpoint's lock is taken once for the batch, and the outbox flushed before it is
        let go; only a gap splits the batch: its records are read from the broker outside
        the lock (a commit may run meanwhile), then processed, then the rest."""
        self.batches += 1
        i, n = 0, len(messages)
        while i < n:
            async with self.checkpoint.lock:
                i = await self._run(messages, i)
                await self.checkpoint.flush()
            if i < n:  # messages[i] comes after a gap
                await self._fill_gap(messages[i])
                i += 1

    async def _run(self, messages: Sequence[Any], i: int) -> int:
        """Process ``messages[i:]`` up to the first one after a gap; returns its index (or
        the length: all done). Positions are checked per message, cheaply: the slow path
        (:meth:`Positions.check`) only when the offset is not the one expected."""
        expected = self.positions.expected
        processed = self.checkpoint.processed
        n = len(messages)
        while i < n:
            m = messages[i]
            topic, partition, offset = m.topic, m.partition, m.offset
            tp = (topic, partition)
            if expected.get(tp) != offset:
                verdict = self.positions.check(topic, partition, offset)
                if verdict == GAP:
                    return i
                if verdict == DUPLICATE or (verdict == UNKNOWN and not self._unknown(m)):
                    i += 1
                    continue
            ts = int(m.timestamp * 1000) if m.timestamp else None
            await self._handle(topic, partition, offset, m.key, m.value, ts)
            processed(topic, partition, offset)
            expected[tp] = offset + 1
            i += 1
        return n

    def _unknown(self, m: Any) -> bool:
        """A message of a partition without a position: process it if the partition is
        ours (its position is being read), else drop it."""
        mine = (m.topic, m.partition) in self.assigned()
        event(
            log,
            "position_unknown",
            logging.WARNING,
            topic=m.topic,
            partition=m.partition,
            offset=m.offset,
            assigned=mine,
        )
        return mine  # not mine: left over from a revoked partition, its new owner has it

    async def _fill_gap(self, m: Any) -> None:
        """The records between the expected offset and ``m``'s, read from the broker, then
        ``m`` itself."""
        start = self.positions.expected[(m.topic, m.partition)]
        missed = await self.reader.read(m.topic, m.partition, start, m.offset)
        self._filled("gap_filled", m.topic, m.partition, start, m.offset, len(missed))
        ts = int(m.timestamp * 1000) if m.timestamp else None
        async with self.checkpoint.lock:
            for r in missed:
                await self._locked(r.topic, r.partition, r.offset, r.key, r.value, r.timestamp)
            await self._locked(m.topic, m.partition, m.offset, m.key, m.value, ts)
            await self.checkpoint.flush()

    async def catch_up(self) -> int:
        """Records at the tail of a partition that faust fetched and dropped (around a
        restart or a rebalance) are only noticed as a gap when a later record arrives; on
        a quiet partition that may be never. Called every few seconds: a partition whose
        expected offset has not moved since the last call while the broker holds records
        past it is read from the broker here and processed, in order, under the lock (if
        faust delivers them after all, they are redeliveries and skipped). Returns the
        records processed."""
        expected = dict(self.positions.expected)
        if not expected:
            self._stuck_at = {}
            return 0
        ends = await self.reader.ends(expected)
        stuck = [
            tp
            for tp, at in expected.items()
            if at < ends.get(tp, at) and self._stuck_at.get(tp) == at
        ]
        self._stuck_at = {tp: at for tp, at in expected.items() if at < ends.get(tp, at)}
        done = 0
        for tp in stuck:
            topic, partition = tp
            start, end = expected[tp], ends[tp]
            missed = await self.reader.read(topic, partition, start, end)
            async with self.checkpoint.lock:
                for r in missed:
                    if self.positions.check(r.topic, r.partition, r.offset) != PROCESS:
                        continue  # delivered meanwhile, or the partition is no longer ours
                    await self._locked(r.topic, r.partition, r.offset, r.key, r.value, r.timestamp)
                    done += 1
                await self.checkpoint.flush()
            self._filled("tail_filled", topic, partition, start, end, len(missed))
        return done

    def _filled(
        self, what: str, topic: str, partition: int, start: int, end: int, records: int
    ) -> None:
        """Count and log records read from the broker past faust (a gap or a tail)."""
        self.positions.filled += records
        event(
            log,
            what,
            logging.WARNING if records else logging.INFO,
            topic=topic,
            partition=partition,
            start=start,
            end=end,
            records=records,
        )

    async def _locked(
        self, topic: str, partition: int, offset: int, key: Any, value: Any, ts: int | None
    ) -> None:
        await self._handle(topic, partition, offset, key, value, ts)
        self.checkpoint.processed(topic, partition, offset)
        self.positions.advance(topic, partition, offset)

    async def _handle(
        self, topic: str, partition: int, offset: int, key: Any, value: Any, ts: int | None
    ) -> None:
        """The handler, tried at most twice for one record (a handler dead-letters what it
        knows is wrong with a record itself; what escapes it may be a passing hiccup). A
        record that failed twice -- here, or before an agent crash -- is dead-lettered as
        ``processing_error``, so no record is ever retried forever."""
        if not self.failures:  # the usual case: no record of this incarnation failed yet
            try:
                await self.handle(topic, partition, offset, key, value, ts)
                return
            except Exception as exc:
                self._failed((topic, partition, offset), exc)
        where = (topic, partition, offset)
        while self.failures.get(where, (0, ""))[0] < MAX_ATTEMPTS:
            try:
                await self.handle(topic, partition, offset, key, value, ts)
            except Exception as exc:
                self._failed(where, exc)
                continue
            self.failures.pop(where, None)
            return
        assert self.dead_letters is not None  # else the handler's error was raised
        detail = self.failures[where][1]
        await self.dead_letters.produce(
            "processing_error",
            f"failed {MAX_ATTEMPTS} times: {detail}",
            topic,
            partition,
            offset,
            key,
            value,
            ts,
        )
        del self.failures[where]

    def _failed(self, where: tuple[str, int, int], exc: Exception) -> None:
        """Note a failed attempt; re-raise (in the except block) without a dead-letter
        producer."""
        n = self.failures.get(where, (0, ""))[0] + 1
        detail = f"{type(exc).__name__}: {exc}\n{traceback.format_exc(limit=8)}"
        self.failures[where] = (n, detail)
        topic, partition, offset = where
        event(
            log,
            "input_failed",
            logging.ERROR,
            topic=topic,
            partition=partition,
            offset=offset,
            attempt=n,
            error=repr(exc)[:300],
        )
        if self.dead_letters is None:
            raise exc
