"""R5: the time to restore N waiting users (1,000,000) from the changelog after a kill -9.

    python -m engine.bench.restore --users 1000000

N users waiting in a wait node are seeded onto a fresh worker's changelog
(:mod:`engine.bench.waiting`); a few thousand of them (``DUE``) fall due one by one from the
start on (the first wake-up processed after each start), the rest wake in ten days. A
worker starts and restores them (the cold start), is killed with SIGKILL
once ready, and starts again under the same name and data directory, as a supervisor would
restart it. Measured for each start: from the process start to its ``worker_ready`` log
line (the table recovered and the timer index rebuilt; faust's recovery then
``timers_rebuilt``), and to the first wake-up processed (the broker time of the first
``node_entered`` of ``after`` after the start). Target: <= 60 s after the kill.

With the memory store both starts read the whole changelog. With ``--store rocksdb://``
the restart finds its RocksDB files and reads only what is past their offsets.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import orjson

from engine.bench.waiting import logged_ms, options, rss_bytes, seed, waiting_env
from engine.stream.devtools.harness import Service, StreamEnv
from engine.stream.devtools.outcomes import outcomes_with_broker_time

TARGET_S = 60.0
DUE, DUE_EVERY_MS = 4_000, 250  # users due from the start on: the first wake-ups processed
FAR_MS = 10 * 86_400_000
READY_TIMEOUT_S = 900.0


async def _start(env: StreamEnv, profile: str | None = None) -> tuple[Service, int, int]:
    """Start the worker, or start it again under its name and data directory after a kill;
    (service, start time, ready time) in epoch ms. With ``profile``: ``py-spy record`` of
    the process until it is ready, in collapsed-stack form, into that file."""
    t0 = int(time.time() * 1000)
    if env.services:
        svc = env.services[0]
        svc.spawn()
    else:
        svc = env.start_worker()
    if profile:
        beside = Path(sys.executable).with_name("py-spy")
        spy = str(beside) if beside.exists() else "py-spy"
        argv = [spy, "record", "-p", str(svc.proc.pid), "-r", "50", "-f", "raw", "-o", profile]
        subprocess.Popen(
            [*argv, "--nonblocking"], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
        )  # ends with the process (kill -9 below)
    ready = await svc.wait_for("worker_ready", READY_TIMEOUT_S, n=svc.count("worker_ready") + 1)
    return svc, t0, logged_ms(ready)


def wake_at(now: int) -> Any:
    """``DUE`` users fall due one by one from ``now`` on, every ``DUE_EVERY_MS`` (the first
    wake-up after each start), the rest in ten days."""

    def at(i: int) -> int:
        return now + i * DUE_EVERY_MS if i < DUE else now + FAR_MS + i

    return at


async def _first_wake_ms(env: StreamEnv, since_ms: int, timeout_s: float = 60.0) -> int | None:
    """Broker time of the first wake-up outcome written after ``since_ms``."""
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        times = [
            broker_ms
            for broker_ms, o in await outcomes_with_broker_time(env.settings())
            if o.get("type") == "node_entered" and o.get("node_id") == "after"
        ]
        later = [t for t in times if t >= since_ms]
        if later:
            return min(later)
        await asyncio.sleep(0.5)
    return None


async def measure(opts: Any) -> dict[str, Any]:
    bootstrap, n, partitions, _quick, workdir, note = options(opts)
    store = str(getattr(opts, "store", None) or os.environ.get("JOURNEYS_STORE", "memory://"))
    env = waiting_env(bootstrap, workdir, partitions, JOURNEYS_STORE=store)
    try:
        now = int(time.time() * 1000)
        seeded = await seed(env, n, wake_at(now), note)
        note(f"R5: {n:,} users on {seeded.changelog}; cold start")
        svc, t0, ready = await _start(env)
        cold_first = await _first_wake_ms(env, ready)
        rebuilt = list(svc.events("timers_rebuilt"))
        cold = {
            "ready_s": round((ready - t0) / 1000, 1),
            "first_wake_s": None if cold_first is None else round((cold_first - t0) / 1000, 1),
            "rss_mb": round(rss_bytes(svc.proc.pid) / 2**20),
            "timers": sum(int(r.get("pending", 0)) for r in rebuilt),
        }
        note(f"R5: cold start ready in {cold['ready_s']} s; kill -9 and restart")
        svc.kill()
        svc, t1, ready = await _start(env, getattr(opts, "profile", None))
        warm_first = await _first_wake_ms(env, ready)
        warm: dict[str, Any] = {
            "ready_s": round((ready - t1) / 1000, 1),
            "first_wake_s": None if warm_first is None else round((warm_first - t1) / 1000, 1),
            "rss_mb": round(rss_bytes(svc.proc.pid) / 2**20),
        }
        restored = [r for r in svc.events("timers_rebuilt") if logged_ms(r) >= t1]
        warm["timers"] = sum(int(r.get("pending", 0)) for r in restored)
        svc.kill()
    finally:
        await env.aclose()
    s = warm["ready_s"]
    return {
        "users": n,
        "partitions": partitions,
        "store": store,
        "seed": seeded.as_dict(),
        "cold_start": cold,
        "after_kill_9": warm,
        "figures": [
            {
                "figure": "R5 restore after kill -9",
                "value": s,
                "unit": "s",
                "target": f"<= {TARGET_S:.0f} s",
                "met": s <= TARGET_S,
            }
        ],
    }


def run(opts: Any) -> dict[str, Any]:
    return asyncio.run(measure(opts))


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m engine.bench.restore")
    p.add_argument("--users", type=int, default=1_000_000, dest="waiting_users")
    p.add_argument("--partitions", type=int, default=4)
    p.add_argument("--store", default=os.environ.get("JOURNEYS_STORE", "memory://"))
    p.add_argument("--profile", help="py-spy the restart until ready into this file")
    p.add_argument("--bootstrap", default=os.environ.get("JOURNEYS_BOOTSTRAP", "127.0.0.1:9092"))
    a = p.parse_args(argv)
    with tempfile.TemporaryDirectory(prefix="journeys-bench-r5-") as tmp:
        a.workdir = Path(tmp)
        a.note = lambda m: print(f"bench: {m}", file=sys.stderr, flush=True)
        res = run(a)
    sys.stdout.write(orjson.dumps(res, option=orjson.OPT_INDENT_2).decode() + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
