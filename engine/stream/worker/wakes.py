"""The worker's timers on Kafka: due wake-ups from the timer index to ``journey.timers``,
and the index rebuilt from the state table after a recovery.

The table is the truth, the index only a cache of it (see
:mod:`engine.stream.common.timers`): a wake-up that could not be produced goes back into
the index, and one produced twice is dropped as stale by the runtime.
"""

from __future__ import annotations

import contextlib
import ctypes
import logging
import time
from collections.abc import Iterable, Iterator
from typing import Any

from engine.core import wire
from engine.core.ids import wake_token
from engine.stream.common.checkpoint import Send
from engine.stream.common.logs import event
from engine.stream.common.settings import Settings
from engine.stream.common.timers import Due, TimerIndex

# The worker's logger: these lines were the worker's before they had a module.
log = logging.getLogger("engine.stream.worker")


class WakeTicker:
    def __init__(
        self,
        settings: Settings,
        timers: TimerIndex,
        last_input: dict[int, float],
        send: Send,
    ) -> None:
        self.settings = settings
        self.timers = timers
        self.last_input = last_input  # partition -> monotonic time of its last input
        self.send = send

    async def tick(self) -> None:
        """Produce every due wake-up to the user's partition of ``journey.timers``."""
        now = int(time.time() * 1000)
        settled = None
        if self.settings.timer_settle_ms > 0:
            # Replays only: a partition still busy with a backlog keeps its timers back.
            quiet_since = time.monotonic() - self.settings.timer_settle_ms / 1000
            settled = [
                p for p in self.timers.partitions() if self.last_input.get(p, 0.0) <= quiet_since
            ]
        for due in list(self.timers.pop_due(now, settled)):
            try:
                fut = await self.send(
                    self.settings.topics.timers,
                    due.user_id.encode(),
                    wire.wake_value(due.user_id, due.at, wake_token(due.user_id, due.at)),
                    due.partition,
                )
            except Exception as exc:
                self.timers.requeue(due)
                event(log, "wake_produce_failed", logging.WARNING, error=repr(exc))
                continue

            def requeue_on_error(f: Any, due: Due = due) -> None:
                if f.cancelled() or f.exception() is not None:
                    self.timers.requeue(due)

            fut.add_done_callback(requeue_on_error)  # type: ignore[attr-defined]

    def rebuild(self, partitions: set[int], table_items: Iterable[tuple[Any, Any]]) -> None:
        """After a recovery: the index of ``partitions`` from the users' states."""
        t0 = time.perf_counter()
        n = self.timers.rebuild(partitions, pending_wakes(table_items))
        rebuild_ms = (time.perf_counter() - t0) * 1000
        release_freed_memory()
        event(
            log,
            "timers_rebuilt",
            partitions=sorted(partitions),
            pending=n,
            next_due=self.timers.next_due(),
            rebuild_ms=round(rebuild_ms, 1),
        )


def release_freed_memory() -> None:
    """Give the memory freed since the last call back to the OS (glibc ``malloc_trim``).

    A recovery reads the whole changelog: faust's fetch buffers and per-record objects are
    freed once it is done, but glibc keeps the freed heap pages, so the worker's RSS would
    stay at the recovery's peak. Nothing happens where there is no glibc."""
    with contextlib.suppress(OSError, AttributeError):
        ctypes.CDLL(None).malloc_trim(0)  # the process's own symbols: libc's on Linux


def pending_wakes(
    table_items: Iterable[tuple[Any, Any]],
) -> Iterator[tuple[bytes, int, int, str]]:
    """(user key, partition, wake time, "") of every user state with a wake-up. The key is
    the table's own object (the index shares it); the token is derived when the wake-up
    is produced."""
    for key, raw in table_items:
        if raw is None:
            continue
        try:
            partition, at = wire.state_wake_at(raw)
        except Exception:
            continue
        if at is not None:
            yield (key if isinstance(key, bytes) else str(key).encode()), partition, at, ""
