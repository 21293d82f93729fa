"""The suite's output: a text table (figure, value, target, met?) and the JSON document."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import orjson

from engine.bench.runner import OK, Outcome, Report


@dataclass(frozen=True)
class Row:
    figure: str
    value: str
    target: str
    met: str


HEADER = Row("figure", "value", "target", "met?")


def rows(outcomes: list[Outcome]) -> list[Row]:
    out: list[Row] = []
    for o in outcomes:
        if o.status != OK or o.result is None:
            out.append(Row(f"{o.key.upper()} {o.title}", o.status, "", "-"))
            continue
        figures = o.result.get("figures")
        if isinstance(figures, list) and figures:
            out.extend(_row(f) for f in figures if isinstance(f, dict))
        else:  # a module without "figures": its top-level numbers, no target
            key = o.key.upper()
            out.extend(
                Row(f"{key} {k}", format_value(v), "", "")
                for k, v in o.result.items()
                if isinstance(v, int | float) and not isinstance(v, bool) and k != "target"
            )
            met = o.result.get("met")
            if isinstance(met, bool):  # a module's own verdict, with its target if it says
                target = o.result.get("target")
                out.append(
                    Row(f"{key} target", "", "" if target is None else str(target), _yes(met))
                )
    return out


def _row(f: dict[str, Any]) -> Row:
    met = f.get("met")
    return Row(
        str(f.get("figure", "?")),
        format_value(f.get("value"), f.get("unit")),
        str(f.get("target") or ""),
        "" if met is None else _yes(bool(met)),
    )


def _yes(met: bool) -> str:
    return "yes" if met else "NO"


def format_value(value: Any, unit: Any = None) -> str:
    if value is None:
        text = "-"
    elif isinstance(value, bool):
        text = "yes" if value else "no"
    elif isinstance(value, int):
        text = f"{value:,}"
    elif isinstance(value, float):
        text = f"{value:,.0f}" if abs(value) >= 100 else f"{value:.3g}"
    else:
        text = str(value)
    return f"{text} {unit}" if unit and value is not None else text


def format_table(report: Report) -> str:
    body = rows(report.outcomes)
    table = [HEADER, *body]
    widths = [max(len(getattr(r, c)) for r in table) for c in ("figure", "value", "target")]
    lines = []
    for i, r in enumerate(table):
        cells = (r.figure.ljust(widths[0]), r.value.rjust(widths[1]), r.target.ljust(widths[2]))
        lines.append("  ".join((*cells, r.met)).rstrip())
        if i == 0:
            lines.append("-" * (sum(widths) + 6 + len(HEADER.met)))
    m = report.machine
    load = ", ".join(str(x) for x in m.get("load_average", []))
    lines.append("")
    lines.append(f"{report.started}  {m.get('cpus')} cpus  load average {load}")
    for o in report.outcomes:
        if o.error:
            lines.append(f"{o.key}: {o.error.splitlines()[0]}")
    return "\n".join(lines) + "\n"


def to_json(report: Report) -> bytes:
    return orjson.dumps(report.to_json(), option=orjson.OPT_INDENT_2 | orjson.OPT_SORT_KEYS)
