"""Occurrences of a schedule (``entry.schedule``) in one time zone: pure arithmetic.

An occurrence is a local wall-clock time (its **key**, ``"2026-12-07T10:00"``) and the
instant that wall clock shows it in the zone (epoch ms). The key, not the instant, is
what a user's state remembers (:mod:`engine.core.audience`): a user who moves from Tokyo
to New York between the two Monday 10:00s gets that Monday once, not twice.

Odd local times follow :mod:`engine.core.localtime` (zoneinfo, fold=0), like ``until``
waits: a time in the spring-forward gap (02:30 in New York on 2026-03-08) is read with
the offset from before the change (07:30Z, which the clock shows as 03:30 EDT); a time in
the repeated fall-back hour is its first pass. ``every: month`` with ``day: 31`` runs on
the last day of shorter months (30 April, 28 or 29 February). ``start`` and ``until`` are
compared as local wall-clock keys, both inclusive.
"""

from __future__ import annotations

import calendar
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from functools import lru_cache
from zoneinfo import ZoneInfo

from engine.core.localtime import WEEKDAY_INDEX
from engine.journey.schedule import Schedule

# No schedule the model accepts goes this many local days without an occurrence
# (a monthly one: 31); the bound only keeps a bug from looping forever.
_MAX_EMPTY_DAYS = 400


@dataclass(frozen=True, slots=True)
class Occurrence:
    at: int  # epoch ms
    key: str  # local wall-clock time, YYYY-MM-DDTHH:MM: the idempotence key


def _instant(local: datetime, tz: ZoneInfo) -> int:
    """Epoch ms of a naive local time in ``tz`` (fold=0: see the module docstring)."""
    delta = local.replace(tzinfo=tz).astimezone(UTC) - datetime(1970, 1, 1, tzinfo=UTC)
    return delta.days * 86_400_000 + delta.seconds * 1000


def _local_date(ms: int, tz: ZoneInfo) -> date:
    return datetime.fromtimestamp(ms / 1000, UTC).astimezone(tz).date()


@lru_cache(maxsize=4096)
def _parse_key(key: str) -> datetime:
    return datetime(int(key[0:4]), int(key[5:7]), int(key[8:10]), int(key[11:13]), int(key[14:16]))


def _runs_on(schedule: Schedule, day: date) -> bool:
    match schedule.every:
        case "day":
            return True
        case "week":
            return day.weekday() in {WEEKDAY_INDEX[d] for d in schedule.on or ()}
        case _:  # month
            last = calendar.monthrange(day.year, day.month)[1]
            return day.day == min(schedule.day or 1, last)


def _candidates(schedule: Schedule, first_day: date) -> Iterator[datetime]:
    """Local wall-clock times of the schedule from ``first_day`` on, in order."""
    if schedule.at is not None:
        yield _parse_key(schedule.at)
        return
    hh, mm = (int(x) for x in (schedule.time or "00:00").split(":"))
    day, empty = first_day, 0
    while empty < _MAX_EMPTY_DAYS:
        if _runs_on(schedule, day):
            empty = 0
            yield datetime(day.year, day.month, day.day, hh, mm)
        else:
            empty += 1
        day += timedelta(days=1)


def occurrences(schedule: Schedule, tz: ZoneInfo, after: int) -> Iterator[Occurrence]:
    """Every occurrence whose instant is later than ``after`` (epoch ms), in order, up to
    ``until`` (forever without one)."""
    # A local day starts at most 14 h before or after UTC's: start a day early.
    first = _local_date(after, tz) - timedelta(days=1)
    if schedule.start is not None:
        first = max(first, _parse_key(schedule.start).date())
    for local in _candidates(schedule, first):
        key = local.strftime("%Y-%m-%dT%H:%M")
        if schedule.until is not None and key > schedule.until:
            return
        if schedule.start is not None and key < schedule.start:
            continue
        at = _instant(local, tz)
        if at > after:
            yield Occurrence(at, key)


# next_occurrence runs on every input of every user while a schedule is deployed: it reads
# the occurrences of one zone from week-long chunks computed once (cached), not day by day.
_CHUNK_MS = 7 * 86_400_000
_MAX_CHUNKS = 60  # 420 days: more than the longest gap between two occurrences (a month)


@lru_cache(maxsize=8192)
def _chunk(schedule: Schedule, tz: ZoneInfo, chunk: int) -> tuple[Occurrence, ...]:
    """The occurrences whose instant falls in chunk number ``chunk`` (of _CHUNK_MS)."""
    start, end = chunk * _CHUNK_MS, (chunk + 1) * _CHUNK_MS
    out = []
    for occ in occurrences(schedule, tz, start - 1):
        if occ.at >= end:
            break
        out.append(occ)
    return tuple(out)


@lru_cache(maxsize=1024)
def _last_chunk(schedule: Schedule, tz: ZoneInfo) -> int | None:
    """The chunk of the schedule's last possible occurrence (None: it has no end)."""
    end = schedule.at or schedule.until
    if end is None:
        return None
    return (_instant(_parse_key(end), tz) + 86_400_000) // _CHUNK_MS  # a day of slack


def next_occurrence(
    schedule: Schedule, tz: ZoneInfo, after: int, *, key_after: str = ""
) -> Occurrence | None:
    """The first occurrence later than ``after`` whose key is later than ``key_after``
    (the last one the user's state has decided), or None when the schedule is over.
    A key not later than ``key_after`` (the user moved to a zone behind theirs) is
    skipped for the next one."""
    first = after // _CHUNK_MS
    last = _last_chunk(schedule, tz)
    stop = first + _MAX_CHUNKS if last is None else min(last, first + _MAX_CHUNKS)
    for chunk in range(first, stop + 1):
        for occ in _chunk(schedule, tz, chunk):
            if occ.at > after and occ.key > key_after:
                return occ
    return None


def between(schedule: Schedule, tz: ZoneInfo, after: int, upto: int) -> list[Occurrence]:
    """The occurrences with ``after < at <= upto``."""
    out = []
    for occ in occurrences(schedule, tz, after):
        if occ.at > upto:
            break
        out.append(occ)
    return out
