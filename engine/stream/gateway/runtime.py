"""``journeys gateway``: the channel gateway on Kafka (a faust app), with a durable dedupe.

    python -m engine.stream.gateway_service

Consumes ``journey.send-requests`` (sends and revokes), calls a provider, and produces the
receipts to ``journey.channel-receipts`` on the request's partition (so they come back to
the worker that owns the user). The provider is the contract's simulated one by default
(:class:`SimulatedProvider`, over :class:`engine.channels.simulated.ContractProvider`):
delivered ``sim_delivery_ms`` after the send, ``not_capable`` at once for a profile with
``rcs_capable: false``, ``revoked`` for a revoke before delivery.

**A send reaches the provider once.** The gateway keeps a faust table keyed by
``message_id`` (changelog-backed, co-partitioned with the requests). Before it calls the
provider for a message it has not seen, it writes a *claim* for the id and waits until the
changelog has it (claims are batched: up to ``BATCH``, or as many requests as have arrived
when the input queue runs empty; see :meth:`GatewayRuntime.settle`); a request whose id is
claimed or sent is a duplicate and goes no further. So replays (a worker re-processing
after ``kill -9``, a rebalance, the gateway's own restart) never reach the provider again.
The only window is a gateway crash between the claim and the provider's answer: then the
outcome is unknown, and the request is sent again only if the provider itself dedupes on
the id (``idempotent``: RBM rejects a reused ``messageId``; the simulated provider has no
side effects); otherwise it is dropped with a ``send_outcome_unknown`` warning (at most
once).

Receipts a provider reports for later (the simulated delivery, 5 s after the send) are kept
in the message's record and produced when due by a ticker, so a gateway restart loses
none and a revoke can still cancel them. Everything else goes through the same
:class:`~engine.stream.common.checkpoint.Checkpoint` as the engine worker.

Where the real channel gateway plugs in: any object with ``idempotent``,
``async send(req) -> list[Receipt]``, ``async revoke(rev) -> list[Receipt]`` and
``remember_original(message_id, content)`` (the :class:`Provider` protocol);
``engine.channels.gateway.ChannelGateway`` (``handle_send`` / ``handle_revoke``) fits
behind a few-line adapter passed to :func:`run_gateway` / :func:`build_gateway`.
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import sys
import time
from collections import OrderedDict
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Protocol

import orjson

from engine.core.effects import Revoke, SendRequest
from engine.core.inputs import Receipt
from engine.errors import InputError, PermanentProviderError, RetryableProviderError
from engine.stream import codec
from engine.stream.common.checkpoint import fail_stop
from engine.stream.common.logs import event
from engine.stream.worker.runtime import produce_dead_letter
from engine.stream.common.settings import Settings, add_arguments

log = logging.getLogger("engine.stream.gateway")

SENDS_TABLE = "gateway-sends"
ORIGINALS_KEPT = 10_000
RETRIES = 5
BATCH = 500  # claims made durable together before their provider calls


class Provider(Protocol):
    #: True when sending the same message_id twice reaches the user once (the provider
    #: dedupes): then a send whose outcome is unknown after a crash is sent again.
    idempotent: bool

    async def send(self, req: SendRequest) -> list[Receipt]: ...

    async def revoke(self, rev: Revoke) -> list[Receipt]: ...

    def remember_original(self, message_id: str, content: dict[str, Any]) -> None: ...


class SimulatedProvider:
    """The contract's simulated provider behind the :class:`Provider` protocol.

    Deterministic and without side effects, hence ``idempotent``. Its own in-memory
    bookkeeping is trimmed after each call: the gateway's table is the durable record
    (dedupe, scheduled deliveries, revokes)."""

    idempotent = True

    def __init__(self, delivery_ms: int) -> None:
        from engine.channels.simulated import ContractProvider

        self.contract = ContractProvider(delivery_ms=delivery_ms)
        self._originals: OrderedDict[str, dict[str, Any]] = OrderedDict()
        self.contract.originals = self._originals
        self.calls = 0

    def remember_original(self, message_id: str, content: dict[str, Any]) -> None:
        self._originals[message_id] = content
        self._originals.move_to_end(message_id)
        while len(self._originals) > ORIGINALS_KEPT:
            self._originals.popitem(last=False)

    async def send(self, req: SendRequest) -> list[Receipt]:
        self.calls += 1
        receipts = self.contract.send(req)
        self.contract.sent.pop(req.message_id, None)
        self.contract.pending.pop(req.message_id, None)
        if req.channel == "rcs":
            self.remember_original(req.message_id, req.content)
        return receipts

    async def revoke(self, rev: Revoke) -> list[Receipt]:
        # Scheduled deliveries live in the gateway's table; nothing else to cancel here.
        return []


@dataclass
class GatewayStats:
    requests: int = 0
    provider_calls: int = 0
    duplicates: int = 0
    revokes: int = 0
    revoked: int = 0
    receipts: int = 0
    dead_letters: int = 0
    unknown_outcome: int = 0
    batches: int = 0

    def report(self) -> dict[str, Any]:
        return dict(self.__dict__)


def _record(raw: bytes | None) -> dict[str, Any] | None:
    return orjson.loads(raw) if raw is not None else None


class GatewayRuntime:
    """Per-request logic of the gateway (faust-free; see :func:`build_gateway`)."""

    def __init__(
        self, settings: Settings, provider: Provider, backend: Any, checkpoint: Any, timers: Any
    ) -> None:
        self.settings = settings
        self.topics = settings.topics
        self.provider = provider
        self.backend = backend
        self.checkpoint = checkpoint
        self.timers = timers  # TimerIndex keyed by message_id
        self.stats = GatewayStats()
        # claimed requests waiting for settle(): (request, partition, record, claim future)
        self.pending: list[tuple[SendRequest, int, dict[str, Any], Any]] = []
        self.pending_ids: set[str] = set()

    # ------------------------------------------------------------------ state

    def _get(self, key: bytes) -> dict[str, Any] | None:
        buffered = self.checkpoint.get_dirty(key)
        return _record(buffered[1] if buffered is not None else self.backend.get(key))

    def _put(self, key: bytes, partition: int, rec: dict[str, Any]) -> None:
        self.checkpoint.put_state(key, partition, orjson.dumps(rec))

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
            req = codec.decode_gateway_request(value)
        except InputError as exc:
            await self._dead_letter(
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
        rec = self._get(key)
        if rec is not None and rec.get("st") == "sent":
            # A replay. The provider is not called again, but the receipts already
            # produced are produced once more: the replayed request was caused by the
            # engine re-processing an input, and a receipt it consumed before it had
            # re-created the message would otherwise be lost (the core ignores
            # receipts for messages it doesn't know, and dedupes repeated ones).
            self.stats.duplicates += 1
            for wire in rec.get("out", ()):
                await self._produce_receipt(codec.receipt_from_wire(wire), partition)
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
            self._put(key, partition, rec)
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
        value = orjson.dumps(rec)
        self.checkpoint.dirty.pop(key, None)
        self.backend.store_put(partition, key, value)
        fut = await self.backend.send_changelog(partition, key, value)
        self.pending.append((req, partition, rec, fut))
        self.pending_ids.add(mid)

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

    async def _deliver(self, req: SendRequest, partition: int, rec: dict[str, Any]) -> None:
        mid = req.message_id
        key = mid.encode()
        derive_from = req.content.get("derive_from") if req.channel == "sms" else None
        if isinstance(derive_from, str):
            original = self._get(derive_from.encode())
            if original is not None and "c" in original:
                self.provider.remember_original(derive_from, original["c"])
        receipts = await self._call_provider(req)
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
        now = int(time.time() * 1000)
        sched: list[list[Any]] = []
        for r in receipts:
            if r.ts > now:
                sched.append([r.ts, codec.receipt_wire(r)])
            else:
                await self._produce_receipt(r, partition, rec)
        if sched:
            sched.sort(key=lambda s: s[0])
            rec["sched"] = sched
            self.timers.schedule(mid, partition, sched[0][0], "")
        self._put(key, partition, rec)

    async def _call_provider(self, req: SendRequest) -> list[Receipt]:
        delay = 0.2
        for attempt in range(RETRIES):
            try:
                return await self.provider.send(req)
            except RetryableProviderError as exc:
                event(
                    log,
                    "provider_retry",
                    logging.WARNING,
                    message_id=req.message_id,
                    attempt=attempt + 1,
                    error=str(exc),
                )
                await asyncio.sleep(delay)
                delay = min(delay * 2, 5.0)
            except PermanentProviderError as exc:
                return [
                    Receipt(
                        req.user_id, req.ts, "failed", req.message_id, reason=f"provider: {exc}"
                    )
                ]
        return [
            Receipt(req.user_id, req.ts, "failed", req.message_id, reason="provider_unavailable")
        ]

    async def _revoke(self, rev: Revoke, partition: int) -> None:
        await self.settle()  # the message it revokes may be in the batch
        self.stats.revokes += 1
        key = rev.message_id.encode()
        rec = self._get(key)
        if rec is not None and rec.get("sched"):
            sched = rec["sched"]
            delivery = next((s for s in sched if s[1].get("status") in ("delivered", "read")), None)
            if delivery is not None and delivery[0] > rev.ts:
                rec["sched"] = [s for s in sched if s is not delivery]
                rec["revoked"] = True
                if not rec["sched"]:
                    rec.pop("sched")
                    self.timers.schedule(rev.message_id, partition, None, "")
                else:
                    self.timers.schedule(rev.message_id, partition, rec["sched"][0][0], "")
                self.stats.revoked += 1
                await self._produce_receipt(
                    Receipt(rev.user_id, rev.ts, "revoked", rev.message_id), partition, rec
                )
                self._put(key, rec.get("p", partition), rec)
                return
        if rec is not None and rec.get("revoked"):
            return  # a replayed revoke: done already
        for r in await self.provider.revoke(rev):
            await self._produce_receipt(r, partition, rec)
        if rec is not None:
            self._put(key, rec.get("p", partition), rec)

    async def fire_due(self, now_ms: int) -> None:
        """Produce the scheduled receipts that are due (called by the ticker, under the
        checkpoint lock)."""
        for due in list(self.timers.pop_due(now_ms)):
            key = due.user_id.encode()  # the index is keyed by message_id
            rec = self._get(key)
            if rec is None or not rec.get("sched"):
                continue
            keep = []
            for at, wire in rec["sched"]:
                if at <= now_ms:
                    await self._produce_receipt(codec.receipt_from_wire(wire), due.partition, rec)
                else:
                    keep.append([at, wire])
            if keep:
                rec["sched"] = keep
                self.timers.schedule(due.user_id, due.partition, keep[0][0], "")
            else:
                rec.pop("sched", None)
            self._put(key, due.partition, rec)

    async def _produce_receipt(
        self, r: Receipt, partition: int, rec: dict[str, Any] | None = None
    ) -> None:
        """Produce a receipt; with ``rec``, remember it there (for replays)."""
        self.stats.receipts += 1
        if rec is not None:
            rec.setdefault("out", []).append(codec.receipt_wire(r))
        fut = await self.backend.send(
            self.topics.channel_receipts,
            r.user_id.encode(),
            codec.dumps(codec.receipt_wire(r)),
            partition,
        )
        self.checkpoint.add_effect(f"receipt {r.message_id} {r.status}", fut)

    async def _dead_letter(
        self,
        reason: str,
        detail: str,
        topic: str,
        partition: int,
        offset: int,
        key: bytes | None,
        value: bytes | None,
        timestamp_ms: int | None,
    ) -> None:
        self.stats.dead_letters += 1
        await produce_dead_letter(
            self.backend.send,
            self.checkpoint,
            self.topics.dead_letters,
            "gateway",
            reason,
            detail,
            topic,
            partition,
            offset,
            key,
            value,
            timestamp_ms,
        )

    def sweep(self, partitions: set[int], older_than_ms: int, limit: int = 10_000) -> int:
        """Forget the records of messages claimed before ``older_than_ms`` (wall clock)
        with nothing left to deliver: tombstones, through the checkpoint. Safe once the
        send-requests topic can no longer hold a request for them (its retention).
        Called under the checkpoint lock; returns how many were forgotten."""
        n = 0
        for k, raw in list(self.backend.items()):
            if raw is None or n >= limit:
                continue
            try:
                rec = orjson.loads(raw)
            except Exception:
                continue
            p = int(rec.get("p", -1))
            if p in partitions and not rec.get("sched") and rec.get("at", 0) < older_than_ms:
                key = k if isinstance(k, bytes) else str(k).encode()
                if self.checkpoint.get_dirty(key) is None:
                    self.checkpoint.put_state(key, p, None)
                    n += 1
        return n

    def rebuild(self, partitions: set[int]) -> int:
        def entries() -> Any:
            for k, raw in list(self.backend.items()):
                if raw is None:
                    continue
                try:
                    rec = orjson.loads(raw)
                except Exception:
                    continue
                if rec.get("sched"):
                    mid = k.decode() if isinstance(k, bytes) else str(k)
                    yield mid, int(rec.get("p", -1)), int(rec["sched"][0][0]), ""

        return int(self.timers.rebuild(partitions, entries()))


def build_gateway(settings: Settings, provider: Provider | None = None) -> Any:
    """The faust app of the gateway, wired up (not started)."""
    from engine.stream.common.faust_glue import (
        FaustBackend,
        InputFeed,
        input_channel,
        make_app,
        new_checkpoint,
        start_recovery_watchdog,
        state_table,
    )
    from engine.stream.common.timers import TimerIndex

    topics = settings.topics
    app: Any = make_app(settings, settings.gateway_app_id)
    table = state_table(app, SENDS_TABLE, settings)
    backend = FaustBackend(app, table)
    checkpoint = new_checkpoint(backend)
    timers = TimerIndex()
    runtime: GatewayRuntime = GatewayRuntime(
        settings,
        provider or SimulatedProvider(settings.sim_delivery_ms),
        backend,
        checkpoint,
        timers,
    )
    checkpoint.drain = runtime.settle
    channel = input_channel(app, topics.send_requests)
    ready = {"logged": False}

    feed = InputFeed(
        settings,
        settings.gateway_app_id,
        {topics.send_requests},
        checkpoint,
        runtime.handle,
        backend.assigned,
    )

    async def process(stream: Any) -> None:
        async for ev in stream.events():
            await feed.feed(ev.message)
            # Provider calls wait for a batch of claims, but never for more requests than
            # are already here: latency stays one claim round trip when traffic is light.
            if runtime.pending and (len(runtime.pending) >= BATCH or stream.channel.empty()):
                async with checkpoint.lock:
                    await runtime.settle()
            if checkpoint.due(settings.commit_every):
                await checkpoint.commit("count")

    app.agent(channel, name="journeys-gateway", concurrency=1)(process)

    async def periodic_commit() -> None:
        await checkpoint.commit("interval")

    app.timer(settings.commit_interval_ms / 1000, name="gateway-checkpoint")(periodic_commit)

    async def ticker() -> None:
        now = int(time.time() * 1000)
        nxt = timers.next_due()
        if nxt is None or nxt > now:
            return
        async with checkpoint.lock:
            await runtime.fire_due(now)

    app.timer(settings.tick_ms / 1000, name="gateway-receipt-ticker")(ticker)

    async def sweep() -> None:
        cutoff = int(time.time() * 1000) - int(settings.dedupe_retention_h * 3_600_000)
        async with checkpoint.lock:
            n = runtime.sweep(backend.active_partitions(topics.send_requests), cutoff)
        if n:
            event(log, "dedupe_records_expired", records=n)

    if settings.dedupe_retention_h > 0:
        app.timer(600.0, name="gateway-dedupe-sweep")(sweep)

    async def on_recovered() -> None:
        try:
            await feed.on_assigned(app)
        except Exception as exc:  # without positions, inputs could be skipped
            fail_stop("positions_unavailable", error=repr(exc))
        partitions = backend.active_partitions(topics.send_requests)
        n = runtime.rebuild(partitions)
        event(log, "scheduled_receipts_rebuilt", partitions=sorted(partitions), pending=n)
        if not ready["logged"]:
            ready["logged"] = True
            event(
                log, "gateway_ready", app_id=settings.gateway_app_id, partitions=sorted(partitions)
            )

    table.on_recover(on_recovered)

    async def on_revoked(sender: Any, revoked: Any, **kwargs: Any) -> None:
        start_recovery_watchdog(app, settings.recovery_stall_s)
        await checkpoint.commit("revoke")
        feed.on_revoked(revoked)
        gone = {tp.partition for tp in revoked if tp.topic == topics.send_requests}
        timers.drop_partitions(gone)

    app.on_partitions_revoked.connect(on_revoked)

    async def on_shutdown(sender: Any, **kwargs: Any) -> None:
        checkpoint.closing = True
        await checkpoint.commit("shutdown")
        await feed.reader.close()
        event(log, "gateway_stopped", **runtime.stats.report())

    app.on_before_shutdown.connect(on_shutdown)

    if settings.stats_interval_s > 0:

        async def stats() -> None:
            event(log, "gateway_stats", scheduled=len(timers), **runtime.stats.report())

        app.timer(settings.stats_interval_s, name="gateway-stats")(stats)

    app.journeys_runtime = runtime
    return app


def run_gateway(settings: Settings, provider: Provider | None = None) -> int:
    """Run the gateway until SIGINT/SIGTERM (simulated provider unless ``provider``).
    Returns the process exit code."""
    from engine.stream.common.faust_glue import run_app
    from engine.stream.common.logs import setup

    setup(settings.log_level, settings.gateway_app_id)
    event(log, "gateway_starting", **settings.describe())
    return run_app(settings, lambda: build_gateway(settings, provider))


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m engine.stream.gateway_service",
        description="channel gateway on Kafka (simulated provider)",
    )
    add_arguments(parser)
    return run_gateway(Settings.from_env_and_args(parser.parse_args(argv)))


if __name__ == "__main__":
    sys.exit(main())
