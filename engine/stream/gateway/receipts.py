"""Receipts: produced to ``journey.channel-receipts`` on the request's partition (so they
come back to the worker that owns the user), now or when due.

Receipts a provider reports for later (the simulated delivery, 5 s after the send) are kept
in the message's record (``sched``) and produced when due by a ticker, so a gateway
restart loses none and a revoke can still cancel them. The ticker finds them through a
:class:`~engine.stream.common.timers.TimerIndex` keyed by message_id, rebuilt from the
table after every recovery.

Every receipt produced for a message is also remembered in its record (``out``): a
replayed request produces them again (see :mod:`engine.stream.gateway.runtime`).
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from typing import Any

from engine.core import wire
from engine.core.effects import Revoke
from engine.core.inputs import Receipt
from engine.stream.common.checkpoint import Checkpoint, Send
from engine.stream.common.timers import TimerIndex
from engine.stream.gateway.claims import Claims, Record
from engine.stream.gateway.stats import GatewayStats


class Receipts:
    def __init__(
        self,
        topic: str,
        send: Send,
        checkpoint: Checkpoint,
        claims: Claims,
        timers: TimerIndex,
        stats: GatewayStats,
    ) -> None:
        self.topic = topic  # journey.channel-receipts
        self.send = send
        self.checkpoint = checkpoint
        self.claims = claims
        self.timers = timers  # message_id -> when its next scheduled receipt is due
        self.stats = stats

    async def produce(self, r: Receipt, partition: int, rec: Record | None = None) -> None:
        """Produce a receipt; with ``rec``, remember it there (for replays)."""
        self.stats.receipts += 1
        if rec is not None:
            rec.setdefault("out", []).append(wire.receipt_wire(r))
        fut = await self.send(
            self.topic, r.user_id.encode(), wire.dumps(wire.receipt_wire(r)), partition
        )
        self.checkpoint.add_effect(f"receipt {r.message_id} {r.status}", fut)

    async def produce_or_keep(
        self, message_id: str, partition: int, rec: Record, receipts: list[Receipt]
    ) -> None:
        """The provider's receipts for a send: those due now are produced, the others kept
        in ``rec`` for the ticker."""
        now = int(time.time() * 1000)
        later: list[list[Any]] = []
        for r in receipts:
            if r.ts > now:
                later.append([r.ts, wire.receipt_wire(r)])
            else:
                await self.produce(r, partition, rec)
        if later:
            later.sort(key=lambda s: s[0])
            rec["sched"] = later
            self.timers.schedule(message_id, partition, later[0][0], "")

    def cancel_delivery(self, rev: Revoke, partition: int, rec: Record) -> bool:
        """Drop the scheduled delivery (or read) receipt of ``rec`` if it is due after the
        revoke: the message was revoked before it reached the user. True if dropped."""
        sched = rec.get("sched")
        if not sched:
            return False
        delivery = next((s for s in sched if s[1].get("status") in ("delivered", "read")), None)
        if delivery is None or delivery[0] <= rev.ts:
            return False
        rec["sched"] = [s for s in sched if s is not delivery]
        rec["revoked"] = True
        if not rec["sched"]:
            rec.pop("sched")
            self.timers.schedule(rev.message_id, partition, None, "")
        else:
            self.timers.schedule(rev.message_id, partition, rec["sched"][0][0], "")
        return True

    async def tick(self) -> None:
        """The ticker: produce what is due, under the checkpoint's lock (it changes
        records)."""
        now = int(time.time() * 1000)
        nxt = self.timers.next_due()
        if nxt is None or nxt > now:
            return
        async with self.checkpoint.lock:
            await self.fire_due(now)

    async def fire_due(self, now_ms: int) -> None:
        """Produce the scheduled receipts due at ``now_ms`` (under the checkpoint lock)."""
        for due in list(self.timers.pop_due(now_ms)):
            key = due.user_id.encode()  # the index is keyed by message_id
            rec = self.claims.get(key)
            if rec is None or not rec.get("sched"):
                continue
            keep = []
            for at, record in rec["sched"]:
                if at <= now_ms:
                    await self.produce(wire.receipt_from_wire(record), due.partition, rec)
                else:
                    keep.append([at, record])
            if keep:
                rec["sched"] = keep
                self.timers.schedule(due.user_id, due.partition, keep[0][0], "")
            else:
                rec.pop("sched", None)
            self.claims.put(key, due.partition, rec)

    def rebuild(self, partitions: set[int]) -> int:
        """After a recovery: the index of ``partitions`` from the table. Returns how many
        messages have receipts pending there."""

        def scheduled() -> Iterator[tuple[str, int, int, str]]:
            for key, rec in self.claims.records():
                if rec.get("sched"):
                    yield key.decode(), int(rec.get("p", -1)), int(rec["sched"][0][0]), ""

        return self.timers.rebuild(partitions, scheduled())
