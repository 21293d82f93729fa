"""Receipts (and inbound messages) the gateway produces itself: now, or when due.

Everything here is produced keyed by user_id on the request's partition (so it comes back
to the worker that owns the user): to ``journey.channel-receipts``, or to
``journey.inbound`` for a reply the simulated provider announced. Records are handled in
their wire form (``{"type": "receipt"|"inbound", ...}``) and never decoded again.

Events a provider announces for later (the simulated delivery, 5 s after the send) are
kept in the message's record (``sched``) and produced when due by a ticker, so a gateway
restart loses none and a revoke can still cancel them. The ticker finds them through a
:class:`~engine.stream.common.timers.TimerIndex` keyed by message_id, rebuilt from the
table after every recovery.

Every record produced for a message is also remembered in its record (``out``): a
replayed request produces them again (see :mod:`engine.stream.gateway.runtime`).
"""

from __future__ import annotations

import time
from collections.abc import Iterable, Iterator
from typing import Any

from engine.core import wire
from engine.core.inputs import Inbound, Receipt
from engine.stream.common.checkpoint import Checkpoint, Send
from engine.stream.common.timers import TimerIndex
from engine.stream.gateway.claims import Claims, Record
from engine.stream.gateway.stats import GatewayStats

Wire = dict[str, Any]


def wall_ms() -> int:
    return time.time_ns() // 1_000_000


class Receipts:
    def __init__(
        self,
        receipts_topic: str,
        inbound_topic: str,
        send: Send,
        checkpoint: Checkpoint,
        claims: Claims,
        timers: TimerIndex,
        stats: GatewayStats,
    ) -> None:
        self.receipts_topic = receipts_topic  # journey.channel-receipts
        self.inbound_topic = inbound_topic  # journey.inbound
        self.send = send
        self.checkpoint = checkpoint
        self.claims = claims
        self.timers = timers  # message_id -> when its next scheduled record is due
        self.stats = stats

    async def produce(self, w: Wire, partition: int, rec: Record | None = None) -> None:
        """Produce a receipt / inbound record; with ``rec``, remember it there (replays)."""
        self.stats.receipts += 1
        if rec is not None:
            rec.setdefault("out", []).append(w)
        topic = self.inbound_topic if w.get("type") == "inbound" else self.receipts_topic
        fut = await self.send(topic, str(w["user_id"]).encode(), wire.dumps(w), partition)
        self.checkpoint.add_effect(f"{w.get('type')} {w.get('message_id')} {w.get('status')}", fut)

    async def produce_or_keep(
        self, message_id: str, partition: int, rec: Record, events: Iterable[Receipt | Inbound]
    ) -> None:
        """Records due now are produced, the others kept in ``rec`` for the ticker."""
        now = wall_ms()
        later: list[list[Any]] = []
        for e in events:
            w = wire.input_wire(e)
            if e.ts > now:
                later.append([e.ts, w])
            else:
                await self.produce(w, partition, rec)
        if later:
            later.sort(key=lambda s: s[0])
            rec["sched"] = later
            self.timers.schedule(message_id, partition, later[0][0], "")

    def cancel_delivery(self, revoke_ts: int, message_id: str, partition: int, rec: Record) -> bool:
        """Drop the scheduled delivery of ``rec`` (and what would follow it) if it is due
        after the revoke: the message was revoked before it reached the user. True if
        dropped."""
        sched = rec.get("sched")
        if not sched:
            return False
        delivery = next((s for s in sched if s[1].get("status") == "delivered"), None)
        if delivery is None or delivery[0] <= revoke_ts:
            return False
        keep = [s for s in sched if s[0] <= revoke_ts]
        if keep:
            rec["sched"] = keep
        else:
            rec.pop("sched")
        self.timers.schedule(message_id, partition, keep[0][0] if keep else None, "")
        return True

    async def tick(self) -> None:
        """The ticker: produce what is due, under the checkpoint's lock (it changes
        records)."""
        now = wall_ms()
        nxt = self.timers.next_due()
        if nxt is None or nxt > now:
            return
        async with self.checkpoint.lock:
            await self.fire_due(now)

    async def fire_due(self, now_ms: int) -> None:
        """Produce the scheduled records due at ``now_ms`` (under the checkpoint lock)."""
        for due in list(self.timers.pop_due(now_ms)):
            key = due.user_id.encode()  # the index is keyed by message_id
            rec = self.claims.get(key)
            if rec is None or not rec.get("sched"):
                continue
            keep = []
            for at, record in rec["sched"]:
                if at <= now_ms:
                    await self.produce(record, due.partition, rec)
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
        messages have records pending there."""

        def scheduled() -> Iterator[tuple[str, int, int, str]]:
            for key, rec in self.claims.records():
                if rec.get("sched"):
                    yield key.decode(), int(rec.get("p", -1)), int(rec["sched"][0][0]), ""

        return self.timers.rebuild(partitions, scheduled())
