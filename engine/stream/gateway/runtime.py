"""The gateway's per-request logic: one send request or revoke, with the durable claim
table (faust-free; :mod:`engine.stream.gateway.service` feeds it).

A send is claimed first (:mod:`engine.stream.gateway.claims`); claims are batched: up to
``BATCH``, or as many requests as have arrived when the input queue runs empty. Once the
changelog has acknowledged a batch's claims, :meth:`GatewayRuntime.settle` calls the
provider for each and hands its receipts on (:mod:`engine.stream.gateway.receipts`).

The only window is a gateway crash between the claim and the provider's answer: then the
outcome is unknown, and the request is sent again only if the provider itself dedupes on
the id (``idempotent``: RBM rejects a reused ``messageId``; the simulated provider has no
side effects); otherwise it is dropped with a ``send_outcome_unknown`` warning (at most
once).
"""

from __future__ import annotations

import asyncio
import logging
import time
from typing import Any

from engine.core import wire
from engine.core.effects import Revoke, SendRequest
from engine.core.inputs import Receipt
from engine.errors import InputError
from engine.stream.common.checkpoint import Checkpoint, fail_stop
from engine.stream.common.dead_letters import DeadLetters
from engine.stream.common.logs import event
from engine.stream.common.settings import Settings
from engine.stream.common.timers import TimerIndex
from engine.stream.gateway.claims import Claims, Record
from engine.stream.gateway.provider import Provider, call_provider
from engine.stream.gateway.receipts import Receipts
from engine.stream.gateway.stats import GatewayStats

log = logging.getLogger("engine.stream.gateway")

BATCH = 500  # claims made durable together before their provider calls


class GatewayRuntime:
    def __init__(
        self,
        settings: Settings,
        provider: Provider,
        backend: Any,
        checkpoint: Checkpoint,
        timers: TimerIndex,
        dead_letters: DeadLetters,
    ) -> None:
        self.provider = provider
        self.checkpoint = checkpoint
        self.dead_letters = dead_letters
        self.stats = GatewayStats()
        self.claims = Claims(backend, checkpoint)
        self.receipts = Receipts(
            settings.topics.channel_receipts,
            backend.send,
            checkpoint,
            self.claims,
            timers,
            self.stats,
        )
        # claimed requests waiting for settle(): (request, partition, record, claim future)
        self.pending: list[tuple[SendRequest, int, Record, Any]] = []
        self.pending_ids: set[str] = set()

    # ------------------------------------------------------------------ one request

    async def handle(
        self,
        topic: str,
        partition: int,
        offset: int,
        key: bytes | None,
        value: bytes | None,
        timestamp_ms: int | None,
    ) -> None:
        self.stats.requests += 1
        try:
            req = wire.decode_gateway_request(value)
        except InputError as exc:
            self.stats.dead_letters += 1
            await self.dead_letters.produce(
                exc.reason, exc.detail, topic, partition, offset, key, value, timestamp_ms
            )
            return
        if isinstance(req, Revoke):
            await self._revoke(req, partition)
        else:
            await self._send(req, partition)

    async def _send(self, req: SendRequest, partition: int) -> None:
        mid = req.message_id
        key = mid.encode()
        rec = self.claims.get(key)
        if rec is not None and rec.get("st") == "sent":
            # A replay. The provider is not called again, but the receipts already
            # produced are produced once more: the replayed request was caused by the
            # engine re-processing an input, and a receipt it consumed before it had
            # re-created the message would otherwise be lost (the core ignores
            # receipts for messages it doesn't know, and dedupes repeated ones).
            self.stats.duplicates += 1
            for record in rec.get("out", ()):
                await self.receipts.produce(wire.receipt_from_wire(record), partition)
            event(
                log,
                "duplicate_send_dropped",
                logging.INFO,
                message_id=mid,
                user_id=req.user_id,
                receipts_again=len(rec.get("out", ())),
            )
            return
        if rec is not None and rec.get("st") == "claimed" and not self.provider.idempotent:
            self.stats.unknown_outcome += 1
            rec["st"] = "sent"
            rec["unknown"] = True
            self.claims.put(key, partition, rec)
            event(log, "send_outcome_unknown", logging.WARNING, message_id=mid, user_id=req.user_id)
            return
        if mid in self.pending_ids:
            self.stats.duplicates += 1  # the same request twice in one batch
            return
        # The claim: in the store and on its way to the changelog. The provider is called
        # in settle(), once the broker has acknowledged the claims of the whole batch.
        rec = {
            "p": partition,
            "u": req.user_id,
            "st": "claimed",
            "ch": req.channel,
            "ts": req.ts,
            "at": int(time.time() * 1000),  # wall clock of the claim, for retention
        }
        if req.channel == "rcs":
            rec["c"] = req.content
        fut = await self.claims.claim(key, partition, rec)
        self.pending.append((req, partition, rec, fut))
        self.pending_ids.add(mid)

    async def after_request(self, queue_empty: bool) -> None:
        """After every request (outside the lock): settle when the batch is full or no more
        requests are waiting. Provider calls wait for a batch of claims, but never for more
        requests than are already here: latency stays one claim round trip when traffic is
        light."""
        if self.pending and (len(self.pending) >= BATCH or queue_empty):
            async with self.checkpoint.lock:
                await self.settle()

    async def settle(self) -> None:
        """Call the provider for the claimed requests, once their claims are durable.

        Called (under the checkpoint lock) when the batch is full, when no more requests are
        waiting, before a revoke, and as step 0 of every checkpoint: a request's offset is
        never committed before its provider call."""
        if not self.pending:
            return
        batch, self.pending = self.pending, []
        self.pending_ids.clear()
        results = await asyncio.gather(*(f for *_x, f in batch), return_exceptions=True)
        for res in results:
            if isinstance(res, BaseException):
                fail_stop("claim_not_acknowledged", error=repr(res))
                raise RuntimeError(f"claim not acknowledged: {res!r}")
        self.stats.batches += 1
        for req, partition, rec, _fut in batch:
            await self._deliver(req, partition, rec)

    async def _deliver(self, req: SendRequest, partition: int, rec: Record) -> None:
        mid = req.message_id
        derive_from = req.content.get("derive_from") if req.channel == "sms" else None
        if isinstance(derive_from, str):
            original = self.claims.get(derive_from.encode())
            if original is not None and "c" in original:
                self.provider.remember_original(derive_from, original["c"])
        receipts = await call_provider(self.provider, req)
        self.stats.provider_calls += 1
        event(
            log,
            "provider_send",
            message_id=mid,
            user_id=req.user_id,
            channel=req.channel,
            to=req.to,
            node=req.node_id,
            purpose=req.purpose,
        )
        rec["st"] = "sent"
        await self.receipts.produce_or_keep(mid, partition, rec, receipts)
        self.claims.put(mid.encode(), partition, rec)

    async def _revoke(self, rev: Revoke, partition: int) -> None:
        await self.settle()  # the message it revokes may be in the batch
        self.stats.revokes += 1
        key = rev.message_id.encode()
        rec = self.claims.get(key)
        if rec is not None and self.receipts.cancel_delivery(rev, partition, rec):
            self.stats.revoked += 1
            await self.receipts.produce(
                Receipt(rev.user_id, rev.ts, "revoked", rev.message_id), partition, rec
            )
            self.claims.put(key, rec.get("p", partition), rec)
            return
        if rec is not None and rec.get("revoked"):
            return  # a replayed revoke: done already
        for r in await self.provider.revoke(rev):
            await self.receipts.produce(r, partition, rec)
        if rec is not None:
            self.claims.put(key, rec.get("p", partition), rec)
