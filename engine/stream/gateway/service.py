"""``journeys gateway``: the channel gateway on Kafka, a configuration of the service
skeleton (:mod:`engine.stream.common.service`).

    python -m engine.stream.gateway

Consumes ``journey.send-requests`` with :class:`~engine.stream.gateway.runtime.GatewayRuntime`
(which settles its batch of claims after a request when no more are waiting, and as step
0 of every checkpoint). Two tickers: scheduled receipts, when due; and, every 10 minutes,
the sweep that forgets dedupe records older than ``dedupe_retention_h``.
"""

from __future__ import annotations

import argparse
import logging
import time
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
from engine.stream.gateway.provider import Provider, SimulatedProvider
from engine.stream.gateway.runtime import GatewayRuntime

log = logging.getLogger("engine.stream.gateway")

SENDS_TABLE = "gateway-sends"
SWEEP_INTERVAL_S = 600.0
EVENTS = Events(
    starting="gateway_starting",
    ready="gateway_ready",
    stats="gateway_stats",
    stopped="gateway_stopped",
)


def build_gateway(settings: Settings, provider: Provider | None = None) -> Any:
    """The faust app of the gateway, wired up (not started)."""
    topics = settings.topics
    parts = open_parts(settings, app_id=settings.gateway_app_id, table=SENDS_TABLE, stage="gateway")
    timers = TimerIndex()
    runtime = GatewayRuntime(
        settings,
        provider or SimulatedProvider(settings.sim_delivery_ms),
        parts.backend,
        parts.checkpoint,
        timers,
        parts.dead_letters,
    )

    async def sweep() -> None:
        cutoff = int(time.time() * 1000) - int(settings.dedupe_retention_h * 3_600_000)
        async with parts.checkpoint.lock:
            n = runtime.claims.sweep(parts.backend.active_partitions(topics.send_requests), cutoff)
        if n:
            event(log, "dedupe_records_expired", records=n)

    def rebuild(partitions: set[int]) -> None:
        n = runtime.receipts.rebuild(partitions)
        event(log, "scheduled_receipts_rebuilt", partitions=sorted(partitions), pending=n)

    tickers = [Ticker("gateway-receipt-ticker", settings.tick_ms / 1000, runtime.receipts.tick)]
    if settings.dedupe_retention_h > 0:
        tickers.append(Ticker("gateway-dedupe-sweep", SWEEP_INTERVAL_S, sweep))

    return serve(
        parts,
        ServiceConfig(
            log=log,
            events=EVENTS,
            agent="journeys-gateway",
            timer_prefix="gateway",
            inputs=(topics.send_requests,),
            owner=topics.send_requests,
            handle=runtime.handle,
            after_input=runtime.after_request,
            drain=runtime.settle,
            tickers=tuple(tickers),
            on_recovered=rebuild,
            on_revoked=timers.drop_partitions,
            gauges=lambda: {"scheduled": len(timers)},
            metrics_port=9465,
            pending_timers=lambda: len(timers),
            report=runtime.stats.report,
            runtime=runtime,
        ),
    )


def run_gateway(settings: Settings, provider: Provider | None = None) -> int:
    """Run the gateway until SIGINT/SIGTERM (simulated provider unless ``provider``).
    Returns the process exit code."""
    return run_service(
        settings,
        settings.gateway_app_id,
        log,
        EVENTS,
        lambda: build_gateway(settings, provider),
    )


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m engine.stream.gateway",
        description="channel gateway on Kafka (simulated provider)",
    )
    add_arguments(parser)
    return run_gateway(Settings.from_env_and_args(parser.parse_args(argv)))
