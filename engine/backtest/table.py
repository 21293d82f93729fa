"""The text tables of ``journeys backtest``.

One run: the table of ``journeys stats`` (the same rows, from the same code) with the SMS
segments as one more column. With a baseline: per journey, its figures for the baseline,
the candidate and the difference; then per node one row, where a figure that changed
reads ``baseline→candidate (difference)``.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from engine.stats.table import COLUMNS, LEGEND, Columns, format_table

SEGMENTS_COLUMN: Columns = (("sms segs", 9, lambda s: s["sms_segments"], True),)
BACKTEST_LEGEND = LEGEND + (
    "sms segs: segments of the SMS the gateway took (fallbacks included): what the carrier bills.\n"
)

JOURNEY_LABELS = {
    "entered": "entered",
    "converted": "converted",
    "conversion_rate": "conversion rate",
    "sends": "sends",
    "sent_rcs": "sent by RCS",
    "sent_sms": "sent by SMS",
    "reached": "reached",
    "fallback": "fell back to SMS",
    "fallback_rate": "fallback share of RCS",
    "sms_segments": "SMS segments",
    "suppressed": "suppressed",
    "deferred": "deferred",
    "opted_out": "opted out",
}
NODE_COLUMNS = (
    ("entered", "entered"),
    ("sent_rcs", "sent rcs"),
    ("sent_sms", "sent sms"),
    ("fallback_rate", "fb%"),
    ("sms_segments", "sms segs"),
    ("suppressed", "suppressed"),
)
RATES = frozenset({"conversion_rate", "fallback_rate"})


def format_run(
    report: list[dict[str, Any]], global_control: Mapping[str, Any] | None = None
) -> str:
    return format_table(
        report, global_control, columns=COLUMNS + SEGMENTS_COLUMN, legend=BACKTEST_LEGEND
    )


def _value(name: str, v: Any) -> str:
    if v is None:
        return "-"
    return f"{v:.1%}" if name in RATES else f"{v:,}"


def _diff(name: str, d: Any) -> str:
    if d is None:
        return "-"
    if name in RATES:
        return f"{d * 100:+.1f} pts"
    return f"{d:+,}"


def _cell(name: str, f: Mapping[str, Any]) -> str:
    b, c, d = f["baseline"], f["candidate"], f["difference"]
    if b == c:
        return _value(name, c)
    return f"{_value(name, b)}→{_value(name, c)} ({_diff(name, d)})"


def _version(v: int | None) -> str:
    return "-" if v is None else f"v{v}"


def format_comparison(differences: list[dict[str, Any]]) -> str:
    lines: list[str] = []
    for j in differences:
        lines.append(
            f"{j['journey_id']}: baseline {_version(j['baseline_version'])}, "
            f"candidate {_version(j['candidate_version'])}"
        )
        rows = [
            (JOURNEY_LABELS[name], _value(name, f["baseline"]), _value(name, f["candidate"]),
             "" if f["baseline"] == f["candidate"] else _diff(name, f["difference"]))
            for name, f in j["figures"].items()
        ]  # fmt: skip
        widths = [max(len(r[i]) for r in [("", "baseline", "candidate", "difference"), *rows])
                  for i in range(4)]  # fmt: skip
        head = ("", "baseline", "candidate", "difference")
        for r in [head, *rows]:
            lines.append(
                f"  {r[0]:<{widths[0]}}  {r[1]:>{widths[1]}}  {r[2]:>{widths[2]}}"
                f"  {r[3]:>{widths[3]}}".rstrip()
            )
        lines += _node_table(j["nodes"])
        lines.append("")
    if differences:
        lines.append(
            "a changed figure reads baseline→candidate (difference); fb%: fallback share of RCS "
            "sends; sms segs: segments of the SMS the gateway took."
        )
    return "\n".join(lines) + "\n"


def _node_table(nodes: Mapping[str, Any]) -> list[str]:
    table = []
    for node, n in nodes.items():
        figures = n["figures"]
        label = node if n["in"] == "both" else f"{node} (only in {n['in']})"
        cells = [_cell(name, figures[name]) for name, _ in NODE_COLUMNS]
        notes = [
            f"{name}={_cell(name, f)}"
            for name, f in figures.items()
            if name.startswith("suppressed:")
        ]
        table.append((label, cells, " ".join(notes)))
    heads = [h for _, h in NODE_COLUMNS]
    node_w = max([len("node"), *(len(t[0]) for t in table)])
    widths = [max([len(h), *(len(t[1][i]) for t in table)]) for i, h in enumerate(heads)]
    out = [
        "  "
        + f"{'node':<{node_w}}"
        + "".join(f"  {h:>{w}}" for h, w in zip(heads, widths, strict=True))
        + "  notes"
    ]
    for label, cells, note in table:
        line = f"  {label:<{node_w}}" + "".join(
            f"  {c:>{w}}" for c, w in zip(cells, widths, strict=True)
        )
        out.append((line + (f"  {note}" if note else "")).rstrip())
    return out
