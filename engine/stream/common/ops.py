"""The operations endpoint of a service: ``/metrics``, ``/healthz``, ``/readyz``.

* ``/metrics``: Prometheus text format (:class:`~engine.stream.common.metrics.Metrics`).
* ``/healthz``: liveness. 200 while the event loop answers and the service hasn't failed;
  503 with the reason once it has (a supervisor restarts it).
* ``/readyz``: readiness. 200 once the service consumes (partitions assigned and tables
  recovered), 503 before that and during a rebalance.

Served by aiohttp on ``JOURNEYS_METRICS_PORT`` (``0``: any free port, reported in the
ready log line; unset: off) on ``JOURNEYS_METRICS_HOST`` (default 127.0.0.1).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

import orjson
from aiohttp import web

from engine.stream.common.metrics import Metrics

CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"


@dataclass
class Health:
    """What the endpoints report; the service updates it."""

    ready: bool = False
    failed: str | None = None
    details: Callable[[], dict[str, object]] = field(default=lambda: {})


class OpsServer:
    def __init__(self, metrics: Metrics, health: Health) -> None:
        self.metrics = metrics
        self.health = health
        self._runner: web.AppRunner | None = None
        self.port: int | None = None

    def app(self) -> web.Application:
        app = web.Application()
        app.router.add_get("/metrics", self._metrics)
        app.router.add_get("/healthz", self._healthz)
        app.router.add_get("/readyz", self._readyz)
        return app

    async def start(self, host: str, port: int) -> int:
        self._runner = web.AppRunner(self.app(), access_log=None)
        await self._runner.setup()
        site = web.TCPSite(self._runner, host, port)
        await site.start()
        # Port 0 picks a free one: the runner knows which.
        self.port = int(self._runner.addresses[0][1])
        return self.port

    async def stop(self) -> None:
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None

    async def _metrics(self, request: web.Request) -> web.Response:
        self.metrics.ready.set(1 if self.health.ready else 0)
        return web.Response(body=self.metrics.exposition(), headers={"Content-Type": CONTENT_TYPE})

    async def _healthz(self, request: web.Request) -> web.Response:
        if self.health.failed is not None:
            return _json(503, {"status": "failed", "reason": self.health.failed})
        return _json(200, {"status": "ok"})

    async def _readyz(self, request: web.Request) -> web.Response:
        body: dict[str, object] = {"ready": self.health.ready, **self.health.details()}
        return _json(200 if self.health.ready and self.health.failed is None else 503, body)


def _json(status: int, body: dict[str, object]) -> web.Response:
    return web.Response(
        status=status, body=orjson.dumps(body), content_type="application/json"
    )
