"""``journeys run``: the engine worker on Kafka, a configuration of the service skeleton
(:mod:`engine.stream.common.service`).

    python -m engine.stream.worker --journeys journeys/

One agent consumes the four co-partitioned input topics (user events, channel receipts,
inbound, timers) and hands each message to :class:`~engine.stream.worker.runtime.EngineRuntime`.
A ticker produces due wake-ups from the timer index to ``journey.timers``
(:mod:`engine.stream.worker.wakes`); the index is rebuilt from the table after every
recovery and dropped for revoked partitions.
"""

from __future__ import annotations

import argparse
import logging
from collections.abc import Sequence
from typing import Any

from engine.stream.common.logs import event
from engine.stream.common.service import (
    Events,
    ServiceConfig,
    Ticker,
    open_parts,
    run_service,
    serve,
)
from engine.stream.common.settings import Settings, add_arguments
from engine.stream.common.timers import TimerIndex

log = logging.getLogger("engine.stream.worker")

STATE_TABLE = "user-states"
EVENTS = Events(
    starting="worker_starting", ready="worker_ready", stats="stats", stopped="worker_stopped"
)


def build_worker(settings: Settings) -> Any:
    """The faust app of the engine worker, wired up (not started)."""
    from engine.core.engine import Engine
    from engine.lint.deployment import engine_config
    from engine.lint.linter import load_journeys
    from engine.stream.worker.runtime import EngineRuntime
    from engine.stream.worker.wakes import WakeTicker

    journeys = load_journeys([settings.journeys_path()])  # a bad journey stops us here
    config = engine_config([settings.journeys_path()])  # with journeys/_settings.yaml
    topics = settings.topics
    parts = open_parts(settings, app_id=settings.app_id, table=STATE_TABLE, stage="engine")
    backend, checkpoint = parts.backend, parts.checkpoint
    timers = TimerIndex()
    runtime = EngineRuntime(
        Engine(journeys, config),
        settings,
        checkpoint,
        timers,
        backend.send,
        backend.get,
        parts.dead_letters,
    )
    wakes = WakeTicker(settings, timers, runtime.last_input, backend.send)

    def revoked(partitions: set[int]) -> None:
        timers.drop_partitions(partitions)
        event(log, "partitions_revoked", partitions=sorted(partitions))

    return serve(
        parts,
        ServiceConfig(
            log=log,
            events=EVENTS,
            agent="journeys-engine",
            timer_prefix="journeys",
            inputs=topics.engine_inputs(),
            owner=topics.user_events,
            handle=runtime.handle,
            trace_inputs=settings.trace_inputs,
            tickers=(Ticker("journeys-timer-ticker", settings.tick_ms / 1000, wakes.tick),),
            on_recovered=lambda partitions: wakes.rebuild(partitions, backend.items()),
            on_assigned=lambda partitions: event(
                log, "partitions_assigned", partitions=sorted(partitions)
            ),
            on_revoked=revoked,
            gauges=lambda: {
                "timers": len(timers),
                "checkpoint_max_ms": round(checkpoint.stats.max_ms, 1),
            },
            report=runtime.stats.report,
            ready_fields={"journeys": len(journeys)},
            runtime=runtime,
        ),
    )


def run_worker(settings: Settings) -> int:
    """Run the engine worker until SIGINT/SIGTERM. Returns the process exit code."""
    return run_service(settings, settings.app_id, log, EVENTS, lambda: build_worker(settings))


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m engine.stream.worker", description="journey engine worker on Kafka"
    )
    add_arguments(parser, journeys=True)
    settings = Settings.from_env_and_args(parser.parse_args(argv))
    return run_worker(settings)
