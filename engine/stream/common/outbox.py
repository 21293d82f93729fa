"""The records a batch of inputs produces, sent as one Kafka record batch per
topic-partition instead of one ``producer.send`` per record.

Why: on the worker's hot path, ``await producer.send(...)`` per record was the largest
cost after the core (profile in docs/streaming.md): each call looks up metadata, picks the
partition, appends to the accumulator and makes a future. Here a record is a tuple
appended to a list (:meth:`Outbox.put`, no await); :meth:`Outbox.flush`, at the end of
every input batch and at step 0 of every checkpoint, builds the record batches with the
producer's ``create_batch`` and hands each to ``send_batch``: one future per batch, which
the checkpoint awaits (step 1) before it commits, exactly like a single record's.

Order: records for one topic-partition keep the order they were put in (one list per
topic-partition, batches sent in order; the producer has one request in flight per
partition). Records for different partitions were never ordered.

A producer that refuses a batch (closed, no space within its timeout) means Kafka is not
taking writes: fail-stop, as for an effect the broker did not acknowledge -- the inputs
whose effects they were are not committed, a restart processes them again.
"""

from __future__ import annotations

from collections.abc import Awaitable
from typing import Any, Protocol

from engine.stream.common.checkpoint import Checkpoint, Send


class BatchBuilder(Protocol):
    """aiokafka's ``BatchBuilder``: what the outbox uses of it."""

    def append(
        self, *, timestamp: float | None, key: bytes | None, value: bytes | None
    ) -> Any: ...  # None: the batch is full

    def close(self) -> None: ...


class BatchProducer(Protocol):
    def create_batch(self) -> BatchBuilder: ...

    async def send_batch(
        self, batch: BatchBuilder, topic: str, partition: int
    ) -> Awaitable[Any]: ...


#: (key, value, what) of one record waiting in the outbox; ``str(what)`` names it in an
#: error message, made only when needed (an f-string per record costs on the hot path).
Pending = tuple[bytes | None, bytes, object]


class Outbox:
    """Records waiting to be produced, per topic-partition, until :meth:`flush`."""

    def __init__(
        self, checkpoint: Checkpoint, send: Send, batches: BatchProducer | None = None
    ) -> None:
        self.checkpoint = checkpoint
        self.send = send  # one record at a time: without a batch producer (tests, tools)
        self.batches = batches
        self.pending: dict[tuple[str, int], list[Pending]] = {}
        self.records = 0  # produced so far (stats)
        self.batches_sent = 0
        checkpoint.flushers.append(self.flush)

    def put(
        self, topic: str, partition: int, key: bytes | None, value: bytes, what: object
    ) -> None:
        """Queue one record (``str(what)`` names it in a fail-stop message)."""
        tp = (topic, partition)
        queue = self.pending.get(tp)
        if queue is None:
            self.pending[tp] = [(key, value, what)]
        else:
            queue.append((key, value, what))

    async def flush(self) -> None:
        """Produce every queued record; each batch's delivery future joins the checkpoint's
        effects (awaited before any offset is committed)."""
        if not self.pending:
            return
        pending, self.pending = self.pending, {}
        for (topic, partition), records in pending.items():
            self.records += len(records)
            if self.batches is None:
                for key, value, what in records:
                    self.checkpoint.add_effect(
                        str(what), await self.send(topic, key, value, partition)
                    )
                continue
            await self._batched(topic, partition, records)

    async def _batched(self, topic: str, partition: int, records: list[Pending]) -> None:
        assert self.batches is not None
        builder = self.batches.create_batch()
        first, n = records[0][2], 0
        for key, value, what in records:
            if builder.append(timestamp=None, key=key, value=value) is None:  # full
                await self._send(builder, topic, partition, first, n)
                builder = self.batches.create_batch()
                first, n = what, 0
                builder.append(timestamp=None, key=key, value=value)  # the first always fits
            n += 1
        await self._send(builder, topic, partition, first, n)

    async def _send(
        self, builder: BatchBuilder, topic: str, partition: int, first: object, n: int
    ) -> None:
        builder.close()  # nothing else may be added to it (producer.send could)
        label = f"{n} records to {topic}:{partition}, from {first}"
        try:
            fut = await self.batches.send_batch(builder, topic, partition)  # type: ignore[union-attr]
        except Exception as exc:
            self.checkpoint.on_fail("effect_not_produced", target=label, error=repr(exc))
            raise
        self.batches_sent += 1
        self.checkpoint.add_effect(label, fut)
