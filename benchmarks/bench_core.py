"""Core throughput and memory benchmark (a script that prints figures, not a test).

    .venv/bin/python benchmarks/bench_core.py [--users 5000] [--repeat 5]

1. R2 (issue 12): core steps per second (decode JSON -> advance -> encode every record
   written) against the serialization floor of the same steps (``orjson.loads`` of each
   line + ``orjson.dumps`` of every record the step wrote), in the same run:
   :func:`engine.bench.core_steps.measure`. Target: ratio >= 0.25.
2. Bytes of memory per user waiting in a ``wait`` node: the serialized state (what a
   table stores) and the live Python objects (tracemalloc).
"""

from __future__ import annotations

import argparse
import gc
import tracemalloc

import orjson

from engine.bench.core_steps import journeys, measure
from engine.core.engine import Engine
from engine.core.state import UserState
from engine.core.wire import decode_line
from engine.durations import format_ts


def bench_memory(users: int) -> tuple[float, float]:
    engine = Engine(journeys())
    gc.collect()
    tracemalloc.start()
    before = tracemalloc.take_snapshot()
    states: dict[str, UserState] = {}
    base = 1_795_946_400_000
    for u in range(users):
        uid = f"u{u:07d}"
        inp = decode_line(
            {
                "event_id": f"e{u}",
                "user_id": uid,
                "name": "signed_up",
                "ts": format_ts(base),
                "properties": {},
            }
        )
        state = states[uid] = UserState(uid)
        engine.advance(state, inp, base)
    gc.collect()
    after = tracemalloc.take_snapshot()
    tracemalloc.stop()
    live = sum(s.size_diff for s in after.compare_to(before, "filename"))
    serialized = sum(len(orjson.dumps(s.to_wire())) for s in states.values())
    assert all(s.wake_at is not None for s in states.values())
    return serialized / users, live / users


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--users", type=int, default=5000)
    parser.add_argument("--repeat", type=int, default=5)
    parser.add_argument("--memory-users", type=int, default=20000)
    args = parser.parse_args()
    r = measure(users=args.users, repeat=args.repeat)
    print(f"lines per pass:            {r['lines']}  ({r['users']} users, best of {r['repeat']})")
    print(f"core steps/s:              {r['steps_per_s']:,}   ({r['step_us']} us CPU per step)")
    print(f"floor/s (loads + dumps):   {r['floor_per_s']:,}   ({r['floor_us']} us CPU per step)")
    print(
        f"ratio steps / floor:       {r['ratio']:.3f}   (target >= {r['target']}; "
        f"by the wall clock {r['wall_ratio']:.3f})"
    )
    print(
        f"per step:                  {r['outcomes_per_step']} outcomes, "
        f"{r['effects_per_step']} effects, {r['records_per_step']} records written"
    )
    if args.memory_users:
        ser, live = bench_memory(args.memory_users)
        print(f"bytes per waiting user:    {ser:,.0f} serialized state (table value)")
        print(f"                           {live:,.0f} live Python objects (tracemalloc)")


if __name__ == "__main__":
    main()
