"""Local wall-clock arithmetic in the user's time zone (zoneinfo), correct across DST.

Everything goes in and out as epoch milliseconds; local times are only used to find
the next instant a wall clock shows a given time. Both odd cases follow ``zoneinfo``
with fold=0: a wall time that doesn't exist (the spring-forward gap) is read with the
offset from before the change, so 02:30 in New York on 2026-03-08 is 07:30Z (03:30 EDT,
one hour after the gap); an ambiguous one (the fall-back hour) is its first occurrence.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from functools import lru_cache
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

WEEKDAY_INDEX = {"mon": 0, "tue": 1, "wed": 2, "thu": 3, "fri": 4, "sat": 5, "sun": 6}


@lru_cache(maxsize=1024)
def zone(name: str | None, default: str) -> ZoneInfo:
    """The user's zone; an unknown or missing name falls back to the journey's default."""
    for candidate in (name, default):
        if candidate:
            try:
                return ZoneInfo(candidate)
            except (ZoneInfoNotFoundError, ValueError):
                continue
    return ZoneInfo("UTC")


def _local(ms: int, tz: ZoneInfo) -> datetime:
    return datetime.fromtimestamp(ms / 1000, UTC).astimezone(tz)


def _to_ms(local_naive: datetime, tz: ZoneInfo) -> int:
    aware = local_naive.replace(tzinfo=tz)
    return int(aware.astimezone(UTC).timestamp()) * 1000


def next_local_time(now: int, minutes: int, days: frozenset[int], tz: ZoneInfo) -> int:
    """The first instant >= now when the local clock shows ``minutes`` after midnight on
    one of ``days`` (0 = Monday)."""
    local = _local(now, tz)
    day0 = local.replace(tzinfo=None, hour=0, minute=0, second=0, microsecond=0)
    for offset in range(0, 15):
        day = day0 + timedelta(days=offset)
        if day.weekday() not in days:
            continue
        at = _to_ms(day + timedelta(minutes=minutes), tz)
        if at >= now:
            return at
    raise ValueError("no allowed weekday: give at least one day")


def quiet_window_end(
    now: int, start_min: int, end_min: int, days: frozenset[int], tz: ZoneInfo
) -> int | None:
    """If ``now`` is inside a quiet window, the instant it ends; else None.

    A window runs from ``start_min`` to ``end_min`` local time and may wrap past
    midnight (21:00 -> 08:00). ``days`` are the weekdays a window *starts* on.
    """
    if start_min == end_min:
        return None  # an empty window (the linter says so too), not a 24-hour one
    local = _local(now, tz)
    minute = local.hour * 60 + local.minute
    today = local.replace(tzinfo=None, hour=0, minute=0, second=0, microsecond=0)
    wraps = end_min < start_min
    candidates: list[datetime] = []
    if wraps:
        # Tonight's window (started today) or last night's (started yesterday).
        if minute >= start_min and today.weekday() in days:
            candidates.append(today + timedelta(days=1, minutes=end_min))
        yesterday = today - timedelta(days=1)
        if minute < end_min and yesterday.weekday() in days:
            candidates.append(today + timedelta(minutes=end_min))
    elif start_min <= minute < end_min and today.weekday() in days:
        candidates.append(today + timedelta(minutes=end_min))
    if not candidates:
        return None
    end_local = min(candidates)
    end = _to_ms(end_local, tz)
    if end <= now:
        # The end falls in the repeated hour (fall back) and its first pass is over, but
        # the wall clock shows a quiet time again: the window ends at the second pass.
        end = _to_ms(end_local.replace(fold=1), tz)
    return end if end > now else None


def parse_instant(value: object) -> int | None:
    """A profile/event property as an instant: ISO-8601 text (date or date-time; a date
    is midnight UTC) or epoch seconds / milliseconds. None when it isn't one."""
    if isinstance(value, bool) or value is None:
        return None
    if isinstance(value, int | float):
        # Heuristic: numbers above 1e11 are milliseconds (1e11 s is the year 5138).
        return int(value) if abs(value) > 1e11 else int(value * 1000)
    if isinstance(value, str):
        text = value.strip()
        if text.endswith(("Z", "z")):
            text = text[:-1] + "+00:00"
        try:
            dt = datetime.fromisoformat(text)
        except ValueError:
            return None
        if dt.tzinfo is None:
            dt = dt.replace(tzinfo=UTC)
        delta = dt - datetime(1970, 1, 1, tzinfo=UTC)
        return delta.days * 86_400_000 + delta.seconds * 1000 + delta.microseconds // 1000
    return None
