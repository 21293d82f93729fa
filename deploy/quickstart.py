"""Helpers for deploy/quickstart.sh (not part of the engine package).

python deploy/quickstart.py shift --out DIR FILE.jsonl...
    Copy event files, moved back in time by whole weeks so that every event and every
    timer it can start lies in the past: the worker then fires them right away, and
    local times and weekdays stay what the file says.
python deploy/quickstart.py wait --journeys DIR --events DIR [--timeout S]
    Wait until no new outcome arrives on Kafka for a while; then compare the
    (user, node, type, channel) multiset with `journeys simulate` on the same events.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import sys
import time
from collections import Counter
from pathlib import Path
from typing import Any

import orjson

from engine.durations import format_ts, parse_ts_ms

WEEK_MS = 7 * 86_400_000
MARGIN_MS = 60 * 86_400_000  # longer than any wait in the example journeys


def _shift(args: argparse.Namespace) -> int:
    files = [Path(f) for f in args.files]
    rows = {
        f: [
            orjson.loads(line)
            for line in f.read_bytes().splitlines()
            if line.strip() and not line.lstrip().startswith(b"#")
        ]
        for f in files
    }
    latest = max(parse_ts_ms(r["ts"]) for rs in rows.values() for r in rs)
    now = int(time.time() * 1000)
    weeks = max(0, -(-(latest - now + MARGIN_MS) // WEEK_MS))
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    for f, rs in rows.items():
        with open(out / f.name, "wb") as fh:
            for r in rs:
                r["ts"] = format_ts(parse_ts_ms(r["ts"]) - weeks * WEEK_MS)
                fh.write(orjson.dumps(r) + b"\n")
    print(f"events moved back {weeks} weeks into {out}")
    return 0


def _key(o: dict[str, Any]) -> tuple[str, str, str, str]:
    return (o["user_id"], str(o.get("node_id")), o["type"], str(o.get("channel")))


def _wait(args: argparse.Namespace) -> int:
    from engine.lint.linter import load_journeys
    from engine.sim.simulator import Simulator, read_events
    from engine.stream.common.settings import Settings
    from engine.stream.devtools.outcomes import collect_outcomes

    journeys = load_journeys([args.journeys])
    inputs = [i for f in sorted(Path(args.events).glob("*.jsonl")) for i in read_events(f)[0]]
    result = Simulator(journeys).run(inputs)
    expected = Counter(_key(o.to_wire()) for o in result.outcomes)
    want = sum(expected.values())
    settings = Settings.from_env_and_args(argparse.Namespace())
    deadline = time.monotonic() + args.timeout
    got: Counter[tuple[str, str, str, str]] = Counter()
    last_change, last_total = time.monotonic(), -1
    # Finished = no new outcome for `quiet` seconds (every timer of the shifted events is
    # already due, so a quiet topic means every journey has run to its end).
    while time.monotonic() < deadline:
        seen = {o["outcome_id"]: o for o in asyncio.run(collect_outcomes(settings))}
        got = Counter(_key(o) for o in seen.values())
        total = sum(got.values())
        if total != last_total:
            last_change, last_total = time.monotonic(), total
        print(f"\r  outcomes on Kafka: {total} (the simulator gives {want})", end="", flush=True)
        if total and time.monotonic() - last_change >= args.quiet:
            break
        time.sleep(1)
    print()
    if not got:
        print("no outcomes arrived: see worker.log and gateway.log", file=sys.stderr)
        return 1
    same = sum((expected & got).values())
    print(
        f"{same} of {want} simulated outcomes also came out of Kafka "
        f"({sum((got - expected).values())} others)."
    )
    if got != expected and os.environ.get("QUICKSTART_VERBOSE"):
        for k, n in sorted((expected - got).items())[:15]:
            print(f"  only simulated: {n}x {k}")
        for k, n in sorted((got - expected).items())[:15]:
            print(f"  only on Kafka:  {n}x {k}")
    if got != expected:
        print(
            "  A replay that outruns the clock differs from the simulator where ordering "
            "across topics matters (a tap processed before the send it answers, a fallback "
            "timer before the delivery receipt): see docs/streaming.md."
        )
    return 0


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    sub = parser.add_subparsers(dest="cmd", required=True)
    p = sub.add_parser("shift")
    p.add_argument("--out", required=True)
    p.add_argument("files", nargs="+")
    p.set_defaults(func=_shift)
    p = sub.add_parser("wait")
    p.add_argument("--journeys", required=True)
    p.add_argument("--events", required=True)
    p.add_argument("--timeout", type=float, default=300)
    p.add_argument("--quiet", type=float, default=8, help="seconds without new outcomes")
    p.set_defaults(func=_wait)
    args = parser.parse_args()
    code: int = args.func(args)
    return code


if __name__ == "__main__":
    sys.exit(main())
