"""Measure the stream runtime on a real broker: throughput and timer lateness.

    python -m engine.stream.devtools.bench throughput --users 20000
    python -m engine.stream.devtools.bench timers --users 2000 --wait 5s --spread 20
    python -m engine.stream.devtools.bench recovery      (kill -9 and restart; see recovery.py)
    python -m engine.stream.devtools.bench dead-letters --records 20000

``throughput``: the events of ``--users`` users (one entry each, historic timestamps, a
journey of two SMS sends around a 1 h wait, so every wait is already due) are put on
``journey.user-events`` first; then a worker and a gateway start and the clock runs until
every expected outcome is on ``journey.outcomes``. Reported: inputs processed per second
(events, receipts and wake-ups) between the first and the last outcome.

``timers``: users enter in real time over ``--spread`` seconds into a journey that waits
``--wait``; the lateness of a wake-up is the broker timestamp of the outcome it caused
(``node_entered`` of the node after the wait) minus the wake time (the outcome's ``ts``).
Reported: p50 / p99 / max lateness in ms (ticker resolution, produce, consume and processing
included).

Both use :class:`engine.stream.devtools.harness.StreamEnv` (child processes, unique topics).
"""

from __future__ import annotations

import argparse
import asyncio
import os
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import orjson

from engine.durations import format_ts, parse_duration_ms, parse_ts_ms
from engine.stream.devtools.harness import StreamEnv
from engine.stream.devtools.outcomes import _consumer, outcomes_with_broker_time

THROUGHPUT_JOURNEY = """
id: bench
version: 1
name: Benchmark journey
entry: {event: signed_up}
start: hello
nodes:
  hello: {type: send, channel: sms, marketing: false, text: "Hello", next: pause}
  pause: {type: wait, duration: 1h, next: bye}
  bye: {type: send, channel: sms, marketing: false, text: "Bye", next: done}
  done: {type: exit}
"""

TIMER_JOURNEY = """
id: timers
version: 1
name: Timer lateness
entry: {{event: signed_up}}
start: pause
nodes:
  pause: {{type: wait, duration: {wait}, next: after}}
  after: {{type: exit}}
"""




async def _count(env: StreamEnv, topic: str) -> int:
    s = env.settings()
    consumer, tps = await _consumer(s, topic)
    try:
        end = await consumer.end_offsets(tps)
        return sum(end.values())
    finally:
        await consumer.stop()


async def throughput(
    bootstrap: str, users: int, partitions: int, workdir: Path, gateway: bool = True
) -> dict[str, Any]:
    jdir = workdir / "journeys"
    jdir.mkdir(parents=True)
    (jdir / "bench.yaml").write_text(THROUGHPUT_JOURNEY)
    env = StreamEnv(
        bootstrap,
        workdir,
        jdir,
        partitions=partitions,
        extra_env={"JOURNEYS_STATS_INTERVAL_S": "5"},
    )
    try:
        t = env.settings().topics
        base = parse_ts_ms("2026-01-01T00:00:00Z")
        from engine.stream.common.topics import ensure_topics

        await ensure_topics(env.settings(), t.all())
        records = [
            (
                t.user_events,
                f"b{i}".encode(),
                orjson.dumps(
                    {
                        "event_id": f"b{i}",
                        "user_id": f"b{i}",
                        "name": "signed_up",
                        "ts": format_ts(base + i),
                        "profile": {"phone": f"+1415{5550000 + i % 10000:07d}"},
                    }
                ),
            )
            for i in range(users)
        ]
        t0 = time.monotonic()
        await _produce_fast(env, records)
        produce_s = time.monotonic() - t0
        # entered, 3 x node_entered, pause entered, 2 x sent, exited; + 2 x delivered
        expected = users * (10 if gateway else 8)
        worker = env.start_worker()
        await worker.wait_for("worker_ready", 60)
        if gateway:
            gw = env.start_gateway()
            await gw.wait_for("gateway_ready", 60)
        start = time.monotonic()
        first: float | None = None
        while True:
            n = await _count(env, t.outcomes)
            if n and first is None:
                first = time.monotonic()
            if n >= expected or time.monotonic() - start > 600:
                break
            await asyncio.sleep(0.5)
        elapsed = time.monotonic() - (first or start)
        stats = list(worker.events("stats"))
        inputs = users * (4 if gateway else 2)  # the event and the wake-up (+ 2 receipts)
        return {
            "users": users,
            "partitions": partitions,
            "outcomes": n,
            "expected_outcomes": expected,
            "produce_s": round(produce_s, 1),
            "drain_s": round(elapsed, 1),
            "inputs_per_s": round(inputs / elapsed, 1),
            "users_per_s": round(users / elapsed, 1),
            "outcomes_per_s": round(n / elapsed, 1),
            "store": os.environ.get("JOURNEYS_STORE", "memory://"),
            "gateway": gateway,
            "worker_stats": stats[-1] if stats else None,
        }
    finally:
        await env.aclose()


async def _produce_fast(env: StreamEnv, records: list[tuple[str, bytes, bytes]]) -> None:
    from aiokafka import AIOKafkaProducer

    s = env.settings()
    p = AIOKafkaProducer(bootstrap_servers=s.bootstrap_servers, acks="all", linger_ms=20)
    await p.start()
    try:
        futs = [await p.send(topic, v, key=k) for topic, k, v in records]
        await asyncio.gather(*futs)
    finally:
        await p.stop()


async def timers(
    bootstrap: str, users: int, wait: str, spread_s: float, partitions: int, workdir: Path
) -> dict[str, Any]:
    jdir = workdir / "journeys"
    jdir.mkdir(parents=True)
    (jdir / "timers.yaml").write_text(TIMER_JOURNEY.format(wait=wait))
    env = StreamEnv(bootstrap, workdir, jdir, partitions=partitions)
    try:
        t = env.settings().topics
        worker = env.start_worker()
        await worker.wait_for("worker_ready", 60)
        base = int(time.time() * 1000) + 1000
        lines = [
            {
                "event_id": f"t{i}",
                "user_id": f"t{i}",
                "name": "signed_up",
                "ts": format_ts(base + int(i * spread_s * 1000 / users)),
            }
            for i in range(users)
        ]
        await env.produce(
            [(t.user_events, d["user_id"].encode(), orjson.dumps(d)) for d in lines],
            at=[parse_ts_ms(d["ts"]) / 1000 for d in lines],
        )
        await asyncio.sleep(parse_duration_ms(wait) / 1000 + 3)
        late = sorted(
            broker_ms - parse_ts_ms(o["ts"])
            for broker_ms, o in await outcomes_with_broker_time(env.settings())
            if o["type"] == "node_entered" and o["node_id"] == "after"
        )

        def pct(q: float) -> int:
            return late[min(len(late) - 1, int(q * len(late)))]

        return {
            "users": users,
            "wait": wait,
            "spread_s": spread_s,
            "wakes_measured": len(late),
            "lateness_ms": {"p50": pct(0.5), "p90": pct(0.9), "p99": pct(0.99), "max": late[-1]},
        }
    finally:
        await env.aclose()


async def dead_letters(
    bootstrap: str, records: int, partitions: int, workdir: Path
) -> dict[str, Any]:
    """Dead-letter throughput: the poison corpus (``engine.stream.devtools.corpus``) put on
    the input topics first, then a worker started; until every record is dead-lettered."""
    from engine.stream.common.topics import ensure_topics
    from engine.stream.devtools.corpus import bad_records, produce_fast

    jdir = workdir / "journeys"
    jdir.mkdir(parents=True)
    (jdir / "bench.yaml").write_text(THROUGHPUT_JOURNEY)
    env = StreamEnv(bootstrap, workdir, jdir, partitions=partitions)
    try:
        s = env.settings()
        await ensure_topics(s, s.topics.all())
        bad = bad_records(s.topics, records, int(time.time() * 1000), oversized_every=0)
        await produce_fast(s, bad)
        worker = env.start_worker()
        await worker.wait_for("worker_ready", 60)
        start = time.monotonic()
        first: float | None = None
        while time.monotonic() - start < 600:
            n = await _count(env, s.topics.dead_letters)
            if n and first is None:
                first = time.monotonic()
            if n >= records:
                break
            await asyncio.sleep(0.25)
        elapsed = time.monotonic() - (first or start)
        return {
            "records": records,
            "kinds": len({r.kind for r in bad}),
            "dead_letters": n,
            "seconds": round(elapsed, 1),
            "dead_letters_per_s": round(n / elapsed),
            "worker_log_lines": sum(1 for _ in worker.events()),
        }
    finally:
        await env.aclose()


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m engine.stream.devtools.bench")
    p.add_argument("what", choices=["throughput", "timers", "recovery", "dead-letters"])
    p.add_argument("--users", type=int, default=10_000)
    p.add_argument("--partitions", type=int, default=4)
    p.add_argument("--wait", default="5s")
    p.add_argument("--spread", type=float, default=20.0)
    p.add_argument("--no-gateway", action="store_true", help="throughput of the worker alone")
    p.add_argument("--rate", type=float, default=20.0, help="recovery: users entering per second")
    p.add_argument("--records", type=int, default=20_000, help="dead-letters: bad records")
    p.add_argument("--bootstrap", default=os.environ.get("JOURNEYS_BOOTSTRAP", "127.0.0.1:9092"))
    a = p.parse_args(argv)
    with tempfile.TemporaryDirectory(prefix="journeys-bench-") as tmp:
        res: Any
        if a.what == "throughput":
            res = asyncio.run(
                throughput(a.bootstrap, a.users, a.partitions, Path(tmp), not a.no_gateway)
            )
        elif a.what == "recovery":
            from engine.stream.devtools.recovery import recovery_table

            res = asyncio.run(
                recovery_table(
                    a.bootstrap, Path(tmp), partitions=a.partitions, rate=a.rate, wait=a.wait
                )
            )
        elif a.what == "dead-letters":
            res = asyncio.run(dead_letters(a.bootstrap, a.records, a.partitions, Path(tmp)))
        else:
            res = asyncio.run(
                timers(a.bootstrap, a.users, a.wait, a.spread, a.partitions, Path(tmp))
            )
    sys.stdout.write(orjson.dumps(res, option=orjson.OPT_INDENT_2).decode() + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
