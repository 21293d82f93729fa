"""The generated events every figure of the suite runs on.

One ``signed_up`` per user (historic timestamps, one millisecond apart) into a journey of
two SMS sends around a 1 h wait: on the broker, every wait is already due when the worker
reads the event, so each user costs the worker two inputs (the event, the wake-up) and the
gateway two sends (+ two receipts back to the worker).
"""

from __future__ import annotations

import orjson

from engine.bench.options import BenchOptions
from engine.durations import format_ts, parse_ts_ms

JOURNEY_ID = "bench"

JOURNEY = """\
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

BASE_TS = "2026-01-01T00:00:00Z"

# Outcomes per user: entered, 3 x node_entered, wait entered, 2 x sent, exited (worker);
# + 2 x delivered with the gateway. Inputs per user: the event and the wake-up (+ 2 receipts).
OUTCOMES_PER_USER = {False: 8, True: 10}
INPUTS_PER_USER = {False: 2, True: 4}


def user_events(opts: BenchOptions) -> list[tuple[bytes, bytes]]:
    """(key, value) of ``opts.users`` events: the user id, and the JSON line."""
    base = parse_ts_ms(BASE_TS)
    prefix = f"b{opts.seed}-" if opts.seed else "b"
    out: list[tuple[bytes, bytes]] = []
    for i in range(opts.users):
        uid = f"{prefix}{i}"
        line = {
            "event_id": uid,
            "user_id": uid,
            "name": "signed_up",
            "ts": format_ts(base + i),
            "profile": {"phone": f"+1415{5550000 + i % 10000:07d}"},
        }
        out.append((uid.encode(), orjson.dumps(line)))
    return out
