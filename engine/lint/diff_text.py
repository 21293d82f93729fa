"""The report of ``journeys diff`` (:mod:`engine.lint.diff_report`) as text for people:
one block per journey (what changed in the journey, its nodes, its ``migrate``, the
findings, and with ``--state`` the runs in flight), then a one-line summary."""

from __future__ import annotations

from typing import Any

import orjson

from engine.journey.model import SUGGESTION_KINDS

NODE_MARK = {"added": "+", "removed": "-", "changed": "~", "renamed": ">"}
VALUE_WIDTH = 60


def format_report(report: dict[str, Any]) -> str:
    lines = [f"journeys diff {report['old']} -> {report['new']}"]
    state = report.get("state")
    if state is not None:
        lines.append(
            f"states: {state['source']}: {state['users']} users, {state['runs']} runs in "
            f"flight, {state['waiting_messages']} messages waiting for a timer"
        )
    unchanged = [j["id"] for j in report["journeys"] if j["status"] == "unchanged"]
    for j in report["journeys"]:
        if j["status"] != "unchanged" or j["findings"] or j.get("in_flight"):
            lines.append("")
            lines.extend(_journey(j))
    if unchanged:
        lines += ["", "unchanged: " + ", ".join(unchanged)]
    if state is not None and state["journeys_not_compared"]:
        lines.append("the states also hold runs of: " + ", ".join(state["journeys_not_compared"]))
    if report["new_problems"]:
        lines += ["", f"NEW does not pass journeys validate ({len(report['new_problems'])} "
                  "problem(s)): the worker won't start with it"]
        lines += [f"  {p}" for p in report["new_problems"][:10]]
    lines += ["", _summary(report["summary"])]
    return "\n".join(lines) + "\n"


def _journey(j: dict[str, Any]) -> list[str]:
    versions = {
        "added": f"added (version {j['new_version']})",
        "removed": f"removed (was version {j['old_version']})",
    }.get(j["status"], f"version {j['old_version']} -> {j['new_version']}")
    lines = [f"== {j['id']}: {versions}"]
    if j["changes"]:
        lines.append("  journey")
        lines += [_change(c) for c in j["changes"]]
    if j["nodes"]:
        lines.append("  nodes")
        for n in j["nodes"]:
            lines.append(f"    {NODE_MARK[n['status']]} {_node(n)}")
            lines += ["  " + _change(c) for c in n["changes"] if n["status"] != "added"]
    for m in j["migrate"]:
        pairs = ", ".join(f"{a} -> {b}" for a, b in m["nodes"].items()) or "(no nodes)"
        lines.append(f"  migrate from version {m['from_version']}: {pairs}")
    if j["findings"]:
        lines.append("  findings")
        for f in j["findings"]:
            where = f"v{f['version']} {f['node']}: " if f["node"] else ""
            if f.get("runs"):
                where = f"v{f['version']} {f['node']} ({_plural(f['runs'], 'run')} there): "
            lines.append(f"    {f['level']:<8} {where}{f['message']}")
    rows = j.get("in_flight")
    if rows is not None:
        lines.append("  in flight" + ("" if rows else ": none"))
        if rows:
            lines.append(
                f"    {'version':>7}  {'node':<22} {'runs':>6} {'waiting':>7}  "
                f"{'change':<8} what happens"
            )
        for r in rows:
            lines.append(
                f"    {r['version']:>7}  {r['node']:<22} {r['runs']:>6} "
                f"{r['waiting_messages']:>7}  {r['change'] or '-':<8} {_fate(r)}"
            )
    return lines


def _node(n: dict[str, Any]) -> str:
    if n["status"] == "renamed":
        return (f"{n['node']} -> {n['renamed_to']} ({n['new_type']}): renamed "
                f"({n['evidence']})")
    if n["status"] == "changed" and n["old_type"] != n["new_type"]:
        return f"{n['node']} ({n['old_type']} -> {n['new_type']})"
    return f"{n['node']} ({n['new_type'] or n['old_type']})" + (
        f": {n['status']}" if n["status"] in ("added", "removed") else ""
    )


def _change(c: dict[str, Any]) -> str:
    return f"    {c['category']:<9} {c['field']}: {_value(c['old'])} -> {_value(c['new'])}"


def _value(v: Any) -> str:
    if v is None:
        return "(none)"
    if isinstance(v, list) and v and all(_is_chip(s) for s in v):
        # chips: their labels, not their JSON
        labels = []
        for s in v:
            kind, action = next((k, a) for k, a in s.items() if a is not None)
            labels.append(f"{kind} {action.get('text')!r}")
        text = "[" + ", ".join(labels) + "]"
    else:
        text = orjson.dumps(v).decode()
    return text if len(text) <= VALUE_WIDTH else text[: VALUE_WIDTH - 3] + "..."


def _is_chip(s: Any) -> bool:
    return (
        isinstance(s, dict)
        and set(s) <= set(SUGGESTION_KINDS)
        and sum(1 for a in s.values() if isinstance(a, dict)) == 1
    )


def _fate(r: dict[str, Any]) -> str:
    parts = []
    if r["runs"]:
        parts.append(_one_fate(r))
    mf = r.get("messages_fate")
    if mf is not None:
        parts.append("messages: " + _one_fate(mf))
    return "; ".join(parts)


def _one_fate(f: dict[str, Any]) -> str:
    if f["fate"] == "move":
        return f"move to version {f['to_version']} '{f['to_node']}'"
    if f["fate"] == "stay":
        return f"stay on version {f['to_version']} ({f['why']})"
    return f"STRANDED: {f['why']}"


def _plural(n: int, word: str) -> str:
    return f"{n} {word}" + ("" if n == 1 else "s")


def _summary(s: dict[str, Any]) -> str:
    journeys = sum(s[k] for k in ("changed", "added", "removed", "unchanged"))
    counts = ", ".join(f"{s[k]} {k}" for k in ("changed", "added", "removed", "unchanged") if s[k])
    flags = f"{s['errors']} error(s), {s['warnings']} warning(s), {s['notes']} note(s)"
    return f"{journeys} journey(s): {counts}; {flags}"
