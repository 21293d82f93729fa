"""The engine: ``advance(state, input, now) -> (state, effects)``.

One call handles one input for one user. Before the input itself, every timer of the
user that is due at or before ``now`` fires, each at its own due time: so the result
doesn't depend on how late an adapter delivers a wake-up, and a simulation on a
virtual clock and a worker on Kafka see the same order of things.

Time never goes backwards for a user: an input older than the user's clock (a late
event) is handled at the user's clock. Its ``ts`` is not trusted to reorder history.
Goals are the exception: they are judged by the event's own ``ts``, so a late goal
event still counts if it *happened* inside the window.

This module only dispatches, by lookup tables keyed by the input's type: which inputs
change nothing (an event no journey mentions, a stale wake-up), and who handles the
rest. The handlers live in their own modules: :mod:`.events` (user events),
:mod:`.fallback` (receipts and the RCS -> SMS fallback), :mod:`.inbound` (keywords, taps
and replies), :mod:`.timers`, and :mod:`.paths`, which routes what the user did (a read,
a tap, a reply) to a ``wait_for`` path.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import Any

from engine.core import trace
from engine.core.audience import handle_scheduled, is_unknown_user
from engine.core.catalog import Catalog
from engine.core.config import DAY_MS, EngineConfig
from engine.core.context import Step
from engine.core.effects import Effect
from engine.core.events import handle_event
from engine.core.fallback import handle_receipt
from engine.core.forget import handle_forget
from engine.core.ids import wake_token
from engine.core.inbound import handle_inbound
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
from engine.core.paths import route
from engine.core.send_time import record as record_engagement
from engine.core.state import UserState
from engine.core.timers import fire_due, is_stale, reschedule
from engine.core.user_actions import UserAction
from engine.core.webhook_result import handle_webhook_result
from engine.core.winner import SplitDecision, record_decision
from engine.durations import MAX_INSTANT_MS, MIN_INSTANT_MS
from engine.errors import InputError
from engine.journey.model import Journey

__all__ = ["DAY_MS", "Engine", "EngineConfig"]

Handler = Callable[[Step, Any], UserAction | None]


def _on_wake(step: Step, wake: Wake) -> None:
    return None  # due timers already fired before dispatch


def _refuse_unwritable_timers(state: UserState) -> None:
    """Issue 11: no computed time may overflow. Waits clamp their own times
    (:func:`engine.durations.clamp_instant`); anything else past the writable range (a
    journey with an absurd duration) refuses the input: the worker dead-letters it and
    keeps the state it had (it decodes a fresh state for every input)."""
    for at in (state.wake_at, *(i.wake_at for i in state.instances.values())):
        if at is not None and not MIN_INSTANT_MS <= at <= MAX_INSTANT_MS:
            raise InputError(
                "bad_timestamp",
                f"a timer computed for this input is at {at} ms, past the years 1 to 9999",
            )
    for m in state.messages.values():
        if m.timer_at is not None and not MIN_INSTANT_MS <= m.timer_at <= MAX_INSTANT_MS:
            raise InputError(
                "bad_timestamp",
                f"a message timer computed for this input is at "
                f"{m.timer_at} ms, past the years 1 to 9999",
            )


class Engine:
    """Holds the loaded journeys (every version) and advances user states through them."""

    def __init__(self, journeys: Iterable[Journey], config: EngineConfig | None = None) -> None:
        self.config = config or EngineConfig()
        self.catalog = Catalog.of(journeys)
        # The catalog's indexes, under the names other code has always used.
        self.versions = self.catalog.versions
        self.latest = self.catalog.latest
        self.by_entry = self.catalog.by_entry
        self.known_events = self.catalog.known_events
        self.longest_cap_ms = self.catalog.longest_cap_ms
        # Inputs that change nothing at all: the state comes back untouched, no effects.
        self._ignored: dict[type, Callable[[UserState, Any], bool]] = {
            UserEvent: self._event_changes_nothing,
            Wake: is_stale,
            Scheduled: is_unknown_user,
        }
        self._dispatch: dict[type, Handler] = {
            UserEvent: handle_event,
            Receipt: handle_receipt,
            Inbound: handle_inbound,
            Wake: _on_wake,
            Forget: handle_forget,
            WebhookResult: handle_webhook_result,
            Scheduled: handle_scheduled,
        }

    def _event_changes_nothing(self, state: UserState, ev: UserEvent) -> bool:
        """No journey names it, it is no profile event and it carries no ``profile``
        (an event's ``profile`` is always merged: the profile is the latest of what the
        user's events carried, whatever their name)."""
        return (
            not ev.profile
            and ev.name not in self.known_events
            and ev.name not in self.config.profile_events
        )

    # ------------------------------------------------------------------ entry point

    def advance(self, state: UserState, inp: Input, now: int) -> tuple[UserState, list[Effect]]:
        """Handle one input for one user at ``now`` (epoch ms). Updates ``state`` in place."""
        ignored = self._ignored.get(type(inp))
        if ignored is not None and ignored(state, inp):
            return state, list(trace.ignored(self.config, inp, max(now, state.clock)))
        now = max(now, state.clock)
        step = Step(self.catalog, self.config, state, now, cause=inp)
        fire_due(step, now)
        step.now = now
        state.clock = now
        action = self._dispatch[type(inp)](step, inp)
        if action is not None:
            record_engagement(step, action)  # the hour's history, for best_time waits
            route(step, action)
        self._tidy(step)
        reschedule(step)
        _refuse_unwritable_timers(state)
        return state, step.effects

    def apply_decision(self, decision: SplitDecision) -> bool:
        """A split's winner (:mod:`engine.core.winner`): split entries from its
        ``effective_at`` on take it. True when new, False when already known; InputError
        for a split that isn't loaded or a decision that would change a made one."""
        return record_decision(self.catalog.versions, self.catalog.decisions, decision)

    def wake_token(self, state: UserState) -> str:
        """The token of the user's current wake-up (see :func:`engine.core.ids.wake_token`)."""
        return wake_token(state.user_id, state.wake_at)

    def new_state(self, user_id: str) -> UserState:
        return UserState(user_id)

    # ------------------------------------------------------------------ housekeeping

    def _tidy(self, step: Step) -> None:
        msgs = step.state.messages
        horizon = step.now - self.config.message_retention_ms
        stale = [m.id for m in msgs.values() if m.sent_at < horizon and m.timer_at is None]
        for mid in stale:
            del msgs[mid]
        if len(msgs) > self.config.max_messages:
            idle = sorted((m for m in msgs.values() if m.timer_at is None), key=lambda m: m.sent_at)
            for m in idle[: len(msgs) - self.config.max_messages]:
                del msgs[m.id]
