"""Occurrences of entry.schedule (engine.core.schedule) and the model's shape rules."""

from __future__ import annotations

from typing import Any
from zoneinfo import ZoneInfo

import pytest
from pydantic import ValidationError

from engine.core.schedule import between, next_occurrence
from engine.durations import format_ts, parse_ts_ms
from engine.journey.model import Entry
from engine.journey.schedule import Schedule

NY, PARIS, TOKYO = ZoneInfo("America/New_York"), ZoneInfo("Europe/Paris"), ZoneInfo("Asia/Tokyo")


def sched(**kw: Any) -> Schedule:
    return Schedule.model_validate(kw)


def ms(text: str) -> int:
    return parse_ts_ms(text)


def listed(s: Schedule, tz: ZoneInfo, after: str, upto: str) -> list[tuple[str, str]]:
    return [(format_ts(o.at), o.key) for o in between(s, tz, ms(after), ms(upto))]


def test_weekly_monday_10_local_across_the_new_york_dst_change() -> None:
    s = sched(every="week", on=["mon"], time="10:00")
    assert listed(s, NY, "2027-03-01T00:00:00Z", "2027-03-16T00:00:00Z") == [
        ("2027-03-01T15:00:00Z", "2027-03-01T10:00"),  # EST
        ("2027-03-08T15:00:00Z", "2027-03-08T10:00"),
        ("2027-03-15T14:00:00Z", "2027-03-15T10:00"),  # EDT after Sun 14 March
    ]


def test_several_weekdays_in_order() -> None:
    s = sched(every="week", on=["thu", "mon"], time="08:30", timezone="Europe/Paris")
    got = [k for _, k in listed(s, PARIS, "2026-11-30T00:00:00Z", "2026-12-11T00:00:00Z")]
    assert got == ["2026-11-30T08:30", "2026-12-03T08:30", "2026-12-07T08:30", "2026-12-10T08:30"]


def test_a_time_in_the_spring_forward_gap_is_read_with_the_offset_before_it() -> None:
    # 02:30 doesn't exist in New York on 2027-03-14: fold=0 reads it as EST (07:30Z),
    # which the clock shows as 03:30 EDT; like `until` waits (engine.core.localtime).
    s = sched(every="day", time="02:30")
    got = listed(s, NY, "2027-03-13T00:00:00Z", "2027-03-15T12:00:00Z")
    assert got == [
        ("2027-03-13T07:30:00Z", "2027-03-13T02:30"),
        ("2027-03-14T07:30:00Z", "2027-03-14T02:30"),
        ("2027-03-15T06:30:00Z", "2027-03-15T02:30"),
    ]


def test_a_time_in_the_repeated_fall_back_hour_is_its_first_pass() -> None:
    s = sched(every="day", time="01:30")
    got = listed(s, NY, "2026-11-01T00:00:00Z", "2026-11-01T12:00:00Z")
    assert got == [("2026-11-01T05:30:00Z", "2026-11-01T01:30")]  # 01:30 EDT, not EST


def test_month_day_31_runs_on_the_last_day_of_shorter_months() -> None:
    s = sched(every="month", day=31, time="09:00", timezone="UTC")
    got = [k for _, k in listed(s, ZoneInfo("UTC"), "2027-01-01T00:00:00Z", "2027-05-01T00:00:00Z")]
    assert got == ["2027-01-31T09:00", "2027-02-28T09:00", "2027-03-31T09:00", "2027-04-30T09:00"]
    leap = [
        k for _, k in listed(s, ZoneInfo("UTC"), "2028-02-01T00:00:00Z", "2028-03-01T00:00:00Z")
    ]
    assert leap == ["2028-02-29T09:00"]


def test_start_and_until_are_inclusive_local_dates() -> None:
    s = sched(every="day", time="23:30", start="2026-12-01", until="2026-12-03")
    got = [k for _, k in listed(s, TOKYO, "2026-11-01T00:00:00Z", "2027-01-01T00:00:00Z")]
    assert got == ["2026-12-01T23:30", "2026-12-02T23:30", "2026-12-03T23:30"]
    over = next_occurrence(s, TOKYO, ms("2026-12-03T14:30:00Z"))  # 23:30 JST on the 3rd
    assert over is None


def test_until_with_a_time_cuts_the_day() -> None:
    s = sched(every="day", time="10:00", until="2026-12-02T09:59")
    got = [k for _, k in listed(s, PARIS, "2026-11-30T12:00:00Z", "2027-01-01T00:00:00Z")]
    assert got == ["2026-12-01T10:00"]


def test_at_is_one_occurrence_in_each_zone() -> None:
    s = sched(at="2026-12-01T09:00")
    assert listed(s, PARIS, "2026-11-01T00:00:00Z", "2027-01-01T00:00:00Z") == [
        ("2026-12-01T08:00:00Z", "2026-12-01T09:00")
    ]
    assert listed(s, TOKYO, "2026-11-01T00:00:00Z", "2027-01-01T00:00:00Z") == [
        ("2026-12-01T00:00:00Z", "2026-12-01T09:00")
    ]
    assert next_occurrence(s, PARIS, ms("2026-12-01T08:00:00Z")) is None  # after it: over


def test_an_occurrence_at_the_lower_bound_is_excluded_and_keys_skip_decided_ones() -> None:
    s = sched(every="week", on=["mon"], time="10:00")
    at = ms("2027-03-01T15:00:00Z")
    assert next_occurrence(s, NY, at - 1).key == "2027-03-01T10:00"  # type: ignore[union-attr]
    assert next_occurrence(s, NY, at).key == "2027-03-08T10:00"  # type: ignore[union-attr]
    # Decided in Tokyo already (its 10:00 came first): New York's same Monday is skipped.
    occ = next_occurrence(s, NY, at - 1, key_after="2027-03-01T10:00")
    assert occ is not None and occ.key == "2027-03-08T10:00"


def test_yaml_dates_and_datetimes_become_local_keys() -> None:
    from datetime import date, datetime

    s = sched(every="day", time="10:00", start=date(2026, 12, 1), until=datetime(2027, 1, 2, 8))
    assert (s.start, s.until) == ("2026-12-01T00:00", "2027-01-02T08:00")
    assert sched(every="day", time="10:00", until=date(2027, 1, 2)).until == "2027-01-02T23:59"
    with pytest.raises(ValidationError, match="1970 and 9998"):
        sched(at=datetime(9999, 12, 31, 23, 59))


@pytest.mark.parametrize(
    ("shape", "message"),
    [
        ({"every": "week", "time": "10:00"}, "every: week needs `on"),
        ({"every": "day", "on": ["mon"], "time": "10:00"}, "`on` goes with every: week"),
        ({"every": "month", "time": "10:00"}, "every: month needs `day: N`"),
        ({"every": "month", "day": 32, "time": "10:00"}, "every: month needs `day: N`"),
        ({"every": "week", "on": ["mon"], "day": 3, "time": "10:00"}, "`day` goes with"),
        ({"every": "day"}, "needs `time"),
        ({"every": "day", "time": "25:00"}, "not a time of day"),
        ({"at": "2026-12-01T09:00", "every": "day"}, "exactly one of them"),
        ({}, "exactly one of them"),
        ({"at": "2026-12-01T09:00", "until": "2026-12-02"}, "`at` is one occurrence"),
        ({"at": "2026-02-30T09:00"}, "day is out of range"),
        ({"at": "tomorrow"}, "not a local date"),
        ({"at": "9999-12-31T23:59"}, "between 1970 and 9998"),
        ({"every": "day", "time": "10:00", "timezone": "Mars/Olympus"}, "IANA time zone"),
        (
            {"every": "day", "time": "10:00", "start": "2027-01-02", "until": "2027-01-01"},
            "before start",
        ),
    ],
)
def test_the_model_refuses_schedules_that_cannot_work(shape: dict[str, Any], message: str) -> None:
    with pytest.raises(ValidationError, match=message):
        sched(**shape)


@pytest.mark.parametrize(
    ("entry", "message"),
    [
        ({}, "exactly one of `event`"),
        (
            {"event": "x", "schedule": {"at": "2026-12-01T09:00"}, "audience": "true"},
            "exactly one of `event`",
        ),
        ({"schedule": {"at": "2026-12-01T09:00"}}, "needs `audience`"),
        ({"event": "x", "audience": "true"}, "audience goes with schedule"),
        (
            {"schedule": {"at": "2026-12-01T09:00"}, "audience": "true", "when": "true"},
            "has no `when`",
        ),
    ],
)
def test_an_entry_is_an_event_or_a_schedule_with_an_audience(
    entry: dict[str, Any], message: str
) -> None:
    with pytest.raises(ValidationError, match=message):
        Entry.model_validate(entry)
