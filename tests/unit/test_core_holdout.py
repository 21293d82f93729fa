"""Core: a journey's holdout and the deployment's global control group (engine.core.holdout)."""

from __future__ import annotations

import orjson
from core_harness import DAY, HOUR, NY, T0, Harness, journey, outcomes, sends, types

from engine.core import EngineConfig, UserState
from engine.core.holdout import in_global_control, in_holdout
from engine.core.schema import StateRecord
from engine.core.wire import state_from_record, state_json, state_record
from engine.journey.deployment import GlobalControl

PROMO = """
id: promo
version: {version}
entry: {{event: go}}
holdout: {share}
goal: {{event: buy, within: 7d}}
settings:
  quiet_hours: {{from: "21:00", to: "08:00"}}
start: hello
nodes:
  hello: {{type: send, channel: sms, text: "20% off today", next: wait}}
  wait:
    type: wait_for
    paths: [{{event: browsed, next: nudge}}]
    timeout: 1d
    on_timeout: receipt
  nudge: {{type: send, channel: sms, text: "Still thinking?", next: receipt}}
  receipt: {{type: send, channel: sms, marketing: false, text: "Your code: X1", next: done}}
  done: {{type: exit}}
"""
CONTROL = GlobalControl(share="10%", salt="2026")


def promo(share: str = "10%", version: int = 1) -> str:
    return PROMO.format(share=share, version=version)


def users(pred: object, n: int = 1) -> list[str]:
    found = [u for u in (f"user-{i}" for i in range(10_000)) if pred(u)]  # type: ignore[operator]
    assert len(found) >= n
    return found[:n]


HELD = users(lambda u: in_holdout(u, "promo", 0.1), 2)
TREATED = users(lambda u: not in_holdout(u, "promo", 0.1), 2)
IN_CONTROL = users(lambda u: in_global_control(u, CONTROL) and not in_holdout(u, "promo", 0.1))
OUT_OF_CONTROL = users(lambda u: not in_global_control(u, CONTROL))


# ----------------------------------------------------------------------------- holdout


def test_a_held_out_user_enters_gets_no_sends_and_still_converts() -> None:
    h = Harness(journey(promo()))
    user = HELD[0]
    eff = h.enter(at=T0, user=user)
    (entered,) = outcomes(eff, "journey_entered")
    assert entered.attributes == {"event": "go", "holdout": True}
    assert sends(eff) == []
    (held,) = outcomes(eff, "message_suppressed")
    assert (held.node_id, held.channel, held.attributes) == ("hello", "sms", {"reason": "holdout"})
    # Paths and waits still run: the event path is taken, and the sends after it are
    # passed through without a message, the utility one too.
    eff = h.event("browsed", T0 + HOUR, user)
    assert sends(eff) == []
    assert [(o.node_id, o.attributes["reason"]) for o in outcomes(eff, "message_suppressed")] == [
        ("nudge", "holdout"),
        ("receipt", "holdout"),
    ]
    assert outcomes(eff, "journey_exited")[0].attributes == {"reason": "completed"}
    # Tracked to the goal after the run ended.
    eff = h.event("buy", T0 + 2 * DAY, user)
    assert types(eff) == ["goal_converted"]


def test_a_treated_user_gets_every_send_and_no_holdout_attribute() -> None:
    h = Harness(journey(promo()))
    user = TREATED[0]
    eff = h.enter(at=T0, user=user)
    assert outcomes(eff, "journey_entered")[0].attributes == {"event": "go"}
    assert [s.node_id for s in sends(eff)] == ["hello"]
    eff = h.run_until(T0 + 2 * DAY, user)
    assert [s.node_id for s in sends(eff)] == ["receipt"]


def test_holdout_wins_over_quiet_hours_no_deferral_for_a_message_never_sent() -> None:
    h = Harness(journey(promo()))
    late = T0 + 10 * HOUR  # 22:00 UTC, inside 21:00-08:00
    eff = h.enter(at=late, user=HELD[0])
    assert outcomes(eff, "message_deferred") == []
    assert outcomes(eff, "message_suppressed")[0].attributes == {"reason": "holdout"}
    eff = h.enter(at=late, user=TREATED[0])
    assert outcomes(eff, "message_deferred")[0].attributes["reason"] == "quiet_hours"


def test_assignment_is_the_same_for_every_version_and_kept_by_runs_in_flight() -> None:
    v1, v2 = journey(promo("10%", 1)), journey(promo("10%", 2))
    h1, h2 = Harness(v1), Harness(v1, v2)
    for user in HELD + TREATED:
        a = outcomes(h1.enter(at=T0, user=user), "journey_entered")[0]
        b = outcomes(h2.enter(at=T0, user=user), "journey_entered")[0]
        assert b.journey_version == 2
        assert a.attributes.get("holdout") == b.attributes.get("holdout")
    # A run entered while held out stays held out even if a new version holds out nobody
    # at all: the decision is kept on the run (and in its wire form).
    h = Harness(journey(promo("10%", 1)))
    h.enter(at=T0, user=HELD[1])
    state = h.state(HELD[1])
    (inst,) = state.instances.values()
    assert inst.holdout and inst.to_wire()[-1] == 1
    back = UserState.from_wire(orjson.loads(orjson.dumps(state.to_wire())))
    assert next(iter(back.instances.values())).holdout
    v2_nobody = promo("0.0%", 2).replace("start: hello", "migrate: [{from_version: 1, nodes: "
                                         "{wait: wait}}]\nstart: hello")
    h3 = Harness(journey(promo("10%", 1)), journey(v2_nobody))
    h3.states[HELD[1]] = back
    eff = h3.run_until(T0 + 2 * DAY, HELD[1])
    assert [o.attributes["to_version"] for o in outcomes(eff, "instance_migrated")] == [2]
    assert sends(eff) == []
    assert [(o.journey_version, o.attributes) for o in outcomes(eff, "message_suppressed")] == [
        (2, {"reason": "holdout"})
    ]


def test_a_run_outside_the_holdout_keeps_its_wire_form() -> None:
    h = Harness(journey(promo()))
    h.enter(at=T0, user=TREATED[0])
    (inst,) = h.state(TREATED[0]).instances.values()
    assert len(inst.to_wire()) == 11  # states of runs without holdout are unchanged


def test_the_state_with_a_held_out_run_matches_the_described_wire_form() -> None:
    h = Harness(journey(promo()))
    h.enter(at=T0, user=HELD[0], timezone=NY)
    raw = state_record(3, h.state(HELD[0]))
    StateRecord.model_validate(orjson.loads(state_json(raw)))
    assert state_from_record(raw)[1].to_wire() == h.state(HELD[0]).to_wire()


# ----------------------------------------------------------------------------- global control


def test_the_global_control_group_gets_no_marketing_send_but_utility_sends_go() -> None:
    h = Harness(journey(promo("10%")), config=EngineConfig(global_control=CONTROL))
    user = IN_CONTROL[0]
    eff = h.enter(at=T0, user=user)
    assert outcomes(eff, "journey_entered")[0].attributes == {"event": "go", "global_control": True}
    assert sends(eff) == []
    assert outcomes(eff, "message_suppressed")[0].attributes == {"reason": "global_control"}
    eff = h.run_until(T0 + 2 * DAY, user)
    assert [s.node_id for s in sends(eff)] == ["receipt"]  # marketing: false still goes
    eff = h.enter(at=T0, user=OUT_OF_CONTROL[0])
    assert "global_control" not in outcomes(eff, "journey_entered")[0].attributes
    assert [s.node_id for s in sends(eff)] == ["hello"]


def test_a_journey_without_marketing_sends_does_not_mark_the_control_group() -> None:
    utility = journey(
        """
id: receipts
version: 1
entry: {event: paid}
start: r
nodes:
  r: {type: send, channel: sms, marketing: false, text: "Receipt", next: done}
  done: {type: exit}
"""
    )
    h = Harness(utility, config=EngineConfig(global_control=CONTROL))
    eff = h.enter(at=T0, user=IN_CONTROL[0], name="paid")
    assert outcomes(eff, "journey_entered")[0].attributes == {"event": "paid"}
    assert len(sends(eff)) == 1


def test_the_salt_redraws_the_global_control_group() -> None:
    ids = [f"user-{i}" for i in range(2_000)]
    a = {u for u in ids if in_global_control(u, CONTROL)}
    b = {u for u in ids if in_global_control(u, GlobalControl(share="10%", salt="2027"))}
    assert 150 <= len(a) <= 250 and 150 <= len(b) <= 250
    assert len(a & b) < 60  # independent draws overlap by about 10% of 10%
    assert not any(in_global_control(u, None) for u in ids[:100])
    # The group doesn't depend on the journey: the same users in every journey.
    assert a == {u for u in ids if in_global_control(u, GlobalControl(share="10%", salt="2026"))}
