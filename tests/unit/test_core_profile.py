"""Core: profile events (settings.profile_events), the update_profile node, and ``user.*``
reading the profile after an update."""

from __future__ import annotations

from typing import Any

import pytest
from core_harness import DAY, HOUR, MIN, PHONE, T0, Harness, journey, outcomes, sends, types

from engine.core import EngineConfig
from engine.core.trace import Trace
from engine.errors import InputError, ProfileLimitError

PROFILE_JOURNEY = """
id: p
version: 1
entry: {event: converted, reentry: always}
exit_on: [cancel]
goal: {event: paid, within: 7d}
start: record
nodes:
  record:
    type: update_profile
    set: {plan: entry.plan, stage: "'customer'", count: "(user.count or 0) + 1"}
    unset: [trial_ends]
    next: which
  which:
    type: branch
    cases:
      - {when: "user.plan == 'annual' and user.stage == 'customer'", next: annual}
    default: wait
  annual: {type: send, channel: sms, marketing: false, text: "Annual {{ user.count }}", next: wait}
  wait:
    type: wait_for
    paths: [{event: upgraded, next: done}]
    timeout: 1d
    on_timeout: done
  done: {type: exit}
"""


def harness(config: EngineConfig | None = None) -> Harness:
    return Harness(journey(PROFILE_JOURNEY), config=config)


def profile_event(h: Harness, at: int, name: str = "profile_updated", **props: Any) -> list[Any]:
    return h.event(name, at, props=props)


# ----------------------------------------------------------------------------- profile events


def test_a_profile_event_sets_the_profile_and_reports_the_changed_keys() -> None:
    h = harness()
    eff = h.event("profile_updated", T0, props={"tier": "gold"}, profile={"phone": PHONE})
    (o,) = outcomes(eff)
    assert o.type == "profile_updated"
    assert o.attributes == {"event": "profile_updated", "keys": ["phone", "tier"]}
    assert (o.journey_id, o.instance_id, o.node_id) == (None, None, None)
    assert h.state().attrs == {"tier": "gold", "phone": PHONE}


def test_a_profile_event_with_nothing_new_emits_nothing() -> None:
    h = harness()
    profile_event(h, T0, tier="gold")
    assert profile_event(h, T0 + MIN, tier="gold") == []


def test_the_profile_object_wins_over_the_properties() -> None:
    h = harness()
    h.event("profile_updated", T0, props={"tier": "silver"}, profile={"tier": "gold"})
    assert h.state().attrs == {"tier": "gold"}


def test_a_profile_event_named_by_journeys_enters_converts_moves_and_exits_nobody() -> None:
    config = EngineConfig(profile_events=frozenset({"converted", "paid", "upgraded", "cancel"}))
    h = harness(config)
    eff = h.event("converted", T0, props={"plan": "annual"})
    assert types(eff) == ["profile_updated"]
    assert h.state().instances == {}
    for name in ("paid", "upgraded", "cancel"):
        assert types(h.event(name, T0 + MIN, props={name: 1})) == ["profile_updated"]
    assert h.state().history == {}


def test_a_profile_event_does_not_move_a_waiting_run() -> None:
    config = EngineConfig(profile_events=frozenset({"upgraded"}))
    h = harness(config)
    h.enter(name="converted", props={"plan": "monthly"})
    node = next(iter(h.state().instances.values())).node
    assert node == "wait"
    assert types(h.event("upgraded", T0 + MIN, props={"x": 1})) == ["profile_updated"]
    assert next(iter(h.state().instances.values())).node == "wait"


def test_a_duplicate_profile_event_is_ignored() -> None:
    h = harness()
    h.event("profile_updated", T0, props={"a": 1}, event_id="same")
    assert h.event("profile_updated", T0 + MIN, props={"a": 2}, event_id="same") == []
    assert h.state().attrs == {"a": 1}


def test_a_null_in_a_profile_event_removes_the_attribute() -> None:
    h = harness()
    profile_event(h, T0, first_name="Ada", tier="gold")
    (o,) = outcomes(profile_event(h, T0 + MIN, first_name=None))
    assert o.attributes["keys"] == ["first_name"]
    assert h.state().attrs == {"tier": "gold"}


def test_a_profile_event_past_a_limit_is_refused_whole() -> None:
    h = harness()
    profile_event(h, T0, tier="gold")
    with pytest.raises(ProfileLimitError) as info:
        profile_event(h, T0 + MIN, tier="silver", bio="x" * 3000)
    assert info.value.reason == "profile_limit"
    assert h.state().attrs == {"tier": "gold"}


def test_an_events_own_profile_past_a_limit_refuses_the_event() -> None:
    h = harness()
    with pytest.raises(InputError) as info:
        h.event("converted", T0, props={"plan": "annual"}, profile={"k" * 65: 1})
    assert info.value.reason == "profile_limit"


def test_an_event_no_journey_names_still_merges_its_profile() -> None:
    h = harness()
    assert h.event("page_viewed", T0, profile={"tier": "gold"}) == []  # no outcome
    assert h.state().attrs == {"tier": "gold"}
    before = h.state().to_wire()
    assert h.event("page_viewed", T0 + MIN) == []  # without a profile: nothing at all
    assert h.state().to_wire() == before


def test_the_profile_events_come_from_the_config() -> None:
    h = harness(EngineConfig(profile_events=frozenset({"identify"})))
    assert types(h.event("identify", T0, props={"a": 1})) == ["profile_updated"]
    assert h.event("profile_updated", T0 + MIN, props={"b": 1}) == []  # not one any more
    assert h.state().attrs == {"a": 1}


# ----------------------------------------------------------------------------- the node


def test_the_node_sets_unsets_and_reports_the_changed_keys() -> None:
    h = harness()
    profile_event(h, T0, trial_ends="2026-01-10", phone=PHONE)
    eff = h.enter(T0 + MIN, name="converted", props={"plan": "monthly"})
    (o,) = outcomes(eff, "profile_updated")
    assert o.attributes == {"keys": ["count", "plan", "stage", "trial_ends"]}
    assert (o.journey_id, o.node_id) == ("p", "record")
    assert o.instance_id is not None
    assert h.state().attrs == {"phone": PHONE, "plan": "monthly", "stage": "customer", "count": 1}
    assert types(eff).index("profile_updated") < types(eff).index("node_entered", 2)


def test_a_later_branch_and_template_see_the_change() -> None:
    h = harness()
    eff = h.enter(name="converted", props={"plan": "annual"})
    (req,) = sends(eff)
    assert req.content["text"] == "Annual 1"
    eff = h.enter(T0 + DAY + HOUR, name="converted", props={"plan": "annual"})
    (req,) = sends(eff)
    assert req.content["text"] == "Annual 2"


def test_the_node_emits_nothing_when_nothing_changed() -> None:
    h = Harness(
        journey(
            PROFILE_JOURNEY.replace(
                'set: {plan: entry.plan, stage: "\'customer\'", count: "(user.count or 0) + 1"}',
                "set: {plan: entry.plan, stage: \"'customer'\"}",
            )
        )
    )
    h.enter(name="converted", props={"plan": "monthly"})
    eff = h.enter(T0 + 2 * DAY, name="converted", props={"plan": "monthly"})
    assert "profile_updated" not in types(eff)
    assert "journey_entered" in types(eff)


def test_a_null_expression_removes_the_attribute() -> None:
    h = harness()
    profile_event(h, T0, plan="old", phone=PHONE)
    eff = h.event("converted", T0 + MIN, props={})  # no plan: entry.plan is null
    (o,) = outcomes(eff, "profile_updated")
    assert "plan" in o.attributes["keys"]
    assert "plan" not in h.state().attrs


def test_the_node_past_a_limit_is_refused_and_the_run_goes_on() -> None:
    h = harness()
    profile_event(h, T0, phone=PHONE, trial_ends="x")
    eff = h.event("converted", T0 + MIN, props={"plan": "p" * 3000})
    (o,) = outcomes(eff, "profile_update_refused")
    assert o.attributes["reason"] == "value_size"
    assert "2048" in o.attributes["detail"]
    assert o.node_id == "record"
    assert "profile_updated" not in types(eff)
    assert h.state().attrs == {"phone": PHONE, "trial_ends": "x"}  # unset refused too
    assert next(iter(h.state().instances.values())).node == "wait"


def test_an_update_profile_node_is_traced() -> None:
    h = harness(EngineConfig(trace_users=frozenset({"u"})))
    eff = h.enter(name="converted", props={"plan": "monthly"})
    traces = [e for e in eff if isinstance(e, Trace) and e.kind == "profile"]
    assert [(t.reason, t.node_id, t.values["keys"]) for t in traces] == [
        ("updated", "record", ["count", "plan", "stage"])
    ]
