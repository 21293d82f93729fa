"""Scheduled entry is once per occurrence, whatever the order of the inputs and however
often they repeat (replays, restarts, rebalances, late or duplicated ticks): never two
runs for the same occurrence, and the same decisions as the inputs in time order."""

from __future__ import annotations

from zoneinfo import ZoneInfo

import yaml
from hypothesis import given, settings
from hypothesis import strategies as st

from engine.core import Engine, Outcome, UserEvent, Wake
from engine.core.inputs import Input, Scheduled
from engine.core.schedule import next_occurrence, occurrences
from engine.durations import parse_ts_ms
from engine.journey.model import Journey
from engine.journey.schedule import Schedule

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


schedules = st.one_of(
    st.builds(
        lambda t, start: Schedule.model_validate({"every": "day", "time": t, "start": start}),
        st.sampled_from(["00:00", "01:30", "02:30", "10:00", "23:59"]),
        st.sampled_from([None, "2026-03-01", "2026-10-31T12:00"]),
    ),
    st.builds(
        lambda on, t, until: Schedule.model_validate(
            {"every": "week", "on": on, "time": t, "until": until}
        ),
        st.lists(st.sampled_from(["mon", "wed", "sun"]), min_size=1, unique=True),
        st.sampled_from(["02:30", "10:00"]),
        st.sampled_from([None, "2026-11-15", "2027-03-14T02:00"]),
    ),
    st.builds(
        lambda d: Schedule.model_validate({"every": "month", "day": d, "time": "09:00"}),
        st.integers(1, 31),
    ),
    st.builds(
        lambda at: Schedule.model_validate({"at": at}),
        st.sampled_from(["2026-11-01T01:30", "2027-03-14T02:30", "2026-12-31T23:59"]),
    ),
)


def _reference(schedule: Schedule, tz: ZoneInfo, after: int, key_after: str) -> object:
    """The occurrence generator itself, read from ``after`` on: what the cached chunks of
    next_occurrence must agree with."""
    return next((o for o in occurrences(schedule, tz, after) if o.key > key_after), None)


@settings(max_examples=200, deadline=None)
@given(
    schedules,
    st.sampled_from(["America/New_York", "Asia/Tokyo", "Europe/Berlin", "Pacific/Chatham"]),
    st.integers(0, 24 * 400),
    st.sampled_from(["", "2026-11-01T01:30", "2027-01-31T09:00"]),
)
def test_next_occurrence_agrees_with_the_generator(
    schedule: Schedule, zone_name: str, hours: int, key_after: str
) -> None:
    tz = ZoneInfo(zone_name)
    after = parse_ts_ms("2026-10-01T00:00:00Z") + hours * HOUR + 7
    assert next_occurrence(schedule, tz, after, key_after=key_after) == _reference(
        schedule, tz, after, key_after
    )
