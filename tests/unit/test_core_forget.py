"""``journeys forget``: the core empties the user's state and says so."""

from __future__ import annotations

import yaml

from engine.core.effects import Erase, Outcome, ScheduleWake
from engine.core.engine import Engine
from engine.core.inputs import Forget, UserEvent
from engine.journey.model import Journey
from engine.sim.simulator import Simulator

JOURNEY = """
id: fg
version: 1
entry: {event: signed_up}
start: hello
nodes:
  hello: {type: send, channel: sms, marketing: false, text: "Hi", next: wait}
  wait: {type: wait, duration: 1d, next: done}
  done: {type: exit}
"""
T0 = 1_790_000_000_000


def _engine() -> Engine:
    return Engine([Journey.model_validate(yaml.safe_load(JOURNEY))])


def _signed_up(user: str, ts: int, eid: str = "e1") -> UserEvent:
    return UserEvent(eid, user, "signed_up", ts, {}, {"phone": "+14155550100", "first_name": "A"})


def test_forget_empties_the_state_and_reports_it() -> None:
    engine = _engine()
    state = engine.new_state("u")
    engine.advance(state, _signed_up("u", T0), T0)
    assert state.instances and state.wake_at is not None and state.attrs

    _, effects = engine.advance(state, Forget("u", T0 + 1000, "req-1"), T0 + 1000)

    assert not state.instances and not state.messages and not state.attrs
    assert not state.seen and not state.history and not state.send_log
    assert state.wake_at is None
    [outcome] = [e for e in effects if isinstance(e, Outcome)]
    assert outcome.type == "user_forgotten" and outcome.journey_id is None
    assert outcome.attributes == {"runs_ended": 1, "request_id": "req-1"}
    assert Erase("u") in effects
    assert ScheduleWake("u", None, engine.wake_token(state)) in effects  # the timer goes


def test_a_repeated_request_is_one_outcome_id_and_the_user_can_start_afresh() -> None:
    engine = _engine()
    first, second = engine.new_state("u"), engine.new_state("u")
    for state in (first, second):
        engine.advance(state, _signed_up("u", T0), T0)
    _, a = engine.advance(first, Forget("u", T0 + 1000, "req-1"), T0 + 1000)
    _, b = engine.advance(second, Forget("u", T0 + 2000, "req-1"), T0 + 2000)
    ids = {e.outcome_id for e in a + b if isinstance(e, Outcome)}
    assert len(ids) == 1
    # The same event id again: the dedupe memory went with the rest, so it is a new entry.
    _, effects = engine.advance(first, _signed_up("u", T0 + 5000), T0 + 5000)
    assert any(isinstance(e, Outcome) and e.type == "journey_entered" for e in effects)


def test_the_simulator_keeps_nothing_of_a_forgotten_user() -> None:
    sim = Simulator([Journey.model_validate(yaml.safe_load(JOURNEY))])
    result = sim.run([_signed_up("u", T0), _signed_up("v", T0), Forget("u", T0 + 60_000, "r")])
    assert "v" in result.states
    kept = result.states.get("u")  # a stale wake-up may bring back an empty state, no more
    assert kept is None or (not kept.attrs and not kept.instances and not kept.seen)
    assert [o.type for o in result.outcomes if o.user_id == "u"][-1] == "user_forgotten"
    assert not any(o.user_id == "u" and o.ts > T0 + 60_000 for o in result.outcomes)
