"""What the stats say about a split that picks its winner (``winner:`` on a ``split``).

Decided: the decision as its ``split_winner_chosen`` outcome recorded it (the winner, when,
and the figures it was made on). Not decided yet: the figures so far and what is missing,
judged by the same function that decides (:func:`engine.core.winner.evaluate`) at the
latest outcome time the stats have seen: time (``after`` not passed yet), users (variants
under ``min_users``), or a clear difference ("no clear winner yet": the split goes on
splitting).

The figures so far count a run's success as the stats see it: a conversion of the run, or
for ``click`` / ``read`` any tap on / read of a message of the run (the decider counts only
messages of the sends after the split; the figures a decision was made on are the
decision's).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from engine.core.winner import VariantCount, evaluate
from engine.durations import format_duration, format_ts
from engine.journey.model import Journey, SplitNode

#: metric -> the counter (per split and variant) of runs that succeeded
SUCCESS_COUNTER = {"conversion": "converted", "click": "clicked", "read": "read"}


def winner_report(
    journey: Journey | None,
    split: str,
    counts: Mapping[str, Mapping[str, int]],
    first_entry_at: int | None,
    now: int | None,
    decision: Mapping[str, Any] | None,
) -> dict[str, Any] | None:
    """The ``winner`` part of a split's stats; None when the split has no ``winner``.
    ``counts``: variant -> ``{"users", "converted", "clicked", "read", "after_decision"}``;
    ``decision``: the ``split_winner_chosen`` outcome (wire form), if there was one."""
    node = journey.nodes.get(split) if journey is not None else None
    w = node.winner if isinstance(node, SplitNode) else None
    if w is None and decision is None:
        return None
    after = {v: c.get("after_decision", 0) for v, c in counts.items() if c.get("after_decision")}
    if decision is not None:
        attrs = decision.get("attributes") or {}
        return {
            "status": "chosen",
            "metric": attrs.get("metric"),
            "variant": attrs.get("variant"),
            "decided_at": decision.get("ts"),
            "effective_at": attrs.get("effective_at"),
            "figures": {k: attrs.get(k) for k in ("variants", "differences", "method")},
            "after_decision": after,
            "note": f"{attrs.get('variant')} won on {decision.get('ts')}: every new entrant "
            "takes it",
        }
    assert w is not None and journey is not None
    key = SUCCESS_COUNTER[w.metric]
    so_far = {v: VariantCount(c.get("users", 0), c.get(key, 0)) for v, c in counts.items()}
    at = now if now is not None else 0
    ev = evaluate(journey, split, so_far, first_entry_at, at)
    missing: dict[str, Any] = {}
    if ev.missing_ms is None:
        missing["time"] = f"nobody entered yet; then {w.after}"
    elif ev.missing_ms:
        missing["time"] = format_duration(ev.missing_ms)
    if ev.missing_users:
        missing["users"] = ev.missing_users
    if missing:
        parts = [f"{v} needs {n} more users" for v, n in ev.missing_users.items()]
        if "time" in missing:
            parts.insert(0, f"{missing['time']} to go")
        note = "no clear winner yet: " + ", ".join(parts)
    else:
        note = "no clear winner yet: no variant is clear of every other one; still splitting"
    return {
        "status": "waiting" if missing else "no clear winner",
        "metric": w.metric,
        "after": w.after,
        "min_users": w.min_users,
        "variant": None,
        "decide_from": None if ev.decide_from is None else format_ts(ev.decide_from),
        "figures": ev.figures(),
        "missing": missing,
        "note": note,
    }
