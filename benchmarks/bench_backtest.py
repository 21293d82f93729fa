"""How fast ``journeys backtest`` replays history (a script that prints figures, not a test).

Run: ``.venv/bin/python benchmarks/bench_backtest.py [--copies 100] [--jobs 1 2]``

Writes a generated history (``--copies`` copies of the example events, each copy's users
renamed: the example journeys with their taps, opt-outs, fallbacks and suppressions) and
backtests it once per ``--jobs`` value, through the command line (the process start and
the journey loading included). Prints inputs per second for each and checks that the
tables are the same. A journey whose split picks its winner is left out: it needs every
user in one run, so ``--jobs`` can't split it.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from engine.backtest.job import needs_every_user
from engine.backtest.sample import write_copies
from engine.lint.linter import load_journeys

ROOT = Path(__file__).resolve().parents[1]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--copies", type=int, default=100)
    parser.add_argument("--jobs", type=int, nargs="+", default=[1, 2])
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        journeys, examples = Path(tmp) / "journeys", []
        journeys.mkdir()
        for f in sorted((ROOT / "journeys").glob("*.yaml")):
            if not needs_every_user(load_journeys([f])):
                (journeys / f.name).write_text(f.read_text())
                examples.append(ROOT / "journeys" / "events" / f"{f.stem}.jsonl")
        events = Path(tmp) / "history.jsonl"
        lines = write_copies([e for e in examples if e.exists()], args.copies, events)
        names = ", ".join(f.stem for f in sorted(journeys.glob("*.yaml")))
        print(f"history: {lines:,} lines, {args.copies} copies of the events of {names}")
        tables = []
        for jobs in args.jobs:
            argv = [
                *(sys.executable, "-m", "engine.cli", "backtest"),
                *("--journeys", str(journeys), "--events", str(events)),
                *("--jobs", str(jobs), "--json"),
            ]
            started = time.perf_counter()
            done = subprocess.run(argv, capture_output=True, text=True, check=True)
            seconds = time.perf_counter() - started
            tables.append(json.loads(done.stdout)["journeys"])
            print(
                f"--jobs {jobs}: {seconds:.1f} s, {lines / seconds:,.0f} inputs/s "
                f"(command included); {done.stderr.strip().splitlines()[-1]}"
            )
        print("same tables for every --jobs:", all(t == tables[0] for t in tables))
    return 0


if __name__ == "__main__":
    sys.exit(main())
