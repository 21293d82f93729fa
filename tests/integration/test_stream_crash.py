"""Failures: a worker killed with SIGKILL and restarted, and two workers in one group with
rebalances in the middle, lose no journey and send nothing twice.

SIGKILL:

The first worker never commits (its checkpoint interval is set beyond the test), so after
the kill its replacement re-processes every input from the start: every send request is
produced again, and the gateway's durable dedupe must keep each message from reaching the
provider a second time. Every user must still finish the journey, with the sends and the
outcomes (deduplicated on ``outcome_id``) the simulator gives for the same events.

Rebalance: worker A starts alone; while events arrive, worker B joins (the partitions are
split and B recovers its users from the changelog), then A stops (B takes over everything,
A's users included, with their pending timers).
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
from engine.stream.devtools.harness import Service, StreamEnv

JOURNEY = """
id: crash-it
version: 1
name: Sends and short waits, for the crash and rebalance tests
entry: {event: signed_up}
start: first
nodes:
  first:
    type: send
    channel: rcs
    marketing: false
    text: "One"
    fallback: {sms: "One, by SMS", after: 40s}
    next: w1
  w1: {type: wait, duration: 2s, next: second}
  second: {type: send, channel: sms, marketing: false, text: "Two", next: w2}
  w2: {type: wait, duration: 2s, next: third}
  third: {type: send, channel: sms, marketing: false, text: "Three", next: done}
  done: {type: exit}
"""

USERS = 40


def events(base_ms: int, users: int = USERS, spread_ms: int = 4000) -> list[dict[str, Any]]:
    out = []
    for i in range(users):
        profile: dict[str, Any] = {"phone": f"+1415556{1000 + i:04d}"}
        if i % 4 == 3:
            profile["rcs_capable"] = False
        if i == 13:
            profile["phone"] = "555"  # suppressed: invalid_phone
        out.append(
            {
                "event_id": f"c{i}",
                "user_id": f"c{i:02d}",
                "name": "signed_up",
                "ts": format_ts(base_ms + i * spread_ms // users),
                "profile": profile,
            }
        )
    return out


def outcome_key(o: dict[str, Any]) -> tuple[Any, ...]:
    return (o["user_id"], o["node_id"], o["type"], o["channel"])


async def run_until_done(
    env: StreamEnv, lines: list[dict[str, Any]], jdir: Path, timeout: float
) -> list[dict[str, Any]]:
    """Outcomes (deduplicated on outcome_id) once there are as many as the simulator
    gives (or at the timeout)."""
    expected = len(Simulator(load_journeys([jdir])).run([decode_line(d) for d in lines]).outcomes)
    topic = env.settings().topics.outcomes
    deadline = time.monotonic() + timeout
    while True:
        seen: dict[str, dict[str, Any]] = {}
        for o in await env.read_json(topic):
            seen.setdefault(o["outcome_id"], o)
        if len(seen) >= expected or time.monotonic() > deadline:
            return list(seen.values())
        await asyncio.sleep(0.5)


def check_no_loss_no_duplicate(
    lines: list[dict[str, Any]],
    jdir: Path,
    outcomes: list[dict[str, Any]],
    gateway: Service,
) -> None:
    result = Simulator(load_journeys([jdir])).run([decode_line(d) for d in lines])
    users = {d["user_id"] for d in lines}
    exits = Counter(o["user_id"] for o in outcomes if o["type"] == "journey_exited")
    assert set(exits) == users, f"journeys lost: {sorted(users - set(exits))}"
    assert all(n == 1 for n in exits.values()), exits

    calls = list(gateway.events("provider_send"))
    ids = Counter(c["message_id"] for c in calls)
    twice = {m: n for m, n in ids.items() if n > 1}
    assert not twice, f"sent twice: {twice}"
    want_sends = Counter((s.user_id, s.node_id, s.channel) for s in result.sends)
    have_sends = Counter((c["user_id"], c["node"], c["channel"]) for c in calls)
    assert have_sends == want_sends, (
        f"missing: {want_sends - have_sends}\nextra: {have_sends - want_sends}"
    )
    assert set(ids) == {s.message_id for s in result.sends}

    want = Counter(outcome_key(o.to_wire()) for o in result.outcomes)
    have = Counter(outcome_key(o) for o in outcomes)
    assert have == want, f"missing: {want - have}\nextra: {have - want}"


@pytest.mark.timeout(100)
@pytest.mark.parametrize("checkpoints", [False, True], ids=["never-committed", "committing"])
async def test_sigkill_and_restart_loses_nothing_and_sends_nothing_twice(
    kafka_bootstrap: str, tmp_path: Path, checkpoints: bool
) -> None:
    """never-committed: the first worker never reaches a checkpoint, so everything is
    replayed after the kill. committing: it commits every 500 ms as usual and is killed
    between two checkpoints; its replacement recovers the users (and their pending
    timers) from the changelog and replays only the inputs since the last one."""
    jdir = tmp_path / "journeys"
    jdir.mkdir()
    (jdir / "crash-it.yaml").write_text(JOURNEY)
    env = StreamEnv(kafka_bootstrap, tmp_path, jdir)
    try:
        gateway = env.start_gateway()
        never = {"JOURNEYS_COMMIT_INTERVAL_MS": "600000", "JOURNEYS_COMMIT_EVERY": "100000000"}
        first = env.start_worker("worker-1", **({} if checkpoints else never))
        await first.wait_for("worker_ready", 45)
        await gateway.wait_for("gateway_ready", 45)

        base_ms = int(time.time() * 1000) + 1000
        lines = events(base_ms)
        t = env.settings().topics
        producing = asyncio.create_task(
            env.produce(
                [(t.user_events, d["user_id"].encode(), orjson.dumps(d)) for d in lines],
                at=[parse_ts_ms(d["ts"]) / 1000 for d in lines],
            )
        )
        await asyncio.sleep(max(0.0, base_ms / 1000 + 2.7 - time.time()))
        before = gateway.count("provider_send")
        first.kill()
        assert before > 0, "nothing was sent before the kill: the test proves nothing"
        # The same host again: with JOURNEYS_STORE=rocksdb:// it finds its local state.
        second = env.start_worker("worker-2", JOURNEYS_DATA_DIR=str(tmp_path / "data-worker-1"))
        await producing
        ready = await second.wait_for("timers_rebuilt", 45)
        if checkpoints:
            assert ready["pending"] > 0  # users waiting at the kill, back from the changelog

        await run_until_done(env, lines, jdir, 50)
        await asyncio.sleep(1.5)  # anything extra would show up now
        outcomes = await run_until_done(env, lines, jdir, 5)

        check_no_loss_no_duplicate(lines, jdir, outcomes, gateway)
        if not checkpoints:
            # The whole replay reached the gateway, and was stopped there.
            assert gateway.count("duplicate_send_dropped") >= before
    finally:
        await env.aclose()


@pytest.mark.timeout(110)
async def test_two_workers_and_rebalances_lose_nothing_and_send_nothing_twice(
    kafka_bootstrap: str, tmp_path: Path
) -> None:
    jdir = tmp_path / "journeys"
    jdir.mkdir()
    (jdir / "crash-it.yaml").write_text(JOURNEY)
    env = StreamEnv(kafka_bootstrap, tmp_path, jdir, partitions=4)
    try:
        gateway = env.start_gateway()
        a = env.start_worker("worker-a")
        await a.wait_for("worker_ready", 45)
        await gateway.wait_for("gateway_ready", 45)

        base_ms = int(time.time() * 1000) + 1000
        lines = events(base_ms, users=48, spread_ms=9000)
        t = env.settings().topics
        producing = asyncio.create_task(
            env.produce(
                [(t.user_events, d["user_id"].encode(), orjson.dumps(d)) for d in lines],
                at=[parse_ts_ms(d["ts"]) / 1000 for d in lines],
            )
        )
        await asyncio.sleep(max(0.0, base_ms / 1000 + 2.0 - time.time()))
        b = env.start_worker("worker-b")
        await b.wait_for("worker_ready", 45)
        # A gave up partitions to B: a rebalance happened while journeys were running.
        assert a.count("partitions_revoked") >= 2
        split = b.events("partitions_assigned")
        assert any(e["partitions"] for e in split)

        await asyncio.sleep(2.0)
        assert a.stop() == 0  # SIGTERM: A leaves the group, B takes over A's partitions
        await b.wait_for("partitions_assigned", 45, n=2)
        await producing

        await run_until_done(env, lines, jdir, 60)
        await asyncio.sleep(1.5)  # anything extra would show up now
        outcomes = await run_until_done(env, lines, jdir, 5)

        check_no_loss_no_duplicate(lines, jdir, outcomes, gateway)
        last = list(b.events("partitions_assigned"))[-1]
        assert last["partitions"] == [0, 1, 2, 3]
    finally:
        await env.aclose()
