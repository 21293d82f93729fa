"""Core throughput and memory benchmark (a script that prints figures, not a test).

    .venv/bin/python benchmarks/bench_core.py [--users 20000] [--seconds 3]

1. Steps per second on a realistic mix: decode JSON -> advance -> encode outcomes, over
   events for many users (entries, waits, replies, receipts, unknown events), compared
   in the same run with a plain ``orjson.loads`` + ``orjson.dumps`` loop over the same
   lines. Goal: ratio >= 0.30.
2. Bytes of memory per user waiting in a ``wait`` node: the serialized state (what a
   table stores) and the live Python objects (tracemalloc).
"""

from __future__ import annotations

import argparse
import gc
import time
import tracemalloc
from typing import Any

import orjson

from engine.core.effects import Outcome
from engine.core.engine import Engine
from engine.core.inputs import Wake
from engine.core.state import UserState
from engine.core.wire import decode_line, loads
from engine.journey.loader import load_text

JOURNEY = """
id: bench-order
version: 1
entry: {event: order_placed, when: "event.total > 0"}
exit_on: [order_cancelled]
goal: {event: order_delivered, within: 7d}
start: confirm
nodes:
  confirm:
    type: send
    channel: rcs
    marketing: false
    rich_card:
      title: "Order {{ event.order_id }} confirmed"
      description: "Hi {{ user.first_name | default: 'there' }}, we'll tell you when it ships."
      suggestions:
        - reply: {text: "Track order", postback: track}
    fallback: {sms: "Order {{ event.order_id }} confirmed.", after: 10m}
    next: await_ship
  await_ship:
    type: wait_for
    paths:
      - {event: order_shipped, when: "event.order_id == entry.order_id", next: shipped}
      - {reply: track, of: confirm, next: shipped}
    timeout: 3d
    on_timeout: done
  shipped: {type: send, channel: sms, text: "Shipped {{ entry.order_id }}", next: done}
  done: {type: exit}
"""

WAIT_JOURNEY = """
id: bench-wait
version: 1
entry: {event: signed_up}
start: pause
nodes:
  pause: {type: wait, duration: 1d, next: done}
  done: {type: exit}
"""


def _journeys() -> list[Any]:
    out = []
    for text in (JOURNEY, WAIT_JOURNEY):
        loaded, problems = load_text(text, "bench.yaml")
        assert loaded is not None and loaded.journey is not None, problems
        out.append(loaded.journey)
    return out


def make_lines(users: int) -> list[bytes]:
    """Per user: a page view (unknown event: touches nothing), an order, a delivery
    receipt, a second page view, a tap or a shipment, a read receipt."""
    lines: list[bytes] = []
    base = 1_795_946_400  # 2026-11-29T10:00:00Z
    for u in range(users):
        uid = f"u{u}"
        t = base + u
        profile = {"phone": f"+1415555{u % 10000:04d}", "first_name": "Asha"}

        def ev(name: str, dt: int, props: dict[str, Any], n: int, uid: str = uid) -> None:
            lines.append(orjson.dumps({
                "event_id": f"{uid}-{n}", "user_id": uid, "name": name, "ts": t + dt,
                "properties": props, "profile": profile if n == 1 else None,
            }))

        ev("page_view", 0, {"path": "/"}, 0)
        ev("order_placed", 1, {"order_id": f"A{u}", "total": 10 + u % 50}, 1)
        lines.append(orjson.dumps({"type": "receipt", "user_id": uid, "ts": t + 6,
                                   "node": "confirm", "status": "delivered"}))
        ev("page_view", 30, {"path": "/orders"}, 2)
        if u % 2:
            lines.append(orjson.dumps({"type": "inbound", "user_id": uid, "ts": t + 60,
                                       "postback": "track"}))
        else:
            ev("order_shipped", 60, {"order_id": f"A{u}"}, 3)
        lines.append(orjson.dumps({"type": "receipt", "user_id": uid, "ts": t + 90,
                                   "node": "confirm", "status": "read"}))
    return lines


def bench_steps(lines: list[bytes], seconds: float) -> tuple[float, float, int]:
    engine = Engine(_journeys())

    def one_pass() -> int:
        states: dict[str, UserState] = {}
        n = 0
        for raw in lines:
            inp = decode_line(loads(raw))
            state = states.get(inp.user_id)
            if state is None:
                state = states[inp.user_id] = UserState(inp.user_id)
            _, effects = engine.advance(state, inp, inp.ts)
            for eff in effects:
                if isinstance(eff, Outcome):
                    orjson.dumps(eff.to_wire())
            n += 1
        return n

    def plain_pass() -> int:
        n = 0
        for raw in lines:
            orjson.dumps(orjson.loads(raw))
            n += 1
        return n

    def rate(fn: Any) -> float:
        steps, start = 0, time.perf_counter()
        while time.perf_counter() - start < seconds:
            steps += fn()
        return steps / (time.perf_counter() - start)

    one_pass()  # warm caches (compiled expressions and templates)
    core = rate(one_pass)
    plain = rate(plain_pass)
    return core, plain, len(lines)


def bench_memory(users: int) -> tuple[float, float]:
    engine = Engine(_journeys())
    gc.collect()
    tracemalloc.start()
    before = tracemalloc.take_snapshot()
    states: dict[str, UserState] = {}
    base = 1_795_946_400_000
    for u in range(users):
        uid = f"u{u:07d}"
        inp = decode_line({"event_id": f"e{u}", "user_id": uid, "name": "signed_up",
                           "ts": "2026-11-29T10:00:00Z", "properties": {}})
        state = states[uid] = UserState(uid)
        engine.advance(state, inp, base)
    gc.collect()
    after = tracemalloc.take_snapshot()
    tracemalloc.stop()
    live = sum(s.size_diff for s in after.compare_to(before, "filename"))
    serialized = sum(len(orjson.dumps(s.to_wire())) for s in states.values())
    assert all(s.wake_at is not None for s in states.values())
    assert not any(isinstance(x, Wake) for x in ())
    return serialized / users, live / users


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--users", type=int, default=5000)
    parser.add_argument("--seconds", type=float, default=3.0)
    parser.add_argument("--memory-users", type=int, default=20000)
    args = parser.parse_args()
    core, plain, n = bench_steps(make_lines(args.users), args.seconds)
    print(f"lines per pass:            {n}")
    print(f"core steps/s:              {core:,.0f}   (decode + advance + encode outcomes)")
    print(f"orjson loads+dumps/s:      {plain:,.0f}")
    print(f"ratio core / orjson:       {core / plain:.3f}   (goal >= 0.30)")
    ser, live = bench_memory(args.memory_users)
    print(f"bytes per waiting user:    {ser:,.0f} serialized state (table value)")
    print(f"                           {live:,.0f} live Python objects (tracemalloc)")


if __name__ == "__main__":
    main()
