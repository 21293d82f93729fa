"""A journey as a format-neutral drawing: boxes with readable lines, labelled edges, a note.

:func:`diagram` turns a :class:`~engine.journey.model.Journey` into a small :class:`Diagram`
that every format draws the same way (:mod:`engine.journey.graph` writes Mermaid and DOT,
:mod:`engine.journey.graph_svg` lays out an SVG). It lives apart from the writers so that
both can import it without importing each other.

Each box shows the node's name, its type and its key facts (channel, content, fallback, wait
time, timeout, variant weights, exit reason); conditions, paths and variants label the edges.
An entry pseudo-node (:data:`ENTRY_ID`) sits on top, and a note carries exit events, the goal
and the journey settings. ``counts`` adds per-node figures (``{"confirm": {"entered": 120,
"sent": 118}}``) under each box; figures for :data:`ENTRY_ID` go under the entry box.
"""

from __future__ import annotations

import re
import textwrap
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from engine.durations import format_duration
from engine.journey.model import (
    BEST_TIME_DEFAULT,
    BEST_TIME_WITHIN,
    WEEKDAYS,
    BranchNode,
    ExitNode,
    Journey,
    SendNode,
    SplitNode,
    UpdateProfileNode,
    WaitForNode,
    WaitNode,
    WebhookNode,
    successors,
)

Counts = Mapping[str, Mapping[str, int]]

#: Id of the entry pseudo-node (contains a dot, which no journey node id can).
ENTRY_ID = "journey.entry"

#: Kinds of boxes, in drawing-legend order ("missing": a target the file does not define).
KINDS = (
    "entry",
    "send",
    "wait",
    "wait_for",
    "branch",
    "split",
    "update_profile",
    "webhook",
    "exit",
    "missing",
)
KIND_LABEL = {"wait_for": "wait for", "update_profile": "update profile", "missing": "missing node"}
#: (fill, stroke) per kind, shared by every format.
COLORS: dict[str, tuple[str, str]] = {
    "entry": ("#e8f5e9", "#2e7d32"),
    "send": ("#e3f2fd", "#1565c0"),
    "wait": ("#fff8e1", "#f9a825"),
    "wait_for": ("#fff3e0", "#ef6c00"),
    "branch": ("#f3e5f5", "#6a1b9a"),
    "split": ("#e0f7fa", "#00838f"),
    "update_profile": ("#f1f8e9", "#558b2f"),
    "webhook": ("#ede7f6", "#4527a0"),
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
            if node.until_time is not None:
                days = _days(list(node.until_time.days))
                return [f"until {node.until_time.time}" + (f" {days}" if days else "")]
            if node.best_time:
                within = _dur(node.within or BEST_TIME_WITHIN, node.within_ms)
                default = node.default or BEST_TIME_DEFAULT
                return [f"best time within {within}", f"default {default}"]
            offset = node.offset_ms
            shift = f" {'+' if offset > 0 else ''}{format_duration(offset)}" if offset else ""
            return [f"until {node.until_property}{shift}"]
        case WaitForNode():
            ms = node.timeout_ms
            return [f"timeout {_dur(node.timeout, ms)}" if ms is not None else "no timeout"]
        case SplitNode():
            w = node.winner
            picks = [f"picks best {w.metric} after {_dur(w.after, w.after_ms)}"] if w else []
            return [", ".join(_split_labels(node)), *picks]
        case ExitNode():
            return [f"reason: {_clean(node.reason)}"]
        case UpdateProfileNode():
            out = [_short(f"set {k} = {_clean(v)}") for k, v in node.set_.items()][:4]
            if len(node.set_) > 4:
                out.append(f"and {len(node.set_) - 4} more")
            if node.unset:
                out.append(_short("unset " + ", ".join(node.unset), 44))
            return out
        case WebhookNode():
            saves = [_short("saves " + ", ".join(node.save), 44)] if node.save else []
            return [_short(f"{node.method} {node.url}", 44), *saves]
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


def _schedule_fact(journey: Journey) -> str:
    """``every week on mon at 10:00 (user's zone)``: a scheduled entry in one line."""
    s = journey.entry.schedule
    if s is None:
        return "no entry"
    zone = "user's zone" if s.per_user_zone else s.timezone
    if s.at is not None:
        return f"once at {s.at.replace('T', ' ')} ({zone})"
    when = {"week": f" on {', '.join(s.on or ())}", "month": f" on day {s.day}"}.get(
        s.every or "", ""
    )
    text = f"every {s.every}{when} at {s.time} ({zone})"
    if s.start or s.until:
        text += f", {(s.start or '')[:10]}..{(s.until or '')[:10]}"
    return text


def diagram(journey: Journey, counts: Counts | None = None) -> Diagram:
    """The format-neutral drawing of a journey (what every format shows)."""
    counts = counts or {}

    def figures(node_id: str) -> tuple[str, ...]:
        found = counts.get(node_id)
        return count_lines(found) if found else ()

    entry = journey.entry
    entry_facts = [f"on {_clean(entry.event)}" if entry.event else _schedule_fact(journey)]
    if entry.audience:
        entry_facts.append(f"audience {_clean(entry.audience)}")
    if entry.when:
        entry_facts.append(f"when {_clean(entry.when)}")
    reentry = {"never": "enters once", "after_exit": "re-enters after exit"}
    again = reentry.get(entry.reentry, "re-enters any time")
    if entry.cooldown is not None:
        again += f", cooldown {_dur(entry.cooldown, entry.cooldown_ms)}"
    entry_facts.append(again)
    if entry.max_entries is not None:
        per = entry.max_entries_per_ms
        window = "ever" if per is None else f"per {_dur(entry.max_entries_per, per)}"
        entry_facts.append(f"at most {entry.max_entries} entries {window}")
    if journey.holdout is not None:
        entry_facts.append(f"holdout {journey.holdout}: no sends")
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
