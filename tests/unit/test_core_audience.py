"""Scheduled audience entry in the core (engine.core.audience): who is known, once per
occurrence, the profile at the occurrence's instant, time zones, and the scanner's
rebuild (engine.stream.worker.audience) over stored states."""

from __future__ import annotations

import asyncio
from typing import Any

import yaml

from engine.core import Engine, EngineConfig, Outcome, ScheduleWake, UserEvent, UserState, Wake
from engine.core.effects import Effect
from engine.core.inputs import Input, Scheduled
from engine.core.wire import loads, state_record, timer_record
from engine.durations import parse_ts_ms
from engine.journey.model import Journey
from engine.stream.common.settings import Settings
from engine.stream.worker.audience import AudienceScanner

WEEKLY = """
id: digest
version: 1
entry:
  schedule: {every: week, on: [mon], time: "10:00", timezone: %s}
  audience: "user.tier == 'gold'"
  reentry: %s
start: done
nodes:
  done: {type: exit}
"""
MON_NY = parse_ts_ms("2027-03-01T15:00:00Z")  # Monday 10:00 EST
WEEK = 7 * 86_400_000


def digest(zone: str = "America/New_York", reentry: str = "after_exit") -> Journey:
    return Journey.model_validate(yaml.safe_load(WEEKLY % (zone, reentry)))


class User:
    def __init__(self, engine: Engine, user_id: str = "u1") -> None:
        self.engine = engine
        self.state = engine.new_state(user_id)
        self.effects: list[Effect] = []
        self._n = 0

    def feed(self, inp: Input) -> list[Effect]:
        _, effects = self.engine.advance(self.state, inp, inp.ts)
        self.effects += effects
        return effects

    def event(self, at: int, **profile: Any) -> list[Effect]:
        self._n += 1
        return self.feed(UserEvent(f"e{self._n}", self.state.user_id, "seen", at, {}, profile))

    def wake(self) -> list[Effect]:
        assert self.state.wake_at is not None
        return self.feed(
            Wake(self.state.user_id, self.state.wake_at, self.engine.wake_token(self.state))
        )

    def entered(self) -> list[str]:
        return [
            o.attributes["occurrence"]
            for o in self.effects
            if isinstance(o, Outcome) and o.type == "journey_entered" and o.journey_id == "digest"
        ]


def engine(*journeys: Journey) -> Engine:
    # "seen" must be an event some journey knows, or the core drops it untouched.
    known = Journey.model_validate(
        yaml.safe_load(
            "id: k\nversion: 1\nentry: {event: seen}\nstart: x\nnodes: {x: {type: exit}}"
        )
    )
    return Engine([*journeys, known], EngineConfig())


def test_a_known_user_is_woken_at_the_occurrence_and_enters_once() -> None:
    u = User(engine(digest()))
    effects = u.event(MON_NY - 3_600_000, tier="gold", timezone="America/New_York")
    assert [e.at for e in effects if isinstance(e, ScheduleWake)] == [MON_NY]
    u.wake()
    assert u.entered() == ["2027-03-01T10:00"]
    assert u.state.schedules == {"digest": "2027-03-01T10:00"}
    assert u.state.wake_at == MON_NY + WEEK  # the next Monday
    # A duplicate wake-up (stale token) and ticks for the same occurrence change nothing.
    stale = Wake("u1", MON_NY, u.engine.wake_token(UserState("u1", wake_at=MON_NY)))
    assert u.feed(stale) == []
    u.feed(Scheduled("u1", MON_NY, "digest", "2027-03-01T10:00"))
    u.feed(Scheduled("u1", MON_NY + 5, "digest", "2027-03-01T10:00"))
    assert u.entered() == ["2027-03-01T10:00"]


def test_the_profile_is_the_one_at_the_occurrence_whatever_arrives_first() -> None:
    # The wake-up is late: an event after the occurrence arrives first. The core decides
    # the occurrence before it, with the profile of that instant (gold), not the event's.
    u = User(engine(digest()))
    u.event(MON_NY - 3_600_000, tier="gold")
    u.event(MON_NY + 60_000, tier="silver")
    assert u.entered() == ["2027-03-01T10:00"]
    entered = next(
        o for o in u.effects if isinstance(o, Outcome) and o.attributes.get("occurrence")
    )
    assert entered.ts == MON_NY
    u.feed(Wake("u1", MON_NY, ""))  # the late wake-up itself: nothing left to do
    assert u.entered() == ["2027-03-01T10:00"]
    # And the other way round: silver at the instant, gold just after -> not entered, and
    # the decision is not taken again when the tick comes late.
    v = User(engine(digest()), "u2")
    v.event(MON_NY - 3_600_000, tier="silver")
    v.event(MON_NY + 60_000, tier="gold")
    v.feed(Scheduled("u2", MON_NY, "digest", "2027-03-01T10:00"))
    assert v.entered() == []
    assert v.state.schedules == {"digest": "2027-03-01T10:00"}


def test_known_means_seen_at_or_before_the_instant() -> None:
    late = User(engine(digest()), "late")
    late.event(MON_NY + 1, tier="gold")
    late.feed(Scheduled("late", MON_NY, "digest", "2027-03-01T10:00"))
    assert late.entered() == []
    assert late.state.wake_at == MON_NY + WEEK
    exact = User(engine(digest()), "exact")
    exact.event(MON_NY, tier="gold")
    assert exact.state.wake_at == MON_NY
    exact.wake()
    assert exact.entered() == ["2027-03-01T10:00"]


def test_a_tick_for_an_unknown_user_changes_nothing() -> None:
    e = engine(digest())
    state = e.new_state("nobody")
    _, effects = e.advance(state, Scheduled("nobody", MON_NY, "digest", "k"), MON_NY)
    assert effects == [] and state.to_wire() == {"u": "nobody", "c": 0}


def test_a_user_who_moves_west_gets_the_same_monday_once() -> None:
    u = User(engine(digest("user")))
    tokyo_monday = parse_ts_ms("2027-03-01T01:00:00Z")
    u.event(tokyo_monday - 3_600_000, tier="gold", timezone="Asia/Tokyo")
    u.wake()
    u.event(tokyo_monday + 3_600_000, timezone="America/New_York")
    assert u.state.wake_at == MON_NY + WEEK  # not New York's 1 March 10:00
    u.feed(Scheduled("u1", MON_NY, "digest", "2027-03-01T10:00"))
    u.wake()
    assert u.entered() == ["2027-03-01T10:00", "2027-03-08T10:00"]


def test_reentry_never_and_a_run_in_flight_are_respected() -> None:
    u = User(engine(digest(reentry="never")))
    u.event(MON_NY - 1, tier="gold")
    u.wake()
    u.wake()
    assert u.entered() == ["2027-03-01T10:00"]
    assert u.state.schedules["digest"] == "2027-03-08T10:00"  # decided: not entered


def test_the_simulator_stops_occurrences_at_its_last_input() -> None:
    from engine.sim.simulator import Simulator

    j = digest()
    known = Journey.model_validate(
        yaml.safe_load(
            "id: k\nversion: 1\nentry: {event: seen}\nstart: x\nnodes: {x: {type: exit}}"
        )
    )
    inputs = [
        UserEvent("a", "u1", "seen", MON_NY - 1, {}, {"tier": "gold"}),
        UserEvent("b", "u1", "seen", MON_NY + 2 * WEEK, {}, {}),
    ]
    result = Simulator([j, known]).run(inputs)
    keys = [
        o.attributes["occurrence"]
        for o in result.outcomes
        if o.type == "journey_entered" and o.journey_id == "digest"
    ]
    assert keys == ["2027-03-01T10:00", "2027-03-08T10:00", "2027-03-15T10:00"]


class FakeFuture:
    def add_done_callback(self, fn: Any) -> None:
        pass


def test_the_scanner_ticks_users_whose_stored_wake_up_predates_the_schedule() -> None:
    e = engine(digest())
    behind = UserState("behind", clock=MON_NY - 5, attrs={"tier": "gold"})  # no wake-up stored
    later = UserState("later", clock=MON_NY - 5, wake_at=MON_NY + WEEK)  # an older schedule's
    covered = UserState("covered", clock=MON_NY - 5, wake_at=MON_NY)  # already right
    other = UserState("other", clock=MON_NY - 5)  # another partition
    items = [
        (b"behind", state_record(0, behind)),
        (b"later", state_record(0, later)),
        (b"covered", state_record(0, covered)),
        (b"other", state_record(1, other)),
        (b"junk", b"not json"),
    ]
    sent: list[tuple[str, bytes | None, bytes, int | None]] = []

    async def send(topic: str, key: bytes | None, value: bytes, partition: int | None) -> Any:
        sent.append((topic, key, value, partition))
        return FakeFuture()

    settings = Settings()
    scanner = AudienceScanner(settings, e.catalog, send, clock=lambda: MON_NY)
    assert scanner.rebuild({0}, items) == 2
    asyncio.run(scanner.tick())
    assert sorted(k for _, k, _, _ in sent) == [b"behind", b"later"]
    assert {t for t, _, _, _ in sent} == {settings.topics.timers}
    ticks = [timer_record(loads(v)) for _, _, v, _ in sent]
    assert {(t.ts, t.journey_id, t.occurrence) for t in ticks if isinstance(t, Scheduled)} == {
        (MON_NY, "digest", "2027-03-01T10:00")
    }
    # The tick, handled: the user enters and their stored wake-up covers the schedule.
    behind_after = User(e, "behind")
    behind_after.state = behind
    behind_after.feed(ticks[0] if ticks[0].user_id == "behind" else ticks[1])
    assert behind_after.entered() == ["2027-03-01T10:00"]
    assert behind.wake_at == MON_NY + WEEK
    sent.clear()
    asyncio.run(scanner.tick())
    assert sent == []  # each tick handed out once
