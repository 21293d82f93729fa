"""The worker's timers on Kafka: due wake-ups from the timer index to ``journey.timers``,
and the index rebuilt from the state table after a recovery.

The table is the truth, the index only a cache of it (see
:mod:`engine.stream.common.timers`): a wake-up that could not be produced goes back into
the index, and one produced twice is dropped as stale by the runtime.
"""

from __future__ import annotations

import contextlib
import ctypes
import itertools
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


#: The index holds the timers due within this; the later ones stay in the table alone,
#: and a scan of the table brings them in when the bound is half a horizon away.
HORIZON_MS = 3_600_000
#: Table entries a tick scans: a bounded slice of the event loop (~5k states: ~20 ms).
SCAN_CHUNK = 5_000


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
        if timers.horizon_ms is None:
            timers.horizon_ms = HORIZON_MS  # set before the first rebuild
        self.last_input = last_input  # partition -> monotonic time of its last input
        self.send = send
        self._table: Iterable[tuple[Any, Any]] | None = None  # the table's items, re-iterable
        self._scan: Iterator[tuple[Any, Any]] | None = None
        self._scan_after = 0
        self._scan_added = 0

    async def tick(self) -> None:
        """Produce every due wake-up to the user's partition of ``journey.timers``; move the
        index's horizon on when it is near."""
        now = int(time.time() * 1000)
        self.scan_step(now)
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

    def scan_step(self, now: int) -> None:
        """One chunk of the table scan that moves the horizon on (see
        :mod:`engine.stream.common.timers`): started when the bound is half a horizon away,
        ``SCAN_CHUNK`` entries a tick."""
        t = self.timers
        if t.bound is None or t.horizon_ms is None or self._table is None:
            return
        if self._scan is None:
            if now + t.horizon_ms // 2 < t.bound:
                return
            self._scan_after, self._scan_added = t.bound, 0
            t.extend(now + t.horizon_ms)
            self._scan = table_snapshot(self._table)
        try:
            chunk = list(itertools.islice(self._scan, SCAN_CHUNK))
        except RuntimeError:  # the table changed under a live iterator: again, on its keys
            self._scan = table_snapshot(self._table, copy_keys=True)
            return
        self._scan_added += t.add_found(pending_wakes(chunk), self._scan_after)
        if len(chunk) < SCAN_CHUNK:
            self._scan = None
            event(log, "timers_scanned", bound=t.bound, added=self._scan_added, held=len(t))

    def rebuild(self, partitions: set[int], table_items: Iterable[tuple[Any, Any]]) -> None:
        """After a recovery: the index of ``partitions`` from the users' states."""
        self._table = table_items
        t0 = time.perf_counter()
        n = self.timers.rebuild(
            partitions, pending_wakes(table_items), now_ms=int(time.time() * 1000)
        )
        rebuild_ms = (time.perf_counter() - t0) * 1000
        release_freed_memory()
        event(
            log,
            "timers_rebuilt",
            partitions=sorted(partitions),
            pending=n,
            held=len(self.timers),
            bound=self.timers.bound,
            next_due=self.timers.next_due(),
            rebuild_ms=round(rebuild_ms, 1),
        )


_DICT_ITEMS: type[Any] = type({}.items())


def table_snapshot(
    items: Iterable[tuple[Any, Any]], copy_keys: bool = False
) -> Iterator[tuple[Any, Any]]:
    """An iterator over the table that a scan in chunks can hold across ticks. faust's
    memory store hands out its dict's items, and the dict changes between chunks: its
    keys are copied (8 bytes a user, for the scan). RocksDB's iterators read a snapshot of
    their own. ``copy_keys`` (after a live iterator failed): copy the keys of any mapping,
    else the items themselves."""
    mapping: Any = None
    if isinstance(items, _DICT_ITEMS):
        mapping = items.mapping
    elif isinstance(getattr(getattr(items, "_mapping", None), "data", None), dict):
        mapping = items._mapping.data  # type: ignore[attr-defined]
    elif copy_keys:
        mapping = getattr(items, "_mapping", None)
    if mapping is not None and hasattr(mapping, "get"):
        keys = list(mapping)
        return ((k, mapping.get(k)) for k in keys)
    return iter(list(items)) if copy_keys else iter(items)


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
