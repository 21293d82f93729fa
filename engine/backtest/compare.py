"""Baseline and candidate side by side: per journey (paired by id) and per node (by id),
the figures a launch decision turns on, with their differences.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

Row = Mapping[str, Any]
Figure = int | float | None

#: journey-level figures: (name, how to read it from a report)
JOURNEY_FIGURES: tuple[tuple[str, Any], ...] = (
    ("entered", lambda j: j["entered"]),
    ("converted", lambda j: j["converted"]),
    ("conversion_rate", lambda j: j["conversion_rate"]),
    ("sends", lambda j: j["sends"]),
    ("sent_rcs", lambda j: _sum_nodes(j, lambda r: r["sent"].get("rcs", 0))),
    ("sent_sms", lambda j: _sum_nodes(j, lambda r: r["sent"].get("sms", 0))),
    ("reached", lambda j: j["reached"]),
    ("fallback", lambda j: j["fallback"]),
    ("fallback_rate", lambda j: j["fallback_rate"]),
    ("sms_segments", lambda j: j["sms_segments"]),
    ("suppressed", lambda j: j["suppressed"]),
    ("deferred", lambda j: j["deferred"]),
    ("opted_out", lambda j: j["opted_out"]),
)

#: node-level figures (suppressions by reason are added: ``suppressed:<reason>``)
NODE_FIGURES: tuple[tuple[str, Any], ...] = (
    ("entered", lambda r: r["entered"]),
    ("sent_rcs", lambda r: r["sent"].get("rcs", 0)),
    ("sent_sms", lambda r: r["sent"].get("sms", 0)),
    ("fallback_rate", lambda r: r["fallback_rate"]),
    ("sms_segments", lambda r: r["sms_segments"]),
    ("suppressed", lambda r: sum(r["suppressed"].values())),
)

RATES = frozenset({"conversion_rate", "fallback_rate"})


def _sum_nodes(j: Row, get: Any) -> int:
    return sum(int(get(r)) for r in j["nodes"].values())


def node_figures(row: Row) -> dict[str, Figure]:
    out: dict[str, Figure] = {name: get(row) for name, get in NODE_FIGURES}
    for reason, n in row["suppressed"].items():
        out[f"suppressed:{reason}"] = n
    return out


def journey_figures(j: Row) -> dict[str, Figure]:
    return {name: get(j) for name, get in JOURNEY_FIGURES}


def difference(b: Figure, c: Figure) -> Figure:
    if b is None or c is None:
        return None
    d = c - b
    return round(d, 4) if isinstance(d, float) else d


def _side_by_side(base: Mapping[str, Figure], cand: Mapping[str, Figure]) -> dict[str, Any]:
    names = list(dict.fromkeys([*cand, *base]))
    out: dict[str, Any] = {}
    for name in names:
        # A count missing on one side is 0 there (no suppression of that reason); a rate
        # missing stays None (nothing to divide by).
        zero: Figure = None if name in RATES else 0
        b, c = base.get(name, zero), cand.get(name, zero)
        out[name] = {"baseline": b, "candidate": c, "difference": difference(b, c)}
    return out


def _latest(reports: list[dict[str, Any]]) -> dict[str, dict[str, Any]]:
    """Per journey id, its highest version's report."""
    out: dict[str, dict[str, Any]] = {}
    for r in sorted(reports, key=lambda r: (r["journey_id"], r["version"])):
        out[r["journey_id"]] = r
    return out


def compare(
    baseline: list[dict[str, Any]], candidate: list[dict[str, Any]]
) -> list[dict[str, Any]]:
    """Per journey id (in either): the versions compared, the journey's figures and each
    node's (``in``: ``both``, or the one side that has the node) side by side."""
    base, cand = _latest(baseline), _latest(candidate)
    out = []
    for jid in sorted(set(base) | set(cand)):
        b, c = base.get(jid), cand.get(jid)
        b_nodes = b["nodes"] if b else {}
        c_nodes = c["nodes"] if c else {}
        nodes = {}
        for node in dict.fromkeys([*c_nodes, *b_nodes]):
            where = (
                "both"
                if node in b_nodes and node in c_nodes
                else ("candidate" if node in c_nodes else "baseline")
            )
            nodes[node] = {
                "in": where,
                "figures": _side_by_side(
                    node_figures(b_nodes[node]) if node in b_nodes else {},
                    node_figures(c_nodes[node]) if node in c_nodes else {},
                ),
            }
        out.append(
            {
                "journey_id": jid,
                "baseline_version": b["version"] if b else None,
                "candidate_version": c["version"] if c else None,
                "figures": _side_by_side(
                    journey_figures(b) if b else {}, journey_figures(c) if c else {}
                ),
                "nodes": nodes,
            }
        )
    return out
