"""How fast a worker recovers from ``kill -9`` and a restart: the recovery benchmark.

    python -m engine.stream.devtools.bench recovery

Users enter a journey that waits ``--wait`` (default 3 s) at ``--rate`` users a second,
for the whole run. After ``--before`` seconds the worker is killed with SIGKILL and
started again at once (same data directory, and the same group instance id when
``static`` membership is on). Measured from the outcomes' broker timestamps:

* ``resume_s``: from the kill to the first outcome written after it;
* ``stall_s``: the longest time without any outcome, from the kill on;
* ``timer_late_s``: the worst lateness of a wake-up (the ``node_entered`` after the wait:
  broker time minus the wake time), among the timers due after the kill;
* ``entry_late_s``: the worst delay of an entry (``journey_entered``: broker time minus the
  event's ``ts``, which is when it was produced).

Each configuration (dynamic or static group membership; session timeout) is one run on
its own topics and group (:class:`~engine.stream.devtools.harness.StreamEnv`).
"""

from __future__ import annotations

import asyncio
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import orjson
from aiokafka import AIOKafkaProducer

from engine.durations import format_ts, parse_ts_ms
from engine.stream.devtools.harness import StreamEnv
from engine.stream.devtools.outcomes import outcomes_with_broker_time

JOURNEY = """
id: recovery
version: 1
name: Recovery benchmark
entry: {{event: signed_up, reentry: always}}
start: pause
nodes:
  pause: {{type: wait, duration: {wait}, next: after}}
  after: {{type: exit}}
"""


@dataclass(frozen=True)
class Config:
    name: str
    static: bool  # JOURNEYS_GROUP_INSTANCE_ID set
    session_timeout_ms: int
    heartbeat_interval_ms: int


CONFIGS = (
    Config("dynamic, session 30 s (the old default)", False, 30_000, 3_000),
    Config("dynamic, session 10 s", False, 10_000, 1_000),
    Config("dynamic, session 8 s (the default)", False, 8_000, 1_000),
    Config("static, session 30 s", True, 30_000, 3_000),
    Config("static, session 10 s", True, 10_000, 1_000),
)




async def _feed(env: StreamEnv, rate: float, until: float) -> int:
    """Users enter at ``rate`` a second until ``until`` (monotonic); returns how many."""
    s = env.settings()
    producer = AIOKafkaProducer(bootstrap_servers=s.bootstrap_servers, acks="all")
    await producer.start()
    n = 0
    try:
        start = time.monotonic()
        while time.monotonic() < until:
            user = f"r{n}"
            value = orjson.dumps(
                {
                    "event_id": user,
                    "user_id": user,
                    "name": "signed_up",
                    "ts": format_ts(time.time_ns() // 1_000_000),
                }
            )
            await producer.send_and_wait(s.topics.user_events, value, key=user.encode())
            n += 1
            await asyncio.sleep(max(0.0, start + n / rate - time.monotonic()))
    finally:
        await producer.stop()
    return n


async def recovery(
    bootstrap: str,
    workdir: Path,
    config: Config,
    *,
    partitions: int = 4,
    rate: float = 20.0,
    wait: str = "3s",
    before_s: float = 10.0,
    after_s: float = 30.0,
) -> dict[str, Any]:
    jdir = workdir / "journeys"
    jdir.mkdir(parents=True)
    (jdir / "recovery.yaml").write_text(JOURNEY.format(wait=wait))
    env = StreamEnv(
        bootstrap,
        workdir,
        jdir,
        partitions=partitions,
        extra_env={
            "JOURNEYS_SESSION_TIMEOUT_MS": str(config.session_timeout_ms),
            "JOURNEYS_HEARTBEAT_INTERVAL_MS": str(config.heartbeat_interval_ms),
        },
    )
    # The harness makes every service static; "" turns that off (dynamic membership).
    member = {"JOURNEYS_GROUP_INSTANCE_ID": f"bench-{env.run_id}-1" if config.static else ""}
    try:
        worker = env.start_worker(**member)
        await worker.wait_for("worker_ready", 90)
        start = time.monotonic()
        feeding = asyncio.ensure_future(_feed(env, rate, start + before_s + after_s))
        await asyncio.sleep(before_s)
        kill_ms = time.time_ns() // 1_000_000
        worker.kill()
        worker.spawn()  # at once, as a supervisor would
        await worker.wait_for("worker_ready", 90, n=2)
        ready_s = (time.time_ns() // 1_000_000 - kill_ms) / 1000
        users = await feeding
        await asyncio.sleep(6)
        outcomes = await outcomes_with_broker_time(env.settings())
    finally:
        await env.aclose()
    after = sorted(b for b, _o in outcomes if b >= kill_ms)
    gaps = [b - a for a, b in zip([kill_ms, *after], after, strict=False)]
    timers = [
        b - parse_ts_ms(o["ts"])
        for b, o in outcomes
        if o["type"] == "node_entered"
        and o["node_id"] == "after"
        and parse_ts_ms(o["ts"]) >= kill_ms
    ]
    entries = [b - parse_ts_ms(o["ts"]) for b, o in outcomes if o["type"] == "journey_entered"]
    exited = {o["user_id"] for _b, o in outcomes if o["type"] == "journey_exited"}
    return {
        "config": config.name,
        "resume_s": round((after[0] - kill_ms) / 1000, 1) if after else None,
        "stall_s": round(max(gaps) / 1000, 1) if gaps else None,
        "timer_late_s": round(max(timers) / 1000, 1) if timers else None,
        "entry_late_s": round(max(entries) / 1000, 1) if entries else None,
        "restart_to_ready_s": round(ready_s, 1),
        "users": users,
        "users_finished": len(exited),
    }


async def recovery_table(bootstrap: str, workdir: Path, **kw: Any) -> list[dict[str, Any]]:
    rows = []
    for i, config in enumerate(CONFIGS):
        rows.append(await recovery(bootstrap, workdir / f"run{i}", config, **kw))
    return rows
