"""Nodes listed in the order users go through them, not alphabetically or by file."""

from __future__ import annotations

from typing import Any

import yaml

from engine.journey.diagram import ENTRY_ID
from engine.journey.model import Journey
from engine.stats.aggregate import Aggregator
from engine.stats.flow import flow_order, journey_order, node_order, observed_order
from engine.stats.windows import WindowStats

# Nodes in the file: alphabetical, which is neither flow order nor the order users arrive.
BRANCHY = """
id: branchy
version: 1
entry: {event: signed_up}
start: pick
nodes:
  a1: {type: send, channel: sms, text: "A1. Reply STOP to opt out.", next: a2}
  a2: {type: send, channel: sms, text: "A2. Reply STOP to opt out.", next: a3}
  a3: {type: wait, duration: 1h, next: done}
  ask: {type: send, channel: sms, text: "Ok? Reply STOP to opt out.", next: wait}
  b1: {type: send, channel: sms, text: "B1. Reply STOP to opt out.", next: ask}
  done: {type: exit}
  lost: {type: exit}
  pick:
    type: split
    variants: [{name: A, weight: 1, next: a1}, {name: B, weight: 1, next: b1}]
  remind: {type: send, channel: sms, text: "Still there? Reply STOP to opt out.", next: wait}
  wait:
    type: wait_for
    paths: [{reply: "yes", of: ask, next: done}]
    timeout: 1d
    on_timeout: remind
"""


def journey() -> Journey:
    return Journey.model_validate(yaml.safe_load(BRANCHY))


def test_journey_order_follows_the_flow_with_loops_and_exits_last() -> None:
    # a1 and b1 (one step from the split) before a2 and ask; the reminder loop back to
    # wait does not pull wait below remind; exits after every step; unreachable last.
    assert journey_order(journey()) == [
        "pick", "a1", "b1", "a2", "ask", "a3", "wait", "remind", "done", "lost",
    ]  # fmt: skip


def test_flow_order_is_topological_without_loops() -> None:
    graph = {"s": ["x", "y"], "x": ["z"], "y": ["x", "y"], "z": ["s"]}
    order = flow_order("s", lambda n: graph.get(n, []))
    assert order == ["s", "y", "x", "z"]  # x waits for y (y -> x); loops z -> s, y -> y
    assert flow_order("alone", lambda n: []) == ["alone"]


def _o(oid: str, kind: str, node: str, iid: str, **attrs: Any) -> dict[str, Any]:
    return {"outcome_id": oid, "type": kind, "journey_id": "branchy", "journey_version": 1,
            "instance_id": iid, "node_id": node, "channel": None, "message_id": None,
            "attributes": attrs}  # fmt: skip


def _runs() -> list[dict[str, Any]]:
    """i1 goes the A way first, then i2 the B way (first seen: pick a1 a2 a3 done b1 ...)."""
    paths = {"i1": ["pick", "a1", "a2", "a3", "done"], "i2": ["pick", "b1", "ask", "wait",
             "remind", "wait", "done"]}  # fmt: skip
    log = []
    for iid, nodes in paths.items():
        log.append(_o(f"{iid}-in", "journey_entered", "pick", iid))
        log += [_o(f"{iid}-{i}", "node_entered", n, iid) for i, n in enumerate(nodes)]
    return log


def test_without_the_journey_file_the_runs_give_the_order() -> None:
    agg = Aggregator()
    agg.add_all(_runs())
    [report] = agg.to_json()
    flow = ["pick", "a1", "b1", "a2", "ask", "a3", "wait", "remind", "done"]
    assert list(report["nodes"]) == flow
    [with_file] = agg.to_json([journey()])
    assert list(with_file["nodes"]) == [*flow, "lost"]  # every node of the file
    assert with_file["nodes"]["lost"]["entered"] == 0 and with_file["nodes"]["a1"]["type"] == "send"
    live = WindowStats()
    live.add_all(_runs())
    assert list(live.node_report("branchy", 1)) == flow
    assert list(live.node_report("branchy", 1, journey())) == [*flow, "lost"]


def test_observed_order_and_first_seen_fallback() -> None:
    edges = [(ENTRY_ID, "b"), ("b", "c"), (ENTRY_ID, "a"), ("a", "c")]
    assert observed_order(edges) == ["b", "a", "c"]
    # A node no run path explains (its run's entry was never seen) comes last, first seen.
    assert node_order(["zed", "c", "a", "b"], None, edges) == ["b", "a", "c", "zed"]
    assert node_order(["", "x"]) == ["x"]  # outcomes without a node are not a row
