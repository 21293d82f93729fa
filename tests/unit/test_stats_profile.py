"""Stats of an update_profile node: its row (entered, profile_updated, refusals by reason) in
the JSON report and the text table, from the CRM example's golden outcomes."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import orjson

from engine.lint.linter import load_journeys
from engine.stats.aggregate import Aggregator
from engine.stats.table import format_table

ROOT = Path(__file__).resolve().parents[2]
GOLDEN = ROOT / "tests" / "golden"


def golden(name: str) -> list[dict[str, Any]]:
    lines = (GOLDEN / name / "expected.jsonl").read_bytes().splitlines()
    return [orjson.loads(line) for line in lines if line]


def report(name: str, journey_id: str, journeys: Path) -> tuple[dict[str, Any], str]:
    agg = Aggregator()
    agg.add_all(golden(name))
    rows = agg.to_json(load_journeys([journeys]))
    [j] = [r for r in rows if r["journey_id"] == journey_id]
    return j, format_table([j])


def test_the_update_profile_node_has_its_row_with_its_counts() -> None:
    j, table = report("crm-update-on-conversion", "crm-update-on-conversion", ROOT / "journeys")
    record = j["nodes"]["record"]
    assert (record["type"], record["label"]) == ("update_profile", "Record the conversion")
    assert (record["entered"], record["profile_updated"], record["profile_refused"]) == (6, 6, 0)
    assert list(j["nodes"])[:3] == ["record", "tell_crm", "which_plan"]
    tell = j["nodes"]["tell_crm"]  # the webhook node after it: its calls counted too
    assert (tell["type"], tell["entered"], tell["webhook_called"]) == ("webhook", 6, 6)
    [line] = [ln for ln in table.splitlines() if ln[2:].startswith("record ")]
    assert "profile_updated=6" in line


def test_refused_updates_are_counted_by_reason() -> None:
    journeys = GOLDEN / "profile-limits" / "journeys"
    j, table = report("profile-limits", "welcome-once-twice", journeys)
    remember = j["nodes"]["remember"]
    assert remember["entered"] == 6
    assert remember["profile_updated"] == 3
    assert remember["profile_refused"] == 2
    assert remember["profile_refused_reasons"] == {"keys": 1, "value_size": 1}
    [line] = [ln for ln in table.splitlines() if ln[2:].startswith("remember ")]
    assert "profile_refused:keys=1" in line and "profile_refused:value_size=1" in line
