"""Core: entry.max_entries, for life and within entry.max_entries_per (engine.core.entry_limits)."""

from __future__ import annotations

import pytest
from core_harness import DAY, HOUR, MIN, T0, Harness, journey
from pydantic import ValidationError

from engine.core import EngineConfig
from engine.core.state import JourneyHistory, UserState
from engine.core.trace import Trace
from engine.explain.sentences import trace_text

LIMITED = """
id: j
version: 1
entry: {{event: go, reentry: {reentry}, max_entries: {n}{per}{extra}}}
start: w
nodes:
  w: {{type: wait, duration: 1h, next: done}}
  done: {{type: exit}}
"""


def limited(n: int = 2, per: str | None = None, reentry: str = "always", extra: str = "") -> str:
    return LIMITED.format(
        n=n, per=f", max_entries_per: {per}" if per else "", reentry=reentry, extra=extra
    )


def entries(h: Harness, user: str = "u") -> int:
    return sum(1 for o in h.outcomes("journey_entered") if o.user_id == user)


def test_max_entries_for_life() -> None:
    h = Harness(journey(limited(2)))
    for i in range(5):
        h.enter(T0 + i * 100 * DAY)
    assert entries(h) == 2


def test_max_entries_counts_each_user_apart() -> None:
    h = Harness(journey(limited(1)))
    h.enter(user="a")
    h.enter(user="b")
    h.enter(T0 + MIN, user="a")
    assert (entries(h, "a"), entries(h, "b")) == (1, 1)


def test_max_entries_within_a_rolling_window() -> None:
    h = Harness(journey(limited(2, "1d")))
    h.enter(T0)
    h.enter(T0 + HOUR)
    h.enter(T0 + 2 * HOUR)  # third in a day: refused
    assert entries(h) == 2
    h.enter(T0 + DAY - 1)  # the first is still 1 ms inside the window
    assert entries(h) == 2
    h.enter(T0 + DAY)  # exactly a day after the first: it no longer counts
    assert entries(h) == 3
    h.enter(T0 + DAY + 1)  # the window now holds HOUR and DAY: full
    assert entries(h) == 3


def test_the_window_keeps_only_the_last_n_entry_times() -> None:
    h = Harness(journey(limited(3, "1h")))
    for i in range(50):
        h.enter(T0 + i * HOUR)
    assert entries(h) == 50
    hist = h.state().history["j"]
    assert hist.entry_times == [T0 + 47 * HOUR, T0 + 48 * HOUR, T0 + 49 * HOUR]
    assert hist.entries == 50


def test_without_a_window_no_entry_times_are_kept() -> None:
    h = Harness(journey(limited(5)))
    h.enter()
    assert h.state().history["j"].entry_times == []


def test_a_refused_entry_changes_no_history() -> None:
    h = Harness(journey(limited(1, "1d")))
    h.enter(T0)
    before = h.state().history["j"].to_wire()
    h.enter(T0 + HOUR)
    assert h.state().history["j"].to_wire() == before


def test_an_entry_whose_condition_fails_does_not_count() -> None:
    h = Harness(journey(limited(1, extra=', when: "event.ok"')))
    h.enter(props={"ok": False})
    h.enter(T0 + MIN, props={"ok": True})
    assert entries(h) == 1


def test_max_entries_with_after_exit() -> None:
    h = Harness(journey(limited(2, reentry="after_exit")))
    h.enter(T0)
    h.enter(T0 + MIN)  # still in: already_in, not counted
    h.run_until(T0 + 2 * HOUR)
    h.enter(T0 + 3 * HOUR)
    h.run_until(T0 + 5 * HOUR)
    h.enter(T0 + 6 * HOUR)
    assert entries(h) == 2


def test_a_refusal_is_traced_and_explained() -> None:
    h = Harness(journey(limited(2, "7d")), config=EngineConfig(trace_users=frozenset({"u"})))
    h.enter(T0)
    h.enter(T0 + DAY)
    eff = h.enter(T0 + 2 * DAY)
    (t,) = [e for e in eff if isinstance(e, Trace) and e.kind == "entry"]
    assert t.reason == "max_entries"
    assert t.values["max_entries"] == 2
    assert t.values["entries"] == 2
    assert t.values["until"] == "2026-01-12T12:00:00Z"
    text = trace_text(t)
    assert text.startswith("NOT entered: max_entries 2 per 7d reached (2 entries since ")
    assert text.endswith("next entry allowed from 2026-01-12T12:00:00Z")


def test_a_lifetime_refusal_is_explained() -> None:
    h = Harness(journey(limited(1)), config=EngineConfig(trace_users=frozenset({"u"})))
    h.enter(T0)
    eff = h.enter(T0 + 30 * DAY)
    (t,) = [e for e in eff if isinstance(e, Trace) and e.kind == "entry"]
    assert trace_text(t) == "NOT entered: max_entries 1 reached (1 entries, ever)"


def test_entry_times_go_on_the_wire_only_when_kept() -> None:
    old = JourneyHistory(3, T0, [], [])
    assert old.to_wire() == [3, T0, [], []]  # as before: states stay byte-identical
    new = JourneyHistory(3, T0, [], [], [T0 - DAY, T0])
    assert JourneyHistory.from_wire(new.to_wire()) == new
    assert JourneyHistory.from_wire([3, T0, [], []]).entry_times == []
    state = UserState("u", history={"j": new})
    assert UserState.from_wire(state.to_wire()).history["j"].entry_times == [T0 - DAY, T0]


def test_max_entries_must_be_positive_and_per_needs_max() -> None:
    with pytest.raises(ValidationError):
        journey(limited(0))
    bad = LIMITED.format(n=2, per="", reentry="always", extra="").replace(
        "max_entries: 2", "max_entries_per: 1d"
    )
    with pytest.raises(ValidationError, match="max_entries_per goes with max_entries"):
        journey(bad)
    with pytest.raises(ValidationError):
        journey(limited(2, "soon"))
