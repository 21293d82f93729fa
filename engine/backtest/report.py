"""What a backtest says: the ``--json`` document, the lines of the records it rejected,
and its one-line summary (the CLI prints them)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from engine.backtest.compare import compare
from engine.backtest.job import Rejected
from engine.backtest.run import Backtest
from engine.journey.model import Journey

REJECTED_SHOWN = 20


def to_json(
    result: Backtest,
    source: dict[str, Any],
    candidate: Sequence[Journey],
    baseline: Sequence[Journey] | None = None,
) -> dict[str, Any]:
    """``journeys``: the candidate's per-journey reports (``journeys stats --json`` with
    ``sms_segments``) and ``global_control`` (the lift over the global control group, as
    the table of ``journeys stats`` has it); with a baseline, its reports and the
    ``differences``."""
    report = result.candidate.report(candidate)
    out: dict[str, Any] = {
        "source": source,
        "records": result.records,
        "inputs": result.inputs,
        "users": result.users,
        "rejected": len(result.rejected),
        "sms_segments_outside_journeys": result.candidate.other_segments,
        "journeys": report,
        "global_control": result.candidate.global_control(candidate),
    }
    if baseline is not None and result.baseline is not None:
        out["baseline"] = result.baseline.report(baseline)
        out["differences"] = compare(out["baseline"], report)
    return out


def rejected_lines(rejected: Sequence[Rejected], source: dict[str, Any]) -> list[str]:
    """``file:line: rejected: reason: detail`` (as ``journeys simulate`` says it) or
    ``topic[partition]@offset: ...``; the first :data:`REJECTED_SHOWN`, then how many more."""
    lines = []
    for r in rejected[:REJECTED_SHOWN]:
        if "events" in source:
            at = f"{source['events']}:{r.position}"
        else:
            at = f"{source['topic']}[{r.partition}]@{r.position}"
        why = f"{r.reason}: {r.detail}" if r.detail else r.reason
        lines.append(f"{at}: rejected: {why}")
    if len(rejected) > REJECTED_SHOWN:
        lines.append(f"... and {len(rejected) - REJECTED_SHOWN} more rejected")
    return lines


def summary(result: Backtest, jobs: int) -> str:
    rate = result.inputs / result.seconds if result.seconds > 0 else 0.0
    return (
        f"backtest: {result.inputs:,} inputs of {result.users:,} users from "
        f"{result.partitions} partition(s), --jobs {jobs}, {result.seconds:.1f} s "
        f"({rate:,.0f} inputs/s)"
    )
