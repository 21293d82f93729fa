"""Durable timers (docs/streaming.md): the state table is the truth, this is only an index.

Each user's state holds its earliest pending wake-up (``UserState.wake_at``). A worker keeps
an index of ``(at, user)`` per partition it owns; it is rebuilt from the table after every
recovery and dropped for revoked partitions. A ticker pops due entries and produces a
wake-up keyed by user_id to ``journey.timers``; the worker hands it to the core only if the
user's state still says ``wake_at == ts`` (else it is stale and dropped). So a wake-up can
be produced twice (after a crash or a rebalance) but acts at most once, and none is lost:
whoever owns the partition rebuilds the index from the table.

Sized for a million pending timers per worker (docs/benchmarks.md, R3 and R4):

* one min-heap of ``(at, key)`` per partition: O(log n) to schedule and to pop, and a
  rebuild is one ``heapify`` (O(n)) per partition;
* one dict per partition, ``key -> at``, of the live entry of each user; a popped heap
  entry that does not match it is stale (the user's timer moved since: lazy deletion), and
  dropping a partition drops its two structures whole;
* keys are bytes: a rebuild passes the table's own key objects, so the index shares them
  with the store instead of holding a copy of every user id; the ``at`` object is shared
  by the heap entry and the dict; no token is kept (the worker's token is a function of
  user and time, :func:`engine.core.ids.wake_token`, derived again when the wake-up is
  produced).

About 150 bytes per pending timer (a 56-byte tuple, its heap slot, the dict entry and the
time), against about 310 before (a str copy of the user id, a 3-tuple with the token).

**Horizon** (optional): with ``horizon_ms`` the index holds only the timers due up to
:attr:`TimerIndex.bound`; later ones stay in the table alone. The owner moves the bound on
with :meth:`TimerIndex.extend` and feeds it the table's timers up to the new bound (a scan
of the table, in chunks: :class:`engine.stream.worker.wakes.WakeTicker`). So the memory of
the index follows the timers due soon, not all of them (RocksDB: flat RSS, R4). Nothing
is lost across a scan: :meth:`TimerIndex.schedule` holds what it is told up to a whole
horizon past the bound (a state may sit in the checkpoint's buffer, not yet in the table,
while a scan reads the table), and the scan adds only users the index has no entry for (an
entry the scan read older than the user's newest can only make a stale wake-up, which the
core drops).

The gateway keeps its scheduled receipts in the same kind of index, keyed by message_id
instead of user_id (hence here, with the shared pieces).
"""

from __future__ import annotations

import heapq
from collections.abc import Iterable, Iterator
from dataclasses import dataclass


@dataclass
class Due:
    user_id: str
    partition: int
    at: int
    token: str = ""  # the index keeps none: the worker derives it (wake_token)


def _key(user_id: str | bytes) -> bytes:
    return user_id if isinstance(user_id, bytes) else user_id.encode()


class _Partition:
    """The timers of one partition: live ``key -> at``, and a heap with stale entries."""

    __slots__ = ("heap", "live")

    def __init__(self) -> None:
        self.heap: list[tuple[int, bytes]] = []
        self.live: dict[bytes, int] = {}


class TimerIndex:
    def __init__(self, horizon_ms: int | None = None) -> None:
        self._parts: dict[int, _Partition] = {}
        self.horizon_ms = horizon_ms
        #: Timers due after this are not held (the table has them); None: all are held.
        self.bound: int | None = None

    # ------------------------------------------------------------------ updates

    def schedule(
        self, user_id: str | bytes, partition: int, at: int | None, token: str = ""
    ) -> None:
        """The user's earliest timer is now ``at`` (None: nothing pending). ``token`` is
        not kept (see the module doc)."""
        key = _key(user_id)
        part = self._parts.get(partition)
        if at is None:
            if part is not None:
                part.live.pop(key, None)
            return
        # A timer scheduled here may still be in the checkpoint's buffer, not yet in the
        # table, when a scan reads the table: so up to a horizon past the bound it is held;
        # later ones, the next scans but one find in the table.
        held_until = None if self.bound is None else self.bound + (self.horizon_ms or 0)
        if held_until is not None and at > held_until:
            if part is not None:
                part.live.pop(key, None)  # a nearer entry of the user's is stale now
            return
        if part is None:
            part = self._parts[partition] = _Partition()
        if part.live.get(key) == at:
            return
        part.live[key] = at
        heapq.heappush(part.heap, (at, key))

    def pop_due(self, now_ms: int, partitions: Iterable[int] | None = None) -> Iterator[Due]:
        """Every live entry due at ``now_ms`` (of ``partitions``, default all), earliest
        first within a partition; each is handed out once (the next :meth:`schedule` for
        the user, after the wake-up is processed, re-arms it)."""
        only = None if partitions is None else set(partitions)
        for partition, part in list(self._parts.items()):
            if only is not None and partition not in only:
                continue
            heap, live = part.heap, part.live
            while heap and heap[0][0] <= now_ms:
                at, key = heapq.heappop(heap)
                if live.get(key) != at:
                    continue  # stale: the user's timer moved since
                del live[key]
                yield Due(key.decode(), partition, at)

    def requeue(self, due: Due) -> None:
        """Put back an entry whose wake-up could not be produced (unless the user has a
        newer timer meanwhile)."""
        part = self._parts.get(due.partition)
        if part is None or _key(due.user_id) not in part.live:
            self.schedule(due.user_id, due.partition, due.at)

    def drop_partitions(self, partitions: Iterable[int]) -> None:
        for p in set(partitions):
            self._parts.pop(p, None)

    def rebuild(
        self,
        partitions: Iterable[int],
        entries: Iterable[tuple[str | bytes, int, int, str]],
        now_ms: int | None = None,
    ) -> int:
        """Replace the timers of ``partitions`` with ``entries`` (user, partition, at,
        token) that belong to them. Returns how many timers are pending there (held or,
        past the bound, left in the table). With a horizon, the first rebuild sets the
        bound to ``now_ms`` + the horizon."""
        if self.horizon_ms is not None and self.bound is None:
            self.bound = (now_ms or 0) + self.horizon_ms
        bound = self.bound
        keep = set(partitions)
        fresh = {p: _Partition() for p in keep}
        n = 0
        for user_id, partition, at, _token in entries:
            part = fresh.get(partition)
            if part is not None:
                n += 1
                if bound is None or at <= bound:
                    part.live[_key(user_id)] = at
        for p, part in fresh.items():
            part.heap = [(at, key) for key, at in part.live.items()]
            heapq.heapify(part.heap)
            self._parts[p] = part
        return n

    def extend(self, bound: int) -> None:
        """Hold the timers due up to ``bound`` from now on; the caller then feeds the
        table's timers through :meth:`add_found`."""
        if self.bound is not None and bound > self.bound:
            self.bound = bound

    def add_found(self, entries: Iterable[tuple[str | bytes, int, int, str]], after: int) -> int:
        """Timers read from the table by a scan: each is added if due after ``after`` (the
        bound before :meth:`extend`: the earlier ones were held, or handed out, already)
        and up to the bound, on a partition held, for a user with no entry (the index's
        is newer or equal). Returns how many were added."""
        n = 0
        for user_id, partition, at, _token in entries:
            part = self._parts.get(partition)
            if part is None or at <= after or (self.bound is not None and at > self.bound):
                continue
            key = _key(user_id)
            if key not in part.live:
                part.live[key] = at
                heapq.heappush(part.heap, (at, key))
                n += 1
        return n

    # ------------------------------------------------------------------ reading

    def __len__(self) -> int:
        return sum(len(part.live) for part in self._parts.values())

    def partitions(self) -> list[int]:
        """The partitions with timers."""
        return list(self._parts)

    def next_due(self) -> int | None:
        """The earliest live timer (stale heap heads are dropped on the way)."""
        best: int | None = None
        for part in self._parts.values():
            heap, live = part.heap, part.live
            while heap and live.get(heap[0][1]) != heap[0][0]:
                heapq.heappop(heap)
            if heap and (best is None or heap[0][0] < best):
                best = heap[0][0]
        return best

    def pending(self) -> Iterator[Due]:
        """Every live timer (user, partition, at), in no order: for tests and tools."""
        for partition, part in self._parts.items():
            for key, at in part.live.items():
                yield Due(key.decode(), partition, at)

    @property
    def current(self) -> dict[str, tuple[int, int, str]]:
        """user_id -> (partition, at, token ""): a snapshot of the live timers, in the
        shape the index had before it was made compact (tests read it)."""
        return {d.user_id: (d.partition, d.at, d.token) for d in self.pending()}
