"""R3: timer lateness with N (1,000,000) pending timers, ``RATE`` (10,000) falling due per
second.

    python -m engine.bench.timers --users 1000000

N waiting users are put on a fresh worker's changelog (:mod:`engine.bench.waiting`): first
the ones that fall due between one and thirty-one days later; a worker starts on them and
is killed once ready, which tells how long a restore takes on this machine now; then
``RATE x WINDOW_S`` users that fall due at ``RATE`` per second in a window that opens after
the next restore. The worker starts again, restores all N (its timer index holds N
timers), and wakes the due ones as their times come.

Two latenesses per wake-up, from broker timestamps:

* **end to end** (the figure): the broker time of the outcome the wake-up caused
  (``node_entered`` of ``after``) minus the wake time (that outcome's ``ts``): ticker
  resolution, produce to ``journey.timers``, consume, the core, produce the outcome;
* **ticker**: the broker time of the wake-up record on ``journey.timers`` minus its ``ts``:
  the timer index and the ticker alone, without the worker's processing of the wake-up.

Wake-ups due before the worker was ready (plus ``SETTLE_MS``) are left out and counted
(``due_before_ready``): they measure the restore, not the timers. When the worker
processes fewer wake-ups per second than fall due, end-to-end lateness grows with the
backlog; ``processed_per_s`` says so.
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

from engine.bench.waiting import logged_ms, options, seed, waiting_env
from engine.core import wire
from engine.durations import parse_ts_ms
from engine.stream.devtools.harness import StreamEnv
from engine.stream.devtools.outcomes import _consumer, outcomes_with_broker_time

RATE = 10_000  # wake-ups falling due per second
WINDOW_S = 20.0  # how long they keep falling due at that rate
QUICK_WINDOW_S = 5.0
SETTLE_MS = 2_000
DAY_MS = 86_400_000
TARGET_P99_MS, TARGET_P999_MS = 250, 1000
DRAIN_TIMEOUT_S = 600.0


def due_at(rate: int, opens_at: int) -> Any:
    """User ``i`` of the due ones falls due ``i / rate`` s after ``opens_at``."""
    return lambda i: opens_at + i * 1000 // rate


def far_at(base: int) -> Any:
    """The other users fall due between one and thirty-one days after ``base``, spread."""
    spread = 30 * DAY_MS
    return lambda i: base + DAY_MS + (i * 2_654_435_761) % spread


def percentiles(values: list[int]) -> dict[str, int | None]:
    v = sorted(values)

    def pct(q: float) -> int | None:
        return v[min(len(v) - 1, int(q * len(v)))] if v else None

    return {
        "n": len(v),
        "p50": pct(0.5),
        "p99": pct(0.99),
        "p99.9": pct(0.999),
        "max": v[-1] if v else None,
    }


async def _wake_records(env: StreamEnv) -> list[tuple[int, int]]:
    """(broker time, wake time) of every record on ``journey.timers``."""
    settings = env.settings()
    consumer, tps = await _consumer(settings, settings.topics.timers)
    out: list[tuple[int, int]] = []
    try:
        end = await consumer.end_offsets(tps)
        left = {tp for tp in tps if end[tp] > 0}
        while left:
            for tp, recs in (await consumer.getmany(timeout_ms=500)).items():
                for r in recs:
                    out.append((r.timestamp, wire.wake_from(r.value).ts))
                    if r.offset + 1 >= end[tp]:
                        left.discard(tp)
    finally:
        await consumer.stop()
    return out


async def _profile(
    out: str | None, pid: int, opens_at: int, window_s: float
) -> subprocess.Popen[bytes] | None:
    """``py-spy record`` of the worker from the window's opening, for the window and 10 s
    more, in collapsed-stack form (``out``); None without ``out``."""
    if not out:
        return None
    await asyncio.sleep(max(0.0, opens_at / 1000 - time.time()))
    beside = Path(sys.executable).with_name("py-spy")  # installed in the same environment
    spy = str(beside) if beside.exists() else "py-spy"
    argv = [spy, "record", "-p", str(pid), "-d", str(int(window_s + 10)), "-r", "50"]
    return subprocess.Popen(
        [*argv, "-f", "raw", "-o", out, "--nonblocking"],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )


async def measure(opts: Any) -> dict[str, Any]:
    bootstrap, n, partitions, quick, workdir, note = options(opts)
    window_s = QUICK_WINDOW_S if quick else float(getattr(opts, "timer_window_s", WINDOW_S))
    rate = int(getattr(opts, "timer_rate", RATE))
    rate = max(1, min(rate, int(n / 2 / window_s))) if quick else rate
    due = min(n // 2, int(rate * window_s))
    env = waiting_env(bootstrap, workdir, partitions)
    try:
        # The users not due first; a start of the worker on them tells how long a restore
        # takes here and now (the machine may be shared): the window opens after the
        # restart's restore, with a margin.
        seeded = await seed(env, range(due, n), far_at(int(time.time() * 1000)), note)
        worker = env.start_worker()
        t0 = int(time.time() * 1000)
        first = logged_ms(await worker.wait_for("worker_ready", 900))
        worker.kill()
        restore_s = (first - t0) / 1000
        opens_at = int(time.time() * 1000 + (20 + 2.5 * restore_s + due / 10_000) * 1000)
        note(
            f"R3: restore of {n - due:,} users took {restore_s:.1f} s; {due:,} users due at "
            f"{rate:,}/s from +{(opens_at - time.time() * 1000) / 1000:.0f} s"
        )
        seeded_due = await seed(env, range(due), due_at(rate, opens_at), note)
        t1 = int(time.time() * 1000)
        worker.spawn()
        ready = logged_ms(await worker.wait_for("worker_ready", 900, n=2))
        note(f"R3: worker ready {(opens_at - ready) / 1000:+.1f} s before the window opens")
        closes_at = opens_at + int(window_s * 1000)
        spy = await _profile(getattr(opts, "profile", None), worker.proc.pid, opens_at, window_s)
        deadline = time.monotonic() + max(0.0, (closes_at - time.time() * 1000) / 1000)
        deadline += DRAIN_TIMEOUT_S
        while time.monotonic() < deadline:  # until every due user is woken, or timeout
            stats = list(worker.events("stats"))
            woken = int(stats[-1].get("wakes", 0)) if stats else 0
            if woken >= due and time.time() * 1000 > closes_at:
                break
            await asyncio.sleep(1.0)
        await asyncio.sleep(2.0)  # the last stats line lags; the outcomes are written
        outcomes = await outcomes_with_broker_time(env.settings())
        wakes = await _wake_records(env)
        rebuilt = [r for r in worker.events("timers_rebuilt") if logged_ms(r) >= t1]
        worker.stop()
        if spy is not None:
            spy.wait(60)
    finally:
        await env.aclose()
    cut = ready + SETTLE_MS
    woken_at = [
        (broker_ms, parse_ts_ms(str(o["ts"])))
        for broker_ms, o in outcomes
        if o.get("type") == "node_entered" and o.get("node_id") == "after"
    ]
    measured = [(b, at) for b, at in woken_at if at >= cut]
    e2e = percentiles([b - at for b, at in measured])
    ticker = percentiles([b - at for b, at in wakes if at >= cut])
    span_ms = (max(b for b, _ in measured) - min(b for b, _ in measured)) if measured else 0
    processed_per_s = round(len(measured) / (span_ms / 1000), 1) if span_ms else None
    p99, p999 = e2e["p99"], e2e["p99.9"]
    return {
        "timers": n,
        "rate_per_s": rate,
        "window_s": window_s,
        "due_in_window": due,
        "partitions": partitions,
        "seed": {"not_due": seeded.as_dict(), "due": seeded_due.as_dict()},
        "restore_s": round((ready - t1) / 1000, 1),
        "timers_restored": sum(int(r.get("pending", 0)) for r in rebuilt),
        "ready_before_window_s": round((opens_at - ready) / 1000, 1),
        "due_before_ready": sum(1 for _b, at in woken_at if at < cut),
        "woken": len(woken_at),
        "lateness_ms": e2e,
        "ticker_lateness_ms": ticker,
        "processed_per_s": processed_per_s,
        "figures": [
            {
                "figure": "R3 timer lateness p50",
                "value": e2e["p50"],
                "unit": "ms",
                "target": None,
                "met": None,
            },
            {
                "figure": "R3 timer lateness p99",
                "value": p99,
                "unit": "ms",
                "target": f"<= {TARGET_P99_MS} ms",
                "met": p99 is not None and p99 <= TARGET_P99_MS,
            },
            {
                "figure": "R3 timer lateness p99.9",
                "value": p999,
                "unit": "ms",
                "target": f"<= {TARGET_P999_MS} ms",
                "met": p999 is not None and p999 <= TARGET_P999_MS,
            },
        ],
    }


def run(opts: Any) -> dict[str, Any]:
    return asyncio.run(measure(opts))


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m engine.bench.timers")
    p.add_argument("--users", type=int, default=1_000_000, dest="waiting_users")
    p.add_argument("--rate", type=int, default=RATE, dest="timer_rate")
    p.add_argument("--window", type=float, default=WINDOW_S, dest="timer_window_s")
    p.add_argument("--partitions", type=int, default=4)
    p.add_argument("--quick", action="store_true")
    p.add_argument("--profile", help="py-spy the worker during the window into this file")
    p.add_argument("--bootstrap", default=os.environ.get("JOURNEYS_BOOTSTRAP", "127.0.0.1:9092"))
    a = p.parse_args(argv)
    with tempfile.TemporaryDirectory(prefix="journeys-bench-r3-") as tmp:
        a.workdir = Path(tmp)
        a.note = lambda m: print(f"bench: {m}", file=sys.stderr, flush=True)
        res = run(a)
    sys.stdout.write(orjson.dumps(res, option=orjson.OPT_INDENT_2).decode() + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
