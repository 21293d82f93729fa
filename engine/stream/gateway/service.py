"""``journeys gateway``: the channel gateway on Kafka, a configuration of the service
skeleton (:mod:`engine.stream.common.service`).

    python -m engine.stream.gateway [--rcs simulated|rbm] [--sms simulated|twilio]

Consumes ``journey.send-requests`` with :class:`~engine.stream.gateway.runtime.GatewayRuntime`
around one :class:`~engine.channels.gateway.ChannelGateway` and the chosen providers, and
serves the providers' webhooks (:mod:`engine.stream.gateway.ingress`) from the same
process. Provider settings come from the environment only
(:class:`~engine.channels.providers.config.ProviderSettings`): a missing or invalid one
stops the gateway before it consumes anything, naming the variable, exit code 2.

Tickers: scheduled receipts, when due; and, every 10 minutes, the sweep that forgets
claim records older than ``dedupe_retention_h`` and webhook event ids too old to be
retried.
"""

from __future__ import annotations

import argparse
import logging
import os
import sys
import time
from collections.abc import Sequence
from typing import Any

from engine.channels.gateway import ChannelGateway
from engine.channels.providers.config import RCS_KINDS, SMS_KINDS, ProviderSettings, build_providers
from engine.errors import ConfigError
from engine.stream.common.checkpoint import fail_stop
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
from engine.stream.gateway.idmap import IdMap
from engine.stream.gateway.ingress import Ingress, bind
from engine.stream.gateway.runtime import GatewayRuntime
from engine.stream.gateway.webhook_calls import build_caller

log = logging.getLogger("engine.stream.gateway")

SENDS_TABLE = "gateway-sends"
SWEEP_INTERVAL_S = 600.0
EXIT_CONFIG = 2
EVENTS = Events(
    starting="gateway_starting",
    ready="gateway_ready",
    stats="gateway_stats",
    stopped="gateway_stopped",
)


def build_gateway(settings: Settings, providers: ProviderSettings | None = None) -> Any:
    """The faust app of the gateway, wired up (not started); the webhook port is bound
    now (:class:`~engine.errors.ConfigError` when it can't be)."""
    providers = providers or ProviderSettings()
    topics = settings.topics
    webhooks = build_caller(settings)  # ConfigError: no secret while journeys need one
    sock = bind(providers.webhook.port)
    parts = open_parts(settings, app_id=settings.gateway_app_id, table=SENDS_TABLE, stage="gateway")
    timers = TimerIndex()
    rcs, sms = build_providers(providers, delivery_ms=settings.sim_delivery_ms)
    gateway = ChannelGateway(
        rcs=rcs,
        sms=sms,
        rate_limits=providers.rate_limits(),
        capability_ttl_s=providers.capability_ttl_s,
    )
    ids = IdMap()
    runtime = GatewayRuntime(
        settings,
        gateway,
        parts.backend,
        parts.checkpoint,
        timers,
        parts.dead_letters,
        ids,
        providers.concurrency,
        map_ids=providers.rcs != "simulated" or providers.sms != "simulated",
        webhooks=webhooks,
    )
    runtime.metrics = parts.metrics
    ingress = Ingress(settings, providers, ids, sock)
    ingress.metrics = parts.metrics

    async def sweep() -> None:
        cutoff = int(time.time() * 1000) - int(settings.dedupe_retention_h * 3_600_000)
        n = 0
        if settings.dedupe_retention_h > 0:
            async with parts.checkpoint.lock:
                n = await runtime.forget(cutoff)
        m = await ingress.sweep()
        if n or m:
            event(log, "dedupe_records_expired", records=n, webhook_events=m)

    def recovered(partitions: set[int]) -> None:
        n = runtime.receipts.rebuild(partitions)
        resent = runtime.recovered(partitions)
        event(
            log,
            "scheduled_receipts_rebuilt",
            partitions=sorted(partitions),
            pending=n,
            unsettled_sends=resent,
        )

    def partitions_revoked(partitions: set[int]) -> None:
        timers.drop_partitions(partitions)
        runtime.revoked(partitions)

    tickers = [
        Ticker("gateway-receipt-ticker", settings.tick_ms / 1000, runtime.receipts.tick),
        Ticker("gateway-dedupe-sweep", SWEEP_INTERVAL_S, sweep),
    ]
    app = serve(
        parts,
        ServiceConfig(
            log=log,
            events=EVENTS,
            agent="journeys-gateway",
            timer_prefix="gateway",
            inputs=(topics.send_requests,),
            owner=topics.send_requests,
            handle=runtime.handle,
            drain=runtime.drain,
            tickers=tuple(tickers),
            on_recovered=recovered,
            on_revoked=partitions_revoked,
            gauges=lambda: {"scheduled": len(timers), **runtime.gauges()},
            metrics_port=9465,
            pending_timers=lambda: len(timers),
            report=lambda: {
                **runtime.stats.report(),
                "webhooks": dict(ingress.receiver.counts),
                "webhook_calls": runtime.webhooks.report(),
            },
            ready_fields={"rcs": providers.rcs, "sms": providers.sms, "webhook_port": ingress.port},
            runtime=runtime,
        ),
    )

    async def start_ingress() -> None:
        try:
            await ingress.start()
        except Exception as exc:  # without its webhooks the gateway can't do its job
            fail_stop("webhook_ingress_failed", error=repr(exc))

    async def stop_ingress(sender: Any = None, **kwargs: Any) -> None:
        await ingress.stop()  # the providers close at the shutdown's checkpoint (drain)

    app.task(start_ingress)
    app.on_before_shutdown.connect(stop_ingress)
    app.journeys_ingress = ingress
    return app


def run_gateway(settings: Settings, providers: ProviderSettings | None = None) -> int:
    """Run the gateway until SIGINT/SIGTERM (simulated providers unless ``providers``
    says otherwise). Returns the process exit code."""
    return run_service(
        settings,
        settings.gateway_app_id,
        log,
        EVENTS,
        lambda: build_gateway(settings, providers),
    )


def add_provider_arguments(parser: argparse.ArgumentParser) -> None:
    g = parser.add_argument_group("providers (settings and secrets: JOURNEYS_* variables only)")
    g.add_argument("--rcs", choices=RCS_KINDS, default="simulated", help="RCS provider")
    g.add_argument("--sms", choices=SMS_KINDS, default="simulated", help="SMS provider")


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m engine.stream.gateway",
        description="channel gateway on Kafka, with its webhook server",
    )
    add_arguments(parser)
    add_provider_arguments(parser)
    args = parser.parse_args(argv)
    try:
        settings = Settings.from_env_and_args(args)
        providers = ProviderSettings.from_env(os.environ, rcs=args.rcs, sms=args.sms)
        return run_gateway(settings, providers)
    except ConfigError as exc:
        print(f"journeys gateway: {exc}", file=sys.stderr)
        return EXIT_CONFIG
