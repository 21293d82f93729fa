"""Windowed counters of the stats service against known outcome logs."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import orjson
from test_schemas import JOURNEY, simulate

from engine.journey.diagram import ENTRY_ID
from engine.stats.aggregate import Aggregator, format_prometheus
from engine.stats.catalog import Catalog
from engine.stats.dashboard import graph_svg, journey_list, journey_report
from engine.stats.windows import FUNNEL, Limits, WindowStats

T = "2026-11-02T"


def _o(
    oid: str, kind: str, node: str | None, iid: str = "i1", ts: str = "10:00:00", **kw: Any
) -> dict[str, Any]:
    return {
        "outcome_id": oid,
        "type": kind,
        "ts": f"{T}{ts}Z",
        "user_id": "u-" + iid,
        "journey_id": kw.pop("journey_id", "promo"),
        "journey_version": kw.pop("version", 2),
        "instance_id": iid,
        "node_id": node,
        "channel": kw.pop("channel", None),
        "message_id": kw.pop("message_id", None),
        "attributes": kw,
        "schema_version": 1,
    }


LOG = [
    _o("a", "journey_entered", "split", "i1"),
    _o("b", "node_entered", "split", "i1", variant="A"),
    _o("c", "journey_entered", "split", "i2"),
    _o("d", "node_entered", "split", "i2", variant="B"),
    _o("b2", "node_entered", "hello", "i1"),
    _o("d2", "node_entered", "hello", "i2"),
    _o("e", "message_sent", "hello", "i1", channel="rcs", message_id="m-e"),
    _o("f", "message_sent", "hello", "i2", channel="rcs", message_id="m-f"),
    _o("g", "message_delivered", "hello", "i1", "10:00:05", channel="rcs", message_id="m-e"),
    _o("h", "fallback_triggered", "hello", "i2", "10:10:00", channel="rcs", reason="not_capable"),
    _o(
        "i",
        "message_sent",
        "hello",
        "i2",
        "10:10:00",
        channel="sms",
        message_id="m-i",
        fallback_of="m-f",
    ),
    _o("i2", "message_delivered", "hello", "i2", "10:10:05", channel="sms", message_id="m-i"),
    _o("j", "message_read", "hello", "i1", "11:00:00", channel="rcs"),
    _o("k", "message_clicked", "hello", "i1", "11:01:00", channel="rcs", postback="buy"),
    _o("l", "message_suppressed", "hello", "i3", channel="rcs", reason="frequency_cap"),
    _o("m", "goal_converted", None, "i1", "13:00:00"),
    _o("n0", "node_entered", "done", "i1", "13:00:00"),
    _o("n", "journey_exited", "done", "i1", "13:00:00", reason="goal"),
    _o("x", "message_sent", None, "?", journey_id=None, version=None, channel="sms"),
]


def stats(log: list[dict[str, Any]], limits: Limits | None = None) -> WindowStats:
    w = WindowStats(limits)
    w.add_all(log)
    return w


def test_totals_rates_and_dedupe_agree_with_the_aggregator() -> None:
    w = WindowStats()
    assert w.add_all(LOG) == len(LOG)
    assert w.add_all(LOG) == 0  # at-least-once delivery: every outcome twice
    assert (w.counted, w.duplicates) == (len(LOG), len(LOG))
    s = w.summary("promo", 2)
    assert (s["entered"], s["converted"], s["conversion_rate"]) == (2, 1, 0.5)
    assert (s["sent"], s["delivered"], s["read"], s["clicked"]) == (3, 2, 1, 1)
    assert (s["sends"], s["reached"], s["reach_rate_of_sends"]) == (2, 2, 1.0)
    assert s["read_rate"] == 1.0  # of the one RCS delivery
    assert s["fallback_rate"] == 0.5  # one fallback of two first sends
    agg = Aggregator()
    agg.add_all(LOG)
    [expected] = agg.to_json()
    assert w.node_report("promo", 2) == expected["nodes"]  # the same rows, the same order
    nodes = w.node_report("promo", 2)
    assert list(nodes) == ["split", "hello", "done"]  # the runs' flow order
    assert nodes["hello"]["fallback_sent"] == 1
    assert nodes["hello"]["fallback_reasons"] == {"not_capable": 1}
    assert w.split_report("promo", 2) == expected["splits"]
    assert w.by_type["message_sent"] == 4  # the journey-less HELP answer counts by type only


def test_edges_follow_each_run() -> None:
    w = stats(LOG)
    edges = {(e["source"], e["target"]): e["users"] for e in w.edge_report("promo", 2)}
    assert edges == {(ENTRY_ID, "split"): 2, ("split", "hello"): 2, ("hello", "done"): 1}


def test_hourly_and_daily_windows() -> None:
    w = stats(LOG)
    hours = w.series("promo", "hour", points=5)
    assert [p["start"] for p in hours] == [f"{T}{h:02d}:00:00Z" for h in range(9, 14)]
    assert [p["sent"] for p in hours] == [0, 3, 0, 0, 0]
    assert [p["entered"] for p in hours] == [0, 2, 0, 0, 0]
    assert [p["clicked"] for p in hours] == [0, 0, 1, 0, 0]
    assert [p["converted"] for p in hours] == [0, 0, 0, 0, 1]
    days = w.series("promo", "day", points=2)
    assert days[-1] == {
        "start": f"{T}00:00:00Z",
        "entered": 2,
        "sent": 3,
        "delivered": 2,
        "clicked": 1,
        "converted": 1,
    }
    assert days[0]["sent"] == 0
    assert w.series("promo", "hour", version=1, points=2) == [
        {"start": f"{T}{h}:00:00Z", **dict.fromkeys(["entered", "sent", "delivered"], 0),
         "clicked": 0, "converted": 0} for h in (12, 13)
    ]  # fmt: skip
    assert w.series("nope", "hour") == []
    now = 1_800_000_000_000  # later than the data: the range ends at now, data scrolls out
    assert sum(p["sent"] for p in w.series("promo", "hour", points=3, now_ms=now)) == 0


def test_old_buckets_are_dropped_but_totals_keep_everything() -> None:
    limits = Limits(hours=2, days=1)
    log = [
        _o(f"s{h}", "message_sent", "hello", ts=f"{h:02d}:30:00", channel="sms") for h in (9, 10)
    ]
    w = stats([*log, _o("late", "message_sent", "hello", ts="11:59:00", channel="sms")], limits)
    assert len(w.windows["hour"]["promo"]) == 2  # 10:00 and 11:00; 09:00 dropped
    assert w.add(_o("older", "message_sent", "hello", ts="08:00:00", channel="sms"))
    assert len(w.windows["hour"]["promo"]) == 2  # too old for a window
    assert w.summary("promo", 2)["sent"] == 4  # but counted
    assert [p["sent"] for p in w.series("promo", "hour", points=2)] == [1, 1]
    assert [p["sent"] for p in w.series("promo", "day", points=1)] == [4]


def test_reach_memory_is_bounded_and_never_counts_a_send_twice() -> None:
    w = WindowStats(Limits(messages=1))
    sent = [_o(f"s{i}", "message_sent", "hello", f"i{i}", channel="rcs", message_id=f"r{i}")
            for i in (1, 2)]  # fmt: skip
    w.add_all(sent)  # r1 is forgotten: only the most recent pending send is remembered
    w.add(_o("d1", "message_delivered", "hello", "i1", channel="rcs", message_id="r1"))
    w.add(_o("d2", "message_delivered", "hello", "i2", channel="rcs", message_id="r2"))
    w.add(_o("d2b", "message_delivered", "hello", "i2", channel="rcs", message_id="r2"))
    row = w.node_report("promo", 2)["hello"]
    assert (row["delivered"], row["reached"]) == (3, 1)


def test_dedupe_memory_is_bounded() -> None:
    w = WindowStats(Limits(seen_ids=2))
    a, b, c = (_o(x, "node_entered", "hello", iid=x) for x in "abc")
    assert w.add(a) and w.add(b) and not w.add(b)
    assert w.add(c)  # forgets a
    assert not w.add(c) and not w.add(b)
    assert w.add(a)  # a repeat older than the memory counts again
    assert w.duplicates == 3


def test_forgotten_runs_count_in_totals_not_in_edges_or_variants() -> None:
    w = WindowStats(Limits(instances=1))
    w.add_all(LOG)  # i2 entered after i1 reached its split: i1 is forgotten from then on
    edges = {(e["source"], e["target"]): e["users"] for e in w.edge_report("promo", 2)}
    assert edges == {(ENTRY_ID, "split"): 2, ("split", "hello"): 1}
    assert w.split_report("promo", 2)["split"]["variants"]["A"]["converted"] == 0
    assert w.summary("promo", 2)["converted"] == 1


def test_migration_moves_the_run_to_the_new_version() -> None:
    w = stats(LOG[:2])
    w.add(_o("mig", "instance_migrated", "hello2", "i1", version=3, from_version=2))
    w.add(_o("ne", "node_entered", "done", "i1", version=3))
    edges = w.edge_report("promo", 3)
    assert edges == [{"source": "hello2", "target": "done", "users": 1}]


def test_state_round_trip_resumes_exactly() -> None:
    first, second = LOG[:9], LOG[9:]
    w = stats(first)
    saved = orjson.loads(orjson.dumps(w.to_state()))
    restored = WindowStats.from_state(saved)
    assert restored.add_all(first) == 0  # already counted before the save
    restored.add_all(second)
    whole = stats(LOG)
    for jid, ver in whole.journeys():
        assert restored.report(jid, ver) == whole.report(jid, ver)
    assert restored.series("promo", "hour", points=6) == whole.series("promo", "hour", points=6)
    assert restored.by_type == whole.by_type
    assert {**restored.to_state(), "duplicates": 0} == whole.to_state()


def test_invalid_messages() -> None:
    w = WindowStats()
    assert not w.add({"type": "message_sent"})
    assert not w.add({"outcome_id": "z", "type": None})
    assert w.add({"outcome_id": "z", "type": "node_entered", "journey_id": "p", "ts": "bad"})
    assert w.invalid == 2 and w.counted == 1
    assert w.journeys() == []  # no version: not about a journey version


def test_report_and_funnel_from_a_simulated_log() -> None:
    outcomes, _ = simulate()
    w = stats(outcomes + outcomes[::3])
    agg = Aggregator()
    agg.add_all(outcomes)
    [expected] = agg.to_json()
    report = w.report("schema-tour", 1)
    assert [f["step"] for f in report["funnel"]] == [key for key, *_ in FUNNEL]
    funnel = {f["step"]: f for f in report["funnel"]}
    assert funnel["entered"]["count"] == expected["entered"]
    assert funnel["converted"]["rate"] == expected["conversion_rate"]
    assert report["splits"] == expected["splits"]
    for node, row in expected["nodes"].items():
        assert report["nodes"][node]["entered"] == row["entered"]
        assert report["nodes"][node]["sent"] == row["sent"]
    entered = {e["target"]: 0 for e in report["edges"]}
    for e in report["edges"]:
        entered[e["target"]] += e["users"]
    for node, users in entered.items():  # every run is remembered: edges explain every entry
        assert users == report["nodes"][node]["entered"]


def test_prometheus_text() -> None:
    text = format_prometheus(
        [
            ("a_total", "counter", "Some help.", [({"type": 'x"y\\z\n'}, 3), ({}, None)]),
            ("b", "gauge", "Other.", [({}, 1.5)]),
        ]
    )
    assert text == (
        "# HELP a_total Some help.\n# TYPE a_total counter\n"
        'a_total{type="x\\"y\\\\z\\n"} 3\n'
        "# HELP b Other.\n# TYPE b gauge\nb 1.5\n"
    )


def test_catalog_and_reports_across_versions(tmp_path: Path) -> None:
    (tmp_path / "tour.yaml").write_text(JOURNEY, encoding="utf-8")
    (tmp_path / "broken.yaml").write_text("id: broken\nversion: 1\nstart: nowhere\n")
    catalog = Catalog(str(tmp_path))
    assert list(catalog.journeys) == ["schema-tour"] and catalog.problems
    outcomes, _ = simulate()
    w = stats([*outcomes, {**outcomes[0], "outcome_id": "v2", "journey_version": 2}])
    assert catalog.versions("schema-tour", w) == [1, 2]
    latest = journey_report(w, catalog, "schema-tour")
    assert latest is not None and latest["version"] == 2 and latest["defined"] is False
    assert latest["summary"]["entered"] == 1
    first = journey_report(w, catalog, "schema-tour", 1)
    assert first is not None and first["defined"] is True and first["name"] == "Schema tour"
    assert list(first["nodes"])[:3] == ["pick", "hello", "hello_sms"]
    assert journey_report(w, catalog, "schema-tour", 3) is None
    assert journey_report(w, catalog, "nope") is None
    [listed] = journey_list(w, catalog)
    assert (listed["name"], listed["versions"], listed["version"]) == ("Schema tour", [1, 2], 2)
    svg = graph_svg(catalog.journeys["schema-tour"][1], first)
    entered = first["summary"]["entered"]
    assert f"entered {entered}" in svg and 'class="edge-count"' in svg
    assert f'data-source="journey.entry" data-target="pick" data-users="{entered}"' in svg
