"""One sentence per input, trace record and outcome: what ``journeys explain`` prints.

The sentences only word what the records say: a trace record carries the core's reason and
the values it decided on (:mod:`engine.core.trace`); an outcome carries its type and
attributes. Nothing here decides anything.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

import orjson

from engine.core.effects import Outcome
from engine.core.inputs import (
    Forget,
    Inbound,
    Input,
    Receipt,
    Scheduled,
    UserEvent,
    Wake,
    WebhookResult,
)
from engine.core.trace import Trace

Values = Mapping[str, Any]


def value(v: Any) -> str:
    """A value as the user wrote it in a condition: strings quoted, null as ``missing``."""
    if v is None:
        return "missing"
    if isinstance(v, str):
        return repr(v)
    text = orjson.dumps(v).decode()
    return text if len(text) <= 80 else text[:77] + "..."


def span(ms: int) -> str:
    """``2d 3h``, ``45m``, ``12s``: a duration, to the two largest units."""
    if ms < 1000:
        return f"{ms}ms"
    units = (("d", 86_400_000), ("h", 3_600_000), ("m", 60_000), ("s", 1000))
    parts: list[str] = []
    for name, size in units:
        if ms >= size and len(parts) < 2:
            parts.append(f"{ms // size}{name}")
            ms %= size
        elif parts:
            break
    return " ".join(parts)


def operands(values: Values) -> str:
    """``event.amount = 30, user.tier = 'silver'`` (and which parts of an and/or held)."""
    ops = values.get("operands") or {}
    text = ", ".join(f"{k} = {value(v)}" for k, v in ops.items()) or "no data read"
    parts = values.get("parts")
    if parts:
        text += "; " + ", ".join(f"`{p}` {'true' if ok else 'false'}" for p, ok in parts.items())
    return text


# --------------------------------------------------------------------------- inputs


def describe_input(inp: Input, messages: Mapping[str, str] | None = None) -> dict[str, Any]:
    """{"kind", "name", "text"} of an input; ``messages`` names message ids (``node [rcs]``)."""
    match inp:
        case UserEvent():
            props = f" {value(inp.properties)}" if inp.properties else ""
            return {
                "kind": "event",
                "name": inp.name,
                "text": f"event {inp.name} ({inp.event_id}){props}",
            }
        case Receipt():
            about = f"the latest send of {inp.node}"
            if inp.message_id is not None:
                named = (messages or {}).get(inp.message_id)
                about = f"{named} ({inp.message_id})" if named else inp.message_id
            why = f" ({inp.reason})" if inp.reason else ""
            return {
                "kind": "receipt",
                "name": inp.status,
                "text": f"receipt {inp.status}{why} for {about}",
            }
        case Inbound():
            if inp.postback is not None:
                return {"kind": "inbound", "name": "tap", "text": f"tap {value(inp.postback)}"}
            return {"kind": "inbound", "name": "text", "text": f"text {value(inp.text)}"}
        case Wake():
            return {"kind": "timer", "name": "wake", "text": "timer"}
        case Forget():
            return {"kind": "forget", "name": "forget", "text": "forget (journeys forget)"}
        case WebhookResult():
            code = f" {inp.code}" if inp.code is not None else ""
            why = f" ({inp.reason})" if inp.reason else ""
            text = f"webhook result {inp.status}{code}{why} for call {inp.action_id}"
            return {"kind": "webhook", "name": inp.status, "text": text}
        case Scheduled():
            text = f"scheduled entry {inp.journey_id}, occurrence {inp.occurrence}"
            return {"kind": "timer", "name": "scheduled", "text": text}


# --------------------------------------------------------------------------- trace records

_SEND_NOT: dict[str, Callable[[Values], str]] = {
    "opted_out": lambda v: "the user opted out (STOP)",
    "missing_phone": lambda v: "no phone number in the profile",
    "invalid_phone": lambda v: f"the phone number {v.get('phone')} is not E.164",
    "quiet_hours": lambda v: f"quiet hours {_quiet(v)}, and the journey skips (action: skip)",
    "frequency_cap": lambda v: (
        f"frequency cap reached: {v.get('count')} of at most {v.get('max')} sends in the "
        f"last {v.get('per')} (since {v.get('since')})"
    ),
    "template": lambda v: f"its template failed: {v.get('detail')}",
}


def _quiet(v: Values) -> str:
    return f"{v.get('quiet_hours')} ({v.get('timezone')}, local time {v.get('local_time')})"


def _send(t: Trace) -> str:
    v = t.values
    channel = v.get("channel", "")
    what = "the SMS fallback [sms]" if v.get("fallback_of") else f"[{channel}]"
    if t.reason == "sent":
        if v.get("purpose") == "help":
            return "sent the answer to HELP [sms]"
        return f"sent {what} (message {v.get('message_id')})"
    if t.reason == "deferred":
        return f"{what} deferred by quiet hours {_quiet(v)}: tried again at {v.get('until')}"
    why = _SEND_NOT.get(t.reason)
    return f"{what} NOT sent: {why(v) if why else t.reason}"


def _entry(t: Trace) -> str:
    v = t.values
    match t.reason:
        case "entered" if v.get("occurrence"):
            return f"entered (scheduled occurrence {v.get('occurrence')})"
        case "entered":
            return f"entered (entry event {v.get('event')})"
        case "audience_false":
            return (
                f"NOT entered at occurrence {v.get('occurrence')}: the audience "
                f"`{v.get('audience')}` is false"
            )
        case "occurrence_decided":
            return f"scheduled tick for occurrence {v.get('occurrence')}: already decided"
        case "occurrence_not_due":
            return (
                f"scheduled tick for occurrence {v.get('occurrence')}: the user was not "
                "known at that instant"
            )
        case "when_false":
            return f"NOT entered: the entry condition `{v.get('when')}` is false ({operands(v)})"
        case "reentry_never":
            return f"NOT entered: re-entry is `never` and the user entered {v.get('entries')}x"
        case "already_in":
            if v.get("same_event"):
                return f"NOT entered: event {v['same_event']} already entered this run"
            return f"NOT entered: already in it (at {t.node_id}; re-entry is `after_exit`)"
        case "cooldown":
            left = span(int(v.get("time_left_ms") or 0))
            return (
                f"NOT entered: cooldown {v.get('cooldown')} since the last entry at "
                f"{v.get('last_entry')}: {left} left (until {v.get('until')})"
            )
        case "max_entries" if v.get("per"):
            return (
                f"NOT entered: max_entries {v.get('max_entries')} per {v.get('per')} reached "
                f"({v.get('entries')} entries since {v.get('since')}): next entry allowed "
                f"from {v.get('until')}"
            )
        case "max_entries":
            return (
                f"NOT entered: max_entries {v.get('max_entries')} reached "
                f"({v.get('entries')} entries, ever)"
            )
    return f"entry: {t.reason}"


def _profile(t: Trace) -> str:
    v = t.values
    keys = ", ".join(v.get("keys") or ())
    by = f" by event {v['event']}" if v.get("event") else ""
    match t.reason:
        case "updated":
            return f"profile updated{by}: {keys}"
        case "unchanged":
            return f"profile unchanged{by} (the values were already there)"
        case "refused":
            return f"profile update refused ({v.get('limit')}): {v.get('detail')}"
    return f"profile {t.reason}"


def _message(t: Trace) -> str:
    v = t.values
    ch, receipt = v.get("channel", ""), v.get("receipt")
    why = f" ({v['receipt_reason']})" if v.get("receipt_reason") else ""
    match t.reason:
        case "delivered":
            return f"delivered [{ch}]"
        case "read":
            return f"read [{ch}]"
        case "undeliverable":
            if receipt == "not_capable":
                return "not RCS-capable (receipt not_capable): falls back to SMS"
            return f"RCS {receipt}{why}: falls back to SMS"
        case "undeliverable_no_sms":
            if receipt == "not_capable":
                return (
                    f"not RCS-capable (receipt not_capable), no SMS fallback: NOT received [{ch}]"
                )
            return f"{receipt}{why}: NOT received [{ch}] (no SMS fallback)"
        case "expired":
            return f"RCS {receipt}{why} undelivered: falls back to SMS"
        case "expired_no_sms":
            return f"{receipt}{why} undelivered: NOT received [{ch}] (no SMS fallback)"
        case "timer":
            return _message_timer(v)
        case "deferred":
            return "the SMS fallback waits for quiet hours to end"
        case "sms_dropped":
            return "SMS fallback dropped: the run ended by what the user did"
        case "unknown" | "unknown_no_sms":
            return f"the gateway can't tell whether the provider took it{why}: possibly delivered"
        case "accepted":
            return "the provider took it only now (held back by the send rate): window restarts"
    return f"message {t.reason}: {v.get('from')} -> {v.get('to')}"


def _message_timer(v: Values) -> str:
    before, after = v.get("from"), v.get("to")
    if before in ("sent", "unknown"):
        return "fallback window ended with no delivery: revoking the RCS message"
    if after == "fell_back":
        return f"no delivery verdict after the revoke ({before}): falls back to SMS"
    if before == "fallback_deferred":
        return "quiet hours over: the SMS fallback goes now"
    return f"message timer: {before} -> {after}"


def _wait_for(t: Trace) -> str:
    v = t.values
    match t.reason:
        case "waiting":
            paths = "; ".join(v.get("paths") or ())
            timeout = f"; times out at {v['timeout_at']}" if v.get("timeout_at") else ""
            return f"waits for: {paths}{timeout}"
        case "path":
            return f"took the path {v.get('via')} -> {v.get('next')}"
        case "timeout":
            nxt = v.get("next")
            return f"timed out -> {nxt}" if nxt else "timed out: leaves the journey"
    return f"wait_for {t.reason}"


def _wait(t: Trace) -> str:
    v = t.values
    match t.reason:
        case "until":
            return f"waits until {v.get('until')}"
        case "over":
            return f"the wait's end {v.get('until')} has passed: goes on -> {v.get('next')}"
        case "ended":
            return f"wait over -> {v.get('next')}"
    return f"wait {t.reason}"


def _branch(t: Trace) -> str:
    v = t.values
    if t.reason == "case":
        return f"branch: `{v.get('when')}` is true ({operands(v)}) -> {v.get('next')}"
    cases = v.get("cases") or {}
    why = "; ".join(f"`{w}` false ({operands(c)})" for w, c in cases.items())
    return f"branch: no case is true ({why}) -> default {v.get('next')}"


def _inbound(t: Trace) -> str:
    v = t.values
    match t.reason:
        case "click":
            return f"tapped {value(v.get('postback'))}"
        case "reply":
            return f"replied {value(v.get('text'))}"
    return "a tap or reply with no message to answer: ignored"


_KEYWORDS = {
    "opt_out": "opted out (STOP): no further journey messages",
    "opt_in": "opted back in (START)",
    "help": "asked for HELP",
}

TRACE_TEXT: dict[str, Callable[[Trace], str]] = {
    "input": lambda t: (
        f"no journey starts on, waits for or exits on event {t.values.get('event')}: ignored"
        if t.reason == "no_journey"
        else f"{t.values.get('event_id')} was handled before: ignored (a retry)"
    ),
    "entry": _entry,
    "node": lambda t: (
        f"-> node {t.node_id} ({t.values.get('type')})"
        + (f" via {t.values['via']}" if t.values.get("via") else "")
    ),
    "wait": _wait,
    "wait_for": _wait_for,
    "branch": _branch,
    "split": lambda t: f"split: variant {t.values.get('variant')} -> {t.values.get('next')}",
    "exit": lambda t: f"left the journey ({t.reason})",
    "goal": lambda t: f"goal reached (event {t.values.get('event')})",
    "migrate": lambda t: (
        f"moved from version {t.values.get('from_version')} node {t.values.get('from_node')}"
    ),
    "send": _send,
    "fallback": lambda t: (
        f"RCS fallback timer: the SMS goes at {t.values.get('until')} unless delivered before"
    ),
    "message": _message,
    "keyword": lambda t: _KEYWORDS.get(t.reason, t.reason),
    "webhook": lambda t: (
        f"webhook {t.values.get('method')} {t.values.get('url')}: asked the gateway"
        if t.reason == "requested"
        else f"webhook answered {t.values.get('status')} -> {t.values.get('next')}"
        if t.reason == "called"
        else "a webhook result for no waiting run: ignored"
        if t.reason == "result_ignored"
        else f"webhook failed ({t.reason}) -> {t.values.get('next')}"
    ),
    "inbound": _inbound,
    "profile": _profile,
}


def trace_text(t: Trace) -> str:
    fn = TRACE_TEXT.get(t.kind)
    return fn(t) if fn is not None else f"{t.kind} {t.reason} {value(t.values)}"


# --------------------------------------------------------------------------- outcomes


def outcome_text(o: Outcome) -> str:
    """An outcome in words (users without trace records: no reasons beyond the outcome's)."""
    a, ch = o.attributes, f" [{o.channel}]" if o.channel else ""
    why = f": {a['reason']}" if "reason" in a else ""
    match o.type:
        case "journey_entered":
            return f"entered (entry event {a.get('event')})"
        case "node_entered":
            extra = "".join(f" {k} {a[k]}" for k in ("variant", "via") if a.get(k))
            return f"-> node {o.node_id}{extra}"
        case "message_sent":
            if a.get("purpose") == "help":
                return "sent the answer to HELP [sms]"
            fallback = f" (SMS fallback of {a['fallback_of']})" if a.get("fallback_of") else ""
            return f"sent{ch}{fallback}"
        case "message_suppressed":
            return f"NOT sent{ch}{why}"
        case "message_deferred":
            return f"deferred{ch}{why} until {a.get('until')}"
        case "message_failed":
            return f"failed{ch}{why}"
        case "fallback_triggered":
            return f"RCS not received{why}: falls back to SMS"
        case "message_clicked":
            return f"tapped {value(a.get('postback'))}"
        case "message_replied":
            return f"replied {value(a.get('text'))}"
        case "journey_exited":
            return f"left the journey{why}"
        case "goal_converted":
            return f"goal reached (event {a.get('event')})"
        case "profile_updated":
            return f"profile updated: {', '.join(a.get('keys') or ())}"
    return f"{o.type.replace('_', ' ')}{ch}{why}"
