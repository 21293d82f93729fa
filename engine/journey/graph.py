"""Draw a journey so a product person can read it: Mermaid, Graphviz DOT or a standalone SVG.

:func:`render` draws the :class:`~engine.journey.diagram.Diagram` of a journey in one of
:data:`FORMATS`. The SVG is laid out here, without Graphviz (:mod:`engine.journey.graph_svg`).

The output is deterministic: the same journey and counts give the same bytes.
"""

from __future__ import annotations

import re
from typing import Literal

from engine.journey.diagram import (
    COLORS,
    COUNT_COLOR,
    ENTRY_ID,
    KINDS,
    TEXT_COLOR,
    Counts,
    Diagram,
    diagram,
    wrap,
)
from engine.journey.graph_svg import to_svg
from engine.journey.model import Journey

Format = Literal["mermaid", "dot", "svg"]
FORMATS: tuple[Format, ...] = ("mermaid", "dot", "svg")


def render(journey: Journey, fmt: Format, *, counts: Counts | None = None) -> str:
    """The journey drawn as Mermaid (``flowchart TD``), Graphviz DOT, or a standalone SVG."""
    d = diagram(journey, counts)
    if fmt == "mermaid":
        return to_mermaid(d)
    if fmt == "dot":
        return to_dot(d)
    if fmt == "svg":
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
    "update_profile": ("[[", "]]"),
    "webhook": ("[[", "]]"),
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
    "webhook": ("component", "filled"),
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
