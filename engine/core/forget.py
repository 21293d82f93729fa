"""Erasure: ``journeys forget USER_ID`` (a :class:`~engine.core.inputs.Forget` input).

Everything the engine keeps about the user goes: runs, messages, profile, history,
dedupe memory, opt-out (a team that must keep a suppression list keeps it upstream, by
phone number). The core empties the state in place and says so with two effects:
``user_forgotten`` for downstream consumers (their cue to erase what they derived) and
:class:`~engine.core.effects.Erase`, on which the adapter tombstones the stored state and
asks the gateway to drop its records of the user. Timers due before the request still
fire first (they belong to the past); nothing is scheduled after it.
"""

from __future__ import annotations

from dataclasses import fields

from engine.core.context import Step
from engine.core.effects import Erase
from engine.core.inputs import Forget
from engine.core.state import UserState


def handle_forget(step: Step, inp: Forget) -> None:
    state = step.state
    runs = len(state.instances)
    fresh = UserState(state.user_id)
    for f in fields(UserState):
        if f.name != "wake_at":  # left to reschedule(): it tells the adapter the timer went
            setattr(state, f.name, getattr(fresh, f.name))
    step.outcome("user_forgotten", key=inp.request_id, runs_ended=runs, request_id=inp.request_id)
    step.effects.append(Erase(state.user_id))
