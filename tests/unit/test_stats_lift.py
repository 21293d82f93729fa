"""The lift of a journey over its holdout, and of all journeys over the global control group
(engine.stats.lift), in ``journeys stats`` (Aggregator, table) and the stats service
(WindowStats, dashboard)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import orjson
import pytest
import yaml

from engine import cli
from engine.core import EngineConfig, UserEvent
from engine.journey.deployment import GlobalControl
from engine.journey.model import Journey
from engine.sim.simulator import Simulator
from engine.stats.aggregate import Aggregator
from engine.stats.catalog import Catalog
from engine.stats.dashboard import global_control, graph_counts, journey_report
from engine.stats.lift import arm_of, global_report, holdout_report, lift
from engine.stats.proportions import newcombe
from engine.stats.table import format_table
from engine.stats.windows import WindowStats


def runs(jid: str, arm: str, n: int, converted: int, version: int = 1) -> list[dict[str, Any]]:
    """``n`` runs of one arm entering ``jid``, the first ``converted`` of them converting."""
    attrs = {"treated": {}, "holdout": {"holdout": True}, "control": {"global_control": True},
             "both": {"holdout": True, "global_control": True}}[arm]  # fmt: skip
    out = []
    for i in range(n):
        iid = f"{jid}-{arm}-{i}"
        base = {"ts": "2026-11-02T10:00:00Z", "user_id": f"u-{iid}", "journey_id": jid,
                "journey_version": version, "instance_id": iid, "channel": None,
                "message_id": None, "schema_version": 1}  # fmt: skip
        out.append({**base, "outcome_id": f"e-{iid}", "type": "journey_entered",
                    "node_id": "hello", "attributes": {"event": "go", **attrs}})  # fmt: skip
        if i < converted:
            out.append({**base, "outcome_id": f"g-{iid}", "type": "goal_converted",
                        "node_id": None, "ts": "2026-11-03T10:00:00Z",
                        "attributes": {"event": "buy"}})  # fmt: skip
    return out


# promo: 40 treated (20 convert), 20 held out (4), 10 in the global control group (2), and 5
# in both groups (1), who count in the control group. news: 30 treated (3), 10 control (1).
LOG = (
    runs("promo", "treated", 40, 20) + runs("promo", "holdout", 20, 4)
    + runs("promo", "control", 10, 2) + runs("promo", "both", 5, 1)
    + runs("news", "treated", 30, 3) + runs("news", "control", 10, 1)
)  # fmt: skip


def test_arms_from_the_entry_attributes() -> None:
    assert arm_of({"event": "go"}) == "treated"
    assert arm_of({"holdout": True}) == "holdout"
    assert arm_of({"global_control": True}) == "control"
    assert arm_of({"holdout": True, "global_control": True}) == "control"
    assert arm_of({"holdout": "yes"}) == "treated"


def test_lift_is_the_difference_with_newcombes_interval() -> None:
    rep = lift((20, 40), (4, 20), "holdout")
    d, low, high = newcombe(20, 40, 4, 20)  # type: ignore[misc]
    assert rep["lift"] == round(d, 4) == 0.3
    assert (rep["ci_low"], rep["ci_high"]) == (round(low, 4), round(high, 4))
    assert 0 < rep["ci_low"] < 0.3 < rep["ci_high"] < 1
    assert rep["relative_lift"] == 1.5  # 50% vs 20%
    assert rep["significant"] is True and rep["small_sample"] is True  # holdout: 4 < 5 conv.
    assert rep["warning"].startswith("small sample: a group has fewer than 30 users")
    assert rep["treated"]["conversion_rate"] == 0.5 and rep["holdout"]["users"] == 20
    assert rep["holdout"]["ci_low"] is not None
    flat = lift((10, 100), (10, 100), "control")
    assert flat["lift"] == 0 and flat["significant"] is False and flat["ci_low"] < 0
    none = lift((0, 0), (1, 10), "holdout")
    assert none["lift"] is None and none["relative_lift"] is None and not none["significant"]


def test_a_version_without_holdout_or_control_reports_none() -> None:
    assert holdout_report({"treated": (3, 10)}) is None
    assert holdout_report({"treated": (3, 10)}, "10%") is not None  # declared, none yet
    assert global_report([({"treated": (3, 10)}, True)]) is None


def test_journeys_stats_reports_the_holdout_and_the_global_lift(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    agg = Aggregator()
    agg.add_all(LOG)
    news, promo = agg.to_json()
    h = promo["holdout"]
    assert (h["treated"]["users"], h["treated"]["converted"]) == (40, 20)
    assert (h["holdout"]["users"], h["holdout"]["converted"]) == (20, 4)
    assert h["lift"] == 0.3 and h["share"] is None
    assert news["holdout"] is None
    g = promo["global_control"]
    assert (g["control"]["users"], g["control"]["converted"]) == (15, 3)
    pooled = agg.global_control()
    assert pooled is not None and pooled["journey_versions"] == 2
    assert (pooled["treated"]["users"], pooled["treated"]["converted"]) == (70, 23)
    assert (pooled["control"]["users"], pooled["control"]["converted"]) == (25, 4)
    assert pooled["lift"] == round(23 / 70 - 4 / 25, 4)
    log = tmp_path / "outcomes.jsonl"
    log.write_bytes(b"".join(orjson.dumps(o) + b"\n" for o in LOG))
    assert cli.main(["stats", "--file", str(log)]) == 0
    table = capsys.readouterr().out
    assert table == format_table(agg.to_json(), pooled)
    lines = table.splitlines()
    assert (
        "  holdout: treated 40 runs, 20 converted (50.0%); holdout 20 runs, 4 converted (20.0%)"
        in lines
    )
    ci = f"{h['ci_low']:+.1%} .. {h['ci_high']:+.1%}"
    assert f"  holdout lift: +30.0% (95% CI {ci}), relative +150% significant" in table
    assert "global control group (2 journey versions with a goal and a marketing send):" in lines
    assert (
        "  global control: treated 70 runs, 23 converted (32.9%); control 25 runs, 4 converted "
        "(16.0%)" in lines
    )
    assert cli.main(["stats", "--file", str(log), "--json"]) == 0
    assert orjson.loads(capsys.readouterr().out)[1]["holdout"] == h


def test_journeys_without_a_goal_are_left_out_of_the_global_lift() -> None:
    agg = Aggregator()
    agg.add_all(LOG)
    news = Journey.model_validate(yaml.safe_load(
        "id: news\nversion: 1\nentry: {event: go}\nstart: s\nnodes:\n"
        "  s: {type: send, channel: sms, text: hi, next: d}\n  d: {type: exit}\n"
    ))  # fmt: skip
    pooled = agg.global_control([news])
    assert pooled is not None and pooled["journey_versions"] == 1
    assert pooled["treated"]["users"] == 40 and pooled["control"]["users"] == 15
    # The file's share is reported with the holdout.
    promo = news.model_copy(update={"id": "promo", "holdout": "10%"})
    [_, report] = agg.to_json([promo])
    assert report["holdout"]["share"] == "10%"


def test_the_stats_service_counts_the_same_and_keeps_them_across_a_restart() -> None:
    agg = Aggregator()
    agg.add_all(LOG)
    w = WindowStats()
    half = len(LOG) // 2
    w.add_all(LOG[:half])
    w = WindowStats.from_state(orjson.loads(orjson.dumps(w.to_state())))
    w.add_all(LOG[half:])
    for j in agg.to_json():
        rep = w.report(j["journey_id"], j["version"])
        assert rep["holdout"] == j["holdout"]
        assert rep["global_control"] == j["global_control"]
    assert w.global_control() == agg.global_control()
    assert w.global_control(lambda j, v: j == "promo")["journey_versions"] == 1  # type: ignore[index]
    # A counter file from before holdouts (no arms, runs of five fields) still loads.
    old = w.to_state()
    old.pop("arms")
    old["runs"] = [r[:5] for r in old["runs"]]
    again = WindowStats.from_state(orjson.loads(orjson.dumps(old)))
    assert again.report("promo", 1)["holdout"] is None


def test_the_dashboard_shows_the_lift_and_the_held_out_on_the_entry(tmp_path: Path) -> None:
    d = tmp_path / "journeys"
    d.mkdir()
    (d / "promo.yaml").write_text(
        "id: promo\nversion: 1\nentry: {event: go}\nholdout: 10%\n"
        "goal: {event: buy, within: 7d}\nstart: s\nnodes:\n"
        "  s: {type: send, channel: sms, text: hi, next: d}\n  d: {type: exit}\n"
    )
    w = WindowStats()
    w.add_all(LOG)
    catalog = Catalog(str(d))
    report = journey_report(w, catalog, "promo")
    assert report is not None and report["holdout"]["share"] == "10%"
    assert report["holdout"]["lift"] == 0.3
    counts = graph_counts(catalog.journeys["promo"][1], report)
    assert counts["journey.entry"]["held out"] == 20
    pooled = global_control(w, catalog)
    assert pooled is not None and pooled["journey_versions"] == 2  # news has no file


# ----------------------------------------------------------------------------- end to end

PROMO = """
id: promo
version: 1
entry: {event: go}
holdout: 10%
goal: {event: buy, within: 7d}
start: hello
nodes:
  hello: {type: send, channel: sms, text: "20% off", next: done}
  done: {type: exit}
"""


def test_a_10_percent_holdout_shows_within_1_point_with_its_lift_interval() -> None:
    """10k users through the simulator; every fifth buys. The holdout is 10% +- 1 point of
    the runs in stats, and the lift's interval is reported (around 0: buying doesn't
    depend on the message here)."""
    journey = Journey.model_validate(yaml.safe_load(PROMO))
    t0 = 1_767_614_400_000
    events = []
    for i in range(10_000):
        u = f"user-{i}"
        events.append(UserEvent(f"e{i}", u, "go", t0 + i, {}, {"phone": "+14155550123"}))
        if i % 5 == 0:
            events.append(UserEvent(f"b{i}", u, "buy", t0 + 3_600_000 + i, {}, None))
    config = EngineConfig(global_control=GlobalControl(share="5%", salt="s"))
    result = Simulator([journey], config).run(events)
    agg = Aggregator()
    agg.add_all(o.to_wire() for o in result.outcomes)
    [report] = agg.to_json()
    h = report["holdout"]
    entered = report["entered"]
    held = sum(1 for o in result.outcomes
               if o.type == "journey_entered" and o.attributes.get("holdout"))  # fmt: skip
    assert entered == 10_000 and abs(held / entered - 0.10) <= 0.01
    # The stats' holdout arm leaves out the global control group's runs (5% of them).
    assert abs(h["holdout"]["users"] / entered - 0.10 * 0.95) <= 0.01
    assert h["ci_low"] < 0 < h["ci_high"] and h["ci_high"] - h["ci_low"] < 0.1
    assert abs(h["treated"]["conversion_rate"] - 0.2) < 0.02
    table = format_table([report], agg.global_control())
    assert "  holdout lift: " in table and "(95% CI " in table
    assert "global control group (1 journey version with a goal and a marketing send):" in table
