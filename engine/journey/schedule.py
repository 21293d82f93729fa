"""The shape of ``entry.schedule`` (docs/journeys.md, "Scheduled audience entry").

Either one occurrence::

    schedule: {at: 2026-12-01T09:00, timezone: Europe/Paris}

or a recurring one::

    schedule: {every: week, on: [mon], time: "10:00", timezone: user, start: 2026-12-01,
               until: 2027-06-30}
    schedule: {every: month, day: 31, time: "09:00", timezone: America/New_York}
    schedule: {every: day, time: "18:30"}

Times are local wall-clock times in ``timezone``: an IANA zone, or ``user`` (each user's
``user.timezone``, else the journey's ``settings.default_timezone``). ``start`` and
``until`` are local dates (``2026-12-01``) or date-times (``2026-12-01T09:00``), both
inclusive. The occurrences themselves are computed by :mod:`engine.core.schedule`.

This module only checks the shape of one file; the combinations that need a message
with a line (``on`` with ``every: day``...) are refused here too, so that pydantic's
error lands on ``entry.schedule``.
"""

from __future__ import annotations

import re
from datetime import date, datetime
from typing import Any, Literal
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

Weekday = Literal["mon", "tue", "wed", "thu", "fri", "sat", "sun"]
USER_ZONE = "user"
_LOCAL_RE = re.compile(r"^(\d{4})-(\d{2})-(\d{2})(?:[T ](\d{2}):(\d{2}))?$")
_TIME_RE = re.compile(r"^([01]\d|2[0-3]):([0-5]\d)$")


def local_key(value: Any, *, end_of_day: bool = False) -> str:
    """A local date or date-time as the occurrence key form ``YYYY-MM-DDTHH:MM``.

    YAML may hand a date (``2026-12-01``) or a datetime (``2026-12-01T09:00:00``) over
    as objects; text is checked against the pattern. A bare date is its first minute
    (``start``) or its last (``until``, ``end_of_day``)."""
    if isinstance(value, datetime):
        if value.tzinfo is not None:
            raise ValueError(
                f"{value}: write a local time without an offset; the zone is `timezone`"
            )
        text = value.strftime("%Y-%m-%dT%H:%M")
    elif isinstance(value, date):
        text = value.isoformat()
    else:
        text = str(value).strip()
    m = _LOCAL_RE.match(text)
    if m is None:
        raise ValueError(
            f"{text!r} is not a local date or date-time: write 2026-12-01 or 2026-12-01T09:00"
        )
    try:
        date(int(m[1]), int(m[2]), int(m[3]))
    except ValueError as exc:
        raise ValueError(f"{text!r}: {exc}") from exc
    if not 1970 <= int(m[1]) <= 9998:
        # An instant must stay writable in every zone (engine.durations' range).
        raise ValueError(f"{text!r}: the year must be between 1970 and 9998")
    if m[4] is None:
        return f"{m[1]}-{m[2]}-{m[3]}" + ("T23:59" if end_of_day else "T00:00")
    if not _TIME_RE.match(f"{m[4]}:{m[5]}"):
        raise ValueError(f"{text!r}: the time is not HH:MM on a 24-hour clock")
    return f"{m[1]}-{m[2]}-{m[3]}T{m[4]}:{m[5]}"


class Schedule(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True, populate_by_name=True)

    at: str | None = Field(
        default=None, description="One occurrence: a local date-time, 2026-12-01T09:00"
    )
    every: Literal["day", "week", "month"] | None = Field(
        default=None, description="A recurring schedule: day, week (with on) or month (with day)"
    )
    on: tuple[Weekday, ...] | None = Field(
        default=None, description="every: week only: the weekdays, e.g. [mon] or [mon, thu]"
    )
    day: int | None = Field(
        default=None,
        description="every: month only: the day of the month, 1-31 (a month without that "
        "day uses its last day)",
    )
    time: str | None = Field(
        default=None, description="Recurring only: the local time of day, HH:MM (quoted)"
    )
    timezone: str = Field(
        default=USER_ZONE,
        description="user: each user's own zone (user.timezone, else settings.default_timezone); "
        "or an IANA zone",
    )
    start: str | None = Field(
        default=None, description="Recurring only: the first local date (or date-time) it runs"
    )
    until: str | None = Field(
        default=None, description="Recurring only: the last local date (or date-time), inclusive"
    )

    @model_validator(mode="before")
    @classmethod
    def _yaml_on(cls, data: Any) -> Any:
        # YAML 1.1 loaders (PyYAML's safe_load) read the key `on` as the boolean true; the
        # journey loader doesn't (engine.journey.loader), other tools may.
        if isinstance(data, dict) and True in data and "on" not in data:
            data = {("on" if k is True else k): v for k, v in data.items()}
        return data

    @field_validator("at", "start", mode="before")
    @classmethod
    def _local_start(cls, v: Any) -> Any:
        return None if v is None else local_key(v)

    @field_validator("until", mode="before")
    @classmethod
    def _local_end(cls, v: Any) -> Any:
        return None if v is None else local_key(v, end_of_day=True)

    @field_validator("time")
    @classmethod
    def _time(cls, v: str | None) -> str | None:
        if v is not None and not _TIME_RE.match(v):
            raise ValueError(f"{v!r} is not a time of day: write HH:MM on a 24-hour clock")
        return v

    @field_validator("timezone")
    @classmethod
    def _zone(cls, v: str) -> str:
        if v == USER_ZONE:
            return v
        try:
            ZoneInfo(v)
        except (ZoneInfoNotFoundError, ValueError) as exc:
            raise ValueError(
                f"{v!r} is neither `user` nor an IANA time zone (e.g. Europe/Paris)"
            ) from exc
        return v

    @model_validator(mode="after")
    def _combination(self) -> Schedule:
        if (self.at is None) == (self.every is None):
            raise ValueError(
                "a schedule is either `at: 2026-12-01T09:00` (once) or `every: day|week|month` "
                "(recurring), exactly one of them"
            )
        if self.at is not None:
            extra = [k for k in ("on", "day", "time", "start", "until") if getattr(self, k)]
            if extra:
                raise ValueError(
                    f"`at` is one occurrence: {', '.join(extra)} belong to a recurring "
                    "schedule (every: ...)"
                )
            return self
        if self.time is None:
            raise ValueError('a recurring schedule needs `time: "HH:MM"` (local time, quoted)')
        if self.every == "week":
            if not self.on:
                raise ValueError("every: week needs `on: [mon, ...]`, the weekdays it runs")
        elif self.on is not None:
            raise ValueError(f"`on` goes with every: week, not every: {self.every}")
        if self.every == "month":
            if self.day is None or not 1 <= self.day <= 31:
                raise ValueError("every: month needs `day: N`, the day of the month (1-31)")
        elif self.day is not None:
            raise ValueError(f"`day` goes with every: month, not every: {self.every}")
        if self.start is not None and self.until is not None and self.until < self.start:
            raise ValueError(f"until ({self.until}) is before start ({self.start})")
        return self

    @property
    def per_user_zone(self) -> bool:
        return self.timezone == USER_ZONE
