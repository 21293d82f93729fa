"""Many sends in flight at once, each user's in order, each journey within its send rate.

The gateway consumes requests one at a time (under the checkpoint's lock) and hands each
send or revoke to the :class:`Sender` as a :class:`Job`; the provider calls then run
concurrently, outside the lock:

* **per-user order**: a user's jobs run one after the other, in the order they came (a
  revoke never overtakes the send it revokes);
* **per-journey send rate** (``SendRequest.send_rate``, from the journey's
  ``settings.send_rate``): a send waits for a place in its journey's window; the sends
  over the rate wait in the order they came (:class:`~engine.channels.ratelimit.WindowLimit`).
  Each instance takes its :attr:`Sender.share` of it (its fraction of the partitions);
* **bounded concurrency**: at most ``concurrency`` jobs in a provider call at once
  (``JOURNEYS_GATEWAY_CONCURRENCY``); a job waiting for its journey's rate holds no slot.

It is faust-free and knows nothing of Kafka: the runtime gives it ``run(job, waited_s)``.
A job's send is durable as a ``queued`` record in the claim table before it is submitted,
so jobs dropped here (partitions revoked, shutdown) are sent by whoever recovers them.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections import deque
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Literal

from engine.channels.gateway import Claim
from engine.channels.ratelimit import Monotonic, Sleep, WindowLimit
from engine.core.effects import Revoke, SendRequest
from engine.stream.common.logs import event

log = logging.getLogger("engine.stream.gateway")


@dataclass(eq=False)
class Job:
    kind: Literal["send", "resume", "revoke"]
    user_id: str
    message_id: str
    partition: int
    req: SendRequest | None = None
    rev: Revoke | None = None
    claim: Claim | None = None  # resume: the claim made before the crash
    started: bool = False
    cancelled: bool = False
    queued_at: float = field(default_factory=time.monotonic)


def send_rate(req: SendRequest) -> tuple[int, float] | None:
    """``(max, per_s)`` of the request's journey send rate, if it has one."""
    raw = req.send_rate  # the journey's settings.send_rate, copied by the core
    if raw is None:
        return None
    max_calls, per_ms = raw.get("max"), raw.get("per_ms")
    if isinstance(max_calls, int) and isinstance(per_ms, int) and max_calls >= 1 and per_ms > 0:
        return max_calls, per_ms / 1000
    return None


Run = Callable[[Job, float], Awaitable[None]]


class Sender:
    def __init__(
        self,
        run: Run,
        concurrency: int,
        *,
        monotonic: Monotonic = time.monotonic,
        sleep: Sleep = asyncio.sleep,
    ) -> None:
        self.run = run
        self.slots = asyncio.Semaphore(concurrency)
        self.concurrency = concurrency
        self._monotonic = monotonic
        self._sleep = sleep
        self.queues: dict[str, deque[Job]] = {}  # user_id -> jobs not started yet
        self.tasks: dict[str, asyncio.Task[None]] = {}  # user_id -> the task running them
        self.pending: dict[str, Job] = {}  # message_id -> its send, from submit to its end
        self.gates: dict[tuple[str, int, float], WindowLimit] = {}
        self.running = 0
        self.stopped = False
        self.share = 1.0  # of the send-requests partitions this instance owns

    # -- in

    def submit(self, job: Job) -> None:
        if self.stopped:
            return
        if job.kind != "revoke":
            self.pending[job.message_id] = job
        self.queues.setdefault(job.user_id, deque()).append(job)
        if job.user_id not in self.tasks:
            task = asyncio.ensure_future(self._user(job.user_id))
            self.tasks[job.user_id] = task

    def cancel_send(self, message_id: str) -> bool:
        """Cancel a send that has not started (a revoke came first). True if cancelled."""
        job = self.pending.get(message_id)
        if job is None or job.started:
            return False
        job.cancelled = True
        self.pending.pop(message_id, None)
        return True

    def drop_partitions(self, partitions: set[int]) -> int:
        """Forget the jobs of revoked partitions that have not started."""
        n = 0
        for queue in self.queues.values():
            for job in queue:
                if job.partition in partitions and not job.cancelled:
                    job.cancelled = True
                    self.pending.pop(job.message_id, None)
                    n += 1
        return n

    def busy(self, message_id: str) -> bool:
        return message_id in self.pending

    # -- running

    async def _user(self, user_id: str) -> None:
        queue = self.queues[user_id]
        try:
            while queue and not self.stopped:
                job = queue.popleft()
                if job.cancelled:
                    continue
                try:
                    await self._one(job)
                except asyncio.CancelledError:
                    raise
                except Exception as exc:  # one job's bug must not stop the user's others
                    event(
                        log,
                        "gateway_job_failed",
                        logging.ERROR,
                        kind=job.kind,
                        message_id=job.message_id,
                        error=repr(exc),
                    )
                finally:
                    if job.kind != "revoke" and self.pending.get(job.message_id) is job:
                        del self.pending[job.message_id]
        finally:
            self.tasks.pop(user_id, None)
            if not queue:
                self.queues.pop(user_id, None)
            elif not self.stopped:  # submitted after the loop ended
                self.tasks[user_id] = asyncio.ensure_future(self._user(user_id))

    async def _one(self, job: Job) -> None:
        waited = 0.0
        rate = send_rate(job.req) if job.kind == "send" and job.req is not None else None
        if rate is not None and job.req is not None:
            waited = await self._gate(job.req.journey_id or "", *rate).acquire()
        async with self.slots:
            if job.cancelled or self.stopped:
                return
            job.started = True
            self.running += 1
            try:
                await self.run(job, waited)
            finally:
                self.running -= 1

    def _gate(self, journey: str, max_calls: int, per_s: float) -> WindowLimit:
        # The rate is the journey's, for the whole deployment: this instance's share of it
        # is as many sends over a longer window.
        per_s = per_s / self.share
        key = (journey, max_calls, per_s)
        gate = self.gates.get(key)
        if gate is None:
            if len(self.gates) > 10_000:  # journeys come and go: drop the idle ones
                for k in [k for k, g in self.gates.items() if g.idle]:
                    del self.gates[k]
            gate = self.gates[key] = WindowLimit(
                max_calls, per_s, monotonic=self._monotonic, sleep=self._sleep
            )
        return gate

    # -- out

    def gauges(self) -> dict[str, int]:
        return {
            "in_flight": self.running,
            "waiting": sum(len(q) for q in self.queues.values()),
            "users": len(self.queues),
        }

    async def stop(self, timeout_s: float) -> int:
        """Start nothing more; wait up to ``timeout_s`` for the jobs in a provider call.
        Returns how many were still running."""
        self.stopped = True
        deadline = self._monotonic() + timeout_s
        while self.running and self._monotonic() < deadline:
            await asyncio.sleep(0.05)
        left = self.running
        for task in list(self.tasks.values()):
            task.cancel()
        for task in list(self.tasks.values()):
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await task
        return left
