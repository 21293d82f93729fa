"""The gateway's durable claim table: one record per ``message_id``, in a faust table
(changelog-backed, co-partitioned with the requests). It is the channel gateway
library's dedupe store (:class:`~engine.channels.gateway.ClaimStore`).

**A send reaches the provider at most once.** A request is recorded as ``queued`` when it
is consumed (durable at the next checkpoint, before its offset is committed). Right
before the provider call, :class:`KafkaClaimStore` turns it into a *claim* and writes it
to the store and the changelog at once, with the message's entry in the id map
(:mod:`engine.stream.gateway.idmap`), and the call waits until the broker has
acknowledged both. A request whose id is in the table is a duplicate and goes no further.
After a crash, a ``queued`` send is sent as if new (no provider has seen it), and a
``claimed`` one is settled by provider kind (:meth:`ChannelGateway.resume
<engine.channels.gateway.ChannelGateway.resume>`): the same id again (idempotent
providers), or a status lookup with the number and text kept in the claim.

A record (JSON)::

    p        partition of the request (and of its receipts)
    o        offset of the request (a restart re-queues in this order)
    u, ch, ts   user_id, channel and ts of the request
    st       "queued" | "claimed" (provider call pending or in doubt) | "sent" (settled)
    at       wall clock of the first record, ms (for the retention sweep)
    req      the request (while queued or claimed: a restart sends it)
    c        the content of an RCS message (an SMS fallback may derive from it)
    cl       the claim: provider, idempotent, to (E.164), body (SMS), at
    pid      the provider's id of the message (Twilio SID)
    out      the wire form of every receipt produced for it (produced again on a replay)
    sched    [[at_ms, wire], ...]: receipts to produce later, sorted
    revoked  a revoke cancelled it or its delivery; rvd: a revoke was carried out
    unknown  its fate could not be known (an "unknown" receipt went out)

Records are read through the checkpoint's write-back buffer and written to it, except the
claim itself, which goes to the store and the changelog at once (under the checkpoint's
lock, so a checkpoint never writes an older version after it).
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Iterator
from typing import Any

import orjson

from engine.channels.gateway import Claim
from engine.core.effects import SendRequest
from engine.stream.common.checkpoint import Checkpoint, fail_stop

Record = dict[str, Any]


class Closing(Exception):
    """The gateway is stopping: no new claim (the send stays queued for the restart)."""


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

    async def write_now(self, key: bytes, partition: int, rec: Record) -> Awaitable[Any]:
        """Write ``rec`` to the store and the changelog now (under the checkpoint lock);
        returns the changelog write's delivery future."""
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

    def sweep(
        self, partitions: set[int], older_than_ms: int, limit: int = 10_000
    ) -> list[tuple[bytes, Record]]:
        """Forget the records of messages first seen before ``older_than_ms`` (wall
        clock) that are settled and have nothing left to deliver: tombstones, through the
        checkpoint. Safe once the send-requests topic can no longer hold a request for
        them (its retention). Called under the checkpoint lock; returns what was
        forgotten."""
        gone: list[tuple[bytes, Record]] = []
        for key, rec in self.records():
            if len(gone) >= limit:
                break
            p = int(rec.get("p", -1))
            expired = p in partitions and rec.get("at", 0) < older_than_ms
            # Not while receipts are scheduled or a send is pending, nor while a newer
            # version awaits the checkpoint.
            settled = rec.get("st", "sent") == "sent" and not rec.get("sched")
            if expired and settled and self.checkpoint.get_dirty(key) is None:
                self.checkpoint.put_state(key, p, None)
                gone.append((key, rec))
        return gone


#: produce the id-map records of a claimed send; returns their delivery futures
IdRecords = Callable[[SendRequest, Claim, int], Awaitable[list[Awaitable[Any]]]]


class KafkaClaimStore:
    """:class:`~engine.channels.gateway.ClaimStore` over the claim table: the claim and
    the message's id-map entry, both acknowledged by the broker before the provider is
    called.

    Claims made at about the same time (many sends in flight) are written together, under
    one hold of the checkpoint's lock, and acknowledged together: one round trip for a
    batch instead of one per send."""

    def __init__(self, claims: Claims, id_records: IdRecords) -> None:
        self.claims = claims
        self.id_records = id_records
        self.live: dict[str, Record] = {}  # message_id -> its record while a send runs
        self.closing = False
        self._queue: list[tuple[SendRequest, Claim, asyncio.Future[None]]] = []
        self._writer: asyncio.Task[None] | None = None
        self._acks: set[asyncio.Task[None]] = set()
        self._writing: list[tuple[SendRequest, Claim, asyncio.Future[None]]] = []

    async def claim(self, req: SendRequest, claim: Claim) -> None:
        if self.closing:
            raise Closing(req.message_id)
        done: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self._queue.append((req, claim, done))
        if self._writer is None or self._writer.done():
            self._writer = asyncio.ensure_future(self._write())
        await done

    async def _write(self) -> None:
        await asyncio.sleep(0)  # let the claims made at the same moment join the batch
        while self._queue:
            batch, self._queue = self._queue, []
            self._writing = batch
            acks: list[Awaitable[Any]] = []
            try:
                async with self.claims.checkpoint.lock:
                    for req, claim, done in batch:
                        if done.done():  # failed by close() while waiting for the lock
                            continue
                        if self.closing:
                            done.set_exception(Closing(req.message_id))
                            continue
                        key = req.message_id.encode()
                        rec = self.live.get(req.message_id) or self.claims.get(key) or {}
                        rec.update(st="claimed", cl=claim.to_wire())
                        partition = int(rec.get("p", 0))
                        acks.append(await self.claims.write_now(key, partition, rec))
                        acks += await self.id_records(req, claim, partition)
                self._writing = []  # written: from here on only the broker can fail them
            except Exception as exc:  # the producer is gone: fail the whole batch
                for _req, _claim, done in batch:
                    if not done.done():
                        done.set_exception(exc)
                raise
            task = asyncio.ensure_future(self._acknowledged(batch, acks))
            self._acks.add(task)  # held until done (the loop keeps only weak references)
            task.add_done_callback(self._acks.discard)

    def close(self) -> None:
        """No new claim: the ones still waiting to be written fail with :class:`Closing`
        (their sends stay queued for the restart)."""
        self.closing = True
        for req, _claim, done in [*self._queue, *self._writing]:
            if not done.done():
                done.set_exception(Closing(req.message_id))
        self._queue = []

    @staticmethod
    async def _acknowledged(
        batch: list[tuple[SendRequest, Claim, asyncio.Future[None]]], acks: list[Awaitable[Any]]
    ) -> None:
        for res in await asyncio.gather(*acks, return_exceptions=True):
            if isinstance(res, BaseException):
                fail_stop("claim_not_acknowledged", error=repr(res))
                raise RuntimeError(f"claim not acknowledged: {res!r}")
        for _req, _claim, done in batch:
            if not done.done():
                done.set_result(None)
