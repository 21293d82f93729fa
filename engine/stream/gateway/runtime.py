"""The gateway's per-request logic: the Kafka shell around the channel gateway library
(:class:`~engine.channels.gateway.ChannelGateway`), faust-free
(:mod:`engine.stream.gateway.service` feeds it).

**A request** (under the checkpoint's lock, in offset order): a send whose id is in the
claim table is a duplicate (its receipts are produced again, nothing is sent); a new one
is recorded ``queued`` (durable at the next checkpoint, before the request's offset is
committed) and handed to the :class:`~engine.stream.gateway.sender.Sender`. A revoke of a
send that has not started cancels it (``revoked``: it never went out); any other revoke
queues behind the user's send.

**A send** (a sender job, outside the lock, many at once): the library prepares it,
checks capability, *claims* it (:class:`~engine.stream.gateway.claims.KafkaClaimStore`:
the claim and the id-map entry acknowledged by the broker) and calls the provider; the
outcome settles the record (``sent``), produces the receipts due now, keeps the ones the
provider announced for later, and records the provider's id in the id map.

**After a crash** (every recovery): records of owned partitions still ``queued`` are
sent as new (no provider has seen them); ``claimed`` ones are settled by provider kind
(:meth:`ChannelGateway.resume <engine.channels.gateway.ChannelGateway.resume>`): sent
again with the same id (idempotent: RBM, the simulated provider; counted as
``retries_after_restart``, not as a send), or looked up (Twilio: found -> sent with its
SID; not found -> an ``unknown`` receipt: never sent blindly).
"""

from __future__ import annotations

import logging
import time
from typing import Any

from engine.channels.gateway import (
    ACCEPTED,
    HELD_MS,
    ChannelGateway,
    Claim,
    SendOutcome,
)
from engine.channels.webhook_call import WebhookCaller
from engine.channels.webhooks import SentMessage
from engine.core import wire
from engine.core.effects import Revoke, SendRequest, WebhookRequest
from engine.core.inputs import Forget, Receipt
from engine.errors import InputError
from engine.stream.common.checkpoint import Checkpoint, fail_stop
from engine.stream.common.dead_letters import DeadLetters
from engine.stream.common.logs import event
from engine.stream.common.metrics import Metrics
from engine.stream.common.settings import Settings
from engine.stream.common.timers import TimerIndex
from engine.stream.gateway import idmap
from engine.stream.gateway.claims import Claims, Closing, KafkaClaimStore, Record
from engine.stream.gateway.receipts import Receipts
from engine.stream.gateway.sender import Job, Sender
from engine.stream.gateway.stats import GatewayStats
from engine.stream.gateway.webhook_calls import WebhookCalls

log = logging.getLogger("engine.stream.gateway")

STOP_WAIT_S = 10.0  # at shutdown: how long provider calls in flight may take to finish


def wall_ms() -> int:
    return time.time_ns() // 1_000_000


class GatewayRuntime:
    def __init__(
        self,
        settings: Settings,
        gateway: ChannelGateway,
        backend: Any,
        checkpoint: Checkpoint,
        timers: TimerIndex,
        dead_letters: DeadLetters,
        ids: idmap.IdMap,
        concurrency: int,
        *,
        map_ids: bool = True,
        webhooks: WebhookCaller | None = None,
    ) -> None:
        """``map_ids``: keep the id map (off when no provider can call back: only the
        simulated one)."""
        topics = settings.topics
        self.settings = settings
        self.gateway = gateway
        self.checkpoint = checkpoint
        self.dead_letters = dead_letters
        self.ids = ids
        self.map_ids = map_ids
        self.ids_topic = topics.gateway_ids
        self.send = backend.send
        self.stats = GatewayStats()
        self.metrics: Metrics | None = None  # Prometheus (set by the service)
        self.claims = Claims(backend, checkpoint)
        self.store = KafkaClaimStore(self.claims, self._id_records)
        self.live: dict[str, Record] = self.store.live  # records of the sends in the sender
        gateway.claims = self.store
        self.receipts = Receipts(
            topics.channel_receipts,
            topics.inbound,
            backend.send,
            checkpoint,
            self.claims,
            timers,
            self.stats,
        )
        self.sender = Sender(self._run, concurrency)
        caller = webhooks or WebhookCaller(None)  # webhook nodes: webhook_calls.py
        self.webhooks = WebhookCalls(caller, self.claims, checkpoint, self.receipts, concurrency)
        self.owned: set[int] = set()

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
            await self._on_revoke(req, partition)
        elif isinstance(req, Forget):
            await self._on_forget(req.user_id)
        elif isinstance(req, WebhookRequest):
            await self.webhooks.on_request(req, partition, offset)
        else:
            await self._on_send(req, partition, offset)

    async def _on_forget(self, user_id: str) -> None:
        """``journeys forget``: the records of the user's messages (claims of this
        instance's partitions: the user's are here, co-partitioned) and their id-map
        entries, phone number included, as tombstones. A send still queued or in flight
        settles first and is forgotten by the retention sweep."""
        gone = 0
        for key, rec in list(self.claims.records()):
            if rec.get("u") != user_id or rec.get("st", "sent") != "sent":
                continue
            self.checkpoint.put_state(key, int(rec.get("p", 0)), None)
            gone += 1
        mine = [m for m in list(self.ids.messages.values()) if m.user_id == user_id]
        tombstones: list[idmap.KV] = []
        for sent in mine:
            tombstones += idmap.forget_records(sent.message_id, sent.provider_id)
            if self.ids.phones.get(sent.phone) == sent.message_id:
                tombstones.append((f"t:{sent.phone}".encode(), None))
        await self._produce_ids(tombstones, "effect")
        event(log, "user_forgotten", user_id=user_id, records=gone, ids=len(tombstones))

    def _record(self, message_id: str) -> Record | None:
        return self.live.get(message_id) or self.claims.get(message_id.encode())

    async def _on_send(self, req: SendRequest, partition: int, offset: int) -> None:
        mid = req.message_id
        rec = self._record(mid)
        if rec is not None:
            # A replay. The provider is not called again, but the receipts already
            # produced are produced once more: the replayed request was caused by the
            # engine re-processing an input, and a receipt it consumed before it had
            # re-created the message would otherwise be lost (the core ignores
            # receipts for messages it doesn't know, and dedupes repeated ones).
            self.stats.duplicates += 1
            out = rec.get("out", ()) if rec.get("st") == "sent" else ()
            for record in out:
                await self.receipts.produce(record, partition)
            event(
                log,
                "duplicate_send_dropped",
                logging.INFO,
                message_id=mid,
                user_id=req.user_id,
                state=rec.get("st"),
                receipts_again=len(out),
            )
            return
        rec = {
            "p": partition,
            "o": offset,
            "u": req.user_id,
            "ch": req.channel,
            "ts": req.ts,
            "st": "queued",
            "at": wall_ms(),  # wall clock of the first record, for retention
            "req": wire.send_request_wire(req),
        }
        if req.channel == "rcs":
            rec["c"] = req.content
        self.claims.put(mid.encode(), partition, rec)
        self.live[mid] = rec
        self.sender.submit(Job("send", req.user_id, mid, partition, req=req))

    async def _on_revoke(self, rev: Revoke, partition: int) -> None:
        self.stats.revokes += 1
        mid = rev.message_id
        rec = self._record(mid)
        if rec is None or rec.get("rvd"):
            return  # not sent here, or a replayed revoke: done already
        if self.sender.cancel_send(mid):
            # Still waiting for its turn (a send rate): it never went out, and now won't.
            # Durable before the receipt goes out: a restart must not send it after all.
            self.live.pop(mid, None)
            rec.update(st="sent", revoked=True, rvd=True)
            rec.pop("req", None)
            p = int(rec.get("p", partition))
            written = await self.claims.write_now(mid.encode(), p, rec)
            try:
                await written
            except Exception as exc:
                fail_stop("revoke_not_acknowledged", message_id=mid, error=repr(exc))
                raise
            self.stats.revoked += 1
            revoked = Receipt(rev.user_id, rev.ts, "revoked", mid, reason="revoked_before_send")
            await self.receipts.produce(wire.receipt_wire(revoked), p, rec)
            self.claims.put(mid.encode(), p, rec)
            return
        self.sender.submit(Job("revoke", rev.user_id, mid, partition, rev=rev))

    # ------------------------------------------------------------------ the sender's jobs

    async def _run(self, job: Job, waited_s: float) -> None:
        try:
            if job.kind == "revoke":
                assert job.rev is not None
                await self._revoke(job.rev, job.partition)
                return
            assert job.req is not None
            await self._originals(job.req)
            started = time.perf_counter()
            if job.kind == "resume":
                assert job.claim is not None
                outcome = await self.gateway.resume(job.req, job.claim)
            else:
                outcome = await self.gateway.send(job.req, held_s=waited_s)
        except Closing:
            return  # stopping: the send stays queued for the restart
        self._measure(job, outcome, time.perf_counter() - started)
        await self._settle(job, outcome)

    def _measure(self, job: Job, outcome: SendOutcome, seconds: float) -> None:
        """Prometheus figures of one send (engine/stream/common/metrics.py)."""
        m, claim = self.metrics, outcome.claim
        if m is None or claim is None:  # no provider call: refused before, or a duplicate
            return
        m.provider_latency.labels(claim.provider, "send").observe(seconds)
        if outcome.status in ("sent", "not_capable"):
            m.provider_sends.labels(claim.provider, claim.channel).inc()
        else:
            m.provider_errors.labels(claim.provider, outcome.status).inc()
        if outcome.attempts > 1 or job.kind == "resume":
            m.provider_retries.labels(claim.provider).inc(max(outcome.attempts - 1, 1))

    async def _originals(self, req: SendRequest) -> None:
        """An SMS fallback may derive its text from the RCS original: its content comes
        from the table after a restart."""
        source = req.content.get("derive_from") if req.channel == "sms" else None
        if not isinstance(source, str) or source in self.gateway.originals:
            return
        if self.store.closing:
            raise Closing(req.message_id)
        async with self.checkpoint.lock:
            original = self._record(source)
        if original is not None and "c" in original:
            self.gateway.remember_original(source, original["c"])

    async def _settle(self, job: Job, outcome: SendOutcome) -> None:
        req = job.req
        assert req is not None
        mid, p = req.message_id, job.partition
        rec = self.live.pop(mid, None) or self.claims.get(mid.encode()) or {"p": p}
        rec["st"] = "sent"
        rec.pop("req", None)
        if outcome.provider_id:
            rec["pid"] = outcome.provider_id
        if outcome.status == "unknown":
            rec["unknown"] = True
        self._log(job, outcome)
        for r in outcome.receipts:
            await self.receipts.produce(wire.receipt_wire(r), p, rec)
        handed = outcome.handed_over_ms
        if (
            outcome.status == "sent"
            and handed is not None
            and outcome.held_s > 0  # a rate limit (the journey's or the provider's) held it
            and handed - req.ts > HELD_MS
        ):
            # Held back by a rate limit: the provider took it only now. The core restarts
            # an RCS message's fallback window from here.
            self.stats.accepted += 1
            accepted = Receipt(req.user_id, handed, ACCEPTED, mid)
            await self.receipts.produce(wire.receipt_wire(accepted), p, rec)
        if outcome.later:
            await self.receipts.produce_or_keep(mid, p, rec, outcome.later)
        pid = outcome.provider_id
        if self.map_ids and pid and pid != mid and outcome.claim is not None:
            # the provider's own id (Twilio's SID): a callback may name only that
            await self._produce_ids(idmap.provider_records(mid, pid), "effect")
        if p in self.owned:
            self.claims.put(mid.encode(), p, rec)

    def _log(self, job: Job, outcome: SendOutcome) -> None:
        req = job.req
        assert req is not None
        fields: dict[str, Any] = {
            "message_id": req.message_id,
            "user_id": req.user_id,
            "channel": req.channel,
            "to": req.to,
            "node": req.node_id,
            "purpose": req.purpose,
            "status": outcome.status,
            "provider": outcome.claim.provider if outcome.claim else None,
            "attempts": outcome.attempts,
        }
        if job.kind == "resume":
            if outcome.looked_up:
                self.stats.lookups += 1
                event(log, "send_looked_up", found=outcome.status == "sent", **fields)
            else:
                self.stats.retries_after_restart += 1
                event(log, "provider_resend", **fields)
        else:
            self.stats.sends += 1
            self.stats.provider_calls += outcome.attempts
            event(log, "provider_send", **fields)
        if outcome.status == "unknown":
            self.stats.unknown_outcome += 1
            event(log, "send_outcome_unknown", logging.WARNING, **fields)

    async def _revoke(self, rev: Revoke, partition: int) -> None:
        mid = rev.message_id
        key = mid.encode()
        if self.store.closing:
            raise Closing(mid)
        async with self.checkpoint.lock:
            rec = self._record(mid)
            if rec is None or rec.get("rvd"):
                return
            p = int(rec.get("p", partition))
            rec["rvd"] = True
            if self.receipts.cancel_delivery(rev.ts, mid, p, rec):
                # The (simulated) delivery was still to come: the revoke wins.
                self.stats.revoked += 1
                rec["revoked"] = True
                revoked = Receipt(rev.user_id, rev.ts, "revoked", mid)
                await self.receipts.produce(wire.receipt_wire(revoked), p, rec)
                self.claims.put(key, p, rec)
                return
            claim = rec.get("cl")
            self.claims.put(key, p, rec)
            if rec.get("ch") != "rcs" or not isinstance(claim, dict) or claim["pv"] == "simulated":
                return  # never went out, or delivered already: nothing to revoke
            phone = str(claim["to"])
        for r in await self.gateway.revoke(rev, phone):
            await self.receipts.produce(wire.receipt_wire(r), p, rec)
            self.claims.put(key, p, rec)

    # ------------------------------------------------------------------ the id map

    def _sent(self, req: SendRequest, claim: Claim, partition: int, pid: str | None) -> SentMessage:
        return SentMessage(
            req.message_id,
            req.user_id,
            claim.to,
            req.channel,
            claim.provider,
            req.journey_id,
            req.node_id,
            partition,
            pid,
        )

    async def _id_records(self, req: SendRequest, claim: Claim, partition: int) -> list[Any]:
        """The id-map records of a claim (produced with it, awaited before the call)."""
        if not self.map_ids:
            return []
        records = idmap.message_records(self._sent(req, claim, partition, None), claim.at_ms)
        return await self._produce_ids(records, None)

    async def _produce_ids(self, records: list[idmap.KV], checkpointed: str | None) -> list[Any]:
        """Produce id-map records and apply them here at once; with ``checkpointed``, the
        checkpoint awaits them (else the caller does)."""
        futs = []
        for k, v in records:
            self.ids.apply(k, v)
            fut = await self.send(self.ids_topic, k, v, None)
            if checkpointed:
                self.checkpoint.add_effect(f"id map {k!r}", fut)
            futs.append(fut)
        return futs

    # ------------------------------------------------------------------ partitions

    def recovered(self, partitions: set[int]) -> int:
        """After every recovery: this instance's share of the rates, and the sends of
        ``partitions`` a crash (or the previous owner) left unsettled. Returns how many
        were resubmitted."""
        self.owned = set(partitions)
        self.webhooks.recovered(partitions)
        share = min(1.0, max(len(partitions) / max(1, self.settings.partitions), 1e-3))
        self.gateway.set_share(share)
        self.sender.share = share
        unsettled: list[tuple[int, int, bytes, Record]] = []
        for key, rec in self.claims.records():
            p = int(rec.get("p", -1))
            pending = rec.get("st") in ("queued", "claimed") and "req" in rec
            if p in partitions and pending and not self.sender.busy(key.decode()):
                unsettled.append((p, int(rec.get("o", 0)), key, rec))
        for p, _o, key, rec in sorted(unsettled, key=lambda u: (u[0], u[1])):
            mid = key.decode()
            try:
                req = wire.gateway_request(rec["req"])
            except InputError as exc:
                event(
                    log, "unsettled_send_unreadable", logging.ERROR, message_id=mid, error=str(exc)
                )
                continue
            if not isinstance(req, SendRequest):
                continue
            self.live[mid] = rec
            if rec["st"] == "claimed" and isinstance(rec.get("cl"), dict):
                claim = Claim.from_wire(mid, req.channel, rec["cl"])
                self.sender.submit(Job("resume", req.user_id, mid, p, req=req, claim=claim))
            else:
                self.sender.submit(Job("send", req.user_id, mid, p, req=req))
        return len(unsettled)

    def revoked(self, partitions: set[int]) -> None:
        self.owned -= partitions
        self.webhooks.revoked(partitions)
        self.sender.drop_partitions(partitions)
        for mid in [m for m, rec in self.live.items() if rec.get("p") in partitions]:
            if not self.sender.busy(mid):
                self.live.pop(mid, None)

    async def forget(self, older_than_ms: int) -> int:
        """The retention sweep (under the checkpoint lock): settled records and their
        id-map entries."""
        gone = self.claims.sweep(self.owned, older_than_ms)
        for key, rec in gone:
            pid = rec.get("pid")
            tombstones = idmap.forget_records(key.decode(), pid if isinstance(pid, str) else None)
            await self._produce_ids(tombstones, "effect")
        return len(gone)

    async def drain(self) -> None:
        """Step 0 of every checkpoint. Queued sends are durable as records, so only a
        shutdown waits: for the provider calls in flight (not the queue)."""
        if self.checkpoint.closing and not self.sender.stopped:
            self.store.close()
            left = await self.sender.stop(STOP_WAIT_S)
            event(log, "gateway_sender_stopped", in_flight_left=left)
            await self.webhooks.stop(STOP_WAIT_S)
            await self.gateway.close()  # the providers' sessions, once no call needs them

    def gauges(self) -> dict[str, Any]:
        return self.sender.gauges()
