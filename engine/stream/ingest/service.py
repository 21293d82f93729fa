"""``journeys ingest``: the process. A Kafka producer (acks from every in-sync replica,
idempotent) under :class:`~engine.stream.ingest.server.IngestServer`, until SIGINT/SIGTERM.

    python -m engine.stream.ingest [--port 8089] [--bind 127.0.0.1]

At start: the write keys are checked (none: exit 2, naming the variable), then the broker
(:func:`~engine.stream.common.preflight.check_brokers`) and the two topics it writes
(created with ``settings.partitions`` when missing; another partition count is refused, as
the worker does). Not part of any consumer group: run as many as the traffic needs.
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import signal
import sys
from collections.abc import Awaitable, Sequence
from typing import Any

from aiohttp import web
from aiokafka import AIOKafkaProducer

from engine.errors import ConfigError
from engine.stream.common.logs import event, flush_repeats, setup
from engine.stream.common.settings import Settings, add_arguments
from engine.stream.ingest.config import IngestConfig, add_ingest_arguments
from engine.stream.ingest.server import IngestServer

log = logging.getLogger("engine.stream.ingest")

EXIT_CONFIG = 2
#: How long a stopping server lets calls in flight finish (their acks included).
SHUTDOWN_GRACE_S = 10.0


class KafkaSink:
    """:class:`~engine.stream.ingest.server.Sink` on an aiokafka producer."""

    def __init__(self, producer: AIOKafkaProducer) -> None:
        self.producer = producer

    async def enqueue(self, topic: str, key: bytes | None, value: bytes) -> Awaitable[Any]:
        fut: Awaitable[Any] = await self.producer.send(topic, value, key=key)
        return fut


class IngestService:
    """The server and its producer; :meth:`start` returns the port it listens on."""

    def __init__(self, settings: Settings, config: IngestConfig) -> None:
        self.settings = settings
        self.config = config
        self._producer: AIOKafkaProducer | None = None
        self._runner: web.AppRunner | None = None
        self.server: IngestServer | None = None
        self.port: int | None = None

    async def start(self) -> int:
        from engine.stream.common.preflight import check_brokers
        from engine.stream.common.topics import ensure_topics

        s = self.settings
        client_id = f"{s.namespace}journeys-ingest"
        await check_brokers(s, f"{client_id}-preflight")
        await ensure_topics(s, (s.topics.user_events, s.topics.dead_letters))
        self._producer = AIOKafkaProducer(
            bootstrap_servers=s.bootstrap_servers,
            client_id=client_id,
            acks="all",
            enable_idempotence=True,
            linger_ms=2,  # calls arriving together share a produce request
            max_request_size=2 * 1024 * 1024,  # a dead letter of a 500 KB batch, in base64
            **s.security.aiokafka_kwargs(),
        )
        await self._producer.start()
        self.server = IngestServer(s, self.config, KafkaSink(self._producer))
        self._runner = web.AppRunner(
            self.server.app(), access_log=None, shutdown_timeout=SHUTDOWN_GRACE_S
        )
        await self._runner.setup()
        try:
            await web.TCPSite(self._runner, self.config.bind, self.config.port).start()
        except OSError as exc:
            raise ConfigError(
                f"--port {self.config.port} / --bind {self.config.bind}: can't listen there "
                f"({exc.strerror}); pick a free port (JOURNEYS_INGEST_PORT)"
            ) from exc
        self.port = int(self._runner.addresses[0][1])
        event(
            log,
            "ingest_ready",
            bind=self.config.bind,
            port=self.port,
            topic=s.topics.user_events,
            dead_letters=s.topics.dead_letters,
            profile_event=self.config.profile_event,
            write_keys=len(self.config.keys.keys),
        )
        return self.port

    async def stop(self) -> None:
        if self._runner is not None:
            await self._runner.cleanup()  # stops listening, lets calls in flight finish
            self._runner = None
        if self._producer is not None:
            await self._producer.stop()  # sends what is queued
            self._producer = None
        if self.port is not None:
            event(log, "ingest_stopped", port=self.port)
            self.port = None


async def serve(settings: Settings, config: IngestConfig) -> None:
    """Run until SIGINT or SIGTERM."""
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    service = IngestService(settings, config)
    try:
        await service.start()
        await stop.wait()
    finally:
        await service.stop()


def run_ingest(settings: Settings, config: IngestConfig) -> int:
    """The ingest server until SIGINT/SIGTERM; the process exit code."""
    setup(settings.log_level, "journeys-ingest")
    event(log, "ingest_starting", bootstrap=settings.bootstrap, namespace=settings.namespace)
    try:
        asyncio.run(serve(settings, config))
    finally:
        flush_repeats()
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m engine.stream.ingest",
        description="Segment / RudderStack HTTP tracking API -> journey.user-events",
    )
    add_ingest_arguments(parser)
    add_arguments(parser)
    args = parser.parse_args(argv)
    try:
        config = IngestConfig.from_env(port=args.port, bind=args.bind)
        return run_ingest(Settings.from_env_and_args(args), config)
    except ConfigError as exc:
        print(f"journeys ingest: {exc}", file=sys.stderr)
        return EXIT_CONFIG
