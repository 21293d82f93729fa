"""Scheduled entry is once per occurrence, whatever the order of the inputs and however
often they repeat (replays, restarts, rebalances, late or duplicated ticks): never two
runs for the same occurrence, and the same decisions as the inputs in time order."""

from __future__ import annotations

import yaml
from hypothesis import given, settings
from hypothesis import strategies as st

from engine.core import Engine, Outcome, UserEvent, Wake
from engine.core.inputs import Input, Scheduled
from engine.durations import parse_ts_ms
from engine.journey.model import Journey

DIGEST = Journey.model_validate(
    yaml.safe_load(
        """
id: digest
version: 1
entry:
  schedule: {every: day, time: "10:00", timezone: user}
  audience: "user.tier == 'gold'"
  reentry: always
start: done
nodes:
  done: {type: exit}
"""
    )
)
KNOWN = Journey.model_validate(
    yaml.safe_load("id: k\nversion: 1\nentry: {event: seen}\nstart: x\nnodes: {x: {type: exit}}")
)
T0 = parse_ts_ms("2027-03-01T00:00:00Z")
HOUR = 3_600_000
ZONES = ["America/New_York", "Asia/Tokyo", "Europe/Paris", None]

events = st.builds(
    lambda i, h, tier, tz: UserEvent(
        f"e{i}", "u", "seen", T0 + h * HOUR, {}, {"tier": tier, "timezone": tz}
    ),
    st.integers(0, 30),
    st.integers(0, 96),
    st.sampled_from(["gold", "silver"]),
    st.sampled_from(ZONES),
)
ticks = st.builds(lambda h: Scheduled("u", T0 + h * HOUR, "digest", "k"), st.integers(0, 96))
clock = st.builds(lambda h: Wake("u", T0 + h * HOUR, ""), st.integers(0, 96))


@settings(max_examples=150, deadline=None)
@given(st.lists(st.one_of(events, ticks, clock), min_size=1, max_size=25), st.randoms())
def test_never_two_runs_for_one_occurrence(inputs: list[Input], rnd: object) -> None:
    engine = Engine([DIGEST, KNOWN])
    shuffled = list(inputs) + inputs[: len(inputs) // 2]  # duplicates
    rnd.shuffle(shuffled)  # type: ignore[attr-defined]
    state = engine.new_state("u")
    entered: list[Outcome] = []
    for inp in shuffled:
        _, effects = engine.advance(state, inp, inp.ts)
        entered += [
            e
            for e in effects
            if isinstance(e, Outcome) and e.type == "journey_entered" and e.journey_id == "digest"
        ]
    keys = [o.attributes["occurrence"] for o in entered]
    assert len(keys) == len(set(keys)), keys
    assert len({o.outcome_id for o in entered}) == len(entered)
    assert keys == sorted(keys)  # decided in order, each once
