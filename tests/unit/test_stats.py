"""Stats aggregation against a known outcome log."""

from __future__ import annotations

from typing import Any

from engine.stats.aggregate import Aggregator, diff_ci, format_table


def _o(oid: str, type_: str, node: str | None, iid: str = "i1", **kw: Any) -> dict[str, Any]:
    base = {
        "outcome_id": oid,
        "type": type_,
        "journey_id": "promo",
        "journey_version": 2,
        "instance_id": iid,
        "node_id": node,
        "channel": kw.pop("channel", None),
        "attributes": kw,
    }
    return base


LOG = [
    _o("a", "journey_entered", "split", "i1"),
    _o("b", "node_entered", "split", "i1", variant="A"),
    _o("c", "journey_entered", "split", "i2"),
    _o("d", "node_entered", "split", "i2", variant="B"),
    _o("e", "message_sent", "hello", "i1", channel="rcs"),
    _o("f", "message_sent", "hello", "i2", channel="rcs"),
    _o("g", "message_delivered", "hello", "i1", channel="rcs"),
    _o("h", "fallback_triggered", "hello", "i2", channel="rcs", reason="not_capable"),
    _o("i", "message_sent", "hello", "i2", channel="sms"),
    _o("j", "message_read", "hello", "i1", channel="rcs"),
    _o("k", "message_clicked", "hello", "i1", channel="rcs", postback="buy"),
    _o("l", "message_suppressed", "hello", "i3", channel="rcs", reason="frequency_cap"),
    _o("m", "goal_converted", None, "i1"),
    _o("n", "journey_exited", "done", "i1", reason="goal"),
]


def test_counts_rates_and_dedupe() -> None:
    agg = Aggregator()
    agg.add_all(LOG)
    agg.add_all(LOG)  # at-least-once delivery: every outcome twice
    [j] = agg.to_json()
    assert (j["entered"], j["converted"], j["conversion_rate"]) == (2, 1, 0.5)
    hello = j["nodes"]["hello"]
    assert hello["sent"] == {"rcs": 2, "sms": 1}
    assert (hello["delivered"], hello["read"], hello["clicked"], hello["fallback"]) == (1, 1, 1, 1)
    assert hello["suppressed"] == {"frequency_cap": 1}
    assert hello["fallback_rate"] == 0.5
    assert hello["delivery_rate"] == round(1 / 3, 4)
    assert j["nodes"]["done"]["exited"] == {"goal": 1}
    variants = j["splits"]["split"]["variants"]
    assert variants["A"] == {"users": 1, "converted": 1, "conversion_rate": 1.0}
    assert variants["B"]["converted"] == 0
    table = format_table(agg.to_json())
    assert "promo v2: 2 entered, 1 converted (50.0%)" in table
    assert "suppressed:frequency_cap=1" in table


def test_outcomes_without_journey_are_not_counted() -> None:
    agg = Aggregator()
    assert not agg.add(
        {"outcome_id": "x", "type": "user_opted_out", "journey_id": None, "journey_version": None}
    )
    assert agg.to_json() == []


def test_difference_confidence_interval() -> None:
    d = diff_ci(300, 1000, 250, 1000)
    assert d["difference"] == 0.05
    assert d["ci_low"] is not None and d["ci_high"] is not None
    assert d["ci_low"] < 0.05 < d["ci_high"]
    # width = 2 * 1.96 * se, se = sqrt(.3 * .7 / 1000 + .25 * .75 / 1000)
    assert round(d["ci_high"] - d["ci_low"], 3) == 0.078
    assert diff_ci(1, 0, 1, 10)["difference"] is None
