"""Regressions found by reviewing the golden replays (each failed before its fix)."""

from __future__ import annotations

from test_core_harness import DAY, HOUR, T0, Harness, journey, types

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


CAPPED = """
id: {id}
version: 1
entry: {{event: {event}, reentry: always}}
settings: {{frequency_cap: {{max: 1, per: 1d}}}}
start: s
nodes:
  s: {{type: send, channel: sms, text: hi, marketing: {marketing}, next: done}}
  done: {{type: exit}}
"""


def test_utility_sends_are_neither_capped_nor_counted() -> None:
    util = journey(CAPPED.format(id="util", event="receipt", marketing="false"))
    promo = journey(CAPPED.format(id="promo", event="promo", marketing="true"))
    h = Harness(util, promo)
    h.enter(T0, name="receipt")
    h.enter(T0 + 1000, name="receipt")
    h.enter(T0 + 2000, name="promo")
    h.enter(T0 + 3000, name="promo")
    sent = [o.journey_id for o in h.outcomes("message_sent")]
    assert sent == ["util", "util", "promo"]
    [supp] = h.outcomes("message_suppressed")
    assert (supp.journey_id, supp.attributes["reason"]) == ("promo", "frequency_cap")


ASK = """
id: ask
version: 1
entry: {event: go}
start: q
nodes:
  q:
    type: send
    channel: rcs
    text: "Keep your slot?"
    suggestions: [{reply: {text: "Yes", postback: "yes"}}]
    next: w
  w:
    type: wait_for
    paths: [{reply: "yes", of: q, next: kept}]
    timeout: 1d
    on_timeout: done
  kept: {type: exit, reason: kept}
  done: {type: exit}
"""


def test_yes_from_a_user_who_never_opted_out_is_an_answer() -> None:
    h = Harness(journey(ASK))
    h.enter(T0)
    eff = h.inbound(T0 + 60_000, text="Yes", keyword="opt_in")
    assert "user_opted_in" not in types(eff)
    assert "message_replied" in types(eff)
    [exited] = h.outcomes("journey_exited")
    assert exited.attributes["reason"] == "kept"


def test_start_after_stop_is_an_opt_in() -> None:
    h = Harness(journey(ASK))
    h.enter(T0)
    h.inbound(T0 + 1000, text="STOP", keyword="opt_out")
    eff = h.inbound(T0 + 2000, text="START", keyword="opt_in")
    assert types(eff) == ["user_opted_in"]
    assert not h.state().opted_out
