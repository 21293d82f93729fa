"""Draw a journey so a product person can read it: Mermaid, Graphviz DOT or a standalone SVG.

:func:`diagram` turns a :class:`~engine.journey.model.Journey` into a small, format-neutral
:class:`Diagram` (boxes with readable lines, labelled edges, a note); :func:`render` writes it
in one of :data:`FORMATS`. The SVG is laid out here, without Graphviz
(:mod:`engine.journey.graph_svg`).

Each box shows the node's name, its type and its key facts (channel, content, fallback, wait
time, timeout, variant weights, exit reason); conditions, paths and variants label the edges.
An entry pseudo-node (:data:`ENTRY_ID`) sits on top, and a note carries exit events, the goal
and the journey settings. ``counts`` adds per-node figures (``{"confirm": {"entered": 120,
"sent": 118}}``) under each box; figures for :data:`ENTRY_ID` go under the entry box.

The output is deterministic: the same journey and counts give the same bytes.
"""

from __future__ import annotations

import re
import textwrap
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Literal

from engine.durations import format_duration
from engine.journey.model import (
    WEEKDAYS,
    BranchNode,
    ExitNode,
    Journey,
    SendNode,
    SplitNode,
    WaitForNode,
    WaitNode,
    successors,
)

Format = Literal["mermaid", "dot", "svg"]
FORMATS: tuple[Format, ...] = ("mermaid", "dot", "svg")
Counts = Mapping[str, Mapping[str, int]]

#: Id of the entry pseudo-node (contains a dot, which no journey node id can).
ENTRY_ID = "journey.entry"

#: Kinds of boxes, in drawing-legend order ("missing": a target the file does not define).
KINDS = ("entry", "send", "wait", "wait_for", "branch", "split", "exit", "missing")
KIND_LABEL = {"wait_for": "wait for", "missing": "missing node"}
#: (fill, stroke) per kind, shared by every format.
COLORS: dict[str, tuple[str, str]] = {
    "entry": ("#e8f5e9", "#2e7d32"),
    "send": ("#e3f2fd", "#1565c0"),
    "wait": ("#fff8e1", "#f9a825"),
    "wait_for": ("#fff3e0", "#ef6c00"),
    "branch": ("#f3e5f5", "#6a1b9a"),
    "split": ("#e0f7fa", "#00838f"),
    "exit": ("#eceff1", "#455a64"),
    "missing": ("#ffebee", "#c62828"),
    "note": ("#fffde7", "#b5a642"),
}
TEXT_COLOR = "#1b1b1b"
COUNT_COLOR = "#0d47a1"


@dataclass(frozen=True)
class DiagramNode:
    id: str  # journey node id, or ENTRY_ID
    kind: str  # one of KINDS
    title: str
    facts: tuple[str, ...] = ()
    counts: tuple[str, ...] = ()
    tooltip: str | None = None

    @property
    def type_line(self) -> str:
        """The kind, with the id when the title is a name ("send (confirm)"); none for the entry."""
        if self.id == ENTRY_ID:
            return ""
        kind = KIND_LABEL.get(self.kind, self.kind)
        return kind if self.title == self.id else f"{kind} ({self.id})"


@dataclass(frozen=True)
class DiagramEdge:
    source: str
    target: str
    label: str = ""


@dataclass(frozen=True)
class Diagram:
    journey_id: str
    title: str
    note: tuple[str, ...]
    nodes: tuple[DiagramNode, ...]  # the entry first, then file order, then missing targets
    edges: tuple[DiagramEdge, ...]  # from the entry, then per node in successor order


# --------------------------------------------------------------------------- the model


# Control characters and what XML 1.0 can't hold.
_UNPRINTABLE = re.compile(r"[\x00-\x1f\x7f-\x9f\ud800-\udfff\ufffe\uffff]")


def _clean(text: Any) -> str:
    """One line of display text: no control characters, runs of whitespace collapsed."""
    return re.sub(r"\s+", " ", _UNPRINTABLE.sub(" ", str(text))).strip()


def _short(text: str, limit: int = 40) -> str:
    text = _clean(text)
    return text if len(text) <= limit else text[: limit - 1].rstrip() + "…"


def wrap(text: str, width: int) -> list[str]:
    """Deterministic word wrap; long words are broken, nothing is dropped."""
    return textwrap.wrap(text, width, break_on_hyphens=False) or [""]


def _dur(written: str | int | None, ms: int) -> str:
    """A duration as the file wrote it (``7d``), else in its shortest form."""
    return _clean(written) if isinstance(written, str) else format_duration(ms)


def _days(days: list[str]) -> str:
    idx = sorted({WEEKDAYS.index(d) for d in days})
    if len(idx) == len(WEEKDAYS):
        return ""
    runs: list[list[int]] = []
    for i in idx:
        if runs and runs[-1][-1] == i - 1:
            runs[-1].append(i)
        else:
            runs.append([i])
    parts: list[str] = []
    for run in runs:
        names = [WEEKDAYS[i] for i in run]
        parts.extend([f"{names[0]}-{names[-1]}"] if len(run) >= 3 else names)
    return ",".join(parts)


def _percent(weight: float, total: float) -> str:
    if total <= 0:
        return f"{weight:g}"
    return f"{round(weight * 100 / total, 1):g}%"


def _split_labels(node: SplitNode) -> list[str]:
    total = sum(max(v.weight, 0.0) for v in node.variants)
    return [f"{_clean(v.name)} {_percent(v.weight, total)}" for v in node.variants]


def _facts(node: Any) -> list[str]:
    match node:
        case SendNode():
            out = [node.channel.upper()]
            buttons = list(node.suggestions)
            if node.text is not None:
                out.append(f'text "{_short(node.text)}"')
            elif node.rich_card is not None:
                card = node.rich_card
                what = card.title or card.description
                out.append(f'rich card "{_short(what)}"' if what else "rich card (media)")
                buttons = list(card.suggestions) + buttons
            elif node.carousel is not None:
                n = len(node.carousel.cards)
                out.append(f"carousel {n} card{'' if n == 1 else 's'}")
            if buttons:
                out.append(_short("buttons: " + ", ".join(s.action.text for s in buttons), 44))
            if node.fallback is not None:
                out.append(f"SMS after {_dur(node.fallback.after, node.fallback.after_ms)}")
            if node.ttl_ms is not None:
                out.append(f"expires after {_dur(node.ttl, node.ttl_ms)}")
            if not node.marketing:
                out.append("transactional")
            return out
        case WaitNode():
            if node.duration_ms is not None:
                return [_dur(node.duration, node.duration_ms)]
            if node.until is not None:
                days = _days(list(node.until.days))
                return [f"until {node.until.time}" + (f" {days}" if days else "")]
            offset = node.offset_ms
            shift = f" {'+' if offset > 0 else ''}{format_duration(offset)}" if offset else ""
            return [f"until {node.until_property}{shift}"]
        case WaitForNode():
            ms = node.timeout_ms
            return [f"timeout {_dur(node.timeout, ms)}" if ms is not None else "no timeout"]
        case SplitNode():
            return [", ".join(_split_labels(node))]
        case ExitNode():
            return [f"reason: {_clean(node.reason)}"]
        case BranchNode():
            return []
        case _:
            return []


def count_lines(figures: Mapping[str, int]) -> tuple[str, ...]:
    """``{"entered": 120, "sent": 118}`` -> ``("entered 120", "sent 118 (98%)")``."""
    base = figures.get("entered")
    out: list[str] = []
    for key, value in figures.items():
        line = f"{_clean(key).replace('_', ' ')} {value:,}"
        if isinstance(base, int) and base > 0 and key != "entered":
            line += f" ({round(value * 100 / base)}%)"
        out.append(line)
    return tuple(out)


def _note(journey: Journey) -> tuple[str, ...]:
    out = [f"{journey.id} v{journey.version}" if journey.name else f"version {journey.version}"]
    if journey.exit_on:
        out.append("exit on: " + ", ".join(_clean(e) for e in journey.exit_on))
    if journey.goal is not None:
        g = journey.goal
        line = f"goal: {_clean(g.event)} within {_dur(g.within, g.within_ms)}"
        line += f" when {_clean(g.when)}" if g.when else ""
        out.append(line + ("" if g.exit else " (keeps going)"))
    s = journey.settings
    if s.quiet_hours is not None:
        q = s.quiet_hours
        out.append(f"quiet hours {q.from_}-{q.to} ({q.action})")
    if s.frequency_cap is not None:
        cap = s.frequency_cap
        out.append(f"at most {cap.max} sends per {_dur(cap.per, cap.per_ms)}")
    return tuple(out)


def diagram(journey: Journey, counts: Counts | None = None) -> Diagram:
    """The format-neutral drawing of a journey (what every format shows)."""
    counts = counts or {}

    def figures(node_id: str) -> tuple[str, ...]:
        found = counts.get(node_id)
        return count_lines(found) if found else ()

    entry = journey.entry
    entry_facts = [f"on {_clean(entry.event)}"]
    if entry.when:
        entry_facts.append(f"when {_clean(entry.when)}")
    reentry = {"never": "enters once", "after_exit": "re-enters after exit"}
    again = reentry.get(entry.reentry, "re-enters any time")
    if entry.cooldown is not None:
        again += f", cooldown {_dur(entry.cooldown, entry.cooldown_ms)}"
    entry_facts.append(again)
    nodes = [DiagramNode(ENTRY_ID, "entry", "Entry", tuple(entry_facts), figures(ENTRY_ID))]
    edges = [DiagramEdge(ENTRY_ID, journey.start)]
    for node_id, node in journey.nodes.items():
        nodes.append(
            DiagramNode(
                node_id,
                node.type,
                _clean(journey.label(node_id)),
                tuple(_facts(node)),
                figures(node_id),
                _clean(node.description) if node.description else None,
            )
        )
        if isinstance(node, SplitNode):
            pairs = zip(node.variants, _split_labels(node), strict=True)
            edges.extend(DiagramEdge(node_id, v.next, lab) for v, lab in pairs)
        else:
            edges.extend(DiagramEdge(node_id, t, _clean(lab)) for lab, t in successors(node))
    known = {n.id for n in nodes}
    for e in edges:
        if e.target not in known:
            known.add(e.target)
            nodes.append(
                DiagramNode(e.target, "missing", e.target, ("not defined",), figures(e.target))
            )
    title = _clean(journey.name) if journey.name else journey.id
    return Diagram(journey.id, title, _note(journey), tuple(nodes), tuple(edges))


# --------------------------------------------------------------------------- writers


def render(journey: Journey, fmt: Format, *, counts: Counts | None = None) -> str:
    """The journey drawn as Mermaid (``flowchart TD``), Graphviz DOT, or a standalone SVG."""
    d = diagram(journey, counts)
    if fmt == "mermaid":
        return to_mermaid(d)
    if fmt == "dot":
        return to_dot(d)
    if fmt == "svg":
        from engine.journey.graph_svg import to_svg  # graph_svg imports this module

        return to_svg(d)
    raise ValueError(f"unknown graph format {fmt!r}: use one of {', '.join(FORMATS)}")


def safe_id(node_id: str) -> str:
    """A Mermaid / DOT identifier: ``n_`` + the id with ``_`` -> ``__``, ``-`` -> ``_h``
    (one-to-one, so two node ids never share a drawing id)."""
    if node_id == ENTRY_ID:
        return "j_entry"
    out = ["n_"]
    for ch in node_id:
        if ch == "_":
            out.append("__")
        elif ch == "-":
            out.append("_h")
        elif ch.isascii() and ch.isalnum():
            out.append(ch)
        else:
            out.append(f"_{ord(ch):x}_")
    return "".join(out)


_MERMAID_ESC = {
    '"': "#quot;",
    "#": "#35;",
    "<": "#lt;",
    ">": "#gt;",
    "&": "#amp;",
    "|": "#124;",
    "`": "#96;",
}
_MERMAID_SHAPES = {
    "entry": ("([", "])"),
    "exit": ("([", "])"),
    "branch": ("{", "}"),
    "split": ("{{", "}}"),
    "wait": ("[/", "/]"),
    "wait_for": ("(", ")"),
}


def _mm(text: str) -> str:
    """Text inside a quoted Mermaid label (``%%`` would start a comment in some versions)."""
    return re.sub("%(?=%)", "#37;", "".join(_MERMAID_ESC.get(ch, ch) for ch in text))


def _mm_lines(title: str, lines: list[str], counts: tuple[str, ...] = ()) -> str:
    parts = [f"<b>{_mm(title)}</b>", *map(_mm, lines), *(f"<i>{_mm(c)}</i>" for c in counts)]
    return '"' + "<br/>".join(parts) + '"'


def to_mermaid(d: Diagram) -> str:
    out = ["flowchart TD"]
    for n in d.nodes:
        left, right = _MERMAID_SHAPES.get(n.kind, ("[", "]"))
        label = _mm_lines(n.title, [t for t in (n.type_line, *n.facts) if t], n.counts)
        out.append(f"  {safe_id(n.id)}{left}{label}{right}")
    out.append(f"  j_note[{_mm_lines(d.title, list(d.note))}]")
    for e in d.edges:
        src, dst = safe_id(e.source), safe_id(e.target)
        if e.label:
            text = "<br/>".join(_mm(part) for part in wrap(e.label, 32))
            out.append(f'  {src} -->|"{text}"| {dst}')
        else:
            out.append(f"  {src} --> {dst}")
    kinds = {n.kind for n in d.nodes} | {"note"}
    for kind in (*KINDS, "note"):
        if kind in kinds:
            fill, stroke = COLORS[kind]
            dash = ",stroke-dasharray:4 3" if kind in ("note", "missing") else ""
            out.append(f"  classDef {kind} fill:{fill},stroke:{stroke},color:{TEXT_COLOR}{dash}")
    for kind in KINDS:
        members = [safe_id(n.id) for n in d.nodes if n.kind == kind]
        if members:
            out.append(f"  class {','.join(members)} {kind}")
    out.append("  class j_note note")
    return "\n".join(out) + "\n"


def _html(text: str) -> str:
    """Text for a Graphviz HTML-like label (braces escaped too, so they never look like DOT)."""
    table = {"&": "&amp;", "<": "&lt;", ">": "&gt;", '"': "&quot;", "{": "&#123;", "}": "&#125;"}
    return "".join(table.get(ch, ch) for ch in text)


def _dot_str(text: str) -> str:
    return '"' + text.replace("\\", "\\\\").replace('"', '\\"') + '"'


_DOT_SHAPES = {
    "entry": ("box", "rounded,filled,bold"),
    "exit": ("box", "rounded,filled,bold"),
    "branch": ("diamond", "filled"),
    "split": ("hexagon", "filled"),
    "wait": ("parallelogram", "filled"),
    "wait_for": ("box", "rounded,filled"),
    "send": ("box", "filled"),
    "missing": ("box", "filled,dashed"),
}


def _dot_label(
    title: str, kind_line: str | None, facts: tuple[str, ...], counts: tuple[str, ...]
) -> str:
    parts = [f"<B>{_html(title)}</B>"]
    if kind_line:
        parts.append(f'<FONT POINT-SIZE="9" COLOR="#616161">{_html(kind_line)}</FONT>')
    parts.extend(_html(f) for f in facts)
    parts.extend(f'<FONT COLOR="{COUNT_COLOR}"><I>{_html(c)}</I></FONT>' for c in counts)
    return "<" + "<BR/>".join(parts) + ">"


def to_dot(d: Diagram) -> str:
    font = '"Helvetica,Arial,sans-serif"'
    out = [
        f"digraph {_dot_str(d.journey_id)} {{",
        f"  graph [rankdir=TB, nodesep=0.35, ranksep=0.45, fontname={font}];",
        f'  node [fontname={font}, fontsize=11, fontcolor="{TEXT_COLOR}", penwidth=1.3];',
        f'  edge [fontname={font}, fontsize=9, color="#546e7a", fontcolor="#37474f"];',
    ]
    for n in d.nodes:
        shape, style = _DOT_SHAPES.get(n.kind, ("box", "filled"))
        fill, stroke = COLORS[n.kind]
        attrs = [
            f"shape={shape}",
            f'style="{style}"',
            f'fillcolor="{fill}"',
            f'color="{stroke}"',
            f"label={_dot_label(n.title, n.type_line, n.facts, n.counts)}",
        ]
        if n.tooltip:
            attrs.append(f"tooltip={_dot_str(n.tooltip)}")
        out.append(f"  {safe_id(n.id)} [{', '.join(attrs)}];")
    fill, stroke = COLORS["note"]
    note = _dot_label(d.title, None, d.note, ())
    out.append(
        f'  j_note [shape=note, style=filled, fillcolor="{fill}", color="{stroke}", label={note}];'
    )
    out.append("  { rank=same; j_entry; j_note; }")
    for e in d.edges:
        src, dst = safe_id(e.source), safe_id(e.target)
        if e.label:
            text = "<BR/>".join(_html(part) for part in wrap(e.label, 32))
            out.append(f"  {src} -> {dst} [label=<{text}>];")
        else:
            out.append(f"  {src} -> {dst};")
    out.append("}")
    return "\n".join(out) + "\n"
