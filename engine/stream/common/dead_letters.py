"""The dead-letter producer: an input that cannot be used goes to ``journey.dead-letters``
with its reason, and the service moves on.

The dead letter is a checkpointed effect like any other: the input's offset is committed
only once the broker has acknowledged it, so an input is never lost between the two.
The engine worker and the gateway each get one from the service skeleton
(:func:`engine.stream.common.service.open_parts`); ``stage`` tells their dead letters
apart.
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass

from engine.core import wire
from engine.stream.common.checkpoint import Checkpoint, Send
from engine.stream.common.logs import event
from engine.stream.common.metrics import Metrics

# The logger these lines have always had (they were written by the engine's runtime).
log = logging.getLogger("engine.stream.runtime")


@dataclass(frozen=True)
class DeadLetters:
    send: Send
    checkpoint: Checkpoint
    topic: str  # journey.dead-letters
    stage: str  # "engine" or "gateway"
    metrics: Metrics | None = None

    async def produce(
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
        """Produce the input at ``topic:partition:offset`` as a dead letter (keyed and
        partitioned as the input was) and log it."""
        if self.metrics is not None:
            self.metrics.dead_letters.labels(reason).inc()
        record = wire.dead_letter(
            reason=reason,
            detail=detail,
            stage=self.stage,
            topic=topic,
            partition=partition,
            offset=offset,
            key=key,
            value=value,
            timestamp_ms=timestamp_ms,
            dead_lettered_at=time.time_ns() // 1_000_000,
        )
        fut = await self.send(self.topic, key, record, partition)
        self.checkpoint.add_effect(f"dead letter {topic}:{partition}:{offset}", fut)
        event(
            log,
            "dead_letter",
            logging.WARNING,
            reason=reason,
            detail=detail[:300],
            topic=topic,
            partition=partition,
            offset=offset,
        )
