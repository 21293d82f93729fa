"""On Kafka, the worker reads ``journeys/_settings.yaml`` with the journeys: a journey's
holdout and the global control group hold back the same sends as in the simulator, with the
same outcome ids."""

from __future__ import annotations

import asyncio
import time
from collections import Counter
from pathlib import Path
from typing import Any

import orjson
import pytest

from engine.core.wire import decode_line
from engine.durations import format_ts, parse_ts_ms
from engine.lint.deployment import engine_config
from engine.lint.linter import load_journeys
from engine.sim.simulator import Simulator
from engine.stream.devtools.harness import StreamEnv

JOURNEY = """
id: holdout-stream-it
version: 1
entry: {event: signed_up}
goal: {event: bought, within: 1d}
holdout: 30%
settings: {default_timezone: UTC}
start: offer
nodes:
  offer: {type: send, channel: sms, text: "20% off today. Reply STOP to opt out.", next: pause}
  pause: {type: wait, duration: 2s, next: receipt}
  receipt: {type: send, channel: sms, marketing: false, text: "Your code: X1", next: done}
  done: {type: exit}
"""
SETTINGS = "global_control: {share: 30%, salt: stream-it}\n"


def key(o: dict[str, Any]) -> tuple[Any, ...]:
    reason = (o.get("attributes") or {}).get("reason")
    return (o["user_id"], o["node_id"], o["type"], reason)


@pytest.mark.timeout(90)
async def test_holdout_and_global_control_on_kafka_equal_the_simulator(
    kafka_bootstrap: str, tmp_path: Path
) -> None:
    jdir = tmp_path / "journeys"
    jdir.mkdir()
    (jdir / "holdout-stream-it.yaml").write_text(JOURNEY)
    (jdir / "_settings.yaml").write_text(SETTINGS)
    env = StreamEnv(kafka_bootstrap, tmp_path, jdir)
    try:
        worker, gateway = env.start_worker(), env.start_gateway()
        await worker.wait_for("worker_ready", 45)
        await gateway.wait_for("gateway_ready", 45)
        base = int(time.time() * 1000) + 1500
        lines: list[dict[str, Any]] = []
        for i in range(16):
            lines.append({"event_id": f"in-{i}", "user_id": f"h{i:02d}", "name": "signed_up",
                          "ts": format_ts(base + 100 * i),
                          "profile": {"phone": f"+1415555{2000 + i:04d}"}})  # fmt: skip
        for i in range(0, 16, 3):
            lines.append({"event_id": f"buy-{i}", "user_id": f"h{i:02d}", "name": "bought",
                          "ts": format_ts(base + 4000 + 100 * i)})  # fmt: skip
        config = engine_config([jdir])
        assert config.global_control is not None
        expected = Simulator(load_journeys([jdir]), config).run([decode_line(d) for d in lines])
        reasons = Counter(o.attributes.get("reason") for o in expected.outcomes
                          if o.type == "message_suppressed")  # fmt: skip
        assert reasons["holdout"] and reasons["global_control"], reasons  # both groups appear

        t = env.settings().topics
        lines.sort(key=lambda d: d["ts"])
        await env.produce(
            [(t.user_events, d["user_id"].encode(), orjson.dumps(d)) for d in lines],
            at=[parse_ts_ms(d["ts"]) / 1000 for d in lines],
        )
        deadline = time.monotonic() + 45
        got: list[dict[str, Any]] = []
        while time.monotonic() < deadline:
            got = await env.read_json(t.outcomes)
            if len(got) >= len(expected.outcomes):
                break
            await asyncio.sleep(0.5)
        await asyncio.sleep(2.0)
        got = await env.read_json(t.outcomes)
        want = Counter(key(o.to_wire()) for o in expected.outcomes)
        have = Counter(key(o) for o in got)
        assert have == want, f"missing: {want - have}\nextra: {have - want}\n" + worker.tail(15)
        assert sorted(o["outcome_id"] for o in got) == sorted(
            o.outcome_id for o in expected.outcomes
        )
    finally:
        await env.aclose()
