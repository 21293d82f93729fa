"""The worker and the gateway serve /metrics, /healthz and /readyz on the real broker, and
the figures move with the inputs."""

from __future__ import annotations

import asyncio
import time
from pathlib import Path

import aiohttp
import orjson
import pytest

from engine.durations import format_ts
from engine.stream.devtools.harness import Service, StreamEnv

JOURNEY = """
id: ops-it
version: 1
entry: {event: signed_up}
start: hello
nodes:
  hello: {type: send, channel: sms, marketing: false, text: "Hi", next: wait}
  wait: {type: wait, duration: 1h, next: done}
  done: {type: exit}
"""


async def _get(url: str) -> tuple[int, str]:
    async with aiohttp.ClientSession() as s, s.get(url) as r:
        return r.status, await r.text()


def _sample(text: str, name: str) -> float:
    """Sum of a metric's samples (all label sets)."""
    total = 0.0
    for line in text.splitlines():
        if line.startswith(name) and not line.startswith("#"):
            total += float(line.rsplit(" ", 1)[1])
    return total


async def _base(svc: Service) -> str:
    listening = await svc.wait_for("metrics_listening", 60)
    return str(listening["url"]).removesuffix("/metrics")


@pytest.mark.timeout(150)
async def test_worker_and_gateway_expose_metrics_health_and_readiness(
    kafka_bootstrap: str, tmp_path: Path
) -> None:
    jdir = tmp_path / "journeys"
    jdir.mkdir()
    (jdir / "ops.yaml").write_text(JOURNEY)
    env = StreamEnv(kafka_bootstrap, tmp_path, jdir, partitions=2)
    try:
        worker, gateway = env.start_worker(), env.start_gateway()
        await worker.wait_for("worker_ready", 60)
        await gateway.wait_for("gateway_ready", 60)
        wbase, gbase = await _base(worker), await _base(gateway)
        for base in (wbase, gbase):
            assert (await _get(base + "/healthz"))[0] == 200
            assert (await _get(base + "/readyz"))[0] == 200

        now = int(time.time() * 1000)
        t = env.settings().topics
        records = [
            (
                t.user_events,
                f"m{i}".encode(),
                orjson.dumps(
                    {
                        "event_id": f"e{i}",
                        "user_id": f"m{i}",
                        "name": "signed_up",
                        "ts": format_ts(now + i),
                        "profile": {"phone": "+14155550100"},
                    }
                ),
            )
            for i in range(5)
        ]
        records.append((t.user_events, b"bad", b"{not json"))
        await env.produce(records)

        deadline = time.monotonic() + 60
        text = ""
        while time.monotonic() < deadline:
            _, text = await _get(wbase + "/metrics")
            if (
                _sample(text, "journeys_inputs_total") >= 6
                and _sample(text, "journeys_pending_timers") >= 5
            ):
                break
            await asyncio.sleep(1)
        assert _sample(text, "journeys_inputs_total") >= 6, text
        assert 'journeys_dead_letters_total{reason="bad_json"} 1.0' in text
        assert _sample(text, 'journeys_outcomes_total{type="message_sent"}') == 5
        assert _sample(text, "journeys_pending_timers") == 5
        assert "journeys_checkpoint_duration_seconds_count" in text
        assert "journeys_consumer_lag{" in text
        assert "journeys_ready 1.0" in text

        deadline = time.monotonic() + 30
        gtext = ""
        while time.monotonic() < deadline:
            _, gtext = await _get(gbase + "/metrics")
            if _sample(gtext, "journeys_provider_sends_total") >= 5:
                break
            await asyncio.sleep(1)
        assert _sample(gtext, "journeys_inputs_total") >= 5, gtext
        assert _sample(gtext, "journeys_provider_sends_total") == 5, gtext
        assert _sample(gtext, "journeys_provider_latency_seconds_count") == 5, gtext
    finally:
        await env.aclose()
