"""The gateway's durable claim table: one record per ``message_id``, in a faust table
(changelog-backed, co-partitioned with the requests).

**A send reaches the provider once.** Before the gateway calls the provider for a message
it has not seen, it writes a *claim* for the id and waits until the changelog has it (see
:meth:`GatewayRuntime.settle <engine.stream.gateway.runtime.GatewayRuntime.settle>`); a
request whose id is claimed or sent is a duplicate and goes no further. So replays (a
worker re-processing after ``kill -9``, a rebalance, the gateway's own restart) never
reach the provider again.

A record (JSON)::

    p        partition of the request (and of its receipts)
    u, ch, ts   user_id, channel and ts of the request
    st       "claimed" (provider call pending or in doubt) | "sent"
    at       wall clock of the claim, ms (for the retention sweep)
    c        the content of an RCS message (an SMS fallback may derive from it)
    out      the wire form of every receipt produced for it (produced again on a replay)
    sched    [[at_ms, receipt wire], ...]: receipts to produce later, sorted
    revoked  a revoke cancelled its delivery
    unknown  claimed before a crash and not sent again (provider not idempotent)

Records are read through the checkpoint's write-back buffer and written to it, except the
claim itself, which goes to the store and the changelog at once: its acknowledgement is
what allows the provider call.
"""

from __future__ import annotations

from collections.abc import Awaitable, Iterator
from typing import Any

import orjson

from engine.stream.common.checkpoint import Checkpoint

Record = dict[str, Any]


class Claims:
    def __init__(self, backend: Any, checkpoint: Checkpoint) -> None:
        self.backend = backend  # get, items, store_put, send_changelog
        self.checkpoint = checkpoint

    def get(self, key: bytes) -> Record | None:
        buffered = self.checkpoint.get_dirty(key)
        raw = buffered[1] if buffered is not None else self.backend.get(key)
        return orjson.loads(raw) if raw is not None else None

    def put(self, key: bytes, partition: int, rec: Record) -> None:
        """Durable at the next checkpoint."""
        self.checkpoint.put_state(key, partition, orjson.dumps(rec))

    async def claim(self, key: bytes, partition: int, rec: Record) -> Awaitable[Any]:
        """Write ``rec`` to the store and the changelog now; returns the changelog write's
        delivery future (the provider is called once it is acknowledged)."""
        value = orjson.dumps(rec)
        self.checkpoint.dirty.pop(key, None)
        self.backend.store_put(partition, key, value)
        fut: Awaitable[Any] = await self.backend.send_changelog(partition, key, value)
        return fut

    def records(self) -> Iterator[tuple[bytes, Record]]:
        """Every record in the store (not the buffer): (message_id, record)."""
        for k, raw in list(self.backend.items()):
            if raw is None:
                continue
            try:
                rec = orjson.loads(raw)
            except Exception:
                continue
            yield (k if isinstance(k, bytes) else str(k).encode()), rec

    def sweep(self, partitions: set[int], older_than_ms: int, limit: int = 10_000) -> int:
        """Forget the records of messages claimed before ``older_than_ms`` (wall clock)
        with nothing left to deliver: tombstones, through the checkpoint. Safe once the
        send-requests topic can no longer hold a request for them (its retention).
        Called under the checkpoint lock; returns how many were forgotten."""
        n = 0
        for key, rec in self.records():
            if n >= limit:
                break
            p = int(rec.get("p", -1))
            expired = p in partitions and rec.get("at", 0) < older_than_ms
            # Not while receipts are scheduled, nor while a newer version awaits the checkpoint.
            if expired and not rec.get("sched") and self.checkpoint.get_dirty(key) is None:
                self.checkpoint.put_state(key, p, None)
                n += 1
        return n
