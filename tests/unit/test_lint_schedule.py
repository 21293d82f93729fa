"""The linter on scheduled audience entry (engine.lint.schedule): what it refuses, what it
warns about, each on the line of the field."""

from __future__ import annotations

from pathlib import Path

from engine.lint.linter import lint_paths

HEAD = """id: sched
version: 1
entry:
"""
TAIL = """start: pause
nodes:
  pause: {type: wait, duration: 1h, next: done}
  done: {type: exit}
"""


def lint(tmp_path: Path, entry: str) -> list[tuple[int, str, bool]]:
    path = tmp_path / "sched.yaml"
    path.write_text(HEAD + entry + TAIL, encoding="utf-8")
    return [(p.line, p.message, p.is_warning) for p in lint_paths([path], warnings=True)]


def test_a_clean_schedule_has_nothing_to_say(tmp_path: Path) -> None:
    entry = """  schedule: {every: week, on: [mon, thu], time: "10:00", start: 2027-01-04}
  audience: "user.tier == 'gold'"
"""
    assert lint(tmp_path, entry) == []


def test_an_audience_reading_the_event_is_refused(tmp_path: Path) -> None:
    entry = """  schedule: {at: 2026-12-01T09:00}
  audience: "event.total > 3 or entry.x == 1"
"""
    found = lint(tmp_path, entry)
    assert [(line, warn) for line, _m, warn in found] == [(5, False), (5, False)]
    assert "reads entry.*" in found[0][1] and "reads event.*" in found[1][1]


def test_an_audience_that_does_not_parse_is_refused(tmp_path: Path) -> None:
    entry = """  schedule: {at: 2026-12-01T09:00}
  audience: "user.tier =="
"""
    (found,) = lint(tmp_path, entry)
    assert "entry.audience: condition doesn't parse" in found[1] and not found[2]


def test_warnings_catch_up_month_end_and_reentry_always(tmp_path: Path) -> None:
    entry = """  schedule: {every: month, day: 30, time: "09:00", timezone: Europe/Berlin}
  audience: "true"
  reentry: always
"""
    found = lint(tmp_path, entry)
    assert all(warn for _l, _m, warn in found)
    messages = " | ".join(m for _l, m, _w in found)
    assert "without `start` catches up" in messages
    assert "day: 30 runs on the last day" in messages
    assert "reentry: always with a schedule" in messages


def test_an_entry_with_both_or_neither_says_which_fields(tmp_path: Path) -> None:
    both = """  event: signed_up
  schedule: {at: 2026-12-01T09:00}
  audience: "true"
"""
    (found,) = lint(tmp_path, both)
    assert "exactly one of `event`" in found[1] and found[0] == 3
    neither = """  reentry: never
"""
    (found,) = lint(tmp_path, neither)
    assert "exactly one of `event`" in found[1]
