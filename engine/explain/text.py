"""The report of :func:`engine.explain.timeline.explain` as the text ``journeys explain``
prints: the timeline, then the journeys not entered, the messages not received, and where
the user is now."""

from __future__ import annotations

from typing import Any


def _where(row: dict[str, Any]) -> str:
    jid = row.get("journey_id")
    if jid is None:
        return "-"
    ver = row.get("journey_version")
    return f"{jid}@{ver}" if ver is not None else jid


def format_report(report: dict[str, Any]) -> str:
    out: list[str] = []
    traced = "with the core's trace records" if report["traced"] else "outcomes only"
    only = f", journey {report['journey']}" if report.get("journey") else ""
    out.append(f"explain {report['user_id']}: {report['source']} ({traced}{only})")
    out.append("")
    for moment in report["timeline"]:
        inputs, steps = moment["inputs"], moment["steps"]
        if not inputs or all(i.get("before_step", 0) > 0 for i in inputs):
            out.append(f"{moment['ts']}  timer")
        cuts = sorted({0, *(i.get("before_step", 0) for i in inputs)})
        for start, end in zip(cuts, [*cuts[1:], len(steps)], strict=True):
            for inp in inputs:
                if inp.get("before_step", 0) == start:
                    late = f" (stamped {inp['ts']}; handled at the user's clock)"
                    out.append(
                        f"{moment['ts']}  {inp['text']}{late if 'handled_at' in inp else ''}"
                    )
            out.extend(_steps(steps[start:end]))
        if not steps and inputs:
            out.append("    (nothing happened)")
    out.append("")
    out.append("Journeys not entered")
    if not report["not_entered"]:
        out.append("    none")
    for row in report["not_entered"]:
        times = ""
        if row.get("count"):
            times = (
                f" ({row['count']}x, last {row['last']})"
                if row["count"] > 1
                else f" ({row['last']})"
            )
        out.append(f"    {_where(row):<34} {row['text']}{times}")
    out.append("")
    out.append("Messages not received")
    if not report["not_received"]:
        out.append("    none")
    for row in report["not_received"]:
        where = f"{_where(row)}:{row.get('node_id')}"
        out.append(f"    {where:<34} {row['ts']}  {row['text']}")
        if row.get("then"):
            out.append(f"    {'':<34} then {row['then']}")
    out.append("")
    out.extend(_now(report["now"]))
    for note in report["notes"]:
        out.append(f"note: {note}")
    return "\n".join(out) + "\n"


# Shown by the records of what happens in the node (a send, a wait...): not repeated.
_SILENT = frozenset({("node", "entered"), ("node_entered", None)})
_ON_JOURNEY_LINE = frozenset({"entry", "journey_entered", "exit", "journey_exited", "goal"})


def _steps(steps: list[dict[str, Any]]) -> list[str]:
    """Steps under their journey: ``journey@v: entered`` then ``  node: what happened``."""
    out: list[str] = []
    journey = None
    for step in steps:
        if (step["kind"], step.get("reason")) in _SILENT and step["source"] == "trace":
            continue
        if step["kind"] == "node_entered" and not step["values"]:
            continue  # an outcome without a variant or a path: the next step says it
        where = _where(step)
        if step["journey_id"] is None:
            out.append(f"    {step['text']}")
            journey = None
            continue
        if step["kind"] in _ON_JOURNEY_LINE or not step.get("node_id"):
            out.append(f"    {where}: {step['text']}")
            journey = where
            continue
        if where != journey:
            out.append(f"    {where}")
            journey = where
        out.append(f"      {step['node_id']}: {step['text']}")
    return out


def _now(now: dict[str, Any]) -> list[str]:
    out = ["Where the user is now"]
    if not now.get("state"):
        return [*out, "    no state: the engine has no record of this user", ""]
    if now.get("opted_out"):
        out.append("    opted out (STOP): journey messages are not sent")
    if not now["runs"]:
        out.append("    in no journey")
    for run in now["runs"]:
        kind = f" ({run['node_type']})" if run.get("node_type") else ""
        since = f" since {run['since']}" if run.get("since") else ""
        until = f", until {run['until']}" if run.get("until") else ""
        out.append(
            f"    {_where(run):<34} at {run['node_id']}{kind}{since}{until}"
            f" (entered {run['entered_at']})"
        )
    nxt = now.get("next_timer")
    if nxt is None:
        out.append("    next timer: none")
    else:
        out.append(f"    next timer: {nxt['at']}  {_where(nxt)}:{nxt['node_id']}  {nxt['what']}")
    out.append("")
    return out
