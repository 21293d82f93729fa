"""The operations endpoint (/metrics, /healthz, /readyz) and the Grafana dashboard that
reads its metrics."""

from __future__ import annotations

import json
import re
from pathlib import Path

import aiohttp

from engine.stream.common.metrics import Metrics
from engine.stream.common.ops import Health, OpsServer

DASHBOARD = Path(__file__).resolve().parents[2] / "deploy" / "grafana-dashboard.json"


async def _get(port: int, path: str) -> tuple[int, str]:
    async with aiohttp.ClientSession() as s, s.get(f"http://127.0.0.1:{port}{path}") as r:
        return r.status, await r.text()


async def test_metrics_health_and_readiness() -> None:
    metrics, health = Metrics(), Health()
    server = OpsServer(metrics, health)
    port = await server.start("127.0.0.1", 0)
    try:
        metrics.inputs.labels("journey.user-events").inc(3)
        metrics.dead_letters.labels("bad_timestamp").inc()
        status, text = await _get(port, "/metrics")
        assert status == 200
        assert 'journeys_inputs_total{topic="journey.user-events"} 3.0' in text
        assert 'journeys_dead_letters_total{reason="bad_timestamp"} 1.0' in text
        assert "journeys_ready 0.0" in text
        assert (await _get(port, "/readyz"))[0] == 503
        assert (await _get(port, "/healthz"))[0] == 200
        health.ready = True
        assert (await _get(port, "/readyz"))[0] == 200
        assert "journeys_ready 1.0" in (await _get(port, "/metrics"))[1]
        health.failed = "claim not acknowledged"
        status, text = await _get(port, "/healthz")
        assert status == 503 and "claim not acknowledged" in text
        assert (await _get(port, "/readyz"))[0] == 503
    finally:
        await server.stop()


def test_the_dashboard_draws_only_metrics_that_exist() -> None:
    suffixes = {"counter": ("_total",), "histogram": ("_bucket", "_sum", "_count"), "gauge": ("",)}
    names = {
        metric.name + suffix
        for metric in Metrics().registry.collect()
        for suffix in suffixes[metric.type]
    }
    exprs = [t["expr"] for p in json.loads(DASHBOARD.read_text())["panels"] for t in p["targets"]]
    used = {m for e in exprs for m in re.findall(r"journeys_[a-z_]+", e)}
    assert used, "the dashboard queries nothing"
    assert used <= names, f"unknown metrics in the dashboard: {sorted(used - names)}"
