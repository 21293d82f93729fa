"""Profiles on Kafka give the simulator's outcomes: profile events (from the deployment's
settings file), update_profile nodes read by a later branch and template, max_entries in
a window, and an event past a profile limit dead-lettered with reason profile_limit while
the simulator lists it as refused."""

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
id: crm-it
version: 1
entry: {event: converted, reentry: always, max_entries: 2, max_entries_per: 1h}
settings: {default_timezone: UTC}
start: record
nodes:
  record:
    type: update_profile
    set: {plan: entry.plan, conversions: "(user.conversions or 0) + 1"}
    unset: [trial]
    next: which
  which:
    type: branch
    cases: [{when: "user.plan == 'annual'", next: annual}]
    default: thanks
  annual: {type: send, channel: sms, marketing: false, text: "Annual {{ user.name }}", next: done}
  thanks:
    type: send
    channel: sms
    marketing: false
    text: "Thanks {{ user.name }} #{{ user.conversions }}"
    next: done
  done: {type: exit}
"""


def scenario(base_ms: int) -> list[dict[str, Any]]:
    lines: list[dict[str, Any]] = []

    def ev(at: int, user: str, name: str, eid: str, **extra: Any) -> None:
        lines.append(
            {"event_id": eid, "user_id": user, "name": name, "ts": format_ts(base_ms + at), **extra}
        )

    for i in range(6):
        u = f"p{i}"
        who = {"name": f"N{i}", "phone": f"+1415555{2000 + i:04d}", "trial": True}
        ev(100 * i, u, "identify", f"{u}-id", properties=who)
        plan = "annual" if i % 2 else "monthly"
        ev(1000 + 100 * i, u, "converted", f"{u}-c1", properties={"plan": plan})
    ev(2000, "p0", "converted", "p0-c2", properties={"plan": "annual"})  # second: enters
    ev(3000, "p0", "converted", "p0-c3", properties={"plan": "monthly"})  # third: max_entries
    ev(2500, "p1", "identify", "p1-big", properties={"bio": "x" * 3000})  # profile_limit
    ev(3500, "p1", "converted", "p1-c2", properties={"plan": "monthly"})
    ev(4000, "p2", "identify", "p2-same", properties={"name": "N2"})  # unchanged: no outcome
    return lines


def key(o: dict[str, Any]) -> tuple[Any, ...]:
    attrs = o.get("attributes") or {}
    return (o["user_id"], o["node_id"], o["type"], o["channel"], tuple(attrs.get("keys") or ()))


@pytest.mark.timeout(90)
async def test_profiles_on_kafka_equal_the_simulator(kafka_bootstrap: str, tmp_path: Path) -> None:
    jdir = tmp_path / "journeys"
    jdir.mkdir()
    (jdir / "crm-it.yaml").write_text(JOURNEY)
    (jdir / "_settings.yaml").write_text("profile_events: [identify]\n")
    env = StreamEnv(kafka_bootstrap, tmp_path, jdir)
    try:
        worker, gateway = env.start_worker(), env.start_gateway()
        await worker.wait_for("worker_ready", 45)
        await gateway.wait_for("gateway_ready", 45)

        base_ms = int(time.time() * 1000) + 1500
        lines = scenario(base_ms)
        sim = Simulator(load_journeys([jdir]), engine_config([jdir]))
        result = sim.run([decode_line(d) for d in lines])
        expected = result.outcomes
        assert [(r.user_id, r.reason) for r in result.refused] == [("p1", "profile_limit")]
        types = Counter(o.type for o in expected)
        assert types["profile_updated"] == 6 + 8  # 6 identify + 8 runs through record
        assert types["journey_entered"] == 8  # p0's third conversion is refused

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
            if len(got) >= len(expected):
                break
            await asyncio.sleep(0.5)
        await asyncio.sleep(2.0)  # anything extra would show up now
        got = await env.read_json(t.outcomes)

        want = Counter(key(o.to_wire()) for o in expected)
        have = Counter(key(o) for o in got)
        assert have == want, f"missing: {want - have}\nextra: {have - want}\n" + worker.tail(15)
        assert sorted(o["outcome_id"] for o in got) == sorted(o.outcome_id for o in expected)
        dead = await env.read_json(t.dead_letters)
        assert [(d["reason"], d["key"]) for d in dead] == [("profile_limit", "p1")], dead
    finally:
        await env.aclose()
