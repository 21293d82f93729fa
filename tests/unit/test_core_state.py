"""Core: timers and stale wake-ups, state serialization, journey versions and migration."""

from __future__ import annotations

from typing import Any

import orjson
from core_harness import (
    DAY,
    HOUR,
    MIN,
    PHONE,
    T0,
    Harness,
    journey,
    outcomes,
    sends,
    types,
    wakes,
)

from engine.core import Effect, Engine, Inbound, Input, Receipt, UserEvent, UserState, Wake
from engine.core.effects import Outcome, SendRequest

FULL = """
id: order-updates
version: 1
entry: {event: order_placed, reentry: always}
exit_on: [order_cancelled]
goal: {event: order_delivered, within: 7d}
settings:
  quiet_hours: {from: "21:00", to: "08:00", action: defer}
  frequency_cap: {max: 3, per: 1d}
start: confirm
nodes:
  confirm:
    type: send
    channel: rcs
    rich_card:
      title: "Order {{ event.order_id }} confirmed"
      suggestions:
        - reply: {text: "Track order", postback: track}
    fallback: {sms: "Order {{ event.order_id }} confirmed.", after: 10m}
    next: await_ship
  await_ship:
    type: wait_for
    paths:
      - {event: order_shipped, when: "event.order_id == entry.order_id", next: shipped}
      - {reply: track, of: confirm, next: tracking}
    timeout: 3d
    on_timeout: apology
  shipped: {type: send, channel: sms, text: "Shipped {{ event.url }}", next: pause}
  tracking: {type: send, channel: rcs, text: "Track here", next: pause}
  apology: {type: send, channel: sms, text: "Sorry", next: pause}
  pause: {type: wait, until: {time: "10:00", days: [mon, thu]}, next: sp}
  sp:
    type: split
    variants:
      - {name: A, weight: 1, next: done}
      - {name: B, weight: 1, next: done}
  done: {type: exit}
"""


# ----------------------------------------------------------------------------- timers


def test_stale_wake_changes_nothing() -> None:
    h = Harness(journey(FULL))
    h.enter(props={"order_id": "A1"}, name="order_placed", timezone="Europe/London")
    due = h.state().wake_at
    assert due == T0 + 10 * MIN
    before = h.state().to_wire()
    # a wake-up for a time at which nothing is due (an old token, or early)
    assert h.wake(T0 + MIN) == []
    after = h.state().to_wire()
    assert {k: v for k, v in after.items() if k != "c"} == {
        k: v for k, v in before.items() if k != "c"
    }
    # a wake-up that is older than the clock: nothing at all
    assert h.wake(T0) == []
    assert h.state().to_wire() == after


def test_schedule_wake_is_emitted_only_when_the_earliest_timer_moves() -> None:
    h = Harness(journey(FULL))
    eff = h.enter(props={"order_id": "A1"}, name="order_placed")
    (w,) = wakes(eff)
    assert w.at == T0 + 10 * MIN
    rcs = sends(eff)[0]
    eff = h.receipt("delivered", T0 + 5000, rcs.message_id)
    (w2,) = wakes(eff)
    assert w2.at == T0 + 3 * DAY  # the wait_for timeout
    assert w2.token != w.token
    assert wakes(h.receipt("read", T0 + 6000, rcs.message_id)) == []


def test_wake_token_is_derived_from_the_time() -> None:
    h = Harness(journey(FULL))
    h.enter(props={"order_id": "A1"}, name="order_placed")
    assert h.engine.wake_token(h.state()) == wakes(h.effects)[0].token


# ----------------------------------------------------------------------------- serialization


def script() -> list[Input]:
    """Entry, a receipt, a reply, a profile update, an exit event: a bit of everything."""
    p = {"phone": PHONE, "timezone": "America/New_York", "first_name": "Asha"}
    return [
        UserEvent("e1", "u", "order_placed", T0, {"order_id": "A1"}, p),
        UserEvent("e2", "u", "order_placed", T0 + MIN, {"order_id": "B2"}),
        Receipt("u", T0 + 2 * MIN, "delivered", node="confirm"),
        Wake("u", T0 + 11 * MIN),
        Inbound("u", T0 + HOUR, postback="track"),
        UserEvent("e3", "u", "order_shipped", T0 + 2 * HOUR, {"order_id": "B2", "url": "x"}),
        UserEvent("e3", "u", "order_shipped", T0 + 2 * HOUR, {"order_id": "B2"}),
        Inbound("u", T0 + 3 * HOUR, text="STOP", keyword="opt_out"),
        Wake("u", T0 + 2 * DAY),
        Inbound("u", T0 + 2 * DAY + 1, text="START", keyword="opt_in"),
        UserEvent("e4", "u", "order_placed", T0 + 3 * DAY, {"order_id": "C3"}),
        UserEvent("e5", "u", "order_delivered", T0 + 4 * DAY, {}),
        Wake("u", T0 + 8 * DAY),
        UserEvent("e6", "u", "order_cancelled", T0 + 9 * DAY, {}),
    ]


def wire(effects: list[Effect]) -> bytes:
    out: list[Any] = []
    for e in effects:
        if isinstance(e, Outcome | SendRequest):
            out.append(e.to_wire())
        else:
            out.append(repr(e))
    return orjson.dumps(out)


def play(engine: Engine, inputs: list[Input], *, roundtrip: bool) -> tuple[bytes, UserState]:
    state = engine.new_state("u")
    effects: list[Effect] = []
    for inp in inputs:
        if roundtrip:
            state = UserState.from_wire(orjson.loads(orjson.dumps(state.to_wire())))
        state, eff = engine.advance(state, inp, inp.ts)
        effects.extend(eff)
    return wire(effects), state


def test_state_roundtrip_gives_identical_future_behaviour() -> None:
    j = journey(FULL)
    plain, s1 = play(Engine([j]), script(), roundtrip=False)
    tripped, s2 = play(Engine([j]), script(), roundtrip=True)
    assert plain == tripped
    assert orjson.dumps(s1.to_wire()) == orjson.dumps(s2.to_wire())
    assert len(orjson.loads(plain)) > 30


def test_state_roundtrip_at_every_point_then_continue() -> None:
    j = journey(FULL)
    inputs = script()
    reference, _ = play(Engine([j]), inputs, roundtrip=False)
    engine = Engine([j])
    for cut in range(len(inputs) + 1):
        state = engine.new_state("u")
        effects: list[Effect] = []
        for inp in inputs[:cut]:
            state, eff = engine.advance(state, inp, inp.ts)
            effects.extend(eff)
        state = UserState.from_wire(orjson.loads(orjson.dumps(state.to_wire())))
        for inp in inputs[cut:]:
            state, eff = engine.advance(state, inp, inp.ts)
            effects.extend(eff)
        assert wire(effects) == reference, cut


def test_wire_form_is_compact_and_json() -> None:
    s = UserState("u")
    assert s.to_wire() == {"u": "u", "c": 0}
    assert UserState.from_wire({"u": "u"}) == s


# ----------------------------------------------------------------------------- versions

V1 = """
id: j
version: 1
entry: {event: go}
start: w
nodes:
  w: {type: wait, duration: 1h, next: s}
  s: {type: send, channel: sms, text: "v1", next: w2}
  w2:
    type: wait_for
    paths: [{event: ship, next: s_ship}]
    timeout: 1d
    on_timeout: done
  s_ship: {type: send, channel: sms, text: "v1 shipped", next: done}
  done: {type: exit}
"""

V2 = """
id: j
version: 2
entry: {event: go}
%s
start: wait
nodes:
  wait: {type: wait, duration: 1h, next: send}
  send: {type: send, channel: sms, text: "v2", next: wait2}
  wait2:
    type: wait_for
    paths: [{event: ship, next: shipped}]
    timeout: 1d
    on_timeout: end
  shipped: {type: send, channel: sms, text: "v2 shipped", next: end}
  end: {type: exit}
"""


def texts(effects: list[Effect]) -> list[str]:
    return [str(s.content.get("text")) for s in sends(effects)]


def move_to_new_engine(h: Harness, *journeys: str) -> Harness:
    h2 = Harness(*(journey(t) for t in journeys))
    h2.states = h.states
    h2._seq = h._seq + 1000  # fresh event ids
    return h2


def test_user_in_flight_stays_on_the_old_version() -> None:
    h = Harness(journey(V1))
    h.enter()
    h2 = move_to_new_engine(h, V1, V2 % "")
    eff = h2.run_until(T0 + HOUR)
    assert texts(eff) == ["v1"]
    assert {o.journey_version for o in outcomes(eff)} == {1}
    assert texts(h2.event("ship", T0 + 2 * HOUR)) == ["v1 shipped"]
    # a new entry gets the new version
    h2.enter(T0 + DAY, user="new")
    assert texts(h2.run_until(T0 + DAY + HOUR, user="new")) == ["v2"]
    assert {o.journey_version for o in h2.outcomes() if o.user_id == "new"} == {2}


MIGRATE = "migrate: [{from_version: 1, nodes: {w: wait, w2: wait2}}]"


def test_migration_moves_a_waiting_user_at_the_next_step() -> None:
    h = Harness(journey(V1))
    h.enter()
    h2 = move_to_new_engine(h, V1, V2 % MIGRATE)
    inst = next(iter(h2.state().instances.values()))
    assert (inst.version, inst.node) == (1, "w")  # nothing happens before the next step
    eff = h2.run_until(T0 + HOUR)
    assert types(eff)[:2] == ["instance_migrated", "node_entered"]
    m = outcomes(eff)[0]
    assert (m.journey_version, m.node_id) == (2, "wait")
    assert m.attributes == {"from_version": 1, "from_node": "w", "to_version": 2}
    assert texts(eff) == ["v2"]
    assert (inst.version, inst.node) == (2, "wait2")


def test_migration_when_an_event_moves_a_waiting_user() -> None:
    h = Harness(journey(V1))
    h.enter()
    h.run_until(T0 + HOUR)  # v1: sent "v1", now in w2
    h2 = move_to_new_engine(h, V1, V2 % MIGRATE)
    eff = h2.event("ship", T0 + 2 * HOUR)
    assert types(eff)[0] == "instance_migrated"
    assert texts(eff) == ["v2 shipped"]
    assert [o.node_id for o in outcomes(eff, "node_entered")] == ["shipped", "end"]
    assert h2.state().instances == {}


def test_migration_when_the_wait_for_times_out() -> None:
    h = Harness(journey(V1))
    h.enter()
    h.run_until(T0 + HOUR)
    h2 = move_to_new_engine(h, V1, V2 % MIGRATE)
    eff = h2.run_until(T0 + HOUR + DAY)
    assert types(eff)[0] == "instance_migrated"
    (ex,) = outcomes(eff, "journey_exited")
    assert (ex.journey_version, ex.node_id) == (2, "end")


def test_no_migration_for_unmapped_nodes() -> None:
    h = Harness(journey(V1))
    h.enter()
    h2 = move_to_new_engine(h, V1, V2 % "migrate: [{from_version: 1, nodes: {w2: wait2}}]")
    eff = h2.run_until(T0 + HOUR)
    assert texts(eff) == ["v1"]  # w isn't mapped: v1 goes on
    eff = h2.event("ship", T0 + 2 * HOUR)  # ...until it waits in w2, which is
    assert types(eff)[0] == "instance_migrated"
    assert texts(eff) == ["v2 shipped"]


V2_EXIT = """
id: j
version: 2
entry: {event: go}
migrate: [{from_version: 1, nodes: {w: retired, w2: check}}]
start: retired
nodes:
  retired: {type: exit, reason: retired}
  check:
    type: branch
    cases: [{when: "user.tier == 'gold'", next: gold}]
    default: retired
  gold: {type: send, channel: sms, text: "gold", next: retired}
"""


def test_migration_onto_a_node_that_does_not_wait_enters_it() -> None:
    """Mapping a waiting node to an exit (or branch, split) is valid; when the old timer
    fires, the user enters the new node (it used to crash: no timer handler for exit)."""
    h = Harness(journey(V1))
    h.enter()
    h2 = move_to_new_engine(h, V1, V2_EXIT)
    eff = h2.run_until(T0 + HOUR)
    assert types(eff) == ["instance_migrated", "node_entered", "journey_exited"]
    ex = outcomes(eff)[-1]
    assert (ex.journey_version, ex.node_id, ex.attributes) == (2, "retired", {"reason": "retired"})
    assert h2.state().instances == {}


def test_migration_onto_a_branch_at_timeout() -> None:
    h = Harness(journey(V1))
    h.enter(tier="gold")
    h.run_until(T0 + HOUR)  # v1: in w2 now
    h2 = move_to_new_engine(h, V1, V2_EXIT)
    eff = h2.run_until(T0 + HOUR + DAY)
    assert [o.node_id for o in outcomes(eff, "node_entered")] == ["check", "gold", "retired"]
    assert texts(eff) == ["gold"]
