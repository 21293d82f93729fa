"""``journeys run``: the engine worker on Kafka, a configuration of the service skeleton
(:mod:`engine.stream.common.service`).

    python -m engine.stream.worker --journeys journeys/

One agent consumes the four co-partitioned input topics (user events, channel receipts,
inbound, timers) and hands each message to :class:`~engine.stream.worker.runtime.EngineRuntime`.
A ticker produces due wake-ups from the timer index to ``journey.timers``
(:mod:`engine.stream.worker.wakes`); the index is rebuilt from the table after every
recovery and dropped for revoked partitions. Scheduled entries ride on those wake-ups; the
audience scanner (:mod:`engine.stream.worker.audience`) ticks, after a recovery, the users
whose stored wake-up predates a deployed schedule.
"""

from __future__ import annotations

import argparse
import logging
import sys
from collections.abc import Sequence
from typing import Any

from engine.errors import ConfigError, EngineError, InvalidJourney
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
# Exit codes of `python -m engine.stream.worker` (as `journeys run`'s).
EXIT_INVALID_JOURNEYS, EXIT_CONFIG = 1, 2
EVENTS = Events(
    starting="worker_starting", ready="worker_ready", stats="stats", stopped="worker_stopped"
)


def build_worker(settings: Settings) -> Any:
    """The faust app of the engine worker, wired up (not started)."""
    from engine.core.engine import Engine, EngineConfig
    from engine.lint.deployment import engine_config
    from engine.lint.linter import load_journeys
    from engine.stream.common.outbox import Outbox
    from engine.stream.worker.audience import AudienceScanner
    from engine.stream.worker.control import DecisionFeed
    from engine.stream.worker.runtime import EngineRuntime
    from engine.stream.worker.wakes import WakeTicker

    path = settings.journeys_path()
    journeys = load_journeys([path])  # a bad journey stops us here, before Kafka
    if not journeys:
        # A worker without journeys would consume every event and drop it, silently.
        raise ConfigError(
            f"{path}: no journeys found (.yaml, .yml, .json); the worker would drop every event. "
            "Point --journeys / JOURNEYS_DIR at a directory of journey files."
        )
    topics = settings.topics
    parts = open_parts(settings, app_id=settings.app_id, table=STATE_TABLE, stage="engine")
    backend, checkpoint = parts.backend, parts.checkpoint
    timers = TimerIndex()
    tracing = EngineConfig(trace_users=settings.trace_users, trace_sample=settings.trace_sample)
    engine = Engine(journeys, engine_config([path], tracing))  # + journeys/_settings.yaml
    decisions = DecisionFeed(settings, engine, checkpoint)  # splits' winners
    runtime = EngineRuntime(
        engine,
        settings,
        checkpoint,
        timers,
        backend.send,
        backend.get,
        parts.dead_letters,
        outbox=Outbox(checkpoint, backend.send, backend),  # effects in record batches
    )
    runtime.metrics = parts.metrics
    wakes = WakeTicker(settings, timers, runtime.last_input, backend.send)
    audience = AudienceScanner(settings, engine.catalog, backend.send)  # scheduled entries

    def recovered(partitions: set[int]) -> None:
        wakes.rebuild(partitions, backend.items())
        audience.rebuild(partitions, backend.items())

    def revoked(partitions: set[int]) -> None:
        timers.drop_partitions(partitions)
        audience.drop_partitions(partitions)
        event(log, "partitions_revoked", partitions=sorted(partitions))

    app = serve(
        parts,
        ServiceConfig(
            log=log,
            events=EVENTS,
            agent="journeys-engine",
            timer_prefix="journeys",
            inputs=topics.engine_inputs(),
            owner=topics.user_events,
            handle=decisions.first(runtime.handle),  # the decisions made before any input
            trace_inputs=settings.trace_inputs,
            tickers=(
                Ticker("journeys-timer-ticker", settings.tick_ms / 1000, wakes.tick),
                Ticker("journeys-decisions", 1.0, decisions.tick),
                Ticker("journeys-audience", settings.tick_ms / 1000, audience.tick),
            ),
            on_recovered=recovered,
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
            metrics_port=9464,
            pending_timers=lambda: len(timers),
        ),
    )
    app.on_before_shutdown.connect(decisions.on_shutdown)
    return app


def run_worker(settings: Settings) -> int:
    """Run the engine worker until SIGINT/SIGTERM. Returns the process exit code."""
    return run_service(settings, settings.app_id, log, EVENTS, lambda: build_worker(settings))


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m engine.stream.worker", description="journey engine worker on Kafka"
    )
    add_arguments(parser, journeys=True)
    try:
        return run_worker(Settings.from_env_and_args(parser.parse_args(argv)))
    except InvalidJourney as exc:
        for problem in exc.problems:
            print(problem, file=sys.stderr)
        return EXIT_INVALID_JOURNEYS
    except EngineError as exc:
        print(f"journeys worker: {exc}", file=sys.stderr)
        return EXIT_CONFIG
