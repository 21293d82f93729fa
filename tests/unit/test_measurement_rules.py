"""``holdout`` and ``until: best_time``: the model, the linter's rules (engine.lint.measurement)
and the drawing."""

from __future__ import annotations

import textwrap
from pathlib import Path

import pytest
import yaml

from engine import cli
from engine.errors import Problem
from engine.journey.diagram import ENTRY_ID, diagram
from engine.journey.graph import render
from engine.journey.model import Journey
from engine.lint.linter import lint_paths

BASE = """\
id: t
version: 1
entry: {event: go}
goal: {event: buy, within: 7d}
start: w
nodes:
  w: {type: wait, until: best_time, next: s}
  s: {type: send, channel: sms, text: "Hi", next: done}
  done: {type: exit}
"""


def lint(tmp_path: Path, text: str, *, warnings: bool = True) -> list[str]:
    path = tmp_path / "t.yaml"
    path.write_text(textwrap.dedent(text))
    return [str(p).removeprefix(f"{path}:") for p in lint_paths([path], warnings=warnings)]


def with_holdout(share: str, goal: bool = True) -> str:
    text = BASE.replace("start: w", f"holdout: {share}\nstart: w")
    return text if goal else text.replace("goal: {event: buy, within: 7d}\n", "")


def test_a_holdout_between_0_and_20_percent_is_clean(tmp_path: Path) -> None:
    for share in ("1%", "2.5%", "10%", "20%"):
        assert lint(tmp_path, with_holdout(share)) == [], share
    j = Journey.model_validate(yaml.safe_load(with_holdout("2.5%")))
    assert j.holdout == "2.5%" and j.holdout_share == 0.025
    assert Journey.model_validate(yaml.safe_load(BASE)).holdout_share == 0.0


@pytest.mark.parametrize(
    ("share", "expected"),
    [
        ("0%", "5: journey: holdout 0% holds nobody out: give a share above 0% (e.g. 10%), or "
               "remove holdout"),
        ("60%", "5: journey: holdout 60% is more than 50%: most users who enter would get "
                "nothing; give at most 50% (5 to 10% is usually enough to measure the lift)"),
        ("10", "5: journey: holdout: 10 is not a percentage: write it like 10% (or 2.5%)"),
        ("0.1", "5: journey: holdout: 0.1 is not a percentage: write it like 10% (or 2.5%)"),
        ("150%", "5: journey: holdout: '150%' is more than 100%"),
    ],
)  # fmt: skip
def test_holdout_problems(tmp_path: Path, share: str, expected: str) -> None:
    assert lint(tmp_path, with_holdout(share)) == [expected]


def test_holdout_warnings(tmp_path: Path) -> None:
    assert lint(tmp_path, with_holdout("30%")) == [
        "5: journey: warning: holdout 30% sends nothing to more than 20% of the users who "
        "enter: 5 to 10% is usually enough to measure the lift"
    ]
    assert lint(tmp_path, with_holdout("10%", goal=False)) == [
        "4: journey: warning: holdout without a goal: the lift is measured on the goal's "
        "conversions; add a goal (e.g. goal: {event: purchase, within: 7d})"
    ]
    assert lint(tmp_path, with_holdout("30%"), warnings=False) == []


@pytest.mark.parametrize(
    ("wait", "expected"),
    [
        ("{type: wait, until: best_time, within: 30m, next: s}",
         ["7: w: best_time within 30m: give at least 1h, so that there is an hour to choose"]),
        ("{type: wait, until: best_time, within: 3d, next: s}",
         ["7: w: warning: best_time within 3d: every local hour comes round within 24h, so the "
          "wait never ends later than 24h; write within: 24h"]),
        ("{type: wait, until: best_time, within: 6h, default: '09:30', next: s}", []),
        ("{type: wait, until: best_time, default: '9:30', next: s}",
         ["7: w: default: '9:30' is not a time of day: write HH:MM on a 24-hour clock"]),
        ("{type: wait, until: besttime, next: s}",
         ["7: w: until: until is {time: HH:MM, days: [...]} or best_time, not 'besttime'"]),
        ("{type: wait, until: '10:00', next: s}",
         ['7: w: until: until is {time: HH:MM, days: [...]} or best_time, not \'10:00\': write '
          'until: {time: "10:00"}']),
        ("{type: wait, until: {time: '25:00'}, next: s}",
         ["7: w: until.time: '25:00' is not a time of day: write HH:MM on a 24-hour clock"]),
        ("{type: wait, duration: 1h, within: 2h, next: s}",
         ["7: w: within and default go with until: best_time"]),
        ("{type: wait, until: {time: '10:00', days: []}, next: s}",
         ["7: w: until.days is empty: the wait would never end; list the days (or leave days "
          "out for every day)"]),
    ],
)  # fmt: skip
def test_best_time_rules(tmp_path: Path, wait: str, expected: list[str]) -> None:
    text = BASE.replace("{type: wait, until: best_time, next: s}", wait)
    assert lint(tmp_path, text) == expected


def test_best_time_defaults() -> None:
    j = Journey.model_validate(yaml.safe_load(BASE))
    w = j.nodes["w"]
    assert w.type == "wait" and w.best_time and w.until_time is None
    assert (w.within_ms, w.default_minutes) == (24 * 3_600_000, 600)


def test_the_drawing_shows_the_holdout_and_best_time(tmp_path: Path) -> None:
    j = Journey.model_validate(
        yaml.safe_load(with_holdout("10%").replace("until: best_time", "until: best_time, "
                                                    "within: 12h, default: '09:00'"))
    )
    d = diagram(j)
    entry = next(n for n in d.nodes if n.id == ENTRY_ID)
    assert "holdout 10%: no sends" in entry.facts
    wait = next(n for n in d.nodes if n.id == "w")
    assert wait.facts == ("best time within 12h", "default 09:00")
    for fmt in ("mermaid", "dot", "svg"):
        out = render(j, fmt)  # type: ignore[arg-type]
        assert "holdout 10%" in out and "best time within 12h" in out


def test_the_schema_offers_holdout_and_best_time(capsys: pytest.CaptureFixture[str]) -> None:
    assert cli.main(["schema"]) == 0
    out = capsys.readouterr().out
    assert '"holdout"' in out and '"best_time"' in out and '"within"' in out


def test_problems_are_problem_objects(tmp_path: Path) -> None:
    path = tmp_path / "t.yaml"
    path.write_text(with_holdout("0%"))
    (p,) = lint_paths([path])
    assert isinstance(p, Problem) and p.line == 5 and p.node == "journey"
