"""The time window of a backtest: ``--since`` and ``--until`` as epoch milliseconds.

A duration (``30d``, ``12h``) counts back from ``now``; anything else must be an ISO-8601
time. ``now`` is given (the command reads the clock, not this module).
"""

from __future__ import annotations

from engine.durations import parse_duration_ms, parse_ts_ms
from engine.errors import ConfigError


def parse_instant(text: str, now_ms: int, flag: str = "--since") -> int:
    """``30d`` -> 30 days before ``now_ms``; ``now`` -> ``now_ms``; an ISO-8601 time -> its
    instant. Anything else is a :class:`~engine.errors.ConfigError` that shows both forms."""
    text = text.strip()
    if text == "now":
        return now_ms
    try:
        return now_ms - parse_duration_ms(text)
    except (ValueError, TypeError):
        pass
    try:
        return parse_ts_ms(text)
    except (ValueError, OverflowError):
        raise ConfigError(
            f"{flag} {text!r}: give a duration back from now (30d, 12h, 90m) or an ISO-8601 "
            "time like 2026-11-01T00:00:00Z"
        ) from None


def check_window(since_ms: int, until_ms: int | None) -> None:
    if until_ms is not None and until_ms <= since_ms:
        raise ConfigError("--until is not after --since: nothing to replay; swap them?")
