"""Core: send-time optimization (engine.core.send_time): the engagement histogram and
``wait: {until: best_time}``."""

from __future__ import annotations

import orjson
import pytest
from core_harness import HOUR, MIN, NY, T0, Harness, journey, outcomes, sends, ts, when

from engine.core import UserState
from engine.core.schema import StateRecord
from engine.core.send_time import DECAY_AT, MIN_ENGAGEMENTS
from engine.core.wire import state_json, state_record

BERLIN, TOKYO = "Europe/Berlin", "Asia/Tokyo"


def tips(within: str = "24h", default: str = '"10:00"', quiet: bool = True) -> str:
    qh = 'settings: {quiet_hours: {from: "21:00", to: "08:00"}, default_timezone: UTC}'
    return f"""
id: tips
version: 1
entry: {{event: go}}
{qh if quiet else ""}
start: best
nodes:
  best: {{type: wait, until: best_time, within: {within}, default: {default}, next: tip}}
  tip: {{type: send, channel: sms, text: "Tip of the day", next: done}}
  done: {{type: exit}}
"""


def history(**hours: int) -> list[int]:
    """``history(h19=5, h8=1)``: a 24-bucket histogram."""
    hist = [0] * 24
    for key, n in hours.items():
        hist[int(key[1:])] = n
    return hist


def sent_at(h: Harness, user: str, hist: list[int], at: int = T0, **profile: str) -> str:
    """Enter ``user`` with ``hist`` as their history, run their timers; when the tip went."""
    h.state(user).engagement = hist
    h.enter(at=at, user=user, **profile)
    h.run_until(at + 3 * 24 * HOUR, user)
    (tip,) = [s for s in h.sends() if s.user_id == user]
    return when(tip)


# T0 is Monday 2026-01-05 12:00Z: 07:00 in New York, 13:00 in Berlin, 21:00 in Tokyo.


def test_each_user_is_sent_the_tip_at_their_own_most_engaged_local_hour() -> None:
    h = Harness(journey(tips()))
    # Evening reader in New York: 19:00 EST is 00:00Z.
    assert sent_at(h, "asha", history(h19=6, h8=2), timezone=NY) == "2026-01-06T00:00:00Z"
    # Lunchtime reader in Tokyo (it is 21:00 there): tomorrow 12:00 JST is 03:00Z.
    assert sent_at(h, "mei", history(h12=4, h22=1), timezone=TOKYO) == "2026-01-06T03:00:00Z"
    # Afternoon reader in Berlin: 16:00 CET today is 15:00Z.
    assert sent_at(h, "jonas", history(h16=3, h9=2), timezone=BERLIN) == "2026-01-05T15:00:00Z"
    # No timezone: the journey's default zone (UTC) reads the histogram.
    assert sent_at(h, "noor", history(h18=5)) == "2026-01-05T18:00:00Z"


def test_quiet_hours_still_apply_to_the_send_after_a_best_time_wait() -> None:
    h = Harness(journey(tips()))
    # Most engaged at 06:00 Berlin, inside 21:00-08:00: the send waits until 08:00.
    sent = sent_at(h, "early", history(h6=9), timezone=BERLIN)
    assert sent == "2026-01-06T07:00:00Z"  # 08:00 CET
    (deferred,) = [o for o in h.outcomes("message_deferred") if o.user_id == "early"]
    assert when(deferred) == "2026-01-06T05:00:00Z"  # the wait ended at 06:00 CET


def test_too_little_history_waits_until_the_default_time() -> None:
    h = Harness(journey(tips()))
    thin = history(h19=MIN_ENGAGEMENTS - 1)
    assert sent_at(h, "new", thin, timezone=NY) == "2026-01-05T15:00:00Z"  # 10:00 EST
    assert sent_at(h, "none", [], timezone=NY) == "2026-01-05T15:00:00Z"
    h2 = Harness(journey(tips(default='"07:30"', quiet=False)))
    assert sent_at(h2, "x", [], timezone=NY) == "2026-01-05T12:30:00Z"  # 07:30 EST


def test_ties_go_to_the_soonest_hour() -> None:
    h = Harness(journey(tips(quiet=False)))
    # 09:00 and 20:00 as engaged; it is 07:00 in New York: 09:00 today comes first.
    assert sent_at(h, "a", history(h9=3, h20=3), timezone=NY) == "2026-01-05T14:00:00Z"
    # 06:00 and 20:00: 06:00 has passed, so 20:00 today is sooner than 06:00 tomorrow.
    assert sent_at(h, "b", history(h6=3, h20=3), timezone=NY) == "2026-01-06T01:00:00Z"


def test_the_hour_the_user_is_in_counts_from_now() -> None:
    h = Harness(journey(tips(quiet=False)))
    at = T0 + 20 * MIN  # 07:20 in New York
    eff_hist = history(h7=5, h19=4)
    assert sent_at(h, "now", eff_hist, at=at, timezone=NY) == "2026-01-05T12:20:00Z"


def test_only_hours_that_begin_within_the_window_count() -> None:
    h = Harness(journey(tips(within="6h", quiet=False)))
    # 19:00 (the best) is 12 h away: the best hour inside 07:00-13:00 is 11:00.
    assert sent_at(h, "a", history(h19=9, h11=1, h3=4), timezone=NY) == "2026-01-05T16:00:00Z"
    # Nothing engaged inside the window: the default, 10:00.
    assert sent_at(h, "b", history(h19=9), timezone=NY) == "2026-01-05T15:00:00Z"
    # ...and a default beyond the window: the window's end.
    h2 = Harness(journey(tips(within="2h", default='"18:00"', quiet=False)))
    assert sent_at(h2, "c", history(h19=9), timezone=NY) == "2026-01-05T14:00:00Z"


# ----------------------------------------------------------------------------- the history

CHATTY = """
id: chat
version: 1
entry: {event: go}
settings: {default_timezone: America/New_York}
start: hello
nodes:
  hello:
    type: send
    channel: rcs
    text: "Hi!"
    suggestions: [{reply: {text: "Tips please", postback: tips}}]
    next: listen
  listen:
    type: wait_for
    paths: [{click: tips, next: best}]
    timeout: 2d
    on_timeout: best
  best: {type: wait, until: best_time, next: tip}
  tip: {type: send, channel: sms, text: "Tip of the day", next: done}
  done: {type: exit}
"""


def test_reads_taps_and_replies_fill_the_histogram_at_their_local_hour() -> None:
    h = Harness(journey(CHATTY))
    at = ts("2026-01-05T23:30:00Z")  # 18:30 EST
    h.enter(at=at, timezone=NY)
    (hello,) = h.sends()
    h.receipt("delivered", at + MIN, hello.message_id)
    h.receipt("read", at + 2 * MIN, hello.message_id)
    h.receipt("read", at + 3 * MIN, hello.message_id)  # a second read receipt: not counted
    h.inbound(at + 40 * MIN, postback="tips")  # 19:10 EST
    hist = h.state().engagement
    assert len(hist) == 24 and hist[18] == 1 and hist[19] == 1 and sum(hist) == 2
    # A user without a timezone is counted in the message's journey's zone.
    h.enter(at=at, user="v")
    assert [s.user_id for s in h.sends()].count("v") == 1
    h.inbound(at + MIN, user="v", text="thanks!")  # a reply
    assert h.state("v").engagement[18] == 1


def test_a_best_time_wait_follows_what_the_user_did() -> None:
    """A read and a reply at 19:xx New York time, a tap the next morning at 07:30: the tip
    goes at 19:00 that evening, the user's most engaged hour."""
    h = Harness(journey(CHATTY))
    day1 = ts("2026-01-05T23:50:00Z")  # Monday 18:50 EST
    h.enter(at=day1, timezone=NY)
    (hello,) = h.sends()
    h.receipt("read", day1 + 15 * MIN, hello.message_id)  # 19:05
    h.inbound(day1 + 16 * MIN, text="hello?")  # 19:06, a reply (no path takes it)
    morning = ts("2026-01-06T12:30:00Z")  # Tuesday 07:30 EST
    eff = h.inbound(morning, postback="tips")  # the click path, to the best_time wait
    assert sum(h.state().engagement) == MIN_ENGAGEMENTS == 3
    assert [o.node_id for o in outcomes(eff, "node_entered")] == ["best"]
    assert sends(eff) == []
    h.run_until(day1 + 3 * 24 * HOUR)
    tip = sends(h.effects)[-1]
    assert tip.node_id == "tip" and when(tip) == "2026-01-07T00:00:00Z"  # Tuesday 19:00 EST
    # In the hour of the user's peak, the wait ends at once.
    h.enter(at=day1, user="w", timezone=NY)
    h.state("w").engagement = history(h19=3)
    eff = h.inbound(day1 + 20 * MIN, user="w", postback="tips")  # 19:10
    assert [s.node_id for s in sends(eff)] == ["tip"]


def test_the_histogram_is_halved_when_it_passes_the_cap() -> None:
    h = Harness(journey(CHATTY))
    at = ts("2026-01-05T23:30:00Z")  # 18:30 EST
    h.state().engagement = history(h18=DECAY_AT - 50, h3=50, h7=1)
    h.enter(at=at, timezone=NY)
    (hello,) = h.sends()
    h.receipt("read", at + MIN, hello.message_id)
    assert h.state().engagement == history(h18=(DECAY_AT - 49) // 2, h3=25)
    assert max(h.state().engagement) <= DECAY_AT


@pytest.mark.parametrize("hist", [[], history(h18=3, h19=200)])
def test_the_history_is_part_of_the_described_state(hist: list[int]) -> None:
    state = UserState("u", engagement=hist)
    wire = state.to_wire()
    assert ("e" in wire) == bool(hist)
    StateRecord.model_validate(orjson.loads(state_json(state_record(0, state))))
    assert UserState.from_wire(orjson.loads(orjson.dumps(wire))).engagement == hist
    assert len(orjson.dumps(wire)) < 140  # 24 small numbers
