"""R2: core steps per second against the serialization floor of the same steps.

A *step* is what the worker does with one input, minus Kafka and the state store:
decode the JSON line into an input, ``Engine.advance`` it, and encode every record the
step makes the worker write (outcomes, send requests, revokes, forgets, trace records:
the bytes of :mod:`engine.core.wire`). The user states stay in a dict, as Python objects.

The *floor* is the serialization those steps cannot avoid: ``orjson.loads`` of each
input line plus ``orjson.dumps`` of every record dict the step emitted (the very dicts
the worker writes, built once beforehand), over the same lines, in the same run. The
ratio steps/floor says how much of a step is the engine's own work: 1.0 would mean the
core costs nothing beyond parsing and writing JSON.

The mix, per user: an unknown event (touches nothing), an order that enters a journey
and sends a rich card with SMS fallback, a delivery receipt, another unknown event, a
tap or a shipment that moves the user on and sends an SMS, a read receipt; a share of
the users also sign up into a journey that waits a day.
"""

from __future__ import annotations

import gc
import time
from collections.abc import Callable
from typing import Any

import orjson

from engine.core.effects import Effect, Outcome, Revoke, SendRequest
from engine.core.engine import Engine
from engine.core.state import UserState
from engine.core.trace import Trace
from engine.core.wire import (
    decode_line,
    loads,
    outcome_value,
    revoke_value,
    revoke_wire,
    send_request_value,
    send_request_wire,
    trace_value,
    trace_wire,
)
from engine.durations import format_ts
from engine.journey.loader import load_text
from engine.journey.model import Journey

TARGET_RATIO = 0.25

ORDER_JOURNEY = """
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

BASE_MS = 1_795_946_400_000  # 2026-11-29T10:00:00Z


def journeys() -> list[Journey]:
    """The benchmark's journeys (an order flow with a card and a fallback, a day's wait)."""
    out = []
    for text in (ORDER_JOURNEY, WAIT_JOURNEY):
        loaded, problems = load_text(text, "bench.yaml")
        if loaded is None or loaded.journey is None:
            raise AssertionError(f"the benchmark journey does not load: {problems}")
        out.append(loaded.journey)
    return out


def make_lines(users: int) -> list[bytes]:
    """The input lines of ``users`` users (6 or 7 lines each), as a worker reads them."""
    return [line for u in range(users) for line in _user_lines(u)]


def _user_lines(u: int) -> list[bytes]:
    uid = f"u{u}"
    t = BASE_MS + u * 1000
    out: list[bytes] = []

    def ev(name: str, dt_s: int, props: dict[str, Any], n: int) -> None:
        rec: dict[str, Any] = {
            "event_id": f"{uid}-{n}",
            "user_id": uid,
            "name": name,
            "ts": format_ts(t + dt_s * 1000),
            "properties": props,
        }
        if n == 1:
            rec["profile"] = {"phone": f"+1415555{u % 10000:04d}", "first_name": "Asha"}
        out.append(orjson.dumps(rec))

    def other(kind: str, dt_s: int, **fields: Any) -> None:
        rec = {"type": kind, "user_id": uid, "ts": format_ts(t + dt_s * 1000), **fields}
        out.append(orjson.dumps(rec))

    ev("page_view", 0, {"path": "/"}, 0)
    ev("order_placed", 1, {"order_id": f"A{u}", "total": 10 + u % 50}, 1)
    other("receipt", 6, node="confirm", status="delivered")
    ev("page_view", 30, {"path": "/orders"}, 2)
    if u % 2:
        other("inbound", 60, postback="track", event_id=f"{uid}-in")
    else:
        ev("order_shipped", 60, {"order_id": f"A{u}"}, 3)
    other("receipt", 90, node="confirm", status="read")
    if u % 4 == 0:
        ev("signed_up", 120, {}, 4)
    return out


def encode(eff: Effect) -> bytes | None:
    """The bytes the worker writes for an effect (None: it writes none, it indexes or acts)."""
    if isinstance(eff, Outcome):
        return outcome_value(eff)
    if isinstance(eff, SendRequest):
        return send_request_value(eff)
    if isinstance(eff, Revoke):
        return revoke_value(eff)
    if isinstance(eff, Trace):
        return trace_value(eff)
    return None


def record_dict(eff: Effect) -> dict[str, Any] | None:
    """The dict behind :func:`encode`'s bytes, for the floor."""
    if isinstance(eff, Outcome):
        return eff.to_wire()
    if isinstance(eff, SendRequest):
        return send_request_wire(eff)
    if isinstance(eff, Revoke):
        return revoke_wire(eff)
    if isinstance(eff, Trace):
        return trace_wire(eff)
    return None


def _step_pass(engine: Engine, lines: list[bytes]) -> int:
    """Decode, advance and encode every line, for fresh users; the records written."""
    states: dict[str, UserState] = {}
    written = 0
    for raw in lines:
        inp = decode_line(loads(raw))
        state = states.get(inp.user_id)
        if state is None:
            state = states[inp.user_id] = UserState(inp.user_id)
        _, effects = engine.advance(state, inp, inp.ts)
        for eff in effects:
            if encode(eff) is not None:
                written += 1
    return written


def _records(engine: Engine, lines: list[bytes]) -> tuple[list[list[dict[str, Any]]], int, int]:
    """Per line, the record dicts its step writes; and the outcomes and effects in all."""
    states: dict[str, UserState] = {}
    per_line: list[list[dict[str, Any]]] = []
    outcomes = effects_n = 0
    for raw in lines:
        inp = decode_line(loads(raw))
        state = states.setdefault(inp.user_id, UserState(inp.user_id))
        _, effects = engine.advance(state, inp, inp.ts)
        effects_n += len(effects)
        outcomes += sum(isinstance(e, Outcome) for e in effects)
        per_line.append([d for d in map(record_dict, effects) if d is not None])
    return per_line, outcomes, effects_n


def _floor_pass(lines: list[bytes], records: list[list[dict[str, Any]]]) -> int:
    oloads, odumps = orjson.loads, orjson.dumps
    written = 0
    for raw, dicts in zip(lines, records, strict=True):
        oloads(raw)
        for d in dicts:
            odumps(d)
            written += 1
    return written


def _timed(fn: Callable[[], int]) -> tuple[float, float, int]:
    """(CPU seconds of this process, wall seconds, what ``fn`` returned)."""
    gc.collect()
    cpu, wall = time.process_time(), time.perf_counter()
    n = fn()
    return time.process_time() - cpu, time.perf_counter() - wall, n


def measure(users: int = 5000, repeat: int = 5, engine: Engine | None = None) -> dict[str, Any]:
    """R2 over ``users`` users' lines: ``repeat`` rounds, each a pass of steps then a pass
    of the floor (so both see the same machine load); the best round of each counts.

    Rates are per CPU second of this process (``time.process_time``): on a machine shared
    with other work, wall time counts the moments another process had the core, and
    those fall unevenly on the two loops. ``wall_ratio`` is the same ratio by the wall
    clock; on a quiet machine the two agree.

    Returns ``steps_per_s``, ``floor_per_s``, ``ratio`` (steps / floor), ``target``,
    ``met``, ``lines``, ``outcomes_per_step``, ``effects_per_step``, ``records_per_step``
    (what is written), ``step_us`` and ``floor_us`` (CPU per line), ``wall_ratio``,
    ``repeat``."""
    engine = engine or Engine(journeys())
    lines = make_lines(users)
    records, outcomes, effects_n = _records(engine, lines)  # also warms every cache
    written = sum(len(r) for r in records)
    step_cpu = floor_cpu = step_wall = floor_wall = float("inf")
    for _ in range(max(1, repeat)):
        cpu, wall, n = _timed(lambda: _step_pass(engine, lines))
        if n != written:
            raise AssertionError(f"a step pass wrote {n} records, the reference pass {written}")
        step_cpu, step_wall = min(step_cpu, cpu), min(step_wall, wall)
        cpu, wall, _ = _timed(lambda: _floor_pass(lines, records))
        floor_cpu, floor_wall = min(floor_cpu, cpu), min(floor_wall, wall)
    n_lines = len(lines)
    steps_per_s = n_lines / step_cpu
    floor_per_s = n_lines / floor_cpu
    ratio = steps_per_s / floor_per_s
    return {
        "users": users,
        "lines": n_lines,
        "repeat": repeat,
        "steps_per_s": round(steps_per_s),
        "floor_per_s": round(floor_per_s),
        "ratio": round(ratio, 3),
        "target": TARGET_RATIO,
        "met": ratio >= TARGET_RATIO,
        "wall_ratio": round(floor_wall / step_wall, 3),
        "step_us": round(step_cpu / n_lines * 1e6, 2),
        "floor_us": round(floor_cpu / n_lines * 1e6, 2),
        "outcomes_per_step": round(outcomes / n_lines, 2),
        "effects_per_step": round(effects_n / n_lines, 2),
        "records_per_step": round(written / n_lines, 2),
    }
