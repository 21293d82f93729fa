"""Node handlers: what happens when a user enters a node, and when its timer fires.

Both are lookup tables keyed by node type (``ENTER``, ``ON_TIMER``), not if-chains. An
``ENTER`` handler returns the next node to enter right away, or None when the user
stays (waiting, deferred, or gone).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from engine.core.context import Step
from engine.core.fallback import drop_sms
from engine.core.ids import bucket
from engine.core.localtime import WEEKDAY_INDEX, next_local_time, parse_instant, zone
from engine.core.profile_updates import enter_update_profile
from engine.core.send_time import best_time_end
from engine.core.sends import send_node
from engine.core.state import Instance, JourneyHistory
from engine.core.trace import cases_values, condition_values, waiting_values
from engine.core.webhook import enter_webhook, gave_up
from engine.core.winner import decided_variant
from engine.durations import clamp_instant, format_ts
from engine.journey.expressions import compile_expression
from engine.journey.model import (
    BranchNode,
    ExitNode,
    SendNode,
    SplitNode,
    WaitForNode,
    WaitNode,
)

CANCELS_FALLBACK = frozenset({"exit_event", "goal"})
AnyNode = Any  # one of the node models; the tables below dispatch on its ``type``


def goto(step: Step, inst: Instance, target: str | None, **attrs: Any) -> None:
    """Enter ``target`` and keep going through nodes that don't wait (send, branch, split)."""
    hops = 0
    while target is not None and inst.id in step.state.instances:
        hops += 1
        if hops > step.config.max_hops:
            finish(step, inst, "loop_guard")
            return
        node = step.journey(inst).nodes[target]
        inst.node = target
        inst.step += 1
        inst.wake_at = None
        extra = NODE_ATTRS[node.type](step, inst, node) if node.type in NODE_ATTRS else {}
        step.inst_outcome("node_entered", inst, target, **attrs, **extra)
        step.trace("node", "entered", inst, type=node.type, **attrs)
        attrs = {}
        target = ENTER[node.type](step, inst, node)


def finish(step: Step, inst: Instance, reason: str) -> None:
    """End a run: ``journey_exited`` and, when the journey has a goal, keep tracking it."""
    step.inst_outcome("journey_exited", inst, reason=reason)
    step.trace("exit", reason, inst)
    step.state.instances.pop(inst.id, None)
    if reason in CANCELS_FALLBACK:
        # The user left because of what they did (cancelled, converted): an SMS copy of a
        # message about the old situation would be wrong, so pending fallbacks are dropped.
        for msg in step.state.messages.values():
            if msg.instance_id == inst.id:
                drop_sms(step, msg)
    journey = step.journey(inst)
    hist = step.state.history.setdefault(inst.journey_id, JourneyHistory())
    goal = journey.goal
    if (
        goal is not None
        and reason != "goal"
        and inst.id not in hist.converted
        and step.now < inst.entered_at + goal.within_ms
    ):
        hist.tracking.append((inst.id, inst.version, inst.entered_at, inst.entry))


def _enter_send(step: Step, inst: Instance, node: SendNode) -> str | None:
    return send_node(step, inst, node)


def wait_target(step: Step, inst: Instance, node: WaitNode) -> int:
    """When a ``wait`` ends. A missing or unreadable property ends it at once."""
    if node.duration is not None:
        return clamp_instant(step.now + (node.duration_ms or 0))
    journey = step.journey(inst)
    if node.best_time:
        return best_time_end(step, inst, node)  # send-time optimization
    if node.until_time is not None:
        tz = zone(step.state.attrs.get("timezone"), journey.settings.default_timezone)
        days = frozenset(WEEKDAY_INDEX[d] for d in node.until_time.days)
        return next_local_time(step.now, node.until_time.minutes, days, tz)
    root, *path = (node.until_property or "user").split(".")
    value: Any = step.scope(inst).get(root)
    for part in path:
        value = value.get(part) if isinstance(value, dict) else None
    at = parse_instant(value)
    # Clamped (issue 11): a property far in the future plus an offset must not make a timer
    # the wire can't write (year > 9999) or a state too big to encode.
    return step.now if at is None else clamp_instant(at + node.offset_ms)


def _enter_wait(step: Step, inst: Instance, node: WaitNode) -> str | None:
    at = wait_target(step, inst, node)
    if at <= step.now:
        step.trace("wait", "over", inst, until=lambda: format_ts(at), next=node.next)
        return node.next
    inst.wake_at = at
    step.trace("wait", "until", inst, until=lambda: format_ts(at))
    return None


def _enter_wait_for(step: Step, inst: Instance, node: WaitForNode) -> str | None:
    if node.timeout_ms is not None:
        inst.wake_at = clamp_instant(step.now + node.timeout_ms)
    step.trace("wait_for", "waiting", inst, more=lambda: waiting_values(node.paths, inst.wake_at))
    return None


def _enter_branch(step: Step, inst: Instance, node: BranchNode) -> str | None:
    scope = step.scope(inst)
    taken = next((c for c in node.cases if compile_expression(c.when).test(scope)), None)
    if taken is None:
        step.trace(
            "branch", "default", inst, next=node.default, more=lambda: cases_values(node, scope)
        )
        return node.default
    when = taken.when
    step.trace(
        "branch",
        "case",
        inst,
        when=when,
        next=taken.next,
        more=lambda: condition_values(when, scope),
    )
    return taken.next


def split_variant(step: Step, inst: Instance, node: SplitNode) -> int:
    """Deterministic per user, stable across replays *and* versions: the bucket hashes the
    user, journey id and node id, never the version or the instance."""
    total = sum(v.weight for v in node.variants)
    point = bucket("split", step.user_id, inst.journey_id, inst.node) * total
    acc = 0.0
    for i, v in enumerate(node.variants):
        acc += v.weight
        if point < acc:
            return i
    return len(node.variants) - 1


def _chosen(step: Step, inst: Instance, node: SplitNode) -> tuple[int, bool]:
    """(variant index, whether it is the split's decided winner rather than the hash)."""
    key = (inst.journey_id, inst.version, inst.node)
    won = decided_variant(step.catalog.decisions, key, node, step.now)
    return (split_variant(step, inst, node), False) if won is None else (won, True)


def _split_attrs(step: Step, inst: Instance, node: SplitNode) -> dict[str, Any]:
    index, won = _chosen(step, inst, node)
    return {"variant": node.variants[index].name, **({"winner": True} if won else {})}


def _enter_split(step: Step, inst: Instance, node: SplitNode) -> str | None:
    index, won = _chosen(step, inst, node)
    variant = node.variants[index]
    reason = "winner" if won else "variant"
    step.trace("split", reason, inst, variant=variant.name, next=variant.next)
    return variant.next


def _enter_exit(step: Step, inst: Instance, node: ExitNode) -> str | None:
    finish(step, inst, node.reason)
    return None


ENTER: dict[str, Callable[[Step, Instance, Any], str | None]] = {
    "send": _enter_send,
    "wait": _enter_wait,
    "wait_for": _enter_wait_for,
    "branch": _enter_branch,
    "split": _enter_split,
    "update_profile": enter_update_profile,
    "exit": _enter_exit,
    "webhook": enter_webhook,
}
NODE_ATTRS: dict[str, Callable[[Step, Instance, Any], dict[str, Any]]] = {"split": _split_attrs}


def _timer_wait(step: Step, inst: Instance, node: WaitNode) -> None:
    step.trace("wait", "ended", inst, next=node.next)
    goto(step, inst, node.next)


def _timer_wait_for(step: Step, inst: Instance, node: WaitForNode) -> None:
    step.trace("wait_for", "timeout", inst, next=node.on_timeout)
    if node.on_timeout is None:
        finish(step, inst, "timeout")
    else:
        goto(step, inst, node.on_timeout, via="timeout")


def _timer_send(step: Step, inst: Instance, node: SendNode) -> None:
    # A send deferred by quiet hours: try again now that the window has ended.
    nxt = send_node(step, inst, node, deferred=True)
    if nxt is not None:
        goto(step, inst, nxt)


def _timer_webhook(step: Step, inst: Instance, node: Any) -> None:
    goto(step, inst, gave_up(step, inst, node))  # no result in give_up_after


ON_TIMER: dict[str, Callable[[Step, Instance, Any], None]] = {
    "webhook": _timer_webhook,
    "wait": _timer_wait,
    "wait_for": _timer_wait_for,
    "send": _timer_send,
}
