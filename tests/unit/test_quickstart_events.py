"""The quick start's events (deploy/quickstart.py) keep their distance from the engine's own
times, so the real-time run on Kafka gives the simulator's table even when an event reaches
the worker a little late or early: moving every follow-up event of every user by up to
1.5 s changes no figure. And the journeys they run are clean (no lint warning)."""

from __future__ import annotations

import importlib.util
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest

from engine.backtest.tally import tally
from engine.core.wire import decode_line
from engine.durations import format_ts, parse_ts_ms
from engine.lint.linter import lint_paths, load_journeys
from engine.sim.simulator import Simulator

ROOT = Path(__file__).resolve().parents[2]
JOURNEYS = ROOT / "deploy" / "quickstart" / "journeys"


def quickstart() -> ModuleType:
    spec = importlib.util.spec_from_file_location("quickstart", ROOT / "deploy" / "quickstart.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def report(lines: list[dict[str, Any]]) -> list[dict[str, Any]]:
    journeys = load_journeys([JOURNEYS])
    result = Simulator(journeys).run([decode_line(d) for d in lines])
    return tally(result).report(journeys)


def moved(lines: list[dict[str, Any]], by_ms: int) -> list[dict[str, Any]]:
    """Every line but a user's first (the entry) moved by ``by_ms``."""
    seen: set[str] = set()
    out = []
    for d in sorted(lines, key=lambda d: parse_ts_ms(d["ts"])):
        d = dict(d)
        if d["user_id"] in seen:
            d["ts"] = format_ts(parse_ts_ms(d["ts"]) + by_ms)
        seen.add(d["user_id"])
        out.append(d)
    return out


def test_the_quick_start_journeys_lint_clean() -> None:
    assert lint_paths(sorted(JOURNEYS.glob("*.yaml")), warnings=True) == []


@pytest.mark.parametrize("by_ms", [-1500, 1500])
def test_late_or_early_events_change_no_figure(by_ms: int) -> None:
    lines = list(quickstart()._scenario())
    assert len({d["user_id"] for d in lines}) == 50
    want = report(lines)
    assert report(moved(lines, by_ms)) == want
    orders = next(j for j in want if j["journey_id"] == "quickstart-orders")
    # The scenario shows what a journey does: taps, fallbacks, opt-outs, suppressions.
    assert orders["nodes"]["tracking"]["entered"] and orders["nodes"]["shipped"]["entered"]
    assert orders["fallback"] and orders["opted_out"] and orders["suppressed"]
    assert orders["converted"]
