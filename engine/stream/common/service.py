"""One faust service, wired once: the skeleton of the engine worker and the gateway.

A service consumes its input topics with one faust agent, in batches, and hands every
message to its handler, in offset order and once
(:class:`~engine.stream.common.feed.InputFeed`), under the checkpoint's lock (taken once
per batch). What the handler produces and buffers becomes durable at the commit
boundary (:meth:`Checkpoint.commit <engine.stream.common.checkpoint.Checkpoint.commit>`),
which the skeleton runs:

* every ``commit_interval_ms`` (a faust timer) and after every ``commit_every`` inputs;
* when partitions are revoked, before their next owner starts on them;
* at shutdown, before the gap reader is closed.

Around that it wires, the same way for both services: the faust app and its state table,
the dead-letter producer, the configuration's tickers, the recovery watchdog (from the
first revocation: faust timers only run after the first recovery), the input positions and
the configuration's index rebuilt after every recovery, a ``ready`` line after the first
one, a ``stats`` line every ``stats_interval_s`` and a ``stopped`` line at shutdown.

A configuration takes two steps, because its runtime is built on the pieces of the
first and handed to the second (see ``engine/stream/worker/service.py``)::

    parts = open_parts(settings, app_id=..., table=..., stage=...)
    runtime = SomeRuntime(..., parts.backend, parts.checkpoint, parts.dead_letters)
    app = serve(parts, ServiceConfig(handle=runtime.handle, ...))
    # and to run it: run_service(settings, app_id, log, events, build)

This module imports no faust itself (the functions do), so the configurations can be
imported without it.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from engine.stream.common.checkpoint import Checkpoint, fail_stop
from engine.stream.common.crashes import CrashGuard
from engine.stream.common.dead_letters import DeadLetters
from engine.stream.common.feed import Handler, InputFeed
from engine.stream.common.logs import event, flush_repeats, setup
from engine.stream.common.metrics import Metrics
from engine.stream.common.ops import Health, OpsServer
from engine.stream.common.settings import Settings

if TYPE_CHECKING:  # faust_glue imports faust; this module must not, at import time
    from engine.stream.common.faust_glue import FaustBackend

Partitions = set[int]

#: How often the feed looks for records left at the tail of a quiet partition (a record
#: is read from the broker after two checks without progress: 3 to 6 s).
TAIL_CHECK_S = 3.0


def _nothing(partitions: Partitions) -> None:
    pass


@dataclass(frozen=True)
class Ticker:
    """A periodic job of the service: a faust timer named ``name``, every ``interval_s``.
    It runs outside the checkpoint's lock; a job that touches buffered state takes it."""

    name: str
    interval_s: float
    run: Callable[[], Awaitable[None]]


@dataclass(frozen=True)
class Events:
    """The names of the service's own lifecycle log lines (``stats`` is the worker's
    historic name for its stats line; the gateway's is ``gateway_stats``)."""

    starting: str
    ready: str
    stats: str
    stopped: str


@dataclass(frozen=True)
class Parts:
    """What a runtime is built on: the faust app and its state table, the checkpoint over
    them, and the dead-letter producer."""

    settings: Settings
    app_id: str
    app: Any  # faust.App
    table: Any  # faust Table: bytes -> bytes, changelog-backed
    backend: FaustBackend
    checkpoint: Checkpoint
    dead_letters: DeadLetters
    metrics: Metrics


def open_parts(settings: Settings, *, app_id: str, table: str, stage: str) -> Parts:
    """Step 1: the faust app ``app_id`` (its consumer group), its state table ``table``,
    the checkpoint and the dead-letter producer (``stage``: "engine", "gateway")."""
    from engine.stream.common.faust_glue import FaustBackend, make_app, state_table

    app = make_app(settings, app_id)
    tbl = state_table(app, table, settings)
    backend = FaustBackend(app, tbl)
    metrics = Metrics()
    checkpoint = Checkpoint(backend=backend, observe=metrics.checkpoint_duration.observe)
    dead_letters = DeadLetters(
        backend.send, checkpoint, settings.topics.dead_letters, stage, metrics=metrics
    )
    return Parts(settings, app_id, app, tbl, backend, checkpoint, dead_letters, metrics)


@dataclass(frozen=True)
class ServiceConfig:
    """What makes a service the engine worker or the gateway."""

    log: logging.Logger  # the service's own lines go here
    events: Events
    agent: str  # name of the faust agent
    timer_prefix: str  # faust timers: <prefix>-checkpoint, <prefix>-stats
    inputs: tuple[str, ...]  # the co-partitioned input topics
    # The input topic whose partition numbers the hooks get (the other inputs, and every
    # output, use the same numbers: the topics are co-partitioned).
    owner: str
    handle: Handler  # one input, under the checkpoint's lock
    report: Callable[[], dict[str, Any]]  # the runtime's counters (stats and stopped lines)
    gauges: Callable[[], dict[str, Any]] = dict  # what is pending now (stats line, first)
    # After every recovery, for the partitions now owned (positions already reset):
    # rebuild the in-memory index of the table (timers, scheduled receipts).
    on_recovered: Callable[[Partitions], None] = _nothing
    on_assigned: Callable[[Partitions], None] = _nothing  # before recovery
    on_revoked: Callable[[Partitions], None] = _nothing  # after the revoke commit
    # After every input batch, outside the lock; gets whether no further input is waiting.
    after_input: Callable[[bool], Awaitable[None]] | None = None
    drain: Callable[[], Awaitable[None]] | None = None  # step 0 of every commit
    tickers: tuple[Ticker, ...] = ()
    ready_fields: Mapping[str, Any] = field(default_factory=dict)  # extra fields of `ready`
    trace_inputs: bool = False  # an `input` line per message
    runtime: Any = None  # kept as app.journeys_runtime, for introspection
    metrics_port: int = 9464  # the operations endpoint's default port (JOURNEYS_METRICS_PORT)
    pending_timers: Callable[[], int] | None = None  # for the journeys_pending_timers gauge
    # Input batches: at most batch_max messages, or what came within batch_within_s.
    batch_max: int = 500
    batch_within_s: float = 0.005


def serve(parts: Parts, config: ServiceConfig) -> Any:
    """Step 2: wire the configuration into the app; returns the faust app (not started)."""
    from engine.stream.common.faust_glue import input_channel, start_recovery_watchdog

    settings, app, checkpoint, log = parts.settings, parts.app, parts.checkpoint, config.log
    checkpoint.drain = config.drain
    feed = InputFeed(
        settings,
        parts.app_id,
        set(config.inputs),
        checkpoint,
        config.handle,
        parts.backend.assigned,
        parts.dead_letters,
    )
    crashes = CrashGuard(config.agent, settings.agent_max_crashes)
    metrics = parts.metrics
    health = Health(
        details=lambda: {"partitions": sorted(parts.backend.active_partitions(config.owner))}
    )
    ops = OpsServer(metrics, health)
    ready = {"logged": False}

    def owned(tps: Any) -> Partitions:
        return {tp.partition for tp in tps if tp.topic == config.owner}

    # ------------------------------------------------------------------ the inputs

    async def process(stream: Any) -> None:
        try:
            await consume(stream)
        except Exception as exc:  # faust restarts the agent; a repeated crash stops us
            crashes.crashed(exc)
            raise

    inputs_counter: dict[str, Any] = {}  # topic -> its prebuilt metric child

    async def consume(stream: Any) -> None:
        # Batches of up to batch_max messages, or what arrived within batch_within_s
        # (faust's take_events: the per-message cost of faust's stream stays, the lock,
        # the producer calls, the metrics and the flush are per batch; docs/streaming.md).
        async for events in stream.take_events(config.batch_max, config.batch_within_s):
            messages = [ev.message for ev in events]
            counts: dict[str, int] = {}
            for m in messages:
                counts[m.topic] = counts.get(m.topic, 0) + 1
                if config.trace_inputs:
                    event(
                        log,
                        "input",
                        topic=m.topic,
                        partition=m.partition,
                        offset=m.offset,
                        key=m.key.decode(errors="replace") if m.key else None,
                    )
            for topic, n in counts.items():
                child = inputs_counter.get(topic)
                if child is None:
                    child = inputs_counter[topic] = metrics.inputs.labels(topic)
                child.inc(n)
            await feed.feed_batch(messages)
            if config.after_input is not None:
                await config.after_input(stream.channel.empty())
            if checkpoint.due(settings.commit_every):
                await checkpoint.commit("count")

    channel = input_channel(app, *config.inputs)
    app.agent(channel, name=config.agent, concurrency=1)(process)

    # ------------------------------------------------------------------ timers

    async def periodic_commit() -> None:
        await checkpoint.commit("interval")

    app.timer(settings.commit_interval_ms / 1000, name=f"{config.timer_prefix}-checkpoint")(
        periodic_commit
    )
    for ticker in config.tickers:
        app.timer(ticker.interval_s, name=ticker.name)(ticker.run)

    async def tail_check() -> None:
        """Records faust dropped at the tail of a quiet partition (feed.catch_up)."""
        if not health.ready:
            return  # recovering: the positions are being reset
        try:
            await feed.catch_up()
        except Exception as exc:  # the broker is away: the next check tries again
            event(log, "tail_check_failed", logging.WARNING, error=repr(exc)[:300])

    app.timer(TAIL_CHECK_S, name=f"{config.timer_prefix}-tail-check")(tail_check)

    # ------------------------------------------------------------------ operations

    bind = settings.metrics_bind(config.metrics_port)

    async def start_ops() -> None:
        if bind is None:
            return
        try:
            port = await ops.start(*bind)
        except OSError as exc:  # the journeys go on; the operator sees why there are no figures
            event(
                log,
                "metrics_unavailable",
                logging.ERROR,
                error=str(exc),
                hint="set JOURNEYS_METRICS_PORT to a free port, 0 (any) or off",
            )
            return
        event(log, "metrics_listening", url=f"http://{bind[0]}:{port}/metrics")

    app.task(start_ops)

    async def gauges() -> None:
        """Consumer lag per owned input partition (high watermark - next offset to
        process) and the timer index size: cheap, so every few seconds."""
        consumer: Any = app.consumer
        assigned = {(tp.topic, tp.partition): tp for tp in consumer.assignment()}
        for key, offset in list(feed.positions.expected.items()):
            tp = assigned.get(key)
            high = consumer.highwater(tp) if tp is not None else None
            if high is not None:
                metrics.consumer_lag.labels(key[0], str(key[1])).set(max(0, high - offset))
        if config.pending_timers is not None:
            metrics.pending_timers.set(config.pending_timers())

    app.timer(5.0, name=f"{config.timer_prefix}-gauges")(gauges)

    # ------------------------------------------------------------------ partitions

    async def on_recovered() -> None:
        try:
            await feed.on_assigned(app)
        except Exception as exc:  # without positions, inputs could be skipped
            fail_stop("positions_unavailable", error=repr(exc))
        partitions = parts.backend.active_partitions(config.owner)
        config.on_recovered(partitions)
        health.ready = True
        if not ready["logged"]:
            ready["logged"] = True
            event(
                log,
                config.events.ready,
                app_id=parts.app_id,
                partitions=sorted(partitions),
                **config.ready_fields,
            )

    parts.table.on_recover(on_recovered)

    async def on_revoked(sender: Any, revoked: Any, **kwargs: Any) -> None:
        health.ready = False  # until the partitions' tables are recovered again
        metrics.consumer_lag.clear()
        start_recovery_watchdog(app, settings.recovery_stall_s)
        # Commit what was processed while the partitions were ours: their next owner
        # resumes from these offsets.
        await checkpoint.commit("revoke")
        feed.on_revoked(revoked)
        config.on_revoked(owned(revoked))

    app.on_partitions_revoked.connect(on_revoked)

    async def on_assigned(sender: Any, assigned: Any, **kwargs: Any) -> None:
        config.on_assigned(owned(assigned))

    app.on_partitions_assigned.connect(on_assigned)

    # ------------------------------------------------------------------ stop

    async def on_shutdown(sender: Any, **kwargs: Any) -> None:
        checkpoint.closing = True
        await checkpoint.commit("shutdown")
        await feed.reader.close()
        event(log, config.events.stopped, **config.report())
        await ops.stop()
        flush_repeats()

    app.on_before_shutdown.connect(on_shutdown)

    # ------------------------------------------------------------------ stats

    if settings.stats_interval_s > 0:

        async def stats() -> None:
            event(
                log,
                config.events.stats,
                **config.gauges(),
                input_batches=feed.batches,
                **config.report(),
            )

        app.timer(settings.stats_interval_s, name=f"{config.timer_prefix}-stats")(stats)

    app.journeys_runtime = config.runtime
    app.journeys_inputs = config.inputs  # what run_service checks the group's offsets against
    return app


def run_service(
    settings: Settings, app_id: str, log: logging.Logger, events: Events, build: Callable[[], Any]
) -> int:
    """Build the app (a bad journey stops here, before anything touches Kafka), check that
    the consumer group is this run's (:mod:`~engine.stream.common.namespace`), create the
    topics and run the app as a faust worker until SIGINT/SIGTERM. Returns the process exit
    code; raises :class:`~engine.errors.ConfigError` for a group of another run or a topic
    with another partition count than ``settings.partitions``."""
    import faust

    from engine.stream.common.namespace import check_namespace
    from engine.stream.common.preflight import check_brokers
    from engine.stream.common.topics import ensure_topics

    setup(settings.log_level, app_id)
    event(log, events.starting, **settings.describe())
    # One event loop for everything: faust binds its services to the loop they are made on.
    loop = asyncio.new_event_loop()
    asyncio.set_event_loop(loop)
    app = build()
    # One clear error for a broker that refuses the settings (faust would retry forever).
    loop.run_until_complete(check_brokers(settings, f"{app_id}-preflight"))
    loop.run_until_complete(check_namespace(settings, app_id, app.journeys_inputs))
    loop.run_until_complete(ensure_topics(settings, settings.topics.all()))
    worker = faust.Worker(
        app,
        loop=loop,
        loglevel=settings.log_level,
        quiet=True,
        redirect_stdouts=False,
        logging_config=app.conf.logging_config,
    )
    try:
        worker.execute_from_commandline()
    except SystemExit as exc:
        return int(exc.code or 0)
    return 0
