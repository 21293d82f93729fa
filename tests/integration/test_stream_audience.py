"""Scheduled audience entry on the real broker.

* A weekly audience journey (``timezone: user``, historic timestamps: every occurrence is
  already past when the worker starts, so it catches up) gives the simulator's outcomes,
  with the same outcome ids.
* The audience scanner: users known to a worker that ran without the schedule get the
  occurrence once the schedule is deployed; the worker is killed with SIGKILL in the
  middle of the scan (before any checkpoint, or between two), its replacement scans
  again, and nobody enters twice for the occurrence.
"""

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
from engine.lint.linter import load_journeys
from engine.sim.simulator import Simulator
from engine.stream.devtools.harness import StreamEnv

WEEKLY = """
id: weekly-it
version: 1
entry:
  schedule: {every: week, on: [mon], time: "10:00", timezone: user, until: 2026-10-27}
  audience: "user.tier == 'gold'"
goal: {event: seen, within: 1d, exit: false}
settings: {default_timezone: UTC}
start: pause
nodes:
  pause: {type: wait, duration: 1h, next: done}
  done: {type: exit}
"""
PING = """
id: ping-it
version: 1
entry: {event: seen, reentry: never}
start: pause
nodes:
  pause: {type: wait, duration: 1m, next: done}
  done: {type: exit}
"""
ONCE = """
id: once-it
version: 1
entry:
  schedule: {at: 2026-10-20T10:00, timezone: user}
  audience: "user.tier == 'gold'"
start: pause
nodes:
  pause: {type: wait, duration: 1m, next: done}
  done: {type: exit}
"""
ZONES = ["America/New_York", "Asia/Tokyo", "Europe/Paris", None]
BASE = parse_ts_ms("2026-09-28T00:00:00Z")
HOUR = 3_600_000


def weekly_lines(users: int = 32) -> list[dict[str, Any]]:
    lines: list[dict[str, Any]] = []
    for i in range(users):
        profile: dict[str, Any] = {"tier": "gold" if i % 3 else "silver"}
        if ZONES[i % 4]:
            profile["timezone"] = ZONES[i % 4]
        first = BASE + (i * 17 % 300) * HOUR  # first seen between 28 Sep and 10 Oct
        lines.append(_seen(f"w{i:02d}", "a", first, profile))
        if i % 5 == 0:  # tier changes: silver <-> gold
            flip = {"tier": "silver" if profile["tier"] == "gold" else "gold"}
            lines.append(_seen(f"w{i:02d}", "b", first + 200 * HOUR, flip))
        if i % 7 == 0:  # moves west: no Monday twice
            lines.append(
                _seen(f"w{i:02d}", "c", first + 100 * HOUR, {"timezone": "Pacific/Honolulu"})
            )
    lines.append(_seen("w00", "z", parse_ts_ms("2026-10-30T00:00:00Z"), {}))  # the sim's horizon
    return sorted(lines, key=lambda d: d["ts"])


def _seen(user: str, n: str, at: int, profile: dict[str, Any]) -> dict[str, Any]:
    return {
        "event_id": f"{user}-{n}",
        "user_id": user,
        "name": "seen",
        "ts": format_ts(at),
        "profile": profile,
    }


def key(o: dict[str, Any]) -> tuple[Any, ...]:
    return (
        o["user_id"],
        o["journey_id"],
        o["node_id"],
        o["type"],
        o["attributes"].get("occurrence"),
    )


async def outcomes(env: StreamEnv, expected: int, timeout: float) -> list[dict[str, Any]]:
    """The outcomes, deduplicated on outcome_id, once there are ``expected`` (or at the
    timeout)."""
    topic = env.settings().topics.outcomes
    deadline = time.monotonic() + timeout
    while True:
        seen: dict[str, dict[str, Any]] = {}
        for o in await env.read_json(topic):
            seen.setdefault(o["outcome_id"], o)
        if len(seen) >= expected or time.monotonic() > deadline:
            return list(seen.values())
        await asyncio.sleep(0.5)


async def produce(env: StreamEnv, lines: list[dict[str, Any]]) -> None:
    t = env.settings().topics
    await env.produce([(t.user_events, d["user_id"].encode(), orjson.dumps(d)) for d in lines])


@pytest.mark.timeout(90)
async def test_a_weekly_audience_on_kafka_gives_the_simulators_outcomes(
    kafka_bootstrap: str, tmp_path: Path
) -> None:
    jdir = tmp_path / "journeys"
    jdir.mkdir()
    (jdir / "weekly-it.yaml").write_text(WEEKLY)
    env = StreamEnv(kafka_bootstrap, tmp_path, jdir, partitions=2)
    try:
        worker = env.start_worker()
        await worker.wait_for("worker_ready", 45)
        lines = weekly_lines()
        expected = Simulator(load_journeys([jdir])).run([decode_line(d) for d in lines]).outcomes
        entered = [o for o in expected if o.type == "journey_entered"]
        assert len(entered) > 40
        await produce(env, lines)
        await outcomes(env, len(expected), 45)
        await asyncio.sleep(2.0)  # anything extra would show up now
        got = await outcomes(env, len(expected), 1)
        want = Counter(key(o.to_wire()) for o in expected)
        have = Counter(key(o) for o in got)
        assert have == want, f"missing: {want - have}\nextra: {have - want}\n" + worker.tail(15)
        assert sorted(o["outcome_id"] for o in got) == sorted(o.outcome_id for o in expected)
        assert worker.count("dead_letter") == 0
    finally:
        await env.aclose()


@pytest.mark.timeout(120)
@pytest.mark.parametrize("checkpoints", [False, True], ids=["never-committed", "committing"])
async def test_a_kill_during_the_audience_scan_enters_nobody_twice(
    kafka_bootstrap: str, tmp_path: Path, checkpoints: bool
) -> None:
    """never-committed: the scanning worker never checkpoints, so its replacement scans
    and decides everything again. committing: it checkpoints as usual and is killed
    between two checkpoints: its replacement recovers the users decided so far (their
    state covers the schedule: not ticked again) and ticks the others."""
    jdir = tmp_path / "journeys"
    jdir.mkdir()
    (jdir / "ping-it.yaml").write_text(PING)
    env = StreamEnv(kafka_bootstrap, tmp_path, jdir)
    users = 300
    lines = [
        _seen(
            f"s{i:03d}",
            "a",
            BASE + i * 60_000,
            {"tier": "gold" if i % 4 else "bronze", "timezone": ZONES[i % 3] or "UTC"},
        )
        for i in range(users)
    ]
    try:
        # 1. The users become known to a worker that has no schedule.
        first = env.start_worker("worker-1")
        await first.wait_for("worker_ready", 45)
        await produce(env, lines)
        await outcomes(env, 4 * users, 40)  # entered, pause, done, exited each
        assert first.stop() == 0  # a clean stop: everything committed

        # 2. The schedule is deployed; the new worker scans and is killed mid-way, before
        # any checkpoint.
        (jdir / "once-it.yaml").write_text(ONCE)
        never = {"JOURNEYS_COMMIT_INTERVAL_MS": "600000", "JOURNEYS_COMMIT_EVERY": "100000000"}
        second = env.start_worker("worker-2", **({} if checkpoints else never))
        scanned = await second.wait_for("audience_scanned", 45)
        assert scanned["ticks"] == users
        topic = env.settings().topics.outcomes
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            done = [o for o in await env.read_json(topic) if o["journey_id"] == "once-it"]
            if done:
                break
            await asyncio.sleep(0.2)
        second.kill()
        assert done, "no scheduled entry before the kill: the test proves nothing"

        # 3. Its replacement recovers, scans again, and finishes.
        third = env.start_worker("worker-3")
        rescanned = await third.wait_for("audience_scanned", 45)
        if not checkpoints:
            assert rescanned["ticks"] == users  # nothing of the scan was committed
        sim = Simulator(load_journeys([jdir])).run(
            [decode_line(d) for d in lines], until=parse_ts_ms("2026-11-01T00:00:00Z")
        )
        expected = sim.outcomes
        golds = sum(1 for i in range(users) if i % 4)
        assert (
            sum(1 for o in expected if o.type == "journey_entered" and o.journey_id == "once-it")
            == golds
        )
        await outcomes(env, len(expected), 45)
        await asyncio.sleep(2.0)
        got = await outcomes(env, len(expected), 1)
        entries = Counter(
            (o["user_id"], o["attributes"]["occurrence"])
            for o in got
            if o["type"] == "journey_entered" and o["journey_id"] == "once-it"
        )
        assert len(entries) == golds and set(entries.values()) == {1}
        runs = {o["instance_id"] for o in got if o["journey_id"] == "once-it"}
        assert len(runs) == golds  # one run per user: the replay made the same ones
        want = Counter(key(o.to_wire()) for o in expected)
        have = Counter(key(o) for o in got)
        assert have == want, f"missing: {want - have}\nextra: {have - want}\n" + third.tail(15)
    finally:
        await env.aclose()
