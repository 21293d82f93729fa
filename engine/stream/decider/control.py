"""``journey.control``: every split's decision, read in full, produced once.

The topic is compacted and keyed by ``journey:version:node``, so it holds the latest record
of every decided split for good. Readers are plain consumers *assigned* every partition
(no group, nothing committed): each worker and the decider see every decision. A record
that doesn't decode is skipped and reported (``control_record_skipped``): a decision is
data the engine trusts, so nothing half-read is applied.
"""

from __future__ import annotations

import asyncio
import logging

from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, TopicPartition

from engine.core.winner import SplitDecision, split_key_text
from engine.core.wire import decode_split_decision, split_decision_value
from engine.errors import ConfigError, InputError
from engine.stream.common.logs import event
from engine.stream.common.settings import Settings

log = logging.getLogger("engine.stream.control")


class ControlReader:
    """Every decision on the control topic, in order of arrival."""

    def __init__(self, settings: Settings, client_id: str) -> None:
        self.settings = settings
        self.client_id = client_id
        self.topic = settings.topics.control
        self._consumer: AIOKafkaConsumer | None = None  # made in start(): it needs the loop
        self.partitions: list[TopicPartition] = []

    @property
    def consumer(self) -> AIOKafkaConsumer:
        assert self._consumer is not None, "ControlReader.start() first"
        return self._consumer

    async def start(self) -> None:
        self._consumer = AIOKafkaConsumer(
            bootstrap_servers=self.settings.bootstrap_servers,
            client_id=self.client_id,
            enable_auto_commit=False,
            auto_offset_reset="earliest",
            **self.settings.security.aiokafka_kwargs(),
        )
        await self.consumer.start()
        found: set[int] | None = None
        for _ in range(100):
            found = self.consumer.partitions_for_topic(self.topic)
            if found:
                break
            await self.consumer._client.force_metadata_update()
            await asyncio.sleep(0.1)
        if not found:
            await self.consumer.stop()
            raise ConfigError(
                f"the control topic {self.topic!r} does not exist: start the "
                "worker once (it creates the topics), then this"
            )
        self.partitions = [TopicPartition(self.topic, p) for p in sorted(found)]
        self.consumer.assign(self.partitions)
        await self.consumer.seek_to_beginning(*self.partitions)

    async def stop(self) -> None:
        if self._consumer is not None:
            await self._consumer.stop()

    async def catch_up(self) -> list[SplitDecision]:
        """Every decision up to the end offsets of now."""
        end = await self.consumer.end_offsets(self.partitions)
        out: list[SplitDecision] = []
        while True:
            behind = [tp for tp in self.partitions if await self.consumer.position(tp) < end[tp]]
            if not behind:
                return out
            out += await self.poll(timeout_ms=500)

    async def poll(self, timeout_ms: int = 0) -> list[SplitDecision]:
        """The decisions that arrived since the last call."""
        batch = await self.consumer.getmany(*self.partitions, timeout_ms=timeout_ms)
        out: list[SplitDecision] = []
        for records in batch.values():
            for r in records:
                try:
                    out.append(decode_split_decision(r.value))
                except InputError as exc:
                    event(
                        log,
                        "control_record_skipped",
                        logging.WARNING,
                        reason=exc.reason,
                        detail=exc.detail,
                        partition=r.partition,
                        offset=r.offset,
                    )
        return out


async def publish(producer: AIOKafkaProducer, topic: str, decision: SplitDecision) -> None:
    """Produce a decision and wait until the broker has it (the caller has checked that the
    split had none)."""
    key = split_key_text(decision.key).encode()
    await producer.send_and_wait(topic, split_decision_value(decision), key=key)
