"""Drawing journeys: mermaid, dot and a self-laid-out svg (engine.journey.graph)."""

# ruff: noqa: E501  (ORDER_UPDATES keeps the reference example's long lines as written)

from __future__ import annotations

import re
import xml.etree.ElementTree as ET
from typing import Any

import pytest
import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from engine.journey.diagram import ENTRY_ID, diagram
from engine.journey.graph import FORMATS, render, safe_id
from engine.journey.loader import load_text
from engine.journey.model import Journey, successors

SVG = "{http://www.w3.org/2000/svg}"

JOURNEY = """
id: renewals
version: 2
name: Renewal nudges
entry: {event: signup, when: "user.plan == 'pro'", cooldown: 1d}
exit_on: [cancelled]
goal: {event: renewed, within: 30d}
start: welcome
nodes:
  welcome:
    type: send
    name: Welcome card
    channel: rcs
    rich_card:
      title: "Hi {{ user.first_name }}"
      suggestions: [{reply: {text: "Renew now", postback: renew}}]
    fallback: {sms: "Hi! Reply RENEW.", after: 10m}
    next: pause
  pause: {type: wait, duration: 1h, next: morning}
  morning: {type: wait, until: {time: "10:00", days: [mon, tue, wed, thu, fri]}, next: ask}
  ask:
    type: wait_for
    paths:
      - {reply: renew, of: welcome, next: ab}
      - {event: page_view, next: route}
    timeout: 2d
    on_timeout: reminder
  reminder: {type: send, channel: sms, text: "Still there?", next: ask}
  route:
    type: branch
    cases:
      - {when: "user.score == 10", next: vip}
    default: gone
  ab:
    type: split
    variants:
      - {name: A, weight: 1, next: vip}
      - {name: B, weight: 3, next: renew_wait}
  vip:
    type: send
    channel: rcs
    carousel: {cards: [{title: One}, {title: Two}]}
    next: renew_wait
  renew_wait: {type: wait, until_property: user.renewal_date, offset: -1d, next: done}
  gone: {type: exit, reason: lost}
  done: {type: exit}
"""

# The reference example of the journey format (order updates over RCS with SMS fallback),
# with every kind of node and setting; its comments are part of the test input.
ORDER_UPDATES = """\
id: order-updates            # unique journey id
version: 3                   # integer; published versions are immutable
name: Order updates over RCS with SMS fallback
entry:
  event: order_placed        # user event name that enters a user
  when: "event.total > 0"    # optional condition expression
  reentry: after_exit        # never | after_exit | always
  cooldown: 1d               # optional minimum time between entries
exit_on: [order_cancelled]   # events that end the journey wherever the user is
goal: {event: order_delivered, within: 7d}   # conversion tracking
settings:
  quiet_hours: {from: "21:00", to: "08:00", action: defer}   # user's local time; defer | skip
  frequency_cap: {max: 3, per: 1d}          # sends per user across all journeys
  default_timezone: UTC                     # used when user.timezone is unknown
start: confirm
nodes:
  confirm:
    type: send
    channel: rcs
    rich_card:
      title: "Order {{ event.order_id }} confirmed"
      description: "Hi {{ user.first_name | default: 'there' }}, we'll tell you when it ships."
      media: {url: "https://cdn.example.com/box.png", height: MEDIUM}
      suggestions:
        - reply: {text: "Track order", postback: track}
        - dial: {text: "Call us", phone: "+14155550100"}
    fallback: {sms: "Order {{ event.order_id }} confirmed. Reply STOP to opt out.", after: 10m}
    next: await_ship
  await_ship:
    type: wait_for
    paths:
      - {event: order_shipped, when: "event.order_id == entry.order_id", next: shipped}
      - {reply: track, of: confirm, next: tracking_link}
    timeout: 3d
    on_timeout: apology
  shipped:   {type: send, channel: sms, text: "Shipped! {{ event.tracking_url }}", next: done}
  tracking_link: {type: send, channel: rcs, text: "Track here: {{ entry.url }}", next: done}
  apology:   {type: send, channel: sms, text: "Sorry for the delay with {{ entry.order_id }}.", next: done}
  done:      {type: exit}
"""

COUNTS = {
    "welcome": {"entered": 120, "sent": 118, "delivered": 110},
    ENTRY_ID: {"entered": 120},
}


def load(text: str) -> Journey:
    loaded, problems = load_text(text, "x.yaml")
    assert not problems, problems
    assert loaded is not None and loaded.journey is not None
    return loaded.journey




def node_groups(svg: str) -> dict[str, ET.Element]:
    root = ET.fromstring(svg)
    return {g.attrib["data-node"]: g for g in root.iter(f"{SVG}g") if "data-node" in g.attrib}


def texts(element: ET.Element, cls: str | None = None) -> list[str]:
    return [
        t.text or ""
        for t in element.iter(f"{SVG}text")
        if cls is None or t.attrib.get("class") == cls
    ]


@pytest.fixture(scope="module")
def journey() -> Journey:
    return load(JOURNEY)


@pytest.mark.parametrize("fmt", FORMATS)
def test_every_node_and_its_facts_are_drawn(journey: Journey, fmt: Any) -> None:
    out = render(journey, fmt)
    for node_id in journey.nodes:
        assert journey.label(node_id) in out, node_id
    for fact in (
        "RCS",
        "SMS after 10m",
        "1h",
        "until 10:00 mon-fri",
        "timeout 2d",
        "until user.renewal_date -1d",
        "reason: lost",
        "carousel 2 cards",
        "on signup",
        "cooldown 1d",
        "exit on: cancelled",
        "within 30d",
    ):
        assert fact in out, fact


@pytest.mark.parametrize("fmt", FORMATS)
def test_edge_labels(journey: Journey, fmt: Any) -> None:
    out = render(journey, fmt)
    for label in (
        "timeout",
        "user.score == 10",
        "default",
        "reply renew of welcome",
        "event page_view",
        "A 25%",
        "B 75%",
    ):
        assert label in out, label


@pytest.mark.parametrize("fmt", FORMATS)
def test_counts_are_shown_only_when_given(journey: Journey, fmt: Any) -> None:
    assert "delivered 110" not in render(journey, fmt)
    out = render(journey, fmt, counts=COUNTS)
    assert "delivered 110 (92%)" in out
    assert "sent 118 (98%)" in out


@pytest.mark.parametrize("fmt", FORMATS)
def test_output_is_deterministic(journey: Journey, fmt: Any) -> None:
    assert render(journey, fmt, counts=COUNTS) == render(load(JOURNEY), fmt, counts=dict(COUNTS))


def test_unknown_format(journey: Journey) -> None:
    with pytest.raises(ValueError, match="mermaid"):
        render(journey, "png")  # type: ignore[arg-type]


def test_mermaid(journey: Journey) -> None:
    out = render(journey, "mermaid")
    assert out.startswith("flowchart TD\n")
    assert '  j_entry(["<b>Entry</b><br/>on signup' in out
    assert "  n_route{" in out  # rhombus
    assert "  n_ab{{" in out  # hexagon
    assert "  n_pause[/" in out  # parallelogram
    assert "  n_done([" in out  # stadium
    assert "  n_renew__wait[/" in out  # ids made safe, one-to-one
    assert "classDef send fill:" in out and "class n_welcome,n_reminder,n_vip send" in out
    assert "  j_entry --> n_welcome\n" in out
    assert '  n_ask -->|"timeout"| n_reminder\n' in out


def test_mermaid_escapes_quotes_and_specials() -> None:
    text = JOURNEY.replace("name: Welcome card", "name: 'Say \"hi\" <now> & #1 | `x` 5%% 6%'")
    out = render(load(text), "mermaid")
    assert "Say #quot;hi#quot; #lt;now#gt; #amp; #35;1 #124; #96;x#96; 5#37;% 6%" in out
    for line in out.splitlines():
        label = re.search(r'"(.*)"', line)
        if label:
            assert '"' not in label.group(1), line


def test_safe_ids_are_one_to_one() -> None:
    ids = ["a_b", "a-b", "a__b", "a_hb", "a_h", "a-", "A", ENTRY_ID]
    safe = [safe_id(i) for i in ids]
    assert len(set(safe)) == len(ids)
    assert all(re.fullmatch(r"[A-Za-z_][A-Za-z0-9_]*", s) for s in safe)


def test_dot(journey: Journey) -> None:
    out = render(journey, "dot")
    assert out.startswith('digraph "renewals" {')
    depth = 0
    for ch in out:
        depth += {"{": 1, "}": -1}.get(ch, 0)
        assert depth >= 0
    assert depth == 0
    # HTML labels are balanced, their text escaped
    assert out.count("<") == out.replace("->", "").count(">")
    for node_id, node in journey.nodes.items():
        assert f"  {safe_id(node_id)} [" in out
        for _, target in successors(node):
            assert f"  {safe_id(node_id)} -> {safe_id(target)}" in out
    assert "  j_entry -> n_welcome;" in out
    assert "shape=diamond" in out and "shape=hexagon" in out and "shape=note" in out
    assert "&#123;&#123; user.first_name &#125;&#125;" in out  # braces never look like DOT


def test_svg_is_xml_with_hooks_for_every_node(journey: Journey) -> None:
    out = render(journey, "svg", counts=COUNTS)
    root = ET.fromstring(out)
    assert root.tag == f"{SVG}svg"
    groups = node_groups(out)
    assert set(groups) == {ENTRY_ID, *journey.nodes}
    for node_id, g in groups.items():
        assert g.attrib["id"] == f"node-{node_id}"
        name = "Entry" if node_id == ENTRY_ID else journey.label(node_id)
        assert name in " ".join(texts(g))
    assert texts(groups["welcome"], "count") == [
        "entered 120",
        "sent 118 (98%)",
        "delivered 110 (92%)",
    ]
    assert texts(groups[ENTRY_ID], "count") == ["entered 120"]
    assert texts(groups["ask"], "count") == []
    edges = {
        (g.attrib["data-source"], g.attrib["data-target"], g.attrib["class"])
        for g in root.iter(f"{SVG}g")
        if g.attrib.get("class", "").startswith("edge ") or g.attrib.get("class") == "edge"
    }
    assert ("reminder", "ask", "edge back") in edges  # the loop goes round the side
    assert ("ask", "reminder", "edge") in edges
    assert len(edges) == len(diagram(journey).edges)
    labels = [
        " ".join(texts(g)) for g in root.iter(f"{SVG}g") if g.attrib.get("class") == "edge-label"
    ]
    assert {"timeout", "A 25%", "B 75%", "default", "user.score == 10"} <= set(labels)
    for path in root.iter(f"{SVG}path"):
        assert re.fullmatch(r"[MLCQz0-9., -]+", path.attrib["d"]), path.attrib["d"]


def test_svg_layout_layers_top_down(journey: Journey) -> None:
    groups = node_groups(render(journey, "svg"))

    def top(node_id: str) -> float:
        rect = groups[node_id].find(f"{SVG}rect")
        assert rect is not None
        return float(rect.attrib["y"])

    assert top(ENTRY_ID) < top("welcome") < top("pause") < top("morning") < top("ask")
    assert top("ask") < top("route") < top("vip") < top("renew_wait") < top("done")
    assert top("reminder") == pytest.approx(top("route"), abs=30)


def test_broken_journeys_still_draw() -> None:
    """A missing target, an unreachable node and a self-loop: the drawing shows them all."""
    text = """
id: broken
version: 1
entry: {event: e}
start: a
nodes:
  a: {type: wait_for, paths: [{event: again, next: a}], timeout: 1h, on_timeout: ghost}
  orphan: {type: send, channel: sms, text: "<&>\\u0001", next: a}
"""
    j = load(text)
    for fmt in FORMATS:
        out = render(j, fmt)
        assert "ghost" in out and "missing node" in out and "orphan" in out
    groups = node_groups(render(j, "svg"))
    assert groups["ghost"].attrib["class"] == "node missing"


def test_order_updates_example_draws_every_node() -> None:
    j = load(ORDER_UPDATES)
    for fmt in FORMATS:
        out = render(j, fmt, counts={"confirm": {"entered": 3, "sent": 3}})
        for node_id in j.nodes:
            assert node_id in out
        assert "sent 3 (100%)" in out
        assert "SMS after 10m" in out and "timeout 3d" in out
        assert "event order_shipped" in out and "reply track of confirm" in out
    groups = node_groups(render(j, "svg"))
    assert set(groups) == {ENTRY_ID, *j.nodes}


# --------------------------------------------------------------------------- any shape


@st.composite
def journeys(draw: st.DrawFn) -> str:
    n = draw(st.integers(1, 12))
    ids = [f"n{i}" for i in range(n)]
    target = st.sampled_from([*ids, "exit_x"])
    nodes: dict[str, Any] = {"exit_x": {"type": "exit"}}
    for node_id in ids:
        kind = draw(st.sampled_from(["send", "wait", "wait_for", "branch", "split"]))
        if kind == "send":
            nodes[node_id] = {
                "type": "send",
                "channel": "sms",
                "text": draw(st.text(max_size=60)),
                "next": draw(target),
            }
        elif kind == "wait":
            nodes[node_id] = {"type": "wait", "duration": "1h", "next": draw(target)}
        elif kind == "wait_for":
            paths = [
                {"event": f"ev{i}", "next": draw(target)} for i in range(draw(st.integers(1, 3)))
            ]
            nodes[node_id] = {
                "type": "wait_for",
                "paths": paths,
                "timeout": "1d",
                "on_timeout": draw(target),
            }
        elif kind == "branch":
            cases = [
                {"when": draw(st.text(min_size=1, max_size=40)), "next": draw(target)}
                for _ in range(draw(st.integers(1, 3)))
            ]
            nodes[node_id] = {"type": "branch", "cases": cases, "default": draw(target)}
        else:
            variants = [
                {"name": f"v{i}", "weight": draw(st.integers(0, 5)), "next": draw(target)}
                for i in range(draw(st.integers(2, 4)))
            ]
            nodes[node_id] = {"type": "split", "variants": variants}
    doc = {"id": "j", "version": 1, "entry": {"event": "go"}, "start": "n0", "nodes": nodes}
    return yaml.safe_dump(doc)


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(journeys())
def test_any_journey_draws_valid_deterministic_svg(text: str) -> None:
    j = load(text)
    svg = render(j, "svg")
    assert svg == render(load(text), "svg")
    assert set(node_groups(svg)) == {ENTRY_ID, *j.nodes}
    dot = render(j, "dot")
    assert dot == render(j, "dot")
    assert dot.count("{") == dot.count("}") == 2  # the graph and its rank=same group
    mermaid = render(j, "mermaid")
    assert mermaid == render(j, "mermaid")
    for line in mermaid.splitlines()[1:]:
        assert line.count('"') in (0, 2), line
