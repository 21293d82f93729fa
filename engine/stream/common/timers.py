"""Durable timers (docs/streaming.md): the state table is the truth, this is only an index.

Each user's state holds its earliest pending wake-up (``UserState.wake_at``). A worker keeps
one min-heap per partition it owns, of ``(at, user_id)``; it is rebuilt from the table
after every recovery and dropped for revoked partitions. A ticker pops due entries and
produces a wake-up keyed by user_id to ``journey.timers``; the worker hands it to the core
only if the user's state still says ``wake_at == ts`` (else it is stale and dropped). So a
wake-up can be produced twice (after a crash or a rebalance) but acts at most once, and
none is lost: whoever owns the partition rebuilds the heap from the table.

The heaps use lazy deletion: :attr:`TimerIndex.current` holds the one live entry per user,
and a popped entry that doesn't match it is skipped.

The gateway keeps its scheduled receipts in the same kind of index, keyed by message_id
instead of user_id (hence here, with the shared pieces).
"""

from __future__ import annotations

import heapq
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field


@dataclass
class Due:
    user_id: str
    partition: int
    at: int
    token: str


@dataclass
class TimerIndex:
    heaps: dict[int, list[tuple[int, str]]] = field(default_factory=dict)
    # user_id -> (partition, at, token) of the live entry
    current: dict[str, tuple[int, int, str]] = field(default_factory=dict)

    def schedule(self, user_id: str, partition: int, at: int | None, token: str) -> None:
        """The user's earliest timer is now ``at`` (None: nothing pending)."""
        if at is None:
            self.current.pop(user_id, None)
            return
        old = self.current.get(user_id)
        if old is not None and old[0] == partition and old[1] == at:
            return
        self.current[user_id] = (partition, at, token)
        heapq.heappush(self.heaps.setdefault(partition, []), (at, user_id))

    def pop_due(self, now_ms: int, partitions: Iterable[int] | None = None) -> Iterator[Due]:
        """Every live entry due at ``now_ms`` (of ``partitions``, default all); each is handed
        out once (the next :meth:`schedule` for the user, after the wake-up is processed,
        re-arms it)."""
        only = None if partitions is None else set(partitions)
        for partition, heap in self.heaps.items():
            if only is not None and partition not in only:
                continue
            while heap and heap[0][0] <= now_ms:
                at, user_id = heapq.heappop(heap)
                cur = self.current.get(user_id)
                if cur is None or cur[0] != partition or cur[1] != at:
                    continue  # stale: the user's timer moved since
                del self.current[user_id]
                yield Due(user_id, partition, at, cur[2])

    def requeue(self, due: Due) -> None:
        """Put back an entry whose wake-up could not be produced."""
        if due.user_id not in self.current:
            self.schedule(due.user_id, due.partition, due.at, due.token)

    def drop_partitions(self, partitions: Iterable[int]) -> None:
        gone = set(partitions)
        for p in gone:
            self.heaps.pop(p, None)
        for user_id in [u for u, (p, _a, _t) in self.current.items() if p in gone]:
            del self.current[user_id]

    def rebuild(
        self, partitions: Iterable[int], entries: Iterable[tuple[str, int, int, str]]
    ) -> int:
        """Replace the heaps of ``partitions`` with ``entries`` (user, partition, at, token)
        that belong to them. Returns how many timers are pending there."""
        keep = set(partitions)
        self.drop_partitions(keep)
        n = 0
        for user_id, partition, at, token in entries:
            if partition in keep:
                self.schedule(user_id, partition, at, token)
                n += 1
        return n

    def __len__(self) -> int:
        return len(self.current)

    def next_due(self) -> int | None:
        heads = [h[0][0] for h in self.heaps.values() if h]
        return min(heads) if heads else None
