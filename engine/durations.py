"""Durations (``30s``, ``15m``, ``1h``, ``2d``, ``1w``) and instants as integer milliseconds.

The engine keeps every instant as integer milliseconds since the Unix epoch: exact,
cheap to compare and hash, and the same on every machine (floats would make replays
drift by rounding).
"""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta
from functools import lru_cache

_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)

#: The instants the wire can write (ISO-8601 has four-digit years): 0001-01-01T00:00:00Z
#: to 9999-12-31T23:59:59.999Z. Anything the engine computes (a timer, a receipt, a
#: deferral) is kept inside this range (:func:`clamp_instant`), so writing it never fails.
MIN_INSTANT_MS = -62_135_596_800_000
MAX_INSTANT_MS = 253_402_300_799_999

#: The one timestamp form inputs may carry (docs/schemas: ``Timestamp``): ISO-8601 with a
#: date, a time, optional fractional seconds and a zone (``Z`` or ``+hh:mm``).
ISO_INSTANT_PATTERN = r"^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(\.\d{1,6})?(Z|[+-]\d{2}:\d{2})$"
_ISO_INSTANT = re.compile(ISO_INSTANT_PATTERN)
_UNIT_MS = {"ms": 1, "s": 1000, "m": 60_000, "h": 3_600_000, "d": 86_400_000, "w": 604_800_000}
_DURATION_RE = re.compile(r"^\s*([+-]?)((?:\d+(?:\.\d+)?(?:ms|s|m|h|d|w)\s*)+)$")
_PART_RE = re.compile(r"(\d+(?:\.\d+)?)(ms|s|m|h|d|w)")


def parse_duration_ms(text: str | int | float, *, allow_negative: bool = False) -> int:
    """``"1h30m"`` -> 5_400_000. A bare number is seconds. Raises ValueError saying the format."""
    return _parse_duration_ms(text, allow_negative)


@lru_cache(maxsize=4096)
def _parse_duration_ms(text: str | int | float, allow_negative: bool) -> int:
    # Cached: journeys ask for the same few durations on every step.
    if isinstance(text, bool):
        raise ValueError("a duration is text like 30s, 15m, 1h, 2d or 1w, not a boolean")
    if isinstance(text, int | float):
        ms = int(text * 1000)
    else:
        m = _DURATION_RE.match(text)
        if not m:
            raise ValueError(
                f"{text!r} is not a duration: write a number and a unit, like 30s, 15m, 1h, 2d, 1w"
            )
        ms = sum(int(float(n) * _UNIT_MS[u]) for n, u in _PART_RE.findall(m.group(2)))
        if m.group(1) == "-":
            ms = -ms
    if ms < 0 and not allow_negative:
        raise ValueError(f"{text!r}: a negative duration is not allowed here")
    return ms


def format_duration(ms: int) -> str:
    """The shortest readable form: 90_000 -> ``1m30s``."""
    if ms == 0:
        return "0s"
    sign = "-" if ms < 0 else ""
    ms = abs(ms)
    out = []
    for unit in ("w", "d", "h", "m", "s", "ms"):
        n, ms = divmod(ms, _UNIT_MS[unit])
        if n:
            out.append(f"{n}{unit}")
    return sign + "".join(out)


def parse_ts_ms(text: str) -> int:
    """ISO-8601 timestamp -> epoch ms. A timestamp without zone is taken as UTC."""
    s = text.strip()
    if s.endswith(("Z", "z")):
        s = s[:-1] + "+00:00"
    dt = datetime.fromisoformat(s)
    if dt.tzinfo is None:
        dt = dt.replace(tzinfo=UTC)
    delta = dt - _EPOCH
    return delta.days * 86_400_000 + delta.seconds * 1000 + delta.microseconds // 1000


def parse_iso_instant(text: str) -> int:
    """A timestamp in the documented form (:data:`ISO_INSTANT_PATTERN`) -> epoch ms.
    Stricter than :func:`parse_ts_ms`: no date-only text, no week dates, no spaces.
    Raises ValueError."""
    if not _ISO_INSTANT.match(text):
        raise ValueError(f"{text[:80]!r} is not an ISO-8601 instant like 2026-11-29T10:00:00Z")
    return parse_ts_ms(text)


def clamp_instant(ms: int) -> int:
    """``ms`` kept inside the instants the wire can write (:data:`MAX_INSTANT_MS`): a
    computed time past the year 9999 (a wait until a property far in the future plus an
    offset) becomes the last writable instant, i.e. never in practice."""
    return MIN_INSTANT_MS if ms < MIN_INSTANT_MS else MAX_INSTANT_MS if ms > MAX_INSTANT_MS else ms


# The last instant format_ts wrote: the records of one core step all carry the step's
# time, so most calls repeat the one before.
_last_formatted: tuple[int, str] = (0, "1970-01-01T00:00:00Z")


def format_ts(ms: int) -> str:
    """Epoch ms -> ``2026-11-29T10:00:00Z`` (milliseconds shown only when not zero).
    ValueError outside the years 1 to 9999 (see :func:`clamp_instant`)."""
    global _last_formatted
    last = _last_formatted
    if ms == last[0]:
        return last[1]
    if not MIN_INSTANT_MS <= ms <= MAX_INSTANT_MS:
        raise ValueError(f"{ms} ms since 1970 is outside the years 1 to 9999: not writable")
    secs, rem = divmod(ms, 1000)
    days, sec = divmod(secs, 86_400)
    h, sec = divmod(sec, 3600)
    m, s = divmod(sec, 60)
    base = f"{_date(days)}T{h:02d}:{m:02d}:{s:02d}"
    text = f"{base}.{rem:03d}Z" if rem else f"{base}Z"
    _last_formatted = (ms, text)
    return text


@lru_cache(maxsize=1024)
def _date(days: int) -> str:
    d = _EPOCH + timedelta(days=days)
    return f"{d.year:04d}-{d.month:02d}-{d.day:02d}"  # strftime drops the zeros of year 999
