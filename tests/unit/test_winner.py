"""Splits that pick their winner: the decision (engine.core.winner), the counting and the
marks (engine.core.experiments), in the simulator; the decider's watermark; the linter.

The experiment's event log is generated here (``tests/experiment_log.py``): variant B
converts clearly better in the default experiment.
"""

from __future__ import annotations

from bisect import bisect_left
from pathlib import Path

import pytest
import yaml

from engine.core.effects import Outcome
from engine.core.engine import Engine
from engine.core.experiments import Experiments, downstream_sends
from engine.core.inputs import UserEvent
from engine.core.proportions import newcombe
from engine.core.winner import (
    CHECK_EVERY_MS,
    SplitDecision,
    VariantCount,
    decide,
    decision_outcome,
    evaluate,
)
from engine.core.wire import decode_line
from engine.errors import InputError
from engine.journey.model import Journey
from engine.lint.linter import lint_paths
from engine.sim.simulator import SimResult, Simulator
from engine.stream.decider.watermark import Watermark
from tests.experiment_log import (
    DAY_MS,
    HOUR_MS,
    START_MS,
    Experiment,
    hashed_variant,
    journey,
    lines,
)

AFTER_MS = 3 * DAY_MS


def simulate(exp: Experiment | None = None, j: Journey | None = None, **kw: int) -> SimResult:
    log = lines(exp or Experiment())
    return Simulator([j or journey()]).run([decode_line(x) for x in log], **kw)


def split_entries(result: SimResult) -> dict[str, tuple[str, bool]]:
    return {
        o.user_id: (o.attributes["variant"], bool(o.attributes.get("winner")))
        for o in result.outcomes
        if o.type == "node_entered" and o.node_id == "pick"
    }


# ----------------------------------------------------------------------------- decide


def test_a_clear_winner_is_chosen_with_its_figures() -> None:
    counts = {"A": VariantCount(500, 50), "B": VariantCount(500, 100)}
    d = decide(journey(min_users=500), "pick", counts, START_MS, START_MS + AFTER_MS)
    assert d is not None and d.variant == "B"
    assert (d.decided_at, d.effective_at) == (START_MS + AFTER_MS,) * 2
    diff = d.figures["differences"]["B - A"]
    found = newcombe(100, 500, 50, 500)
    assert found is not None and diff["ci_low"] == round(found[1], 6) > 0
    assert d.figures["variants"]["A"] == {
        "users": 500, "successes": 50, "rate": 0.1, "ci_low": 0.076678, "ci_high": 0.129422,
    }  # fmt: skip


@pytest.mark.parametrize(
    ("counts", "at", "why"),
    [
        ({"A": VariantCount(500, 50), "B": VariantCount(500, 100)}, AFTER_MS - 1, "time"),
        ({"A": VariantCount(499, 50), "B": VariantCount(500, 100)}, AFTER_MS, "users"),
        ({"A": VariantCount(500, 50), "B": VariantCount(500, 62)}, AFTER_MS, "close"),
        ({"A": VariantCount(500, 50), "B": VariantCount(500, 50)}, AFTER_MS, "tie"),
    ],
)
def test_no_decision(counts: dict[str, VariantCount], at: int, why: str) -> None:
    j = journey(min_users=500)
    assert decide(j, "pick", counts, START_MS, START_MS + at) is None
    ev = evaluate(j, "pick", counts, START_MS, START_MS + at)
    assert ev.winner is None
    assert ev.status == ("waiting" if why in ("time", "users") else "no clear winner")
    assert (ev.missing_ms == 1) == (why == "time")
    assert (ev.missing_users == {"A": 1}) == (why == "users")


def test_the_winner_must_be_clear_of_every_other_variant() -> None:
    j = Journey.model_validate(
        yaml.safe_load(
            """
id: three
version: 1
entry: {event: go}
goal: {event: buy}
start: pick
nodes:
  pick:
    type: split
    variants: [{name: A, weight: 1, next: done}, {name: B, weight: 1, next: done},
               {name: C, weight: 1, next: done}]
    winner: {metric: conversion, after: 1d, min_users: 100}
  done: {type: exit}
"""
        )
    )
    clear = {"A": VariantCount(400, 40), "B": VariantCount(400, 120), "C": VariantCount(400, 60)}
    close = {**clear, "C": VariantCount(400, 110)}
    chosen = decide(j, "pick", clear, 0, DAY_MS)
    assert chosen is not None and chosen.variant == "B"
    assert decide(j, "pick", close, 0, DAY_MS) is None  # B is clear of A, not of C


def test_the_decision_outcome_records_the_figures() -> None:
    counts = {"A": VariantCount(500, 50), "B": VariantCount(500, 100)}
    d = decide(journey(min_users=500), "pick", counts, START_MS, START_MS + AFTER_MS)
    assert d is not None
    o = decision_outcome(d)
    assert (o.type, o.ts, o.user_id, o.node_id, o.instance_id) == (
        "split_winner_chosen", d.decided_at, "pick-best:1:pick", "pick", None,
    )  # fmt: skip
    assert o.attributes["variant"] == "B"
    assert o.attributes["variants"] == d.figures["variants"]
    assert decision_outcome(d).outcome_id == o.outcome_id  # deterministic


# ----------------------------------------------------------------------------- the engine


def entry(user: str, at: int) -> UserEvent:
    return UserEvent(f"{user}-in", user, "signed_up", at, profile={"phone": "+14155550100"})


def test_the_engine_applies_a_decision_from_its_effective_time_only() -> None:
    engine = Engine([journey()])
    at = START_MS + AFTER_MS
    d = SplitDecision("pick-best", 1, "pick", "B", "conversion", at, at, START_MS, 100, AFTER_MS)
    assert engine.apply_decision(d) is True
    assert engine.apply_decision(d) is False  # the same decision again: nothing changes
    users = [f"u{i}" for i in range(40)]
    for user, when, want in [(u, at - 1, None) for u in users] + [(u, at, "B") for u in users]:
        state = engine.new_state(user + str(when))
        _, effects = engine.advance(state, entry(user + str(when), when), when)
        (split,) = [
            e
            for e in effects
            if isinstance(e, Outcome) and e.type == "node_entered" and e.node_id == "pick"
        ]
        assert split.attributes["variant"] == (want or hashed_variant(user + str(when)))
        assert bool(split.attributes.get("winner")) == (want is not None)


def test_a_decision_never_changes_and_must_name_a_real_split() -> None:
    engine = Engine([journey()])
    at = START_MS + AFTER_MS
    d = SplitDecision("pick-best", 1, "pick", "B", "conversion", at, at, START_MS, 100, AFTER_MS)
    engine.apply_decision(d)
    for other, reason in [
        (SplitDecision("pick-best", 1, "pick", "A", "conversion", at, at, 0, 100, 1), "conflict"),
        (SplitDecision("pick-best", 1, "pick", "B", "conversion", at, at + 1, 0, 100, 1), "conf"),
        (SplitDecision("pick-best", 2, "pick", "B", "conversion", at, at, 0, 100, 1), "unknown"),
        (SplitDecision("pick-best", 1, "offer_a", "B", "conversion", at, at, 0, 1, 1), "unknown"),
        (SplitDecision("pick-best", 1, "pick", "Z", "conversion", at, at, 0, 100, 1), "unknown"),
    ]:
        with pytest.raises(InputError, match=reason):
            engine.apply_decision(other)
    assert engine.catalog.decisions[d.key] is d


# ----------------------------------------------------------------------------- the simulator


def oracle(result: SimResult, min_users: int = 100) -> int | None:
    """The first mark at which B is clear of A, counted from the simulator's outcomes
    independently of engine.core.experiments."""
    entered: dict[str, list[int]] = {"A": [], "B": []}
    variant_of: dict[str, str] = {}
    converted: dict[str, list[int]] = {"A": [], "B": []}
    for o in result.outcomes:
        if o.type == "node_entered" and o.node_id == "pick" and not o.attributes.get("winner"):
            entered[o.attributes["variant"]].append(o.ts)
            variant_of[o.instance_id or ""] = o.attributes["variant"]
        elif o.type == "goal_converted" and o.instance_id in variant_of:
            converted[variant_of[o.instance_id]].append(o.ts)
    first = min(entered["A"] + entered["B"])
    mark = first + AFTER_MS
    while mark < first + 30 * DAY_MS:
        n = {v: bisect_left(sorted(ts), mark) for v, ts in entered.items()}
        x = {v: bisect_left(sorted(ts), mark) for v, ts in converted.items()}
        if min(n.values()) >= min_users:
            found = newcombe(x["B"], n["B"], x["A"], n["A"])
            if found is not None and found[1] > 0:
                return mark
        mark += CHECK_EVERY_MS
    return None


def test_the_simulator_picks_b_at_the_first_mark_and_only_then() -> None:
    result = simulate()
    (d,) = result.decisions
    assert d.variant == "B"
    assert d.decided_at == START_MS + AFTER_MS == oracle(result)
    entries = split_entries(result)
    late = {u: v for u, v in entries.items() if u.startswith("late")}
    assert len(late) == 40 and set(late.values()) == {("B", True)}
    early = {u: v for u, v in entries.items() if not u.startswith("late")}
    assert early == {u: (hashed_variant(u), False) for u in early}
    (chosen,) = [o for o in result.outcomes if o.type == "split_winner_chosen"]
    assert chosen.ts == d.decided_at and chosen.attributes["variant"] == "B"
    # Before the mark: nothing decided, everyone split by hash.
    before = simulate(until=d.decided_at - 1)
    assert before.decisions == []
    assert all(not w for _, w in split_entries(before).values())


def test_the_same_log_gives_the_same_decision_every_time() -> None:
    a, b = simulate(), simulate()
    assert a.decisions == b.decisions and a.decisions[0].figures == b.decisions[0].figures
    assert [o.to_wire() for o in a.outcomes] == [o.to_wire() for o in b.outcomes]


def test_with_too_few_users_at_the_mark_the_decision_waits_for_them() -> None:
    # Sign-ups over six days: 100 per variant only comes after the three days are up.
    exp = Experiment(users=400, signup_days=6.0, late_users=0)
    result = simulate(exp, journey(min_users=150))
    (d,) = result.decisions
    assert d.variant == "B"
    assert d.decided_at > START_MS + AFTER_MS
    assert (d.decided_at - START_MS - AFTER_MS) % CHECK_EVERY_MS == 0  # on an hourly mark
    assert d.decided_at == oracle(result, 150)
    assert min(v["users"] for v in d.figures["variants"].values()) >= 150


def test_a_close_race_has_no_winner_and_the_split_goes_on_splitting() -> None:
    result = simulate(Experiment(rate_a=0.20, rate_b=0.21))
    assert result.decisions == []
    assert oracle(result) is None
    assert all(v == (hashed_variant(u), False) for u, v in split_entries(result).items())
    exps = Experiments.of([journey()])
    for o in result.outcomes:
        exps.observe(o)
    ev = exps.evaluation(("pick-best", 1, "pick"), result.outcomes[-1].ts + 1)
    assert ev is not None and ev.status == "no clear winner"
    diff = ev.differences["B - A"]
    assert diff is not None and diff[1] < 0 < diff[2]


def test_not_enough_users_ever_means_no_decision() -> None:
    result = simulate(j=journey(min_users=1000))
    assert result.decisions == []


# ----------------------------------------------------------------------------- counting


def test_repeats_and_entrants_who_took_the_winner_are_not_counted() -> None:
    result = simulate()
    exps = Experiments.of([journey()])
    for o in result.outcomes + result.outcomes:  # every outcome twice (at least once)
        exps.observe(o)
    before = result.decisions[0].decided_at
    made = exps.due(before)
    assert made == result.decisions
    assert made[0].figures == result.decisions[0].figures


def test_marks_are_looked_at_in_order_and_a_quiet_stretch_is_skipped() -> None:
    result = simulate(Experiment(rate_a=0.20, rate_b=0.21))
    exps = Experiments.of([journey()])
    for o in result.outcomes:
        exps.observe(o)
    key = ("pick-best", 1, "pick")
    assert exps.next_mark(key) == START_MS + AFTER_MS
    assert exps.due(START_MS + AFTER_MS - 1) == []
    assert exps.next_mark(key) == START_MS + AFTER_MS  # not looked at yet
    far = START_MS + 400 * DAY_MS
    assert exps.due(far) == []
    mark = exps.next_mark(key)
    assert mark is not None and far < mark <= far + HOUR_MS


def test_click_and_read_count_messages_of_sends_after_the_split() -> None:
    j = Journey.model_validate(
        yaml.safe_load(
            """
id: clicks
version: 1
entry: {event: go}
start: hello
nodes:
  hello: {type: send, channel: rcs, text: Hi, next: pick}
  pick:
    type: split
    variants: [{name: A, weight: 1, next: a}, {name: B, weight: 1, next: b}]
    winner: {metric: read, after: 1d, min_users: 1}
  a: {type: send, channel: rcs, text: A, next: done}
  b: {type: send, channel: rcs, text: B, next: done}
  done: {type: exit}
"""
        )
    )
    assert downstream_sends(j, "pick") == {"a", "b"}
    assert downstream_sends(j, "hello") == {"a", "b"}


# ----------------------------------------------------------------------------- watermark


def test_the_watermark_waits_for_every_busy_partition() -> None:
    w = Watermark(idle_s=5.0)
    for p in range(3):
        w.settle(p, False)
    assert w.low(0.0) is None  # nothing read yet, and work pending everywhere
    w.read(0, 100, 0.0)
    w.read(1, 300, 0.0)
    assert w.low(0.0) is None  # partition 2: pending, nothing read
    w.read(2, 200, 0.0)
    assert w.low(0.0) == 100
    w.settle(0, True)  # read to its end and the engine has nothing left there...
    assert w.low(1.0) == 100  # ...but it was busy a moment ago
    assert w.low(6.0) == 200  # quiet for idle_s: it holds nobody back
    for p in (1, 2):
        w.settle(p, True)
    assert w.low(6.0) == 300  # all idle: everything written has been read
    w.read(0, 50, 7.0)  # an old ts changes nothing of what partition 0 has passed
    assert w.latest[0] == 100


# ----------------------------------------------------------------------------- linter


WINNER_JOURNEY = """\
id: t
version: 1
entry: {{event: signed_up}}
{goal}start: pick
nodes:
  pick:
    type: split
    variants: [{{name: A, weight: 1, next: a}}, {{name: B, weight: 1, next: b}}]
    winner: {{metric: {metric}, after: {after}, min_users: {min_users}}}
  a: {{type: send, channel: rcs, text: A, next: done}}
  b: {{type: send, channel: {channel_b}, text: B, next: done}}
  done: {{type: exit}}
"""


@pytest.mark.parametrize(
    ("fields", "problem"),
    [
        ({}, None),
        ({"metric": "click"}, None),
        ({"min_users": "0"}, "winner.min_users is 0"),
        ({"after": "0s"}, "winner.after is '0s'"),
        ({"goal": ""}, "counts the journey's goal, and the journey has none"),
        ({"metric": "read", "channel_b": "sms"}, "variant 'B' (variants[1]) leads to no rcs send"),
        ({"metric": "views"}, "metric"),
    ],
)
def test_the_linter_checks_winner(tmp_path: Path, fields: dict[str, str], problem: str) -> None:
    values = {
        "goal": "goal: {event: bought}\n",
        "metric": "conversion",
        "after": "3d",
        "min_users": "500",
        "channel_b": "rcs",
        **fields,
    }
    path = tmp_path / "j.yaml"
    path.write_text(WINNER_JOURNEY.format(**values))
    errors = [p for p in lint_paths([path]) if not p.is_warning]
    if problem is None:
        assert errors == []
    else:
        assert len(errors) == 1 and problem in errors[0].message, errors
        assert errors[0].line == 9 + bool(values["goal"])  # the winner line
