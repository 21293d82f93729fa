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
from collections.abc import Awaitable, Callable
from typing import Any

from engine.stream.common.checkpoint import Checkpoint
from engine.stream.common.dead_letters import DeadLetters
from engine.stream.common.logs import event
from engine.stream.common.positions import (
    DUPLICATE,
    GAP,
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
        ts = int(m.timestamp * 1000) if m.timestamp else None
        verdict = self.positions.check(m.topic, m.partition, m.offset)
        if verdict == DUPLICATE:
            return
        if verdict == UNKNOWN:
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
            if not mine:
                return  # left over from a revoked partition: its new owner processes it
        if verdict == GAP:
            start = self.positions.expected[(m.topic, m.partition)]
            missed = await self.reader.read(m.topic, m.partition, start, m.offset)
            self.positions.filled += len(missed)
            event(
                log,
                "gap_filled",
                logging.WARNING if missed else logging.INFO,
                topic=m.topic,
                partition=m.partition,
                start=start,
                end=m.offset,
                records=len(missed),
            )
            for r in missed:
                await self._one(r.topic, r.partition, r.offset, r.key, r.value, r.timestamp)
        await self._one(m.topic, m.partition, m.offset, m.key, m.value, ts)

    async def _one(
        self, topic: str, partition: int, offset: int, key: Any, value: Any, ts: int | None
    ) -> None:
        async with self.checkpoint.lock:
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
        where = (topic, partition, offset)
        while self.failures.get(where, (0, ""))[0] < MAX_ATTEMPTS:
            try:
                await self.handle(topic, partition, offset, key, value, ts)
            except Exception as exc:
                n = self.failures.get(where, (0, ""))[0] + 1
                detail = f"{type(exc).__name__}: {exc}\n{traceback.format_exc(limit=8)}"
                self.failures[where] = (n, detail)
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
                    raise
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
