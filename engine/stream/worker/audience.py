"""The worker's audience scanner: scheduled-entry ticks for users whose stored wake-up
predates the deployed schedules (docs/streaming.md, "Scheduled audience entry").

In the steady state there is nothing to scan: the core makes each known user's next
occurrence part of their next timer (:mod:`engine.core.audience`), so the user's state
says when to wake them (``w``), the timer index holds it and the wake ticker produces it,
like any wait. What the stored wake-ups can't know is a schedule deployed (or moved
earlier) after they were computed: a user idle since then would wait for their old timer,
or forever. So after every recovery, for the partitions it now owns, the worker scans its
own users (the table's items of those partitions, nothing else) and, for each user whose
next occurrence under the journeys it runs now is earlier than their stored wake-up, keeps
a tick at that instant in an index of its own; when due, the ticker produces a
:class:`~engine.core.inputs.Scheduled` record to the user's partition of
``journey.timers``.

The durable cursor is each user's own state: their clock and the last occurrence key
decided per journey (``c`` and ``sk``), written through the checkpoint like everything
else. A tick produced twice, or one that reaches a user who already passed the occurrence
(an event first, a restart, a rebalance, a replay), decides nothing twice; after the tick,
the core's new ``w`` covers the schedule and the next scan skips the user.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Iterable, Iterator
from typing import Any

from engine.core import wire
from engine.core.audience import next_due_for
from engine.core.catalog import Catalog
from engine.core.inputs import Scheduled
from engine.stream.common.checkpoint import Send
from engine.stream.common.logs import event
from engine.stream.common.settings import Settings
from engine.stream.common.timers import Due, TimerIndex

log = logging.getLogger("engine.stream.worker")
_SEP = "\x1f"  # journey id and occurrence key in the index's token (neither contains it)


def _wall_clock_ms() -> int:
    return time.time_ns() // 1_000_000


class AudienceScanner:
    def __init__(
        self,
        settings: Settings,
        catalog: Catalog,
        send: Send,
        clock: Any = _wall_clock_ms,
    ) -> None:
        self.settings = settings
        self.catalog = catalog
        self.send = send
        self.clock = clock
        self.ticks = TimerIndex()  # partition -> (instant, user): one pending tick per user
        self.tokens: dict[str, str] = {}  # user -> "journey<SEP>occurrence" of their tick

    def rebuild(self, partitions: set[int], table_items: Iterable[tuple[Any, Any]]) -> int:
        """After a recovery: the ticks of ``partitions``, from their users' states."""
        if not self.catalog.scheduled:
            return 0
        n = self.ticks.rebuild(
            partitions, self._noted(_behind(self.catalog, partitions, table_items))
        )
        event(
            log,
            "audience_scanned",
            partitions=sorted(partitions),
            ticks=n,
            next_tick=self.ticks.next_due(),
        )
        return n

    def _noted(
        self, entries: Iterator[tuple[str, int, int, str]]
    ) -> Iterator[tuple[str, int, int, str]]:
        """Keep each tick's token (journey and occurrence): the index keeps none."""
        for user, partition, at, token in entries:
            self.tokens[user] = token
            yield user, partition, at, token

    def drop_partitions(self, partitions: set[int]) -> None:
        self.ticks.drop_partitions(partitions)

    async def tick(self) -> None:
        """Produce every due tick to the user's partition of ``journey.timers``."""
        for due in list(self.ticks.pop_due(self.clock())):
            journey_id, _, key = self.tokens.get(due.user_id, "").partition(_SEP)
            if not key:
                continue  # not a tick of the last scan (its token is gone)
            value = wire.scheduled_value(Scheduled(due.user_id, due.at, journey_id, key))
            try:
                fut = await self.send(
                    self.settings.topics.timers, due.user_id.encode(), value, due.partition
                )
            except Exception as exc:
                self.ticks.requeue(due)
                event(log, "audience_tick_failed", logging.WARNING, error=repr(exc))
                continue

            def requeue_on_error(f: Any, due: Due = due) -> None:
                if f.cancelled() or f.exception() is not None:
                    self.ticks.requeue(due)

            fut.add_done_callback(requeue_on_error)  # type: ignore[attr-defined]

    def __len__(self) -> int:
        return len(self.ticks)


def _behind(
    catalog: Catalog, partitions: set[int], table_items: Iterable[tuple[Any, Any]]
) -> Iterator[tuple[str, int, int, str]]:
    """(user, partition, instant, token) of every user of ``partitions`` whose stored
    wake-up is later than their next occurrence (or who has none)."""
    for key, raw in list(table_items):
        if raw is None:
            continue
        try:
            partition, state = wire.parse_state_record(raw)
        except Exception:
            continue  # not a state this worker wrote: the runtime dead-letters its inputs
        if partition not in partitions:
            continue
        due = next_due_for(catalog, state.get("c", 0), state.get("a", {}), state.get("sk", {}))
        stored = state.get("w")
        if due is None or (stored is not None and stored <= due.at):
            continue
        user = key.decode() if isinstance(key, bytes) else str(key)
        yield user, partition, due.at, f"{due.journey.id}{_SEP}{due.key}"
