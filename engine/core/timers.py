"""Timers: firing what is due, telling the adapter the next wake-up, and stale wake-ups.

A user has one wake-up at a time with the adapter: the earliest pending timer of their
runs (wait ends, timeouts, deferrals) and messages (fallback windows, revoke graces,
deferred SMS), remembered as ``UserState.wake_at``, and the user's next occurrence of a
scheduled entry (:mod:`.audience`). Whenever it changes the engine emits
``ScheduleWake`` with the wake-up's token (:func:`~.ids.wake_token`); the adapter hands
the token back on the ``Wake``. A wake-up whose token is not the one of the current
timer (the timer moved or fired already) is stale: the core drops it unchanged.
"""

from __future__ import annotations

from engine.core.audience import decide, next_due
from engine.core.context import Step
from engine.core.effects import ScheduleWake
from engine.core.fallback import message_timer
from engine.core.ids import wake_token
from engine.core.inputs import Wake
from engine.core.migrate import migrate
from engine.core.nodes import ON_TIMER, goto
from engine.core.state import UserState


def is_stale(state: UserState, wake: Wake) -> bool:
    """True for a wake-up that is not the user's current one. A ``Wake`` without a token
    was not scheduled by the engine (a test or a tool moving the clock on): it fires
    whatever is due at its time."""
    if not wake.token:
        return False
    return state.wake_at is None or wake.token != wake_token(state.user_id, state.wake_at)


def fire_due(step: Step, until: int) -> None:
    """Fire every timer due at or before ``until``, each at its own due time."""
    state = step.state
    while True:
        due = state.next_timer()
        occurrence = next_due(step)  # scheduled entries (engine.core.audience)
        # Ties: the runs' timers first (a run that ends then lets the user re-enter).
        if (
            occurrence is not None
            and occurrence.at <= until
            and (due is None or occurrence.at < due)
        ):
            step.now = max(occurrence.at, state.clock)
            state.clock = step.now
            decide(step, occurrence)
            continue
        if due is None or due > until:
            return
        step.now = max(due, state.clock)
        state.clock = step.now
        # Ties: instance timers before message timers, then by id: a stable order.
        for inst in sorted(state.instances.values(), key=lambda i: i.id):
            if inst.wake_at is not None and inst.wake_at <= due:
                inst.wake_at = None
                migrate(step, inst)
                node = step.journey(inst).nodes[inst.node]
                on_timer = ON_TIMER.get(node.type)
                if on_timer is None:
                    # Migrated onto a node that doesn't wait (branch, split, exit):
                    # the user enters it now.
                    goto(step, inst, inst.node)
                else:
                    on_timer(step, inst, node)
        for msg in sorted(state.messages.values(), key=lambda m: m.id):
            if msg.timer_at is not None and msg.timer_at <= due:
                message_timer(step, msg)


def reschedule(step: Step) -> None:
    """Tell the adapter when to wake the user next, if that changed."""
    state = step.state
    at = state.next_timer()
    occurrence = next_due(step)
    if occurrence is not None and (at is None or occurrence.at < at):
        at = occurrence.at
    if at != state.wake_at:
        state.wake_at = at
        step.effects.append(ScheduleWake(state.user_id, at, wake_token(state.user_id, at)))
