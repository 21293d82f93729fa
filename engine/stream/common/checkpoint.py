"""The commit boundary: one function, :meth:`Checkpoint.commit`, that makes a batch of
processed inputs durable, in a fixed order.

While inputs are processed, nothing is committed: their effects are produced (not awaited),
the new user states sit in a write-back buffer (``dirty``), and the next offset of each
input partition is noted. :meth:`Checkpoint.commit` then runs, with input processing
paused, these steps in this order:

0. **drain** -- finish work in progress: the gateway calls the provider for the requests
   it has claimed (so no request's offset is committed before its provider call); then
   records still waiting in an outbox (:mod:`engine.stream.common.outbox`) go to the
   producer.
1. **effects** -- wait until the broker acknowledged every produced effect (send requests,
   outcomes, dead letters, receipts). A failure stops the process (fail-stop, see below).
2. **state** -- write the buffered user states to the table store and to its changelog
   topic, and wait until the broker acknowledged every changelog record.
3. **offsets** -- commit the input offsets to the consumer group.
4. **forget** -- clear the buffers; record the checkpoint's size and duration.

Why this order. If the process dies anywhere before step 3, the inputs since the previous
checkpoint are consumed again and re-processed against the state of the previous
checkpoint (step 2 didn't happen) or against the new one (it did): every effect they cause
carries the same deterministic id as before (the core derives ids from stable inputs),
so the gateway's dedupe drops repeated sends, consumers dedupe outcomes on
``outcome_id``, the core ignores repeated events (``event_id``) and stale wake-ups. The
reverse order would lose things: a state written before its effects are acknowledged
says "sent" for a message that may never reach Kafka; offsets committed before the state
is durable skip inputs whose result was never stored.

Fail-stop: an effect or changelog write that the producer reports as failed (after its
own retries) means Kafka is not taking writes; the process exits at once (exit code 75)
*without committing*, and its restart (or another worker after the rebalance) resumes
from the last checkpoint. That is the same path as ``kill -9``, which is tested.

Offsets: the input topics are subscribed with faust's acks *disabled*, so faust never
commits their offsets itself (its ack bookkeeping is where faust-streaming #606 lives:
it can commit an offset past a message still being processed). The runtime tracks
``offset + 1`` of the last processed message per partition, strictly in order, and
commits exactly that, here.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any, Protocol

from engine.stream.common.logs import event

log = logging.getLogger("engine.stream.checkpoint")

EXIT_FAIL_STOP = 75


#: Produce one record: (topic, key, value, partition) -> the delivery future, which the
#: checkpoint awaits (step 1) before it commits.
Send = Callable[[str, bytes | None, bytes, int | None], Awaitable[Awaitable[Any]]]


class Backend(Protocol):
    """What a checkpoint needs from the Kafka side (faust in production)."""

    def store_put(self, partition: int, key: bytes, value: bytes | None) -> None: ...

    async def send_changelog(
        self, partition: int, key: bytes, value: bytes | None
    ) -> Awaitable[Any]: ...

    async def commit_offsets(self, offsets: dict[tuple[str, int], int]) -> bool: ...

    def assigned(self) -> set[tuple[str, int]]: ...


def fail_stop(reason: str, code: int = EXIT_FAIL_STOP, **fields: Any) -> None:
    """Exit now, without committing: a restart resumes from the last checkpoint."""
    event(log, "fail_stop", logging.CRITICAL, reason=reason, exit_code=code, **fields)
    for h in logging.getLogger().handlers:
        with contextlib.suppress(Exception):  # exiting anyway
            h.flush()
    os._exit(code)


@dataclass
class CheckpointStats:
    commits: int = 0
    inputs: int = 0
    effects: int = 0
    states: int = 0
    last_ms: float = 0.0
    max_ms: float = 0.0


@dataclass
class Checkpoint:
    backend: Backend
    lock: asyncio.Lock = field(default_factory=asyncio.Lock)
    # Told every commit's duration in seconds (the journeys_checkpoint_duration histogram).
    observe: Callable[[float], None] | None = None
    # step 1: produce futures of effects, with a label for the error message
    effects: list[tuple[str, Awaitable[Any]]] = field(default_factory=list)
    # step 2: user key -> (partition, value) not yet written to store + changelog
    dirty: dict[bytes, tuple[int, bytes | None]] = field(default_factory=dict)
    # step 3: (topic, partition) -> next offset to consume
    offsets: dict[tuple[str, int], int] = field(default_factory=dict)
    inputs: int = 0
    stats: CheckpointStats = field(default_factory=CheckpointStats)
    on_fail: Callable[..., None] = fail_stop
    # step 0: finish work in progress (the gateway's batched provider calls)
    drain: Callable[[], Awaitable[None]] | None = None
    # step 0, then: produce what waits in an outbox (engine/stream/common/outbox.py); also
    # called by the input feed at the end of every input batch
    flushers: list[Callable[[], Awaitable[None]]] = field(default_factory=list)
    closing: bool = False  # set for the shutdown commit

    # ------------------------------------------------------------------ recording

    def add_effect(self, label: str, fut: Awaitable[Any]) -> None:
        self.effects.append((label, fut))

    def put_state(self, key: bytes, partition: int, value: bytes | None) -> None:
        self.dirty[key] = (partition, value)

    def get_dirty(self, key: bytes) -> tuple[int, bytes | None] | None:
        return self.dirty.get(key)

    def processed(self, topic: str, partition: int, offset: int) -> None:
        self.offsets[(topic, partition)] = offset + 1
        self.inputs += 1

    def due(self, every: int) -> bool:
        return self.inputs >= every

    async def flush(self) -> None:
        """Hand every record waiting in an outbox to the producer (their delivery futures
        join ``effects``)."""
        for flush in self.flushers:
            await flush()

    # ------------------------------------------------------------------ the boundary

    async def commit(self, why: str) -> None:
        """THE commit boundary. Steps, in order (see the module docstring):

        0. pause input processing (take the processing lock), and finish work in
           progress (``drain``: the gateway calls the provider for the requests it has
           claimed; their effects join step 1);
        1. effects: await every produced effect; failure -> fail-stop;
        2. state: store + changelog for every buffered user state; await the changelog
           records; failure -> fail-stop;
        3. offsets: commit the next offset of every processed input partition that is
           still assigned (a commit refused because of a rebalance is harmless: the
           inputs are re-processed idempotently by the partition's next owner);
        4. forget: clear the buffers, record stats.
        """
        async with self.lock:
            await self._commit_locked(why)

    async def commit_then(self, why: str, then: Callable[[], object]) -> None:
        """Commit, then call ``then`` before any further input is processed (a new split
        decision: engine/stream/worker/control.py)."""
        async with self.lock:
            await self._commit_locked(why)
            then()

    async def _commit_locked(self, why: str) -> None:
        # 0. drain; and what waits in an outbox goes to the producer
        if self.drain is not None:
            await self.drain()
        await self.flush()
        if not (self.effects or self.dirty or self.offsets):
            return
        t0 = time.perf_counter()
        effects, self.effects = self.effects, []
        dirty, self.dirty = self.dirty, {}
        offsets, self.offsets = self.offsets, {}
        inputs, self.inputs = self.inputs, 0

        # 1. effects
        await self._await_all(effects, "effect")

        # 2. state
        changelog: list[tuple[str, Awaitable[Any]]] = []
        many = getattr(self.backend, "send_changelog_batches", None)
        if many is not None:  # one record batch per partition (faust_glue.FaustBackend)
            changelog = await many(dirty)
        else:
            for key, (partition, value) in dirty.items():
                fut = await self.backend.send_changelog(partition, key, value)
                changelog.append((f"changelog p{partition}", fut))
        for key, (partition, value) in dirty.items():
            try:
                self.backend.store_put(partition, key, value)
            except Exception as exc:
                if not self.closing:
                    self.on_fail("store_write_failed", error=repr(exc))
                    raise
                # faust closes the stores before the shutdown signal; the changelog has it
        await self._await_all(changelog, "state")

        # 3. offsets
        assigned = self.backend.assigned()
        mine = {tp: off for tp, off in offsets.items() if tp in assigned}
        ok = True
        if mine:
            ok = await self.backend.commit_offsets(mine)

        # 4. forget
        ms = (time.perf_counter() - t0) * 1000
        st = self.stats
        st.commits += 1
        st.inputs += inputs
        st.effects += len(effects)
        st.states += len(dirty)
        st.last_ms = ms
        st.max_ms = max(st.max_ms, ms)
        if self.observe is not None:
            self.observe(ms / 1000)
        event(
            log,
            "checkpoint",
            logging.DEBUG,
            why=why,
            inputs=inputs,
            effects=len(effects),
            states=len(dirty),
            offsets={f"{t}:{p}": o for (t, p), o in sorted(mine.items())},
            skipped_offsets=len(offsets) - len(mine),
            committed=ok,
            ms=round(ms, 1),
        )

    async def _await_all(self, futs: list[tuple[str, Awaitable[Any]]], what: str) -> None:
        if not futs:
            return
        results = await asyncio.gather(*(f for _l, f in futs), return_exceptions=True)
        for (label, _f), res in zip(futs, results, strict=True):
            if isinstance(res, BaseException):
                self.on_fail(f"{what}_not_acknowledged", target=label, error=repr(res))
                raise RuntimeError(f"{what} not acknowledged: {label}: {res!r}")
