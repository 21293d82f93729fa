"""The decider: splits that pick their winner, on Kafka.

    python -m engine.stream.decider --journeys journeys/

One process for the deployment (it reads everything; a second one would only repeat the
first one's decisions). What it does, in order:

1. reads ``journey.control`` to its end: splits decided already are counted no more, and
   are never decided again;
2. reads ``journey.outcomes`` from the beginning, every partition, no consumer group, and
   counts them with :class:`engine.core.experiments.Experiments`, exactly as the
   simulator does;
3. keeps the outcomes' low watermark (:mod:`.watermark`) and, whenever it moves, looks at
   every split mark it has passed (:meth:`Experiments.due`). A decision goes to
   ``journey.control`` first (after checking that no decision of that split arrived in the
   meantime: a decision is never overwritten), then its ``split_winner_chosen`` outcome to
   ``journey.outcomes`` (``key`` = its ``user_id``, the split's key). A decision whose
   outcome is missing when the decider starts (it stopped in between) gets it then.

Every worker reads the control topic in full (``engine/stream/worker/control.py``) and
applies the decision from its ``effective_at`` on.

``JOURNEYS_DECIDER_IDLE_S`` (default 10): how long a caught-up partition must be quiet
before it stops holding the watermark back.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import logging
import os
import signal
import time
from collections.abc import Sequence

from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, TopicPartition
from aiokafka.admin import AIOKafkaAdminClient

from engine.core.experiments import Experiments
from engine.core.winner import OUTCOME_TYPE, SplitDecision, SplitKey, decision_outcome
from engine.core.wire import decode_outcome, outcome_value
from engine.durations import format_ts
from engine.errors import EngineError, InputError
from engine.journey.model import Journey
from engine.stream.common.logs import event, setup
from engine.stream.common.settings import Settings, add_arguments
from engine.stream.common.topics import admin_client, ensure_topics
from engine.stream.decider.control import ControlReader, publish
from engine.stream.decider.watermark import Watermark

log = logging.getLogger("engine.stream.decider")

DEFAULT_IDLE_S = 10.0
SETTLE_EVERY_S = 1.0  # how often the partitions' ends and the engine's progress are asked


class Decider:
    def __init__(self, settings: Settings, journeys: Sequence[Journey], idle_s: float) -> None:
        self.settings = settings
        self.topics = settings.topics
        self.experiments = Experiments.of(journeys)
        self.watermark = Watermark(idle_s)
        self.known: dict[SplitKey, SplitDecision] = {}
        self.recorded: set[str] = set()  # outcome ids of split_winner_chosen on the topic
        self.control = ControlReader(settings, "journeys-decider-control")
        kafka = {"bootstrap_servers": settings.bootstrap_servers}
        kafka.update(settings.security.aiokafka_kwargs())
        # aiokafka clients belong to the running loop: Decider is made inside it (_serve)
        self.consumer = AIOKafkaConsumer(
            **kafka, client_id="journeys-decider", enable_auto_commit=False,
            auto_offset_reset="earliest",
        )  # fmt: skip
        self.producer = AIOKafkaProducer(**kafka, client_id="journeys-decider", acks="all")
        self.admin: AIOKafkaAdminClient = admin_client(settings, "journeys-decider-admin")
        self.partitions: list[TopicPartition] = []
        self.inputs: list[TopicPartition] = []
        self.stopping = False

    # ------------------------------------------------------------------ lifecycle

    async def start(self) -> None:
        counts = await ensure_topics(self.settings, self.topics.all())
        await self.control.start()
        for d in await self.control.catch_up():
            self._learn(d)
        await self.producer.start()
        await self.admin.start()
        await self.consumer.start()
        n = counts[self.topics.outcomes]
        self.partitions = [TopicPartition(self.topics.outcomes, p) for p in range(n)]
        self.inputs = [TopicPartition(t, p) for t in self.topics.engine_inputs() for p in range(n)]
        self.consumer.assign(self.partitions)
        await self.consumer.seek_to_beginning(*self.partitions)
        event(
            log,
            "decider_ready",
            splits=len(self.experiments.splits),
            decided=len(self.known),
            partitions=n,
        )

    async def stop(self) -> None:
        self.stopping = True
        for client in (self.consumer, self.control, self.producer):
            with contextlib.suppress(Exception):
                await client.stop()
        with contextlib.suppress(Exception):
            await self.admin.close()

    async def run(self) -> None:
        """Read and decide until stopped."""
        start_end = await self.consumer.end_offsets(self.partitions)
        caught_up = False
        last_settle = 0.0
        while not self.stopping:
            batch = await self.consumer.getmany(*self.partitions, timeout_ms=500)
            now = time.monotonic()
            for tp, records in batch.items():
                for r in records:
                    self._read(tp.partition, r.value, now)
            if not caught_up:
                positions = {tp: await self.consumer.position(tp) for tp in self.partitions}
                caught_up = all(positions[tp] >= start_end[tp] for tp in self.partitions)
                if caught_up:
                    await self._record_missing()
            if now - last_settle >= SETTLE_EVERY_S and self._could_decide():
                last_settle = now
                await self._settle()
            upto = self.watermark.low(time.monotonic())
            if upto is not None:
                for d in self.experiments.due(upto):
                    await self._publish(d)

    # ------------------------------------------------------------------ reading

    def _read(self, partition: int, raw: bytes | None, now: float) -> None:
        if raw is None:
            return
        try:
            o = decode_outcome(raw)
        except InputError:
            return  # not ours to judge: the stats count it as invalid
        if o.type == OUTCOME_TYPE:
            self.recorded.add(o.outcome_id)
            return  # the decider's own record: no time of the engine's
        self.experiments.observe(o)
        self.watermark.read(partition, o.ts, now)

    def _could_decide(self) -> bool:
        """Whether some split's next mark is at or before the latest outcome read: only then
        is the watermark worth the requests that settle it."""
        latest = max(self.watermark.latest.values(), default=None)
        marks = [
            m
            for key in self.experiments.splits
            if (m := self.experiments.next_mark(key)) is not None
        ]
        return latest is not None and bool(marks) and min(marks) <= latest

    async def _settle(self) -> None:
        """Which partitions are read to their end, with the engine done with their inputs."""
        ends = await self.consumer.end_offsets(self.partitions + self.inputs)
        group = await self.admin.list_consumer_group_offsets(self.settings.app_id)
        committed = {tp: om.offset for tp, om in group.items() if om.offset >= 0}
        for tp in self.partitions:
            read = await self.consumer.position(tp) >= ends[tp]
            engine_done = all(
                committed.get(i, 0) >= ends[i] for i in self.inputs if i.partition == tp.partition
            )
            self.watermark.settle(tp.partition, read and engine_done)

    # ------------------------------------------------------------------ deciding

    def _learn(self, d: SplitDecision) -> None:
        known = self.known.get(d.key)
        if known is not None and not known.same_as(d):
            event(log, "decision_conflict", logging.ERROR, split=list(d.key),
                  kept=known.variant, refused=d.variant)  # fmt: skip
            return
        self.known[d.key] = d
        self.experiments.known(d)

    async def _publish(self, d: SplitDecision) -> None:
        for other in await self.control.poll():  # anything decided since we last looked
            self._learn(other)
        known = self.known.get(d.key)
        if known is not None:
            if not known.same_as(d):
                event(log, "decision_refused", logging.WARNING, split=list(d.key),
                      kept=known.variant, refused=d.variant)  # fmt: skip
            return
        await publish(self.producer, self.topics.control, d)
        self.known[d.key] = d
        event(
            log,
            "split_decision_made",
            split=list(d.key),
            variant=d.variant,
            decided_at=format_ts(d.decided_at),
            effective_at=format_ts(d.effective_at),
            figures=d.figures,
        )
        await self._record(d)

    async def _record(self, d: SplitDecision) -> None:
        o = decision_outcome(d)
        await self.producer.send_and_wait(
            self.topics.outcomes, outcome_value(o), key=o.user_id.encode()
        )
        self.recorded.add(o.outcome_id)

    async def _record_missing(self) -> None:
        """Decisions whose outcome never reached the topic (a stop in between): now."""
        for d in self.known.values():
            if decision_outcome(d).outcome_id not in self.recorded:
                await self._record(d)


async def _serve(settings: Settings, journeys: Sequence[Journey], idle_s: float) -> None:
    decider = Decider(settings, journeys, idle_s)
    await decider.start()
    loop = asyncio.get_running_loop()
    task = asyncio.ensure_future(decider.run())
    for sig in (signal.SIGINT, signal.SIGTERM):
        with contextlib.suppress(NotImplementedError, RuntimeError):
            loop.add_signal_handler(sig, task.cancel)
    try:
        await task
    except asyncio.CancelledError:
        pass
    finally:
        await decider.stop()
        event(log, "decider_stopped", decided=len(decider.known))


def run_decider(settings: Settings, idle_s: float = DEFAULT_IDLE_S) -> int:
    """Run the decider until SIGINT/SIGTERM. Returns the process exit code."""
    from engine.lint.linter import load_journeys

    setup(settings.log_level, "journeys-decider")
    event(log, "decider_starting", **settings.describe())
    try:
        journeys = load_journeys([settings.journeys_path()])
        asyncio.run(_serve(settings, journeys, idle_s))
    except EngineError as exc:
        event(log, "decider_failed", logging.ERROR, error=str(exc))
        return 2
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m engine.stream.decider",
        description="decides the winner of splits that pick one (journey.control)",
    )
    add_arguments(parser, journeys=True)
    settings = Settings.from_env_and_args(parser.parse_args(argv))
    idle_s = float(os.environ.get("JOURNEYS_DECIDER_IDLE_S", DEFAULT_IDLE_S))
    return run_decider(settings, idle_s)
