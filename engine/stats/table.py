"""The text table of ``journeys stats``: one block per journey version, one row per node in
flow order, then the split variants. It prints the rows of :mod:`engine.stats.aggregate`
(the JSON and the dashboard show the same figures)."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

from engine.stats.proportions import MIN_CONVERSIONS, MIN_USERS

Row = Mapping[str, Any]


def _pct(rate: float | None) -> str:
    return "-" if rate is None else f"{rate:.0%}"


def _pair(by_channel: Mapping[str, int]) -> str:
    return f"{by_channel.get('rcs', 0)}/{by_channel.get('sms', 0)}"


def _messaging(s: Row) -> bool:
    """Whether the node is a send or did anything with messages (else its message columns
    stay empty). The dashboard's table follows the same rule (``static/dashboard.js``)."""
    kinds = ("sent", "suppressed", "deferred", "failed", "fallback", "opted_out")
    return s.get("type") == "send" or any(s[k] for k in kinds)


#: header, width, cell, and whether it is a message column (left empty for a node that
#: did nothing with messages: a wait, a split, an exit)
Columns = tuple[tuple[str, int, Callable[[Row], object], bool], ...]
COLUMNS: Columns = (
    ("entered", 8, lambda s: s["entered"], False),
    ("sent rcs/sms", 13, lambda s: _pair(s["sent"]), True),
    ("deliv rcs/sms", 14, lambda s: _pair(s["delivered_by_channel"]), True),
    ("reached", 8, lambda s: s["reached"], True),
    ("reach%", 7, lambda s: _pct(s["reach_rate"]), True),
    ("read", 6, lambda s: s["read"], True),
    ("read%", 6, lambda s: _pct(s["read_rate"]), True),
    ("clicked", 8, lambda s: s["clicked"], True),
    ("ctr%", 6, lambda s: _pct(s["click_through_rate"]), True),
    ("replied", 8, lambda s: s["replied"], True),
    ("failed", 7, lambda s: s["failed"], True),
    ("fallback", 9, lambda s: s["fallback"], True),
    ("fb%", 5, lambda s: _pct(s["fallback_rate"]), True),
    ("opt-out", 8, lambda s: s["opted_out"], True),
    ("deferred", 9, lambda s: s["deferred"], True),
    ("suppressed", 11, lambda s: sum(s["suppressed"].values()), True),
)
NODE_WIDTH = 22  # at least; wider for longer node ids

LEGEND = (
    "reached: sends delivered by either channel, each once (an RCS message and its fallback "
    "SMS are one send); reach% of the users who entered the node.\n"
    "read% and ctr%: of RCS deliveries, the only channel that reports reads and taps "
    "('-': nothing delivered by RCS). fb%: of RCS sends.\n"
    f"A/B: 95% Newcombe interval of the difference; 'small sample' under {MIN_USERS} users "
    f"or {MIN_CONVERSIONS} conversions in a variant.\n"
    "Lift: conversion rate of treated runs minus that of the holdout (or the global control "
    "group), 95% Newcombe interval; relative: over the baseline's rate.\n"
)


def column_width(header: str, width: int) -> int:
    return max(width, len(header) + 2)


def _notes(s: Row) -> str:
    notes = [f"suppressed:{k}={v}" for k, v in s["suppressed"].items()]
    notes += [f"failed:{k}={v}" for k, v in s["failed_reasons"].items()]
    if s.get("unknown"):
        notes.append(f"unknown={s['unknown']}")
    notes += [f"exited:{k}={v}" for k, v in s["exited"].items()]
    return " ".join(notes)


def _node_line(node: str, s: Row, node_width: int, columns: Columns = COLUMNS) -> str:
    messaging = _messaging(s)
    cells = "".join(
        f"{'' if (message and not messaging) else str(cell(s)):>{column_width(h, w)}}"
        for h, w, cell, message in columns
    )
    notes = _notes(s)
    return (f"  {node:<{node_width}}{cells}" + (f"  {notes}" if notes else "")).rstrip()


def _split_lines(split: str, rep: Mapping[str, Any]) -> list[str]:
    lines = []
    for name, v in rep["variants"].items():
        cr = v["conversion_rate"]
        line = f"  split {split} variant {name}: {v['users']} users, {v['converted']} converted"
        if cr is not None:
            line += f" ({cr:.1%}, 95% CI {v['ci_low']:.1%} .. {v['ci_high']:.1%})"
        lines.append(line)
    for label, d in rep["differences"].items():
        if d["difference"] is None:
            continue
        line = (
            f"  split {split} {label}: {d['difference']:+.1%} "
            f"(95% CI {d['ci_low']:+.1%} .. {d['ci_high']:+.1%})"
        )
        if d["ci_low"] > 0 or d["ci_high"] < 0:
            line += " significant"
        lines.append(line + (f"  [{d['warning']}]" if d["warning"] else ""))
    won = rep.get("winner")
    if won is not None:
        line = f"  split {split} winner ({won['metric']}): {won['note']}"
        since = sum(won.get("after_decision", {}).values())
        lines.append(line + (f"; {since} entrants took it since" if since else ""))
    return lines


def _rate(g: Row) -> str:
    cr = g["conversion_rate"]
    shown = f" ({cr:.1%})" if cr is not None else ""
    return f"{g['users']} runs, {g['converted']} converted{shown}"


def lift_lines(label: str, rep: Row, baseline: str) -> list[str]:
    """A lift report (:mod:`engine.stats.lift`): both groups, then the lift with its 95%
    interval."""
    lines = [f"  {label}: treated {_rate(rep['treated'])}; {baseline} {_rate(rep[baseline])}"]
    if rep["lift"] is None:
        return lines
    line = (
        f"  {label} lift: {rep['lift']:+.1%} (95% CI {rep['ci_low']:+.1%} .. "
        f"{rep['ci_high']:+.1%})"
    )
    if rep["relative_lift"] is not None:
        line += f", relative {rep['relative_lift']:+.0%}"
    line += " significant" if rep["significant"] else ""
    return [*lines, line + (f"  [{rep['warning']}]" if rep["warning"] else "")]


def _headline(j: Row) -> str:
    rate = j["conversion_rate"]
    line = f"{j['journey_id']} v{j['version']}: {j['entered']} entered, {j['converted']} converted"
    line += f" ({rate:.1%})" if rate is not None else ""
    if j["sends"]:
        line += f"; {j['reached']} of {j['sends']} sends reached their user"
        line += f" ({_pct(j['reach_rate_of_sends'])})"
    extra = [f"{j[k]} {label}" for k, label in (("opted_out", "opted out"),
             ("deferred", "deferred"), ("suppressed", "suppressed")) if j[k]]  # fmt: skip
    return line + ("; " + ", ".join(extra) if extra else "")


def format_table(
    report: list[dict[str, Any]],
    global_control: Mapping[str, Any] | None = None,
    columns: Columns = COLUMNS,
    legend: str = LEGEND,
) -> str:
    """The table of an :meth:`engine.stats.aggregate.Aggregator.to_json` report, and the
    lift over the global control group (``Aggregator.global_control``). ``columns`` and
    ``legend``: those of ``journeys stats``, or more, as ``journeys backtest`` shows."""
    lines: list[str] = []
    for j in report:
        width = max([NODE_WIDTH, *(len(n) + 2 for n in j["nodes"])])
        header = f"  {'node':<{width}}" + "".join(
            f"{h:>{column_width(h, w)}}" for h, w, _, _ in columns
        )
        lines.append(_headline(j))
        lines.append(header + "  notes")
        lines += [_node_line(node, s, width, columns) for node, s in j["nodes"].items()]
        for split, rep in j["splits"].items():
            lines += _split_lines(split, rep)
        if j.get("holdout"):
            share = j["holdout"]["share"]
            lines += lift_lines(f"holdout{' ' + share if share else ''}", j["holdout"], "holdout")
        lines.append("")
    if global_control:
        n = global_control["journey_versions"]
        lines.append(f"global control group ({n} journey version{'' if n == 1 else 's'} "
                     "with a goal and a marketing send):")
        lines += lift_lines("global control", global_control, "control")
        lines.append("")
    return "\n".join(lines) + ("\n" + legend if report else "")
