"""R4: bytes per waiting user.

    python -m engine.bench.memory --users 1000000

**Memory store.** A worker starts on empty topics; its RSS once ready is the baseline. It
is stopped, N waiting users are seeded onto its changelog (:mod:`engine.bench.waiting`,
all due in ten days), and it starts again under the same name: RSS once ready (table
restored, timer index rebuilt) minus the baseline, over N. Target: <= 300 B per user.

**RocksDB** (``rocksdb://``, needs the ``rocksdict`` extra): two fresh workers, on
``SMALL`` (100,000) and on N users; the RSS of each once ready. Target: the N-user RSS at
most 1.5x the 100k-user one.

**Where the bytes go** (``breakdown``): the same states built in this process, measured
with :mod:`tracemalloc`, piece by piece: the faust memory store (its dict of key -> value
bytes, and its ``_key_partition`` dict), and our timer index.
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import os
import sys
import tempfile
import time
import tracemalloc
from pathlib import Path
from typing import Any

import orjson

from engine.bench.waiting import options, rss_bytes, seed, waiting_env, waiting_states
from engine.stream.common.timers import TimerIndex
from engine.stream.devtools.harness import Service
from engine.stream.worker.wakes import HORIZON_MS, pending_wakes

TARGET_BYTES_PER_USER = 300
TARGET_ROCKSDB_RATIO = 1.5
SMALL = 100_000
FAR_MS = 10 * 86_400_000
SETTLE_S = 3.0  # after ready: let the allocator and the first stats line settle
BREAKDOWN_USERS = 100_000


def _far(now: int) -> Any:
    return lambda i: now + FAR_MS + i


async def _ready_rss(svc: Service) -> int:
    await svc.wait_for("worker_ready", 900, n=svc.count("worker_ready") + 1)
    await asyncio.sleep(SETTLE_S)
    return rss_bytes(svc.proc.pid)


async def memory_store(
    bootstrap: str, n: int, partitions: int, workdir: Path, note: Any
) -> dict[str, Any]:
    env = waiting_env(bootstrap, workdir, partitions, JOURNEYS_STORE="memory://")
    try:
        now = int(time.time() * 1000)
        # Topics first, with no user on the changelog: the baseline worker.
        await seed(env, 0, _far(now))
        svc = env.start_worker()
        empty = await _ready_rss(svc)
        svc.stop()
        note(f"R4: empty worker {empty / 2**20:.0f} MiB; seeding {n:,} users")
        seeded = await seed(env, n, _far(now), note)
        svc.spawn()
        full = await _ready_rss(svc)
        svc.kill()
    finally:
        await env.aclose()
    per_user = (full - empty) / max(1, n)
    return {
        "users": n,
        "rss_empty_mb": round(empty / 2**20, 1),
        "rss_full_mb": round(full / 2**20, 1),
        "bytes_per_user": round(per_user),
        "value_bytes_avg": seeded.as_dict()["value_bytes_avg"],
    }


async def _rocksdb_rss(bootstrap: str, n: int, partitions: int, workdir: Path, note: Any) -> int:
    env = waiting_env(bootstrap, workdir, partitions, JOURNEYS_STORE="rocksdb://")
    try:
        await seed(env, n, _far(int(time.time() * 1000)), note)
        svc = env.start_worker()
        rss = await _ready_rss(svc)
        svc.kill()
        return rss
    finally:
        await env.aclose()


async def rocksdb(
    bootstrap: str, n: int, small: int, partitions: int, workdir: Path, note: Any
) -> dict[str, Any]:
    try:
        import rocksdict  # noqa: F401
    except ImportError:
        return {"error": "rocksdb:// needs the rocksdict package (pip install '.[rocksdb]')"}
    rss_small = await _rocksdb_rss(bootstrap, small, partitions, workdir / "small", note)
    note(f"R4: RocksDB, {small:,} users: {rss_small / 2**20:.0f} MiB")
    rss_big = await _rocksdb_rss(bootstrap, n, partitions, workdir / "big", note)
    note(f"R4: RocksDB, {n:,} users: {rss_big / 2**20:.0f} MiB")
    return {
        "users": [small, n],
        "rss_mb": [round(rss_small / 2**20, 1), round(rss_big / 2**20, 1)],
        "ratio": round(rss_big / rss_small, 2),
    }


def breakdown(n: int, partitions: int = 4) -> dict[str, float]:
    """Bytes per user of each piece, measured with tracemalloc on ``n`` users' states
    built here (the same records the worker restores)."""
    now = int(time.time() * 1000)
    records = [(p, bytes(k), bytes(v)) for p, k, v in waiting_states(n, _far(now), partitions)]
    gc.collect()
    tracemalloc.start()
    try:
        t0 = tracemalloc.get_traced_memory()[0]
        # What faust's memory store holds after a recovery: its dict of key -> value (the
        # key and value objects it decoded from the changelog) and key -> partition.
        data: dict[bytes, bytes] = {}
        key_partition: dict[bytes, int] = {}
        for p, k, v in records:
            k, v = bytes(bytearray(k)), bytes(bytearray(v))
            data[k] = v
            key_partition[k] = p
        t1 = tracemalloc.get_traced_memory()[0]
        index = TimerIndex()  # every timer held
        index.rebuild(set(range(partitions)), pending_wakes(data.items()))
        t2 = tracemalloc.get_traced_memory()[0]
        # as the worker keeps it: the timers due within the horizon (here: none)
        near = TimerIndex(horizon_ms=HORIZON_MS)
        near.rebuild(set(range(partitions)), pending_wakes(data.items()), now_ms=now)
        t3 = tracemalloc.get_traced_memory()[0]
    finally:
        tracemalloc.stop()
    keys = sum(sys.getsizeof(k) for k in data)
    values = sum(sys.getsizeof(v) for v in data.values())
    store = t1 - t0
    return {
        "users": n,
        "faust_store_total": round(store / n, 1),
        "faust_store_keys": round(keys / n, 1),
        "faust_store_values": round(values / n, 1),
        "faust_store_dicts": round((store - keys - values) / n, 1),
        "timer_index_all_held": round((t2 - t1) / n, 1),
        "timer_index_horizon": round((t3 - t2) / n, 1),
    }


async def measure(opts: Any) -> dict[str, Any]:
    bootstrap, n, partitions, quick, workdir, note = options(opts)
    only = getattr(opts, "only", None)
    figures: list[dict[str, Any]] = []
    mem: dict[str, Any] = {}
    if only in (None, "memory"):
        mem = await memory_store(bootstrap, n, partitions, workdir / "memory", note)
        note(f"R4: memory store {mem['bytes_per_user']} B/user")
        figures.append(
            {
                "figure": "R4 memory store, per waiting user",
                "value": mem["bytes_per_user"],
                "unit": "B",
                "target": f"<= {TARGET_BYTES_PER_USER} B",
                "met": mem["bytes_per_user"] <= TARGET_BYTES_PER_USER,
            }
        )
    small = min(SMALL, max(1, n // 10))
    rocks: dict[str, Any] = {}
    if only in (None, "rocksdb"):
        rocks = await rocksdb(bootstrap, n, small, partitions, workdir / "rocksdb", note)
    parts = breakdown(min(n, BREAKDOWN_USERS if not quick else 20_000), partitions)
    if "ratio" in rocks:
        figures.append(
            {
                "figure": f"R4 RocksDB RSS, {rocks['users'][1]:,} / {rocks['users'][0]:,} users",
                "value": rocks["ratio"],
                "unit": "x",
                "target": f"<= {TARGET_ROCKSDB_RATIO}x",
                "met": rocks["ratio"] <= TARGET_ROCKSDB_RATIO,
            }
        )
    return {
        "partitions": partitions,
        "memory_store": mem,
        "rocksdb": rocks,
        "breakdown_bytes_per_user": parts,
        "figures": figures,
    }


def run(opts: Any) -> dict[str, Any]:
    return asyncio.run(measure(opts))


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m engine.bench.memory")
    p.add_argument("--users", type=int, default=1_000_000, dest="waiting_users")
    p.add_argument("--partitions", type=int, default=4)
    p.add_argument("--quick", action="store_true")
    p.add_argument("--only", choices=["memory", "rocksdb"], help="one of the two stores")
    p.add_argument("--bootstrap", default=os.environ.get("JOURNEYS_BOOTSTRAP", "127.0.0.1:9092"))
    a = p.parse_args(argv)
    with tempfile.TemporaryDirectory(prefix="journeys-bench-r4-") as tmp:
        a.workdir = Path(tmp)
        a.note = lambda m: print(f"bench: {m}", file=sys.stderr, flush=True)
        res = run(a)
    sys.stdout.write(orjson.dumps(res, option=orjson.OPT_INDENT_2).decode() + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
