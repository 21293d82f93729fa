"""``entry.max_entries``: at most N entries of a user into a journey, for life or per window.

* ``max_entries: N`` alone counts every entry of the user into the journey (any version),
  from the entry count the history keeps already.
* With ``max_entries_per: <duration>``, the entries of the rolling window ending now: an
  entry exactly ``per`` old no longer counts (as a frequency cap's window). The history
  keeps the times of the last N entries only (``JourneyHistory.entry_times``): the state
  stays bounded whatever the traffic.

A refused entry is traced like a cooldown (``entry`` / ``max_entries``, with the count,
the limit, the window and when the next entry is allowed) and starts nothing.
"""

from __future__ import annotations

from typing import Any

from engine.core.state import JourneyHistory
from engine.durations import format_ts
from engine.journey.model import Entry


def max_entries_reached(entry: Entry, hist: JourneyHistory, now: int) -> dict[str, Any] | None:
    """None when one more entry is allowed; else the trace values saying why not."""
    limit = entry.max_entries
    if limit is None:
        return None
    per = entry.max_entries_per_ms
    if per is None:
        if hist.entries < limit:
            return None
        return {"max_entries": limit, "entries": hist.entries}
    recent = [t for t in hist.entry_times if now - t < per]
    if len(recent) < limit:
        return None
    return {
        "max_entries": limit,
        "per": entry.max_entries_per,
        "entries": len(recent),
        "since": format_ts(now - per),
        "until": format_ts(recent[-limit] + per),
    }


def record_entry(entry: Entry, hist: JourneyHistory, now: int) -> None:
    """Remember the entry's time when a window counts them (only the last N are needed)."""
    if entry.max_entries is None or entry.max_entries_per is None:
        return
    hist.entry_times.append(now)
    del hist.entry_times[: -entry.max_entries]
