"""``journeys run``: the engine worker on Kafka (a faust app).

    python -m engine.stream.worker --journeys journeys/

One agent consumes the four co-partitioned input topics (user events, channel receipts,
inbound, timers) one message at a time and hands each to
:class:`~engine.stream.worker.runtime.EngineRuntime` under the checkpoint's lock; the checkpoint
commits (see :mod:`engine.stream.common.checkpoint`) every ``commit_interval_ms``, every
``commit_every`` inputs, when partitions are revoked and at shutdown. A ticker produces due
wake-ups from the timer index to ``journey.timers``; the index is rebuilt from the table
after every recovery and dropped for revoked partitions.
"""

from __future__ import annotations

import argparse
import logging
import sys
import time
from collections.abc import Sequence
from typing import Any

from engine.stream.common.checkpoint import fail_stop
from engine.stream.common.logs import event
from engine.stream.common.settings import Settings, add_arguments

log = logging.getLogger("engine.stream.worker")

STATE_TABLE = "user-states"


def build_worker(settings: Settings) -> Any:
    """The faust app of the engine worker, wired up (not started)."""
    import faust  # noqa: F401  (imported here so `settings` stays faust-free)

    from engine.core.engine import Engine
    from engine.core.ids import derive_id
    from engine.journey.linter import load_journeys
    from engine.stream import codec
    from engine.stream.common.faust_glue import (
        FaustBackend,
        InputFeed,
        input_channel,
        make_app,
        new_checkpoint,
        start_recovery_watchdog,
        state_table,
    )
    from engine.stream.worker.runtime import EngineRuntime, parse_state_value
    from engine.stream.common.timers import TimerIndex

    journeys = load_journeys([settings.journeys_path()])
    engine = Engine(journeys)
    topics = settings.topics
    app: Any = make_app(settings, settings.app_id)
    table = state_table(app, STATE_TABLE, settings)
    backend = FaustBackend(app, table)
    checkpoint = new_checkpoint(backend)
    timers = TimerIndex()
    runtime = EngineRuntime(engine, settings, checkpoint, timers, backend.send, backend.get)
    channel = input_channel(app, *topics.engine_inputs())
    ready = {"logged": False}

    feed = InputFeed(
        settings,
        settings.app_id,
        set(topics.engine_inputs()),
        checkpoint,
        runtime.handle,
        backend.assigned,
    )

    async def process(stream: Any) -> None:
        async for ev in stream.events():
            m = ev.message
            if settings.trace_inputs:
                event(
                    log,
                    "input",
                    topic=m.topic,
                    partition=m.partition,
                    offset=m.offset,
                    key=m.key.decode(errors="replace") if m.key else None,
                )
            await feed.feed(m)
            if checkpoint.due(settings.commit_every):
                await checkpoint.commit("count")

    app.agent(channel, name="journeys-engine", concurrency=1)(process)

    async def periodic_commit() -> None:
        await checkpoint.commit("interval")

    app.timer(settings.commit_interval_ms / 1000, name="journeys-checkpoint")(periodic_commit)

    async def ticker() -> None:
        now = int(time.time() * 1000)
        settled = None
        if settings.timer_settle_ms > 0:
            quiet_since = time.monotonic() - settings.timer_settle_ms / 1000
            settled = [p for p in timers.heaps if runtime.last_input.get(p, 0.0) <= quiet_since]
        for due in list(timers.pop_due(now, settled)):
            try:
                fut = await backend.send(
                    topics.timers,
                    due.user_id.encode(),
                    codec.wake_value(due.user_id, due.at, due.token),
                    due.partition,
                )
            except Exception as exc:
                timers.requeue(due)
                event(log, "wake_produce_failed", logging.WARNING, error=repr(exc))
                continue

            def requeue_on_error(f: Any, due: Any = due) -> None:
                if f.cancelled() or f.exception() is not None:
                    timers.requeue(due)

            fut.add_done_callback(requeue_on_error)  # type: ignore[attr-defined]

    app.timer(settings.tick_ms / 1000, name="journeys-timer-ticker")(ticker)

    def rebuild_timers() -> None:
        partitions = backend.active_partitions(topics.user_events)

        def entries() -> Any:
            for key, raw in list(backend.items()):
                if raw is None:
                    continue
                try:
                    partition, state = parse_state_value(raw)
                except Exception:
                    continue
                at = state.get("w")
                if at is not None:
                    user = key.decode() if isinstance(key, bytes) else str(key)
                    yield user, partition, at, derive_id("wake", user, at)

        n = timers.rebuild(partitions, entries())
        event(
            log,
            "timers_rebuilt",
            partitions=sorted(partitions),
            pending=n,
            next_due=timers.next_due(),
        )
        if not ready["logged"]:
            ready["logged"] = True
            event(
                log,
                "worker_ready",
                app_id=settings.app_id,
                partitions=sorted(partitions),
                journeys=len(journeys),
            )

    async def on_recovered() -> None:
        try:
            await feed.on_assigned(app)
        except Exception as exc:  # without positions, inputs could be skipped
            fail_stop("positions_unavailable", error=repr(exc))
        rebuild_timers()

    table.on_recover(on_recovered)

    async def on_revoked(sender: Any, revoked: Any, **kwargs: Any) -> None:
        start_recovery_watchdog(app, settings.recovery_stall_s)
        await checkpoint.commit("revoke")
        feed.on_revoked(revoked)
        gone = {tp.partition for tp in revoked if tp.topic == topics.user_events}
        timers.drop_partitions(gone)
        event(log, "partitions_revoked", partitions=sorted(gone))

    app.on_partitions_revoked.connect(on_revoked)

    async def on_assigned(sender: Any, assigned: Any, **kwargs: Any) -> None:
        mine = sorted(tp.partition for tp in assigned if tp.topic == topics.user_events)
        event(log, "partitions_assigned", partitions=mine)

    app.on_partitions_assigned.connect(on_assigned)

    async def on_shutdown(sender: Any, **kwargs: Any) -> None:
        checkpoint.closing = True
        await checkpoint.commit("shutdown")
        await feed.reader.close()
        event(log, "worker_stopped", **runtime.stats.report())

    app.on_before_shutdown.connect(on_shutdown)

    if settings.stats_interval_s > 0:

        async def stats() -> None:
            event(
                log,
                "stats",
                timers=len(timers),
                checkpoint_max_ms=round(checkpoint.stats.max_ms, 1),
                **runtime.stats.report(),
            )

        app.timer(settings.stats_interval_s, name="journeys-stats")(stats)

    app.journeys_runtime = runtime  # for introspection
    return app


def run_worker(settings: Settings) -> int:
    """Run the engine worker until SIGINT/SIGTERM. Returns the process exit code.

    Creates the topics first (``settings.partitions`` each; a topic with another partition
    count is a :class:`~engine.errors.ConfigError`)."""
    from engine.stream.common.faust_glue import run_app
    from engine.stream.common.logs import setup

    setup(settings.log_level, settings.app_id)
    event(log, "worker_starting", **settings.describe())
    return run_app(settings, lambda: build_worker(settings))


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m engine.stream.worker", description="journey engine worker on Kafka"
    )
    add_arguments(parser, journeys=True)
    settings = Settings.from_env_and_args(parser.parse_args(argv))
    return run_worker(settings)


if __name__ == "__main__":
    sys.exit(main())
