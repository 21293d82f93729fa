"""User events: exits, goals, ``wait_for`` event paths and journey entries, in that order.

For each of the user's runs (oldest first) an event can end it (``exit_on``), convert it
(the journey's goal), or move it along an event path. Goals are judged by the event's own
``ts``, so a late event still counts if it happened inside the window; runs that ended
keep their goal window open (``JourneyHistory.tracking``). Last, the event may enter the
user into journeys whose entry it is.
"""

from __future__ import annotations

from typing import Any

from engine.core.context import Step
from engine.core.entry_limits import max_entries_reached, record_entry
from engine.core.holdout import on_entry
from engine.core.ids import derive_id
from engine.core.inputs import UserEvent
from engine.core.nodes import finish, goto
from engine.core.paths import event_path
from engine.core.profile import apply_profile_update
from engine.core.profile_updates import handle_profile_event
from engine.core.state import Instance, JourneyHistory, UserState
from engine.core.trace import condition_values, cooldown_values
from engine.journey.expressions import compile_expression
from engine.journey.model import Journey


def handle_event(step: Step, ev: UserEvent) -> None:
    state = step.state
    if not state.remember_event(ev.event_id):
        step.trace("input", "duplicate", event=ev.name, event_id=ev.event_id)
        return  # already handled: producers retry, we don't double-count
    if ev.name in step.config.profile_events:
        handle_profile_event(step, ev)  # the profile, and nothing else
        return
    if ev.profile:
        apply_profile_update(state.attrs, ev.profile)  # past a limit: the input is refused
    props = ev.properties
    for inst in sorted(state.instances.values(), key=lambda i: (i.entered_at, i.id)):
        journey = step.journey(inst)
        if ev.name in journey.exit_on:
            finish(step, inst, "exit_event")
            continue
        converted = _goal(step, journey, inst.id, inst.version, inst.entered_at, inst.entry, ev)
        if converted and journey.goal is not None and journey.goal.exit:
            finish(step, inst, "goal")
            continue
        event_path(step, inst, ev)
    _goals_after_exit(step, ev)
    for journey in step.catalog.by_entry.get(ev.name, ()):
        _maybe_enter(step, journey, ev, props)


def _goal(
    step: Step,
    journey: Journey,
    instance_id: str,
    version: int,
    entered: int,
    entry: dict[str, Any],
    ev: UserEvent,
) -> bool:
    goal = journey.goal
    if goal is None or goal.event != ev.name:
        return False
    hist = step.state.history.setdefault(journey.id, JourneyHistory())
    if instance_id in hist.converted or not (entered <= ev.ts <= entered + goal.within_ms):
        return False
    scope = {
        "event": ev.properties,
        "entry": entry,
        "user": step.state.attrs,
        "journey": {"id": journey.id, "version": version},
    }
    if goal.when is not None and not compile_expression(goal.when).test(scope):
        return False
    hist.converted.append(instance_id)
    del hist.converted[:-16]
    step.trace("goal", "converted", journey, instance_id=instance_id, event=ev.name)
    step.outcome(
        "goal_converted",
        journey_id=journey.id,
        version=version,
        instance_id=instance_id,
        node_id=None,
        event=ev.name,
        after_ms=ev.ts - entered,
    )
    return True


def _goals_after_exit(step: Step, ev: UserEvent) -> None:
    for jid, hist in sorted(step.state.history.items()):
        if not hist.tracking:
            continue
        keep = []
        for iid, version, entered, entry in hist.tracking:
            journey = step.catalog.versions[jid].get(version)
            if journey is None or journey.goal is None:
                continue
            if _goal(step, journey, iid, version, entered, entry, ev):
                continue
            if step.now <= entered + journey.goal.within_ms:
                keep.append((iid, version, entered, entry))
        hist.tracking = keep


def _maybe_enter(
    step: Step,
    journey: Journey,
    ev: UserEvent,
    props: dict[str, Any],
    cause: dict[str, Any] | None = None,
) -> None:
    """Enter the user if re-entry, cooldown and ``when`` allow. ``cause``: what the
    outcome says entered the user (``{"event": name}`` by default; a scheduled entry,
    engine.core.audience, passes its occurrence and an ``ev`` of its own)."""
    state = step.state
    entry = journey.entry
    hist = state.history.get(journey.id)
    if hist is not None and hist.entries:
        if entry.reentry == "never":
            step.trace("entry", "reentry_never", journey, entries=hist.entries)
            return
        if entry.reentry == "after_exit" and (running := _run_of(state, journey.id)):
            step.trace("entry", "already_in", running, reentry="after_exit")
            return
        if hist.last_entry is not None and step.now - hist.last_entry < entry.cooldown_ms:
            last = hist.last_entry
            step.trace(
                "entry", "cooldown", journey, more=lambda: cooldown_values(step.now, entry, last)
            )
            return
        if (refused := max_entries_reached(entry, hist, step.now)) is not None:
            step.trace("entry", "max_entries", journey, **refused)
            return
    scope = {
        "event": props,
        "entry": props,
        "user": state.attrs,
        "journey": {"id": journey.id, "version": journey.version},
    }
    when = entry.when
    if when is not None and not compile_expression(when).test(scope):
        step.trace(
            "entry", "when_false", journey, when=when, more=lambda: condition_values(when, scope)
        )
        return
    iid = derive_id("i", state.user_id, journey.id, journey.version, ev.event_id)
    if iid in state.instances:
        step.trace("entry", "already_in", state.instances[iid], same_event=ev.event_id)
        return  # an event id replayed after it left the dedupe memory: same run, not a new one
    hist = state.history.setdefault(journey.id, JourneyHistory())
    hist.entries += 1
    hist.last_entry = step.now
    record_entry(entry, hist, step.now)
    inst = Instance(iid, journey.id, journey.version, journey.start, step.now, props, props)
    state.instances[iid] = inst
    groups = on_entry(step, journey, inst)  # holdout, global control (engine.core.holdout)
    how = cause if cause is not None else {"event": ev.name}
    step.inst_outcome("journey_entered", inst, journey.start, **how, **groups)
    step.trace("entry", "entered", inst, **how, event_id=ev.event_id, **groups)
    goto(step, inst, journey.start)


def _run_of(state: UserState, journey_id: str) -> Instance | None:
    """The user's run through ``journey_id`` (any version), if one is in flight."""
    return next((i for i in state.instances.values() if i.journey_id == journey_id), None)
