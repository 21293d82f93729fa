"""What the worker and the gateway share on the faust side: the app, the state table,
the input channel, the :class:`~engine.stream.common.checkpoint.Backend` over them, and
the recovery watchdog. :mod:`engine.stream.common.service` puts them together.

faust is used for what it is good at: the consumer group with its co-partitioning
assignor, the agent that gets every input in order, the changelog-backed table with
recovery and standby replicas, and timers. Three pieces are done by hand, on purpose:

* **offsets**: the input topics are subscribed with acks disabled, so faust never commits
  them; :meth:`Checkpoint.commit` does (faust-streaming #606: faust's own ack bookkeeping
  can commit past a message that is still being processed).
* **input continuity**: faust can skip fetched records around rebalances; every message
  goes through :class:`~engine.stream.common.feed.InputFeed`, which processes each offset
  once, in order, and reads any skipped records from the broker itself.
* **changelog writes**: user states are written to the store and the changelog at the
  checkpoint, after the effects are acknowledged (a faust ``table[key] = value`` would
  send the changelog record at once, through a buffer whose flush gives up after 0.1 s).
  Records are produced with the partition of the input, as faust itself does, so
  recovery puts each user back on the partition that owns them.

Table keys and values are raw bytes (``key_type=bytes``): the user_id as-is, so the
changelog key is the same bytes as the input key.
"""

from __future__ import annotations

import asyncio
import weakref
from collections.abc import Awaitable
from types import SimpleNamespace
from typing import Any

import faust
from faust.streams import _current_event
from faust.types import TP

from engine.stream.common.logs import logging_config
from engine.stream.common.settings import Settings


def make_app(settings: Settings, app_id: str) -> faust.App:
    # faust takes seconds; the settings are in ms.
    return faust.App(
        app_id,
        broker=[f"kafka://{h}" for h in settings.bootstrap_servers],
        broker_credentials=settings.security.faust_credentials(),
        store=settings.store,
        datadir=settings.data_dir,
        topic_partitions=settings.partitions,
        topic_replication_factor=settings.replication_factor,
        table_standby_replicas=settings.standby_replicas,
        autodiscover=False,
        web_enabled=False,
        consumer_auto_offset_reset="earliest",
        broker_session_timeout=settings.session_timeout_ms / 1000,
        broker_heartbeat_interval=settings.heartbeat_interval_ms / 1000,
        broker_rebalance_timeout=max(settings.session_timeout_ms / 1000, 10.0),
        consumer_group_instance_id=settings.group_instance_id,
        # Not used for the inputs (acks disabled), only for faust-internal topics.
        broker_commit_interval=settings.commit_interval_ms / 1000,
        producer_acks=-1,
        producer_linger=0.002,
        producer_max_request_size=8 * 1024 * 1024,
        # Record batches of up to 256 KiB (faust's default is 16 KiB): the runtime produces
        # a batch of inputs' effects at once (engine/stream/common/outbox.py).
        producer_max_batch_size=256 * 1024,
        stream_wait_empty=True,
        processing_guarantee="at_least_once",
        logging_config=logging_config(settings.log_level, app_id),
    )


#: RocksDB (``rocksdb://``) per partition: memtables and block cache bounded, so a worker's
#: memory stays about flat as its users grow (faust's defaults are 3 x 64 MiB of memtables
#: and a 2 GiB block cache per partition: RSS grows with the data up to there). The
#: memory store ignores them.
ROCKSDB_OPTIONS = {
    "write_buffer_size": 2 * 1024 * 1024,
    "max_write_buffer_number": 2,
    "block_cache_size": 4 * 1024 * 1024,
}


def state_table(app: faust.App, name: str, settings: Settings) -> Any:
    return app.Table(
        name,
        key_type=bytes,
        value_type=bytes,
        partitions=settings.partitions,
        default=None,
        help="per-key state, changelog-backed; written only at checkpoints",
        options=dict(ROCKSDB_OPTIONS),  # a copy: faust's RocksDB store pops keys from it
    )


def input_channel(app: faust.App, *topics: str) -> Any:
    """The input topics as one faust channel: raw bytes, acks disabled (see module doc)."""
    return app.topic(
        *topics,
        key_type=bytes,
        value_type=bytes,
        key_serializer="raw",
        value_serializer="raw",
        acks=False,
    )


class _PartitionEvent:
    """Stands in for faust's current event when the store needs the partition of a key
    outside stream iteration (RocksDB keeps one database per partition)."""

    __slots__ = ("__weakref__", "message")

    def __init__(self, partition: int) -> None:
        self.message = SimpleNamespace(partition=partition)


class FaustBackend:
    """:class:`~engine.stream.common.checkpoint.Backend` over a faust app and one table."""

    def __init__(self, app: faust.App, table: Any) -> None:
        self.app = app
        self.table = table

    @property
    def changelog_topic(self) -> str:
        return str(self.table.changelog_topic.get_topic_name())

    def store_put(self, partition: int, key: bytes, value: bytes | None) -> None:
        store = self.table.data
        stand_in = _PartitionEvent(partition)
        token = _current_event.set(weakref.ref(stand_in))  # type: ignore[arg-type]
        try:
            if value is None:
                store.pop(key, None)
            else:
                store[key] = value
        finally:
            _current_event.reset(token)
        key_partition = getattr(store, "_key_partition", None)  # memory store bookkeeping
        if key_partition is not None:
            if value is None:
                key_partition.pop(key, None)
            else:
                key_partition[key] = partition

    async def send_changelog(
        self, partition: int, key: bytes, value: bytes | None
    ) -> Awaitable[Any]:
        topic = self.changelog_topic
        fut = await self.app.producer.send(topic, key, value, partition, None, None)
        store = self.table.data

        def persisted(f: Any) -> None:  # what faust's Table._on_changelog_sent does
            if not f.cancelled() and f.exception() is None:
                store.set_persisted_offset(TP(topic, partition), f.result().offset)

        if hasattr(fut, "add_done_callback"):
            fut.add_done_callback(persisted)
        return fut

    async def send_changelog_batches(
        self, dirty: dict[bytes, tuple[int, bytes | None]]
    ) -> list[tuple[str, Awaitable[Any]]]:
        """Checkpoint step 2 in record batches: one per partition (per full batch), each
        noting the store's persisted offset when acknowledged, as faust does per record."""
        topic = self.changelog_topic
        store = self.table.data
        per_partition: dict[int, list[tuple[bytes, bytes | None]]] = {}
        for key, (partition, value) in dirty.items():
            per_partition.setdefault(partition, []).append((key, value))
        out: list[tuple[str, Awaitable[Any]]] = []

        async def send(builder: Any, partition: int, n: int) -> None:
            builder.close()
            fut = await self.send_batch(builder, topic, partition)

            def persisted(f: Any) -> None:  # the last offset of the batch
                if not f.cancelled() and f.exception() is None:
                    store.set_persisted_offset(TP(topic, partition), f.result().offset + n - 1)

            fut.add_done_callback(persisted)
            out.append((f"changelog p{partition} ({n} states)", fut))

        for partition, records in per_partition.items():
            builder, n = self.create_batch(), 0
            for key, value in records:
                if builder.append(timestamp=None, key=key, value=value) is None:  # full
                    await send(builder, partition, n)
                    builder, n = self.create_batch(), 0
                    builder.append(timestamp=None, key=key, value=value)
                n += 1
            await send(builder, partition, n)
        return out

    # ------------------------------------------------------------------ record batches
    # (engine/stream/common/outbox.py): aiokafka's own batch API, on faust's producer

    def _aiokafka_producer(self) -> Any:
        producer: Any = self.app.producer
        return producer._ensure_producer()

    def create_batch(self) -> Any:
        return self._aiokafka_producer().create_batch()

    async def send_batch(self, batch: Any, topic: str, partition: int) -> Any:
        return await self._aiokafka_producer().send_batch(batch, topic, partition=partition)

    async def commit_offsets(self, offsets: dict[tuple[str, int], int]) -> bool:
        tps = {TP(t, p): off for (t, p), off in offsets.items()}
        consumer: Any = self.app.consumer
        return bool(await consumer._commit(tps))

    def assigned(self) -> set[tuple[str, int]]:
        try:
            return {(tp.topic, tp.partition) for tp in self.app.consumer.assignment()}
        except Exception:  # consumer not started / stopped
            return set()

    async def send(
        self, topic: str, key: bytes | None, value: bytes, partition: int | None
    ) -> Awaitable[Any]:
        """Produce one record; returns the delivery future (awaited at the checkpoint)."""
        return await self.app.producer.send(topic, key, value, partition, None, None)

    def get(self, key: bytes) -> bytes | None:
        value = self.table.data.get(key)
        return value if isinstance(value, bytes | None) else bytes(value)

    def active_partitions(self, topic: str) -> set[int]:
        try:
            actives = self.app.assignor.assigned_actives()
        except Exception:
            return set()
        return {tp.partition for tp in actives if tp.topic == topic}

    def items(self) -> Any:
        return self.table.data.items()


def start_recovery_watchdog(app: faust.App, stall_s: float) -> None:
    """Fail-stop when table recovery makes no progress for ``stall_s`` seconds.

    faust-streaming can wait forever for changelog records that never arrive ("No event
    received for active tp ... since recovery start", faust-streaming #155 and kin); it was
    seen once in a few dozen runs of the rebalance test, on the worker taking over the
    partitions of a stopped one. A worker stuck in recovery processes nothing; exiting lets
    its supervisor start a fresh one, whose recovery starts over (and the checkpoint
    guarantees make the restart safe). Started once, from the first rebalance signal: faust
    timers only run after the first recovery."""
    state: dict[str, Any] = {"task": None}
    if getattr(app, "_journeys_watchdog", None) is not None or stall_s <= 0:
        return

    async def watch() -> None:
        from time import monotonic

        from engine.stream.common.checkpoint import fail_stop

        while True:
            await asyncio.sleep(min(5.0, stall_s / 3))
            tables: Any = app.tables
            rec: Any = tables.recovery
            if not rec.in_recovery or rec._recovery_started_at is None:
                continue
            last = max([rec._recovery_started_at, *rec._active_events_received_at.values()])
            idle = monotonic() - last
            if idle > stall_s:
                fail_stop(
                    "recovery_stalled",
                    idle_s=round(idle, 1),
                    remaining={str(tp): n for tp, n in rec.active_remaining().items()},
                )

    state["task"] = asyncio.ensure_future(watch())
    app._journeys_watchdog = state  # type: ignore[attr-defined]
