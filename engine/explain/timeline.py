"""One user's story, as data: the inputs, what happened at each moment and why, the journeys
they did not enter and the messages they did not get, and where they are now.

Built from records only (pure: no Kafka, no simulator): the user's inputs, the outcomes and
the core's trace records (:mod:`engine.core.trace`), and their state. The reasons are the
core's own, from its trace records; a user without trace records (tracing was off for them)
gets the outcomes' story, and a note that says so.

Moments are grouped by time: the inputs at that time, then what the core did at that time.
A moment with no input of its own is a timer that fired (a wait that ended, a fallback
window, quiet hours that ended). A moment with trace records shows them (every outcome has a
trace record beside it); one without shows the outcomes.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any

from engine.core.effects import Outcome
from engine.core.inputs import Inbound, Input, Receipt
from engine.core.state import UserState
from engine.core.trace import Trace
from engine.durations import format_ts
from engine.explain.sentences import describe_input, outcome_text, trace_text
from engine.journey.model import Journey

NOT_SENT_OUTCOMES = ("message_suppressed", "message_failed", "fallback_triggered")
# Trace records of a message that did not arrive over its channel (kind "message").
NOT_ARRIVED = ("undeliverable", "expired", "undeliverable_no_sms", "expired_no_sms")


@dataclass(frozen=True)
class Records:
    """What a source found for one user (any order within a kind: sorted here)."""

    user_id: str
    inputs: Sequence[Input]
    outcomes: Sequence[Outcome]
    traces: Sequence[Trace]
    state: UserState | None
    journeys: Sequence[Journey] = ()  # known definitions: node types, journeys not entered


def explain(
    records: Records,
    *,
    source: str,
    journey: str | None = None,
    notes: Iterable[str] = (),
) -> dict[str, Any]:
    """The report (JSON-able) that ``journeys explain`` prints and the dashboard shows."""
    traces = [t for t in records.traces if _about(t.journey_id, journey)]
    outcomes = [o for o in records.outcomes if _about(o.journey_id, journey)]
    all_notes = list(notes)
    if not records.traces:
        all_notes.append(
            f"no trace records for {records.user_id}: tracing was off for this user, so "
            "only outcomes are shown and the reasons behind them (journeys not entered, "
            "conditions, caps) are unknown. Trace the user from now on: "
            f"JOURNEYS_TRACE_USERS={records.user_id} on the engine worker (journeys run)"
        )
    timeline = _timeline(records.inputs, outcomes, traces)
    if journey is not None:  # only the moments something happened in that journey
        timeline = [m for m in timeline if m["steps"]]
    return {
        "user_id": records.user_id,
        "source": source,
        "journey": journey,
        "traced": bool(records.traces),
        "timeline": timeline,
        "not_entered": _not_entered(records, traces, outcomes, journey),
        "not_received": _not_received(traces, outcomes),
        "now": _now(records, journey, traces, outcomes),
        "notes": all_notes,
    }


def _about(journey_id: str | None, wanted: str | None) -> bool:
    return wanted is None or journey_id is None or journey_id == wanted


def _where(journey_id: str | None, version: int | None, node: str | None) -> dict[str, Any]:
    return {"journey_id": journey_id, "journey_version": version, "node_id": node}


_RECEIPT_OUTCOMES = frozenset(
    {"message_delivered", "message_read", "message_failed", "message_unknown",
     "fallback_triggered"}
)  # fmt: skip
_INBOUND_STEPS = frozenset(
    {"keyword", "inbound", "message_clicked", "message_replied", "user_opted_out",
     "user_opted_in", "help_requested"}
)  # fmt: skip


def _trace_step(t: Trace) -> dict[str, Any]:
    return {
        "source": "trace",
        "kind": t.kind,
        "reason": t.reason,
        **_where(t.journey_id, t.journey_version, t.node_id),
        "instance_id": t.instance_id,
        "text": trace_text(t),
        "values": t.values,
    }


def _outcome_step(o: Outcome) -> dict[str, Any]:
    return {
        "source": "outcome",
        "kind": o.type,
        "reason": o.attributes.get("reason"),
        **_where(o.journey_id, o.journey_version, o.node_id),
        "instance_id": o.instance_id,
        "message_id": o.message_id,
        "text": outcome_text(o),
        "values": o.attributes,
    }


# --------------------------------------------------------------------------- the timeline


def _timeline(
    inputs: Sequence[Input], outcomes: Sequence[Outcome], traces: Sequence[Trace]
) -> list[dict[str, Any]]:
    at: dict[int, dict[str, list[Any]]] = defaultdict(
        lambda: {"inputs": [], "traces": [], "outcomes": []}
    )
    for inp in inputs:
        at[_handled_at(inp, outcomes, traces)]["inputs"].append(inp)
    for t in traces:
        at[t.ts]["traces"].append(t)
    for o in outcomes:
        at[o.ts]["outcomes"].append(o)
    names = _message_names(outcomes, traces)
    moments = []
    for ts in sorted(at):
        group = at[ts]
        steps = (
            [_trace_step(t) for t in group["traces"]]
            if group["traces"]
            else [_outcome_step(o) for o in group["outcomes"]]
        )
        shown = [
            {
                "ts": format_ts(i.ts),
                **({"handled_at": format_ts(ts)} if i.ts != ts else {}),
                **describe_input(i, names),
                "before_step": _answered_at(i, steps),
            }
            for i in group["inputs"]
        ]
        moments.append({"ts": format_ts(ts), "inputs": shown, "steps": steps})
    return moments


def _handled_at(inp: Input, outcomes: Sequence[Outcome], traces: Sequence[Trace]) -> int:
    """When the core handled an input: its ``ts``, or for a receipt that came in after the
    user's clock had moved past it (the core handles it at the clock), the time of its
    first record."""
    if not isinstance(inp, Receipt) or inp.message_id is None:
        return inp.ts
    times = [
        t.ts
        for t in traces
        if t.kind == "message"
        and t.ts >= inp.ts
        and t.values.get("message_id") == inp.message_id
        and t.values.get("receipt") == inp.status
    ]
    times += [
        o.ts
        for o in outcomes
        if o.type in _RECEIPT_OUTCOMES and o.ts >= inp.ts and o.message_id == inp.message_id
    ]
    return min(times, default=inp.ts)


def _answered_at(inp: Input, steps: list[dict[str, Any]]) -> int:
    """Where, among the steps of its moment, an input's own steps start: a receipt before
    the first step about its message, a tap or a reply before the first step about an
    inbound message; anything else (events, timers) first."""
    for n, step in enumerate(steps):
        match inp:
            case Receipt() if inp.message_id is not None:
                about = step["values"] if step["source"] == "trace" else step
                moves = step["kind"] == "message" or step["kind"] in _RECEIPT_OUTCOMES
                if moves and about.get("message_id") == inp.message_id:
                    return n
            case Inbound():
                if step["kind"] in _INBOUND_STEPS:
                    return n
    return 0


def _message_names(outcomes: Sequence[Outcome], traces: Sequence[Trace]) -> dict[str, str]:
    """message id -> ``node [channel]``, for the receipts that name a message by its id."""
    names = {
        o.message_id: f"{o.node_id} [{o.channel}]"
        for o in outcomes
        if o.type == "message_sent" and o.message_id and o.node_id
    }
    for t in traces:
        mid = t.values.get("message_id")
        if t.kind == "send" and t.reason == "sent" and isinstance(mid, str):
            names[mid] = f"{t.node_id} [{t.values.get('channel')}]"
    return names


# --------------------------------------------------------------------------- summaries


def _not_entered(
    records: Records, traces: Sequence[Trace], outcomes: Sequence[Outcome], journey: str | None
) -> list[dict[str, Any]]:
    """Every refusal the core traced, by journey and reason; and, for known journeys the
    user never entered nor was refused, whether their entry event came at all."""
    found: dict[tuple[str | None, int | None, str], dict[str, Any]] = {}
    for t in traces:
        if t.kind != "entry" or t.reason == "entered":
            continue
        key = (t.journey_id, t.journey_version, t.reason)
        row = found.get(key)
        if row is None:
            row = found[key] = {
                **_where(t.journey_id, t.journey_version, None),
                "reason": t.reason,
                "count": 0,
                "first": format_ts(t.ts),
            }
        row.update(count=row["count"] + 1, last=format_ts(t.ts))
        row.update(text=trace_text(t), values=t.values)
    rows = list(found.values())
    touched = {t.journey_id for t in traces if t.kind == "entry"}
    touched |= {o.journey_id for o in outcomes if o.type == "journey_entered"}
    events = {getattr(i, "name", None) for i in records.inputs}
    for j in _latest(records.journeys):
        if j.id in touched or not _about(j.id, journey):
            continue
        if j.entry.schedule is not None:  # scheduled audience entry: no event to wait for
            text = (
                "a scheduled entry: no occurrence entered the user (not known then, or "
                "the audience was false: the trace records say which)"
            )
            row = {**_where(j.id, j.version, None), "reason": "no_occurrence", "count": 0}
            rows.append({**row, "text": text})
            continue
        came = j.entry.event in events
        if came and records.traces:
            continue  # traced, the event came and no entry record: not this user's (a filter)
        text = (
            f"its entry event {j.entry.event} came, but without trace records the reason is unknown"
            if came
            else f"its entry event {j.entry.event} never came"
        )
        reason = "unknown" if came else "no_entry_event"
        rows.append({**_where(j.id, j.version, None), "reason": reason, "count": 0, "text": text})
    return rows


def _latest(journeys: Sequence[Journey]) -> list[Journey]:
    newest: dict[str, Journey] = {}
    for j in journeys:
        if j.id not in newest or j.version > newest[j.id].version:
            newest[j.id] = j
    return [newest[k] for k in sorted(newest)]


def _not_received(traces: Sequence[Trace], outcomes: Sequence[Outcome]) -> list[dict[str, Any]]:
    """Sends the core held back, and messages that did not arrive over their channel, with
    what became of them (a deferral tried again, an SMS fallback sent or held back)."""
    rows: list[dict[str, Any]] = []
    if traces:
        sends = [t for t in traces if t.kind == "send"]
        for t in traces:
            if t.kind == "send" and t.reason != "sent":
                then = _deferred_then(t, sends) if t.reason == "deferred" else None
                if t.reason == "deferred" and then is not None and then.reason == "sent":
                    continue  # it went out after quiet hours
                rows.append(_row(t, then))
            elif t.kind == "message" and t.reason in NOT_ARRIVED:
                sms = next(
                    (
                        s
                        for s in sends
                        if s.ts >= t.ts
                        and s.values.get("fallback_of") == t.values.get("message_id")
                    ),
                    None,
                )
                rows.append(_row(t, sms))
        return rows
    for o in outcomes:
        if o.type in NOT_SENT_OUTCOMES or (
            o.type == "message_deferred" and not _sent_later(o, outcomes)
        ):
            rows.append(
                {
                    "ts": format_ts(o.ts),
                    **_where(o.journey_id, o.journey_version, o.node_id),
                    "channel": o.channel,
                    "reason": o.attributes.get("reason"),
                    "text": outcome_text(o),
                }
            )
    return rows


def _row(t: Trace, then: Trace | None) -> dict[str, Any]:
    row = {
        "ts": format_ts(t.ts),
        **_where(t.journey_id, t.journey_version, t.node_id),
        "channel": t.values.get("channel"),
        "reason": t.reason,
        "text": trace_text(t),
        "values": t.values,
    }
    if then is not None:
        row["then"] = f"{format_ts(then.ts)}: {trace_text(then)}"
    return row


def _deferred_then(t: Trace, sends: Sequence[Trace]) -> Trace | None:
    """The next verdict on a deferred send (same run, node and fallback), if any."""
    return next(
        (
            s
            for s in sends
            if s.ts > t.ts
            and (s.instance_id, s.node_id) == (t.instance_id, t.node_id)
            and s.values.get("fallback_of") == t.values.get("fallback_of")
        ),
        None,
    )


def _sent_later(o: Outcome, outcomes: Sequence[Outcome]) -> bool:
    return any(
        x.type == "message_sent"
        and x.ts > o.ts
        and (x.instance_id, x.node_id) == (o.instance_id, o.node_id)
        for x in outcomes
    )


# --------------------------------------------------------------------------- now

_TIMER_OF_NODE = {
    "wait": "the wait ends",
    "wait_for": "the wait times out",
    "send": "the send deferred by quiet hours is tried again",
    "webhook": "the webhook call is given up (no answer from the gateway)",
}
_TIMER_OF_MESSAGE = {
    "sent": "the RCS fallback window ends (SMS unless delivered)",
    "unknown": "the RCS fallback window ends",
    "revoking": "the revoke's grace ends (SMS unless delivered)",
    "revoke_failed": "the revoke's grace ends",
    "unknown_revoking": "the revoke's grace ends",
    "fallback_deferred": "the SMS fallback deferred by quiet hours goes",
}


def _now(
    records: Records,
    journey: str | None,
    traces: Sequence[Trace],
    outcomes: Sequence[Outcome],
) -> dict[str, Any]:
    state = records.state
    if state is None:
        return {"state": False, "runs": [], "timers": [], "next_timer": None}
    versions = {(j.id, j.version): j for j in records.journeys}
    since = _node_since(traces, outcomes)
    runs, timers = [], []
    for inst in sorted(state.instances.values(), key=lambda i: (i.entered_at, i.id)):
        if not _about(inst.journey_id, journey):
            continue
        defined = versions.get((inst.journey_id, inst.version))
        node = defined.nodes.get(inst.node) if defined is not None else None
        kind = node.type if node is not None else None
        at = since.get((inst.id, inst.node))
        runs.append(
            {
                **_where(inst.journey_id, inst.version, inst.node),
                "instance_id": inst.id,
                "node_type": kind,
                "entered_at": format_ts(inst.entered_at),
                "since": None if at is None else format_ts(at),
                "until": None if inst.wake_at is None else format_ts(inst.wake_at),
            }
        )
        if inst.wake_at is not None:
            what = _TIMER_OF_NODE.get(kind or "", "the node's timer fires")
            timers.append((inst.wake_at, inst.journey_id, inst.version, inst.node, what))
    for msg in state.messages.values():
        if msg.timer_at is not None and _about(msg.journey_id, journey):
            what = _TIMER_OF_MESSAGE.get(msg.status, f"the message's timer ({msg.status})")
            timers.append((msg.timer_at, msg.journey_id, msg.version, msg.node, what))
    timers.sort()
    rows = [
        {"at": format_ts(at), **_where(jid, ver, node), "what": what}
        for at, jid, ver, node, what in timers
    ]
    return {
        "state": True,
        "opted_out": state.opted_out,
        "clock": format_ts(state.clock) if state.clock else None,
        "runs": runs,
        "timers": rows,
        "next_timer": rows[0] if rows else None,
    }


def _node_since(traces: Sequence[Trace], outcomes: Sequence[Outcome]) -> dict[tuple[str, str], int]:
    """(instance, node) -> when the run last entered that node."""
    since: dict[tuple[str, str], int] = {}
    for t in traces:
        if t.kind in ("node", "migrate") and t.instance_id and t.node_id:
            since[(t.instance_id, t.node_id)] = t.ts
    for o in outcomes:
        if o.type in ("node_entered", "instance_migrated") and o.instance_id and o.node_id:
            since[(o.instance_id, o.node_id)] = max(o.ts, since.get((o.instance_id, o.node_id), 0))
    return since
