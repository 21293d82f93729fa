"""Stale wake-ups are the core's decision: a ``Wake`` whose token is not the one of the
user's current timer comes back with the state untouched and no effects. The token is
made by one function, :func:`engine.core.ids.wake_token`."""

from __future__ import annotations

import orjson
import yaml

from engine.core import Engine, ScheduleWake, UserEvent, UserState, Wake, wake_token
from engine.core.effects import Effect, Outcome
from engine.durations import parse_ts_ms
from engine.journey.model import Journey
from engine.sim.simulator import Simulator

T0 = parse_ts_ms("2026-01-05T12:00:00Z")
MIN = 60_000
JOURNEY = Journey.model_validate(
    yaml.safe_load(
        """
id: j
version: 1
entry: {event: go}
exit_on: [stop]
start: w
nodes:
  w: {type: wait, duration: 10m, next: s}
  s: {type: send, channel: sms, text: hi, next: done}
  done: {type: exit}
"""
    )
)


def entered(engine: Engine, user: str = "u") -> tuple[UserState, list[Effect]]:
    ev = UserEvent("e1", user, "go", T0, {}, {"phone": "+14155550123"})
    return engine.advance(engine.new_state(user), ev, T0)


def snapshot(state: UserState) -> bytes:
    return orjson.dumps(state.to_wire())


def test_schedule_wake_carries_the_token_of_its_time() -> None:
    engine = Engine([JOURNEY])
    state, effects = entered(engine)
    (wake,) = [e for e in effects if isinstance(e, ScheduleWake)]
    assert wake.at == T0 + 10 * MIN
    assert wake.token == wake_token("u", T0 + 10 * MIN) == engine.wake_token(state)


def test_the_current_wake_up_fires() -> None:
    engine = Engine([JOURNEY])
    state, _ = entered(engine)
    at = T0 + 10 * MIN
    _, effects = engine.advance(state, Wake("u", at, wake_token("u", at)), at)
    assert "message_sent" in [e.type for e in effects if isinstance(e, Outcome)]


def test_a_wake_up_for_a_timer_that_moved_is_dropped_untouched() -> None:
    engine = Engine([JOURNEY])
    state, _ = entered(engine)
    at = T0 + 10 * MIN
    old = Wake("u", at, wake_token("u", at))
    engine.advance(state, UserEvent("e2", "u", "stop", T0 + MIN), T0 + MIN)  # timer gone
    before = snapshot(state)
    later = T0 + 20 * MIN  # the adapter delivers it late: still nothing may change
    assert engine.advance(state, old, later) == (state, [])
    assert snapshot(state) == before
    assert state.clock == T0 + MIN


def test_the_token_decides_not_the_time() -> None:
    engine = Engine([JOURNEY])
    state, _ = entered(engine)
    at = T0 + 10 * MIN
    before = snapshot(state)
    assert engine.advance(state, Wake("u", at, wake_token("u", at - 1)), at) == (state, [])
    assert engine.advance(state, Wake("u", at, wake_token("other", at)), at) == (state, [])
    assert snapshot(state) == before


def test_a_wake_up_for_a_user_with_nothing_pending_is_stale() -> None:
    engine = Engine([JOURNEY])
    state = engine.new_state("new")
    assert engine.advance(state, Wake("new", T0, wake_token("new", T0)), T0) == (state, [])
    assert snapshot(state) == snapshot(engine.new_state("new"))


def test_a_wake_without_token_moves_the_clock_on() -> None:
    """Not scheduled by the engine (a test, a tool): what is due by its time fires."""
    engine = Engine([JOURNEY])
    state, _ = entered(engine)
    _, effects = engine.advance(state, Wake("u", T0 + 30 * MIN), T0 + 30 * MIN)
    assert "message_sent" in [e.type for e in effects if isinstance(e, Outcome)]


def test_the_simulator_leaves_stale_wake_lines_to_the_core() -> None:
    """A file's wake-up line stands for the wake-up due at its time: ignored otherwise."""
    go = UserEvent("e1", "u", "go", T0, {}, {"phone": "+14155550123"})
    plain = Simulator([JOURNEY]).run([go], trace=True)
    stray = [Wake("u", T0 + 5 * MIN), Wake("nobody", T0 + 5 * MIN)]
    with_stray = Simulator([JOURNEY]).run([go, *stray], trace=True)
    assert [o.to_wire() for o in with_stray.outcomes] == [o.to_wire() for o in plain.outcomes]
    assert with_stray.trace == plain.trace
    assert with_stray.sends == plain.sends
