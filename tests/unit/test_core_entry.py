"""Core: entering, re-entering and leaving journeys; goals; event dedupe, unknown and late
events."""

from __future__ import annotations

import pytest
from core_harness import DAY, HOUR, MIN, PHONE, T0, Harness, journey, outcomes, types

WAITER = """
id: {id}
version: 1
entry: {{event: {event}, reentry: {reentry}{extra}}}
exit_on: [cancel]
start: w
nodes:
  w: {{type: wait, duration: 1h, next: done}}
  done: {{type: exit}}
"""


def waiter(jid: str = "j", event: str = "go", reentry: str = "after_exit", extra: str = "") -> str:
    return WAITER.format(id=jid, event=event, reentry=reentry, extra=extra)


def entered(h: Harness, jid: str | None = None) -> int:
    return sum(1 for o in h.outcomes("journey_entered") if jid is None or o.journey_id == jid)


# ----------------------------------------------------------------------------- entry


def test_entry_when_condition() -> None:
    h = Harness(journey(waiter(extra=', when: "event.total > 10"')))
    assert h.enter(props={"total": 5}) == []  # known event, condition false: nothing at all
    assert entered(h) == 0
    h.enter(T0 + 1000, props={"total": 50})
    assert entered(h) == 1
    (o,) = h.outcomes("journey_entered")
    assert o.attributes == {"event": "go"}
    assert o.node_id == "w"


def test_entry_when_sees_profile_of_the_same_event() -> None:
    h = Harness(journey(waiter(extra=", when: \"user.tier == 'gold'\"")))
    h.enter(tier="silver")
    h.enter(T0 + 1, tier="gold")
    assert entered(h) == 1


def test_reentry_never() -> None:
    h = Harness(journey(waiter(reentry="never")))
    h.enter()
    h.run_until(T0 + 2 * HOUR)
    assert h.outcomes("journey_exited")
    h.enter(T0 + 3 * HOUR)
    h.enter(T0 + 30 * DAY)
    assert entered(h) == 1


def test_reentry_after_exit() -> None:
    h = Harness(journey(waiter(reentry="after_exit")))
    h.enter()
    h.enter(T0 + 10 * MIN)  # still waiting: refused
    assert entered(h) == 1
    h.run_until(T0 + HOUR)
    assert len(h.outcomes("journey_exited")) == 1
    h.enter(T0 + HOUR + 1)
    assert entered(h) == 2


def test_reentry_always_runs_in_parallel() -> None:
    h = Harness(journey(waiter(reentry="always")))
    h.enter()
    h.enter(T0 + 10 * MIN)
    assert entered(h) == 2
    assert len(h.state().instances) == 2
    ids = {o.instance_id for o in h.outcomes("journey_entered")}
    assert len(ids) == 2
    h.run_until(T0 + 2 * HOUR)
    assert len(h.outcomes("journey_exited")) == 2
    assert h.state().instances == {}


def test_cooldown() -> None:
    h = Harness(journey(waiter(reentry="always", extra=", cooldown: 1d")))
    h.enter()
    h.enter(T0 + 2 * HOUR)  # finished, but inside the cooldown
    assert entered(h) == 1
    h.enter(T0 + DAY - 1)
    assert entered(h) == 1
    h.enter(T0 + DAY)
    assert entered(h) == 2


def test_cooldown_with_after_exit() -> None:
    h = Harness(journey(waiter(reentry="after_exit", extra=", cooldown: 2h")))
    h.enter()
    h.run_until(T0 + HOUR)  # exits after 1h
    h.enter(T0 + HOUR + MIN)
    assert entered(h) == 1
    h.enter(T0 + 2 * HOUR)
    assert entered(h) == 2


def test_user_in_several_journeys_at_once() -> None:
    a = journey(waiter("a"))
    b = journey(waiter("b").replace("1h", "3h"))
    c = journey(waiter("c", event="other"))
    h = Harness(a, b, c)
    h.enter()
    h.event("other", T0 + MIN)
    assert {i.journey_id for i in h.state().instances.values()} == {"a", "b", "c"}
    h.run_until(T0 + 2 * HOUR)
    assert {i.journey_id for i in h.state().instances.values()} == {"b"}
    exited = [o.journey_id for o in h.outcomes("journey_exited")]
    assert exited == ["a", "c"]
    h.run_until(T0 + 4 * HOUR)
    assert h.state().instances == {}
    # other users are untouched
    assert "v" not in h.states


# ----------------------------------------------------------------------------- exit_on

EXIT_ANYWHERE = """
id: j
version: 1
entry: {event: go}
exit_on: [cancel]
start: s
nodes:
  s: {type: send, channel: sms, text: hi, next: w}
  w: {type: wait_for, paths: [{event: ship, next: s2}], timeout: 1d, on_timeout: s2}
  s2: {type: send, channel: sms, text: late, next: w2}
  w2: {type: wait, duration: 1h, next: done}
  done: {type: exit}
"""


def test_exit_on_while_waiting_for_an_event() -> None:
    h = Harness(journey(EXIT_ANYWHERE))
    h.enter()
    assert h.state().wake_at == T0 + DAY
    eff = h.event("cancel", T0 + HOUR)
    (ex,) = outcomes(eff, "journey_exited")
    assert ex.attributes == {"reason": "exit_event"}
    assert ex.node_id == "w"
    assert h.state().instances == {}
    assert h.state().wake_at is None
    # the timeout never fires, nothing more is sent
    assert h.run_until(T0 + 10 * DAY) == []
    assert len(h.sends()) == 1


def test_exit_on_while_in_a_plain_wait() -> None:
    h = Harness(journey(EXIT_ANYWHERE))
    h.enter()
    h.run_until(T0 + DAY)  # timeout -> s2 -> w2
    assert next(iter(h.state().instances.values())).node == "w2"
    eff = h.event("cancel", T0 + DAY + MIN)
    assert outcomes(eff, "journey_exited")[0].node_id == "w2"
    assert h.run_until(T0 + 3 * DAY) == []


def test_exit_on_only_hits_journeys_that_list_it() -> None:
    other = journey(waiter("k").replace("exit_on: [cancel]", "exit_on: [nope]"))
    h = Harness(journey(EXIT_ANYWHERE), other)
    h.enter()
    h.event("cancel", T0 + MIN)
    assert [i.journey_id for i in h.state().instances.values()] == ["k"]


# ----------------------------------------------------------------------------- goals

GOAL = """
id: j
version: 1
entry: {event: go, reentry: always}
goal: {event: buy, within: 2d, exit: {exit}}
start: w
nodes:
  w: {type: wait, duration: {wait}, next: done}
  done: {type: exit}
"""


def goal_journey(exit_: bool = True, wait: str = "5d") -> str:
    return GOAL.replace("{exit}", str(exit_).lower()).replace("{wait}", wait)


def test_goal_within_window_converts_and_exits() -> None:
    h = Harness(journey(goal_journey()))
    h.enter()
    eff = h.event("buy", T0 + DAY)
    assert types(eff) == ["goal_converted", "journey_exited"]
    g, ex = outcomes(eff)
    assert g.attributes == {"event": "buy", "after_ms": DAY}
    assert g.instance_id == ex.instance_id
    assert ex.attributes == {"reason": "goal"}
    assert h.state().instances == {}
    # a second goal event doesn't convert twice
    assert outcomes(h.event("buy", T0 + DAY + 1), "goal_converted") == []


def test_goal_at_the_window_edge_counts() -> None:
    h = Harness(journey(goal_journey()))
    h.enter()
    assert types(h.event("buy", T0 + 2 * DAY))[:1] == ["goal_converted"]


def test_goal_after_the_window_does_not_count() -> None:
    h = Harness(journey(goal_journey()))
    h.enter()
    eff = h.event("buy", T0 + 2 * DAY + 1)
    assert outcomes(eff, "goal_converted", "journey_exited") == []
    assert len(h.state().instances) == 1


def test_goal_without_exit_keeps_the_user_going() -> None:
    h = Harness(journey(goal_journey(exit_=False)))
    h.enter()
    assert types(h.event("buy", T0 + HOUR)) == ["goal_converted"]
    assert len(h.state().instances) == 1
    h.run_until(T0 + 6 * DAY)
    (ex,) = h.outcomes("journey_exited")
    assert ex.attributes == {"reason": "completed"}
    assert len(h.outcomes("goal_converted")) == 1


def test_goal_after_exit_within_window() -> None:
    h = Harness(journey(goal_journey(wait="1h")))
    h.enter()
    h.run_until(T0 + HOUR)
    assert h.state().instances == {}
    eff = h.event("buy", T0 + DAY)
    (g,) = outcomes(eff)
    assert g.type == "goal_converted"
    assert g.attributes["after_ms"] == DAY
    assert g.instance_id == h.outcomes("journey_entered")[0].instance_id
    assert outcomes(h.event("buy", T0 + DAY + 1)) == []


def test_goal_after_exit_outside_window() -> None:
    h = Harness(journey(goal_journey(wait="1h")))
    h.enter()
    h.run_until(T0 + HOUR)
    assert outcomes(h.event("buy", T0 + 2 * DAY + 1)) == []
    assert h.state().history["j"].tracking == []


def test_goal_is_judged_by_the_event_time_even_when_late() -> None:
    h = Harness(journey(goal_journey(wait="1h")))
    h.enter()
    h.run_until(T0 + HOUR)
    h.wake(T0 + 3 * DAY)  # the clock moves past the window
    # a goal event that happened inside the window, delivered late
    eff = h.event("buy", T0 + DAY, now=T0 + 3 * DAY)
    assert types(eff) == ["goal_converted"]


GOAL_PER_ORDER = """
id: orders
version: 1
entry: {event: order_placed, reentry: always}
goal: {event: order_delivered, when: "event.order_id == entry.order_id", within: 7d}
start: pause
nodes:
  pause: {type: wait, duration: 1h, next: done}
  done: {type: exit}
"""


def test_goal_when_sees_the_entry_of_each_run_also_after_exit() -> None:
    h = Harness(journey(GOAL_PER_ORDER))
    h.enter(T0, props={"order_id": "A"}, name="order_placed")
    h.enter(T0 + 1000, props={"order_id": "B"}, name="order_placed")
    h.run_until(T0 + 2 * HOUR)  # both runs have ended: conversions are tracked after exit
    h.event("order_delivered", T0 + DAY, props={"order_id": "B"})
    [conv] = h.outcomes("goal_converted")
    entered_b = [o for o in h.outcomes("journey_entered") if o.ts == T0 + 1000]
    assert conv.instance_id == entered_b[0].instance_id
    h.event("order_delivered", T0 + 2 * DAY, props={"order_id": "A"})
    assert len(h.outcomes("goal_converted")) == 2


# ----------------------------------------------------------------------------- inputs


def test_duplicate_event_id_is_ignored() -> None:
    h = Harness(journey(waiter(reentry="always")))
    h.event("go", T0, profile={"phone": PHONE}, event_id="same")
    before = h.state().to_wire()
    assert h.event("go", T0 + MIN, event_id="same") == []
    assert entered(h) == 1
    after = h.state().to_wire()
    assert {k: v for k, v in after.items() if k != "c"} == {
        k: v for k, v in before.items() if k != "c"
    }


def test_duplicate_event_does_not_move_a_waiting_user() -> None:
    h = Harness(journey(EXIT_ANYWHERE))
    h.enter()
    h.event("ship", T0 + MIN, event_id="s1")
    node = next(iter(h.state().instances.values())).node
    h.event("cancel", T0 + 2 * MIN, event_id="s1")  # same id, other name: still a duplicate
    assert next(iter(h.state().instances.values())).node == node


def test_unknown_event_touches_nothing() -> None:
    h = Harness(journey(waiter()))
    h.enter()
    before = h.state().to_wire()
    assert h.event("nobody_listens", T0 + DAY) == []
    assert h.state().to_wire() == before


def test_unknown_event_still_updates_the_profile() -> None:
    # The profile is the latest of what the user's events carried, whatever their name.
    h = Harness(journey(waiter()))
    h.enter()
    h.event("nobody_listens", T0 + MIN, profile={"tier": "gold"})
    assert h.state().attrs["tier"] == "gold"


def test_late_event_is_handled_at_the_state_clock() -> None:
    h = Harness(journey(waiter(reentry="always")))
    h.enter()
    h.wake(T0 + 10 * MIN)
    assert h.state().clock == T0 + 10 * MIN
    eff = h.event("go", T0 - DAY)  # happened long ago, arrives now
    (o,) = outcomes(eff, "journey_entered")
    assert o.ts == T0 + 10 * MIN
    assert h.state().clock == T0 + 10 * MIN
    inst = next(i for i in h.state().instances.values() if i.id == o.instance_id)
    assert inst.entered_at == T0 + 10 * MIN
    assert inst.wake_at == T0 + 10 * MIN + HOUR


def test_due_timers_fire_before_a_later_input_at_their_own_time() -> None:
    h = Harness(journey(EXIT_ANYWHERE))
    h.enter()
    # No wake-up was delivered; the next input comes after the 1d timeout and the 1h wait.
    eff = h.event("cancel", T0 + 3 * DAY)
    assert types(eff) == [
        "node_entered",
        "message_sent",
        "node_entered",
        "node_entered",
        "journey_exited",
    ]
    ts_ = [o.ts for o in outcomes(eff)]
    assert ts_ == [T0 + DAY] * 3 + [T0 + DAY + HOUR] * 2
    assert outcomes(eff)[-1].attributes == {"reason": "completed"}


@pytest.mark.parametrize("reentry", ["never", "after_exit", "always"])
def test_entry_ids_are_distinct_per_run(reentry: str) -> None:
    h = Harness(journey(waiter(reentry=reentry)))
    for k in range(3):
        h.enter(T0 + k * DAY)
    ids = [o.instance_id for o in h.outcomes("journey_entered")]
    assert len(ids) == len(set(ids))
