"""Webhook calls on Kafka: ``{"type": "webhook"}`` requests from ``journey.send-requests``,
made by the :class:`~engine.channels.webhook_call.WebhookCaller`, answered with a
``webhook_result`` on ``journey.channel-receipts`` (keyed by user, on the request's
partition).

The crash protocol is the sends' (:mod:`engine.stream.gateway.claims`), in the same claim
table, keyed by the call's ``action_id``:

1. a consumed request is recorded ``queued`` (durable before its offset is committed); an
   id already recorded is a replay: no call, its result is produced again;
2. right before the first HTTP attempt, the record becomes ``claimed``, written to the
   changelog and acknowledged by the broker;
3. the result settles it (``sent``, the result kept in ``out``).

After a crash (every recovery), ``queued`` and ``claimed`` calls of the owned partitions
are made again with the **same** ``Idempotency-Key``: a receiver that dedupes on it sees
one effect per call, though it may get the request more than once (the one case: a crash,
a stop or a rebalance between the claim and the settled record). A result produced twice
is harmless: the engine acts on the first and ignores the rest.
"""

from __future__ import annotations

import asyncio
import logging
import os
import time
from collections import Counter
from collections.abc import Mapping
from typing import Any

from engine.channels.webhook_call import SECRET_FILE_VAR, SECRET_VAR, WebhookCaller
from engine.core import wire
from engine.core.effects import WebhookRequest
from engine.errors import ConfigError, InputError
from engine.stream.common.checkpoint import Checkpoint, fail_stop
from engine.stream.common.logs import event
from engine.stream.common.settings import Settings
from engine.stream.gateway.claims import Claims, Record
from engine.stream.gateway.receipts import Receipts

log = logging.getLogger("engine.stream.gateway")

KIND = "webhook"  # the record's "k": a webhook call, not a message


def wall_ms() -> int:
    return time.time_ns() // 1_000_000


def journeys_with_webhooks(settings: Settings) -> list[str]:
    """Ids of the journeys (``--journeys`` / ``JOURNEYS_DIR``, when given) that have a
    webhook node."""
    if not settings.journeys:
        return []
    from engine.lint.linter import load_journeys

    try:
        found = load_journeys([settings.journeys_path()])
    except Exception as exc:  # the worker reports broken journeys; the gateway needs none
        event(log, "gateway_journeys_unreadable", logging.WARNING, error=str(exc)[:300])
        return []
    return sorted({j.id for j in found if any(n.type == "webhook" for n in j.nodes.values())})


def build_caller(settings: Settings, env: Mapping[str, str] | None = None) -> WebhookCaller:
    """The gateway's caller, from the environment. Refuses to start (ConfigError, naming
    the variable) when a journey the gateway was pointed at has a webhook node and there is
    no signing secret."""
    caller = WebhookCaller.from_env(os.environ if env is None else env)
    if not caller.has_secret:
        using = journeys_with_webhooks(settings)
        if using:
            raise ConfigError(
                f"{SECRET_VAR} (or {SECRET_FILE_VAR}) is not set, and journeys with webhook "
                f"nodes are loaded ({', '.join(using)}): set it to the secret that signs "
                "webhook calls"
            )
    return caller


class WebhookCalls:
    def __init__(
        self,
        caller: WebhookCaller,
        claims: Claims,
        checkpoint: Checkpoint,
        receipts: Receipts,
        concurrency: int,
    ) -> None:
        self.caller = caller
        self.claims = claims
        self.checkpoint = checkpoint
        self.receipts = receipts
        self.slots = asyncio.Semaphore(max(1, concurrency))
        self.tasks: dict[str, asyncio.Task[None]] = {}
        self.live: dict[str, Record] = {}  # records of the calls in flight
        self.owned: set[int] = set()
        self.closing = False
        self.counts: Counter[str] = Counter()

    # ------------------------------------------------------------------ requests

    async def on_request(self, req: WebhookRequest, partition: int, offset: int) -> None:
        """A consumed request (under the checkpoint lock)."""
        aid = req.action_id
        rec = self.live.get(aid) or self.claims.get(aid.encode())
        if rec is not None:
            self.counts["duplicates"] += 1
            if rec.get("st") == "sent":
                for w in rec.get("out", ()):
                    await self.receipts.produce(w, partition)
            return
        rec = {
            "k": KIND,
            "p": partition,
            "o": offset,
            "u": req.user_id,
            "ts": req.ts,
            "st": "queued",
            "at": wall_ms(),
            "req": wire.webhook_request_wire(req),
        }
        self.claims.put(aid.encode(), partition, rec)
        self.live[aid] = rec
        self._start(req, partition)

    def _start(self, req: WebhookRequest, partition: int) -> None:
        aid = req.action_id
        if aid in self.tasks or self.closing:
            return
        task = asyncio.ensure_future(self._run(req, partition))
        self.tasks[aid] = task

        def done(t: asyncio.Task[None]) -> None:
            if self.tasks.get(aid) is t:  # not a newer task for the same call
                del self.tasks[aid]

        task.add_done_callback(done)

    async def _run(self, req: WebhookRequest, partition: int) -> None:
        aid, key = req.action_id, req.action_id.encode()
        async with self.slots:
            async with self.checkpoint.lock:
                if self.closing or partition not in self.owned:
                    return  # stays queued / claimed: whoever recovers it makes the call
                rec = self.live.get(aid) or self.claims.get(key) or {"p": partition}
                if rec.get("st") == "sent":
                    return
                tries = int(rec.get("cl", {}).get("n", 0)) if isinstance(rec.get("cl"), dict) else 0
                if tries:
                    self.counts["calls_after_restart"] += 1
                rec.update(st="claimed", cl={"at": wall_ms(), "n": tries + 1})
                written = await self.claims.write_now(key, partition, rec)
            try:
                await written  # the claim is durable before the call
            except Exception as exc:
                fail_stop("webhook_claim_not_acknowledged", action_id=aid, error=repr(exc))
                raise
            called = await self.caller.call(req)
            self.counts["calls"] += 1
            self.counts["http_attempts"] += called.attempts
            self.counts[called.result.status] += 1
            # Settled like a send (runtime._settle): through the checkpoint's buffer, not
            # under its lock (a shutdown's drain holds it while calls in flight finish).
            if partition not in self.owned:
                return  # no longer ours: the new owner calls again (same key)
            rec["st"] = "sent"
            rec.pop("req", None)
            result = wire.webhook_result_wire(called.result)
            await self.receipts.produce(result, partition, rec)
            self.claims.put(key, partition, rec)
            self.live.pop(aid, None)
        event(
            log,
            "webhook_called",
            action_id=aid,
            user_id=req.user_id,
            node=req.node_id,
            status=called.result.status,
            code=called.result.code,
            reason=called.result.reason,
            attempts=called.attempts,
        )

    # ------------------------------------------------------------------ partitions

    def recovered(self, partitions: set[int]) -> int:
        """After every recovery: the calls of ``partitions`` a crash (or the previous
        owner) left unsettled are made again, in offset order. Returns how many."""
        self.owned = set(partitions)
        pending: list[tuple[int, int, Record]] = []
        # The store, and the calls recorded since the last checkpoint (still buffered) whose
        # task gave up (their partition was not ours yet, or was revoked meanwhile).
        found = {key.decode(): rec for key, rec in self.claims.records()}
        found.update(self.live)
        for aid, rec in found.items():
            if rec.get("k") != KIND or rec.get("st") not in ("queued", "claimed"):
                continue
            p = int(rec.get("p", -1))
            if p in partitions and "req" in rec and aid not in self.tasks:
                pending.append((p, int(rec.get("o", 0)), rec))
        for p, _o, rec in sorted(pending, key=lambda x: (x[0], x[1])):
            try:
                req = wire.webhook_request(rec["req"])
            except InputError as exc:
                event(log, "unsettled_webhook_unreadable", logging.ERROR, error=str(exc))
                continue
            self.live[req.action_id] = rec
            self._start(req, p)
        self.counts["resumed"] += len(pending)
        return len(pending)

    def revoked(self, partitions: set[int]) -> None:
        self.owned -= partitions
        for aid, rec in list(self.live.items()):
            if rec.get("p") in partitions:
                task = self.tasks.pop(aid, None)
                if task is not None:
                    task.cancel()
                self.live.pop(aid, None)

    async def stop(self, timeout_s: float) -> int:
        """At shutdown: no new call; the calls in flight get ``timeout_s`` to finish (the
        others stay claimed, made again at the restart). Returns how many were left."""
        self.closing = True
        running = list(self.tasks.values())
        if running:
            _done, left = await asyncio.wait(running, timeout=timeout_s)
            for task in left:
                task.cancel()
        else:
            left = set()
        await self.caller.close()
        return len(left)

    def report(self) -> dict[str, Any]:
        return {**self.counts, "in_flight": len(self.tasks)}
