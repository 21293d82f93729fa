"""Stats aggregation against known outcome logs: counts, users reached, rates only where a
channel reports them, opt-outs / deferrals / suppressions in the table, and ``journeys
stats`` end to end on a simulated journey with RCS fallback."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import orjson
import pytest

from engine import cli
from engine.core.ids import derive_uuid
from engine.core.wire import decode_line
from engine.lint.linter import load_journeys
from engine.sim.simulator import Simulator
from engine.stats.aggregate import Aggregator
from engine.stats.table import COLUMNS, column_width, format_table
from engine.stats.windows import WindowStats


def _o(oid: str, type_: str, node: str | None, iid: str = "i1", **kw: Any) -> dict[str, Any]:
    return {
        "outcome_id": oid,
        "type": type_,
        "journey_id": kw.pop("journey_id", "promo"),
        "journey_version": 2,
        "instance_id": iid,
        "node_id": node,
        "channel": kw.pop("channel", None),
        "message_id": kw.pop("message_id", None),
        "attributes": kw,
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
    _o("g", "message_delivered", "hello", "i1", channel="rcs", message_id="m-e"),
    _o("h", "fallback_triggered", "hello", "i2", channel="rcs", reason="not_capable"),
    _o("i", "message_sent", "hello", "i2", channel="sms", message_id="m-i", fallback_of="m-f"),
    _o("j", "message_read", "hello", "i1", channel="rcs", message_id="m-e"),
    _o("k", "message_clicked", "hello", "i1", channel="rcs", postback="buy"),
    _o("l", "message_suppressed", "hello", "i3", channel="rcs", reason="frequency_cap"),
    _o("m", "goal_converted", None, "i1"),
    _o("n0", "node_entered", "done", "i1"),
    _o("n", "journey_exited", "done", "i1", reason="goal"),
]


def cells(table: str, node: str) -> dict[str, str]:
    """The cells of ``node``'s row in the text table, by column header."""
    lines = table.splitlines()
    [i] = [i for i, line in enumerate(lines) if line[2:].split(" ", 1)[0] == node]
    header = next(lines[k] for k in range(i, -1, -1) if lines[k].startswith("  node "))
    row, first = lines[i], COLUMNS[0][0]  # the first column ends where its header does
    out, at = {}, header.index(first) + len(first) - column_width(first, COLUMNS[0][1])
    for header, width, _, _ in COLUMNS:
        w = column_width(header, width)
        out[header] = row[at : at + w].strip()
        at += w
    out["notes"] = row[at:].strip()
    return out


def test_counts_rates_and_dedupe() -> None:
    agg = Aggregator()
    agg.add_all(LOG)
    agg.add_all(LOG)  # at-least-once delivery: every outcome twice
    [j] = agg.to_json()
    assert (j["entered"], j["converted"], j["conversion_rate"]) == (2, 1, 0.5)
    hello = j["nodes"]["hello"]
    assert hello["sent"] == {"rcs": 2, "sms": 1} and hello["sends"] == 2
    assert (hello["delivered"], hello["read"], hello["clicked"], hello["fallback"]) == (1, 1, 1, 1)
    assert hello["suppressed"] == {"frequency_cap": 1}
    assert hello["fallback_rate"] == 0.5
    assert hello["delivery_rate"] == round(1 / 3, 4)
    assert (hello["reached"], hello["reach_rate"]) == (1, 0.5)  # i2's fallback SMS: no receipt
    assert j["nodes"]["done"]["exited"] == {"goal": 1}
    variants = j["splits"]["split"]["variants"]
    assert variants["A"]["users"] == 1 and variants["A"]["converted"] == 1
    assert variants["B"]["converted"] == 0
    table = format_table(agg.to_json())
    assert "promo v2: 2 entered, 1 converted (50.0%)" in table
    assert "1 suppressed" in table.splitlines()[0]
    assert cells(table, "hello")["suppressed"] == "1"
    assert "suppressed:frequency_cap=1" in cells(table, "hello")["notes"]


def test_outcomes_without_journey_are_not_counted() -> None:
    agg = Aggregator()
    assert not agg.add(
        {"outcome_id": "x", "type": "user_opted_out", "journey_id": None, "journey_version": None}
    )
    assert agg.to_json() == []


# ------------------------------------------------------------------ users reached

# Three users at an RCS send with an SMS fallback, and every one of them got the message:
# i1's RCS failed and its fallback SMS was delivered; i2 can't get RCS (SMS delivered, and
# a late RCS receipt after it); i3 got the RCS message and read it.
FALLBACK_LOG = [
    *(_o(f"ne{i}", "node_entered", "hello", f"i{i}") for i in (1, 2, 3)),
    _o("s1", "message_sent", "hello", "i1", channel="rcs", message_id="r1"),
    _o("f1", "message_failed", "hello", "i1", channel="rcs", message_id="r1", reason="failed"),
    _o("t1", "fallback_triggered", "hello", "i1", channel="rcs", message_id="r1", reason="failed"),
    _o("s1b", "message_sent", "hello", "i1", channel="sms", message_id="q1", fallback_of="r1"),
    _o("d1", "message_delivered", "hello", "i1", channel="sms", message_id="q1"),
    _o("s2", "message_sent", "hello", "i2", channel="rcs", message_id="r2"),
    _o("t2", "fallback_triggered", "hello", "i2", channel="rcs", message_id="r2"),
    _o("s2b", "message_sent", "hello", "i2", channel="sms", message_id="q2", fallback_of="r2"),
    _o("d2", "message_delivered", "hello", "i2", channel="sms", message_id="q2"),
    _o("d2r", "message_delivered", "hello", "i2", channel="rcs", message_id="r2"),
    _o("s3", "message_sent", "hello", "i3", channel="rcs", message_id="r3"),
    _o("d3", "message_delivered", "hello", "i3", channel="rcs", message_id="r3"),
    _o("rd3", "message_read", "hello", "i3", channel="rcs", message_id="r3"),
]


def test_a_user_reached_by_fallback_sms_counts_once() -> None:
    agg = Aggregator()
    agg.add_all(FALLBACK_LOG)
    hello = agg.to_json()[0]["nodes"]["hello"]
    assert hello["sent"] == {"rcs": 3, "sms": 2} and hello["sends"] == 3
    assert hello["delivered_by_channel"] == {"rcs": 2, "sms": 2}
    assert hello["reached"] == 3 and hello["reached_by_channel"] == {"rcs": 1, "sms": 2}
    assert hello["reach_rate"] == 1.0 and hello["reach_rate_of_sends"] == 1.0
    assert hello["delivery_rate"] == 0.8  # messages: 4 deliveries of 5 sent
    assert hello["delivery_rate_by_channel"] == {"rcs": round(2 / 3, 4), "sms": 1.0}
    assert hello["read_rate"] == 0.5  # of the 2 RCS deliveries
    assert hello["failed_reasons"] == {"failed": 1}
    row = cells(format_table(agg.to_json()), "hello")
    assert (row["reached"], row["reach%"]) == ("3", "100%")
    assert (row["sent rcs/sms"], row["deliv rcs/sms"], row["read%"]) == ("3/2", "2/2", "50%")


def test_reach_does_not_depend_on_the_order_between_users_and_agrees_with_the_service() -> None:
    agg = Aggregator()
    agg.add_all(FALLBACK_LOG[::-1])  # deliveries before their sends
    assert agg.to_json()[0]["nodes"]["hello"]["reached"] == 3
    live = WindowStats()
    live.add_all(FALLBACK_LOG + FALLBACK_LOG)
    expected = Aggregator()
    expected.add_all(FALLBACK_LOG)
    [report] = expected.to_json()
    assert live.node_report("promo", 2) == report["nodes"]
    assert live.summary("promo", 2)["reached"] == 3


def test_an_undelivered_send_is_not_reached() -> None:
    log = FALLBACK_LOG[:4]  # i1: RCS failed, the fallback SMS sent, no receipt yet
    agg = Aggregator()
    agg.add_all(log)
    hello = agg.to_json()[0]["nodes"]["hello"]
    assert (hello["reached"], hello["reach_rate"], hello["reach_rate_of_sends"]) == (0, 0.0, 0.0)


# ------------------------------------------------------------------ rates per channel

SMS_ONLY = [
    _o("e1", "node_entered", "remind", "i1"),
    _o("e2", "node_entered", "remind", "i2"),
    _o("s1", "message_sent", "remind", "i1", channel="sms", message_id="a1"),
    _o("s2", "message_sent", "remind", "i2", channel="sms", message_id="a2"),
    _o("d1", "message_delivered", "remind", "i1", channel="sms", message_id="a1"),
    _o("d2", "message_delivered", "remind", "i2", channel="sms", message_id="a2"),
    _o("x1", "user_opted_out", "remind", "i1", channel="sms", message_id="a1"),
    _o("e3", "node_entered", "remind", "i3"),
    _o("q3", "message_deferred", "remind", "i3", channel="sms", reason="quiet_hours"),
    _o("e4", "node_entered", "remind", "i4"),
    _o("p4", "message_suppressed", "remind", "i4", channel="sms", reason="opted_out"),
    _o("e5", "node_entered", "remind", "i5"),
    _o("p5", "message_suppressed", "remind", "i5", channel="sms", reason="quiet_hours"),
]


def test_long_node_ids_keep_the_columns_aligned() -> None:
    long = "a_node_id_much_longer_than_the_column"
    agg = Aggregator()
    agg.add_all([{**o, "node_id": long} for o in SMS_ONLY])
    row = cells(format_table(agg.to_json()), long)
    assert (row["entered"], row["sent rcs/sms"], row["read%"]) == ("5", "0/2", "-")


def test_sms_only_node_has_no_read_rate_and_shows_opt_outs_deferrals_suppressions() -> None:
    agg = Aggregator()
    agg.add_all(SMS_ONLY)
    [j] = agg.to_json()
    remind = j["nodes"]["remind"]
    assert remind["read_rate"] is None and remind["click_through_rate"] is None
    assert (remind["opted_out"], remind["deferred"]) == (1, 1)
    assert remind["suppressed"] == {"opted_out": 1, "quiet_hours": 1}
    assert (remind["reached"], remind["reach_rate"], remind["reach_rate_of_sends"]) == (2, 0.4, 1.0)
    assert (j["opted_out"], j["deferred"], j["suppressed"]) == (1, 1, 2)
    table = format_table(agg.to_json())
    row = cells(table, "remind")
    assert (row["read%"], row["ctr%"], row["fb%"]) == ("-", "-", "-")
    assert (row["opt-out"], row["deferred"], row["suppressed"]) == ("1", "1", "2")
    assert (row["reached"], row["reach%"]) == ("2", "40%")
    assert row["notes"] == "suppressed:opted_out=1 suppressed:quiet_hours=1"
    assert "1 opted out, 1 deferred, 2 suppressed" in table.splitlines()[0]


# ------------------------------------------------------------------ splits


def test_split_differences_use_newcombe_and_warn_on_small_samples() -> None:
    log = [_o("j", "journey_entered", "pick", "x")]
    for i in range(8):  # the case: 3 users in A (1 converts), 5 in B (all convert)
        variant = "A" if i < 3 else "B"
        log.append(_o(f"v{i}", "node_entered", "pick", f"i{i}", variant=variant))
        if i in (0, 3, 4, 5, 6, 7):
            log.append(_o(f"g{i}", "goal_converted", None, f"i{i}"))
    agg = Aggregator()
    agg.add_all(log)
    split = agg.to_json()[0]["splits"]["pick"]
    d = split["differences"]["B - A"]
    assert d["difference"] == round(1 - 1 / 3, 4)
    assert -1 <= d["ci_low"] < d["difference"] < d["ci_high"] <= 1  # the Wald upper was +120%
    assert (d["ci_low"], d["ci_high"]) == (0.0346, 0.9385)
    assert d["method"] == "newcombe-wilson" and d["small_sample"] is True
    assert "fewer than 30 users or 5 conversions" in d["warning"]
    assert split["small_sample"] is True
    a = split["variants"]["A"]
    assert (a["ci_low"], a["ci_high"]) == (0.0615, 0.7923)  # Wilson, 1 of 3
    table = format_table(agg.to_json())
    [line] = [x for x in table.splitlines() if "B - A" in x]
    assert "+66.7% (95% CI +3.5% .. +93.8%) significant" in line
    assert "[small sample: a variant has fewer than 30 users" in line


# ------------------------------------------------------------------ journeys stats, end to end

REACH_TOUR = """
id: reach-tour
version: 1
entry: {event: signed_up}
goal: {event: purchased, within: 7d}
settings: {default_timezone: UTC}
start: hello
nodes:
  done: {type: exit}
  thanks: {type: send, channel: sms, text: "Thanks! Reply STOP to opt out.", next: done}
  pause: {type: wait, duration: 1h, next: thanks}
  hello:
    type: send
    channel: rcs
    rich_card:
      title: "Hi"
      description: "A deal for you"
      suggestions:
        - reply: {text: "Buy", postback: buy}
    fallback: {sms: "Hi, a deal for you. Reply STOP to opt out.", after: 10m}
    next: pause
"""  # file order is not flow order


def _reach_tour_outcomes(journeys: Path) -> list[dict[str, Any]]:
    """u0 can't get RCS (SMS fallback); u1's RCS message fails (SMS fallback); u2 reads
    it; u3 gets it."""
    day = "2026-11-02T10:00:0"
    lines: list[dict[str, Any]] = [
        {"event_id": f"e{i}", "user_id": f"u{i}", "name": "signed_up", "ts": f"{day}{i}Z",
         "profile": {"phone": "+14155550123", "rcs_capable": i != 0}}
        for i in range(4)
    ]  # fmt: skip
    lines += [
        {"type": "receipt", "user_id": "u1", "ts": f"{day}2Z", "node": "hello", "status": "failed"},
        {"type": "receipt", "user_id": "u2", "ts": "2026-11-02T10:05:00Z", "node": "hello",
         "status": "read"},
    ]  # fmt: skip
    result = Simulator(load_journeys([journeys])).run([decode_line(x) for x in lines])
    return [o.to_wire() for o in result.outcomes]


def test_journeys_stats_shows_every_user_reached_with_rcs_fallback(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    journeys = tmp_path / "journeys"
    journeys.mkdir()
    (journeys / "reach-tour.yaml").write_text(REACH_TOUR, encoding="utf-8")
    outcomes = _reach_tour_outcomes(journeys)
    kinds = [(o["type"], o["channel"]) for o in outcomes if o["node_id"] == "hello"]
    assert ("message_failed", "rcs") in kinds and ("fallback_triggered", "rcs") in kinds
    fallback = [o for o in outcomes if (o["attributes"] or {}).get("fallback_of")]
    assert len(fallback) == 2  # the SMS id derives from the RCS one
    assert all(
        o["message_id"] == derive_uuid("sms", o["attributes"]["fallback_of"]) for o in fallback
    )
    log = tmp_path / "outcomes.jsonl"
    log.write_bytes(b"".join(orjson.dumps(o) + b"\n" for o in outcomes))

    assert cli.main(["stats", "--file", str(log), "--journeys", str(journeys)]) == 0
    table = capsys.readouterr().out
    assert table.startswith("reach-tour v1: 4 entered, 0 converted (0.0%); 8 of 8 sends")
    hello, thanks = cells(table, "hello"), cells(table, "thanks")
    assert (hello["entered"], hello["sent rcs/sms"], hello["deliv rcs/sms"]) == ("4", "4/2", "2/2")
    assert (hello["reached"], hello["reach%"], hello["read%"]) == ("4", "100%", "50%")
    assert (thanks["reached"], thanks["reach%"], thanks["read%"]) == ("4", "100%", "-")
    nodes = [line[2:].split(" ", 1)[0] for line in table.splitlines()[2:6]]
    assert nodes == ["hello", "pause", "thanks", "done"]  # flow order, not file order

    assert cli.main(["stats", "--file", str(log), "--json"]) == 0
    [report] = orjson.loads(capsys.readouterr().out)
    assert list(report["nodes"]) == ["hello", "pause", "thanks", "done"]  # the runs' order
    assert report["nodes"]["hello"]["reached"] == report["nodes"]["hello"]["entered"] == 4
    assert report["nodes"]["hello"]["delivery_rate"] == round(4 / 6, 4)  # messages, not users
    assert report["reached"] == report["sends"] == 8


def test_journeys_stats_with_a_missing_journeys_path(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    log = tmp_path / "outcomes.jsonl"
    log.write_bytes(b"".join(orjson.dumps(o) + b"\n" for o in LOG))
    assert cli.main(["stats", "--file", str(log), "--journeys", str(tmp_path / "nope")]) == 2
    assert "no such file or directory" in capsys.readouterr().err


def test_a_send_whose_fate_is_unknown_is_counted_and_noted() -> None:
    """message_unknown (a gateway crash between the claim and the provider's answer) is
    counted per node and shown in the notes, not silently left out."""
    agg = Aggregator()
    agg.add_all(
        [
            _o("u1", "journey_entered", "hello", "i9"),
            _o("u2", "node_entered", "hello", "i9"),
            _o("u3", "message_sent", "hello", "i9", channel="sms", message_id="m9"),
            _o("u4", "message_unknown", "hello", "i9", channel="sms", message_id="m9",
               reason="gateway_restart"),
        ]
    )  # fmt: skip
    [j] = agg.to_json()
    assert j["nodes"]["hello"]["unknown"] == 1
    assert "unknown=1" in cells(format_table(agg.to_json()), "hello")["notes"]
