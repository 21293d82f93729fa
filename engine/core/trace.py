"""Trace records: why the core decided what it did for one user, said by the core itself.

``journeys explain`` answers "why did this user get that, and why not this?" from these
records; nothing is reconstructed after the fact. A handler records a decision where it
takes it, in one line, through :meth:`engine.core.context.Step.trace`::

    step.trace("entry", "cooldown", journey, time_left_ms=left, until=format_ts(end))

Tracing is off by default. :class:`~engine.core.config.EngineConfig` turns it on for named
users (``trace_users``) and for a share of all users (``trace_sample``), chosen by a hash of
the user id: the same users on every worker and in every replay, no randomness. When it is
off, ``Step.trace`` returns at once: values passed as zero-argument callables (``more=``
too) are never computed.

A record is an effect like the others (:class:`Trace`), but only an adapter that keeps
traces looks at it: tracing never changes the state or any other effect
(``tests/property/test_prop_trace.py``).

Kinds and reasons (``docs/journeys.md``, "Why did this user get that?"):

* ``input``: ``no_journey`` (no journey names the event), ``duplicate`` (id seen before);
* ``entry``: ``entered``, or why not: ``when_false`` (with the condition's operands),
  ``reentry_never``, ``already_in`` (re-entry after exit while a run is in flight, or the
  same event again), ``cooldown`` (with the time left), ``max_entries`` (the count, the
  limit, its window and when the next entry is allowed: :mod:`.entry_limits`);
* ``profile``: ``updated``, ``unchanged``, ``refused`` (:mod:`.profile_updates`);
* ``node``: ``entered``; ``wait``: ``until``, ``over``, ``ended``; ``wait_for``:
  ``waiting``, ``path``, ``timeout``; ``branch``: ``case``, ``default``; ``split``:
  ``variant``; ``exit``: the exit reason; ``goal``: ``converted``; ``migrate``:
  ``migrated``;
* ``send``: ``sent``, or why not: ``opted_out``, ``missing_phone``, ``invalid_phone``,
  ``quiet_hours``, ``deferred`` (quiet hours, with ``until``), ``frequency_cap`` (with the
  count and the window), ``template``;
* ``fallback``: ``timer_set`` (the RCS window, with ``until``); ``message``: a delivery
  event of the fallback table (``delivered``, ``read``, ``undeliverable`` for a failed or
  not-RCS-capable receipt, ``expired``, ``timer`` for a window or grace that ended, ...),
  with the status before and after and the receipt;
* ``keyword``: ``opt_out``, ``opt_in``, ``help``; ``inbound``: ``click``, ``reply``,
  ``no_message``.
"""

from __future__ import annotations

import ast
import re
import warnings
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any
from zoneinfo import ZoneInfo

from engine.core.config import EngineConfig
from engine.core.fastinit import fast_init
from engine.core.ids import bucket, derive_id
from engine.core.inputs import Inbound, Input, Receipt, UserEvent, Wake
from engine.core.state import Instance, Message
from engine.durations import format_ts
from engine.errors import ExpressionError
from engine.journey.expressions import compile_expression
from engine.journey.model import BranchNode, Entry, FrequencyCap, Journey, QuietHours, WaitPath


@fast_init
@dataclass(frozen=True, slots=True)
class Trace:
    """One decision of the core about one user: ``kind`` (what was decided), ``reason``
    (the verdict), ``values`` (what it was decided on). ``trace_id`` is deterministic (a
    replay writes the same ids): readers dedupe on it."""

    trace_id: str
    ts: int
    user_id: str
    kind: str
    reason: str
    journey_id: str | None = None
    journey_version: int | None = None
    instance_id: str | None = None
    node_id: str | None = None
    values: dict[str, Any] = field(default_factory=dict)


def traced(config: EngineConfig, user_id: str) -> bool:
    """Is ``user_id`` traced under ``config``? Named, or in the sample (a hash of the id)."""
    if user_id in config.trace_users:
        return True
    return config.trace_sample > 0 and bucket("trace", user_id) < config.trace_sample


def record(
    user_id: str,
    now: int,
    seq: object,
    kind: str,
    reason: str,
    where: Instance | Message | Journey | None,
    node: str | None,
    values: Mapping[str, Any],
    more: Callable[[], Mapping[str, Any]] | None,
) -> Trace:
    """The record of one decision. ``seq`` (the input and the effect's position in the
    step) keeps apart the ids of two records alike in one step, or in two steps at once."""
    vals = {k: v() if callable(v) else v for k, v in values.items()}
    if more is not None:
        vals.update(more())
    journey_id: str | None = None
    version: int | None = None
    instance_id: str | None = None
    if isinstance(where, Journey):
        journey_id, version = where.id, where.version
    elif where is not None:
        journey_id, version = where.journey_id, where.version
        node = node if node is not None else where.node
        if isinstance(where, Instance):
            instance_id = where.id
        else:
            instance_id = where.instance_id
            vals.setdefault("message_id", where.id)
    tid = derive_id("t", user_id, now, seq, kind, reason, journey_id, instance_id, node)
    return Trace(tid, now, user_id, kind, reason, journey_id, version, instance_id, node, vals)


def input_key(inp: Input | None) -> str:
    """What tells an input from another at the same time (a replay of it: the same)."""
    match inp:
        case UserEvent():
            return f"event {inp.event_id}"
        case Receipt():
            return f"receipt {inp.status} {inp.message_id or inp.node} {inp.reason}"
        case Inbound():
            return f"inbound {inp.event_id} {inp.message_id} {inp.postback} {inp.text}"
        case Wake():
            return f"wake {inp.token}"
    return ""


def ignored(config: EngineConfig, inp: Input, now: int) -> tuple[Trace, ...]:
    """The record of an input the engine drops untouched: an event no journey names (a
    stale wake-up is the engine's own business, not the user's: no record)."""
    if not isinstance(inp, UserEvent) or not traced(config, inp.user_id):
        return ()
    values = {"event": inp.name, "event_id": inp.event_id}
    seq = (input_key(inp), 0)
    return (record(inp.user_id, now, seq, "input", "no_journey", None, None, values, None),)


def cooldown_values(now: int, entry: Entry, last_entry: int) -> dict[str, Any]:
    """A cooldown refusal: the cooldown, the last entry, and the time left."""
    end = last_entry + entry.cooldown_ms
    return {
        "cooldown": entry.cooldown,
        "last_entry": format_ts(last_entry),
        "until": format_ts(end),
        "time_left_ms": end - now,
    }


def cap_values(cap: FrequencyCap, count: int, now: int) -> dict[str, Any]:
    """A frequency cap reached: the sends counted, the cap and its window."""
    return {"count": count, "max": cap.max, "per": cap.per, "since": format_ts(now - cap.per_ms)}


def quiet_values(qh: QuietHours, tz: ZoneInfo, now: int, end: int | None) -> dict[str, Any]:
    """Quiet hours: the window, the user's local time, and when it ends."""
    local = datetime.fromtimestamp(now / 1000, UTC).astimezone(tz)
    return {
        "quiet_hours": f"{qh.from_}-{qh.to}",
        "timezone": tz.key,
        "local_time": local.strftime("%a %H:%M"),
        "until": None if end is None else format_ts(end),
    }


def transition_values(msg: Message, to: str, rec: Receipt | None) -> dict[str, Any]:
    """A message's move in the fallback table: its channel, the status before and after,
    and the receipt that moved it (none: a timer, or the core itself)."""
    values: dict[str, Any] = {"channel": msg.channel, "from": msg.status, "to": to}
    if rec is not None:
        values["receipt"] = rec.status
        if rec.reason:
            values["receipt_reason"] = rec.reason
    return values


# --------------------------------------------------------------------------- conditions

_PATH = re.compile(r"\b(?:event|entry|user|journey)(?:\s*\.\s*\w+|\[[^\[\]]*\])*")
_STRING = re.compile(r"'(?:[^'\\]|\\.)*'|\"(?:[^\"\\]|\\.)*\"")


def condition_values(source: str, scope: Mapping[str, Any]) -> dict[str, Any]:
    """What a condition was decided on: ``operands``, the value of every data path it reads
    (``{"event.amount": 30, "user.tier": "silver"}``), and, when it is an ``and`` / ``or``
    of parts, which ``parts`` were true. Evaluated here, with the journey's own evaluator,
    on the scope the condition saw."""
    out: dict[str, Any] = {"operands": _operands(source, scope)}
    parts = _parts(source)
    if len(parts) > 1:
        out["parts"] = {p: _test(p, scope) for p in parts}
    return out


def cases_values(node: BranchNode, scope: Mapping[str, Any]) -> dict[str, Any]:
    """A branch that took its default: every case was false, on these values."""
    return {"cases": {case.when: condition_values(case.when, scope) for case in node.cases}}


def waiting_values(paths: Sequence[WaitPath], timeout_at: int | None) -> dict[str, Any]:
    """A ``wait_for``: the ways out, and when it times out."""
    return {
        "paths": [path_label(p) for p in paths],
        "timeout_at": None if timeout_at is None else format_ts(timeout_at),
    }


def path_label(path: WaitPath) -> str:
    """``event paid``, ``click yes of ask``, ``read ask``, with its ``when`` and next node."""
    label = f"{path.kind} {getattr(path, path.kind)}"
    if path.kind in ("click", "reply") and path.of is not None:
        label += f" of {path.of}"
    if path.when is not None:
        label += f" when {path.when}"
    return f"{label} -> {path.next}"


def _operands(source: str, scope: Mapping[str, Any]) -> dict[str, Any]:
    text = _STRING.sub(lambda m: " " * len(m[0]), source)  # no paths inside strings
    found: dict[str, Any] = {}
    for m in _PATH.finditer(text):
        path = re.sub(r"\s+", "", source[m.start() : m.end()])
        if path in found or ("." not in path and "[" not in path):
            continue
        try:
            found[path] = compile_expression(path).evaluate(scope)
        except ExpressionError:
            continue
    return found


def _parts(source: str) -> list[str]:
    """The top-level parts of an ``and`` / ``or`` (none when it is not one, or when the
    source uses the ``&&`` / ``||`` spellings Python does not parse)."""
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            tree = ast.parse(source.strip(), mode="eval")
    except (SyntaxError, ValueError, RecursionError, MemoryError):
        return []
    body = tree.body
    if not isinstance(body, ast.BoolOp):
        return []
    segments = [ast.get_source_segment(source.strip(), v) for v in body.values]
    return [s for s in segments if s]


def _test(part: str, scope: Mapping[str, Any]) -> bool:
    try:
        return compile_expression(part).test(scope)
    except ExpressionError:
        return False


def mask_phone(phone: object) -> str:
    """A phone number as a trace shows it: the shape, not the number (``+1415*****23``)."""
    text = str(phone)
    if len(text) <= 6:
        return "*" * len(text)
    return text[:5] + "*" * (len(text) - 7) + text[-2:]
