"""Scheduled audience entry: ``entry: {schedule, audience}`` (docs/journeys.md).

At each occurrence of a journey's schedule (:mod:`.schedule`), every *known* user whose
profile matches ``audience`` enters, in the user's own zone with ``timezone: user``.

Occurrences are timers of the core, not something an adapter decides:

* **Known** means the user has a state whose clock has reached the occurrence: the core
  has handled an input of theirs at or before the occurrence's instant. A user first seen
  after it doesn't get it; one first seen at that very instant does.
* The user's next occurrence (over every scheduled journey) is part of their next timer
  (:func:`next_due`, used by :mod:`.timers`): the adapters wake the user then, with the
  same durable wake-ups as waits (the simulator on its virtual clock, the worker through
  its timer index and ``journey.timers``). No adapter scans anything in the steady state.
* An occurrence is decided when the user's clock passes it, **before** any later input,
  whatever woke the user: the wake-up, or an event that arrives first. So the profile it
  sees is the one at that instant, and the outcome doesn't depend on how late an adapter
  delivers the wake-up: the simulator and Kafka give the same result.
* **Once per occurrence.** The state remembers, per journey, the last occurrence key
  decided (``UserState.schedules``): the local wall-clock time, ``2026-12-07T10:00``.
  Only a later key is ever decided, whether the user entered or not: a replay, a restart,
  a rebalance or a duplicate tick decides nothing twice, and a user who moves to a zone
  behind theirs doesn't get the same Monday 10:00 again.
* Entering is event entry's path (:func:`engine.core.events._maybe_enter`): re-entry,
  cooldown, holdouts; quiet hours and frequency caps then apply to the sends. The entry
  properties are ``{"occurrence": key}`` (``entry.occurrence`` in templates); the
  ``journey_entered`` outcome says ``occurrence`` instead of ``event``.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any
from zoneinfo import ZoneInfo

from engine.core.catalog import Catalog
from engine.core.context import Step
from engine.core.events import _maybe_enter
from engine.core.inputs import Scheduled, UserEvent
from engine.core.localtime import zone
from engine.core.schedule import Occurrence, next_occurrence
from engine.core.state import UserState
from engine.journey.expressions import compile_expression
from engine.journey.model import Journey


@dataclass(frozen=True, slots=True)
class DueOccurrence:
    at: int
    key: str
    journey: Journey


def schedule_zone(journey: Journey, attrs: dict[str, Any]) -> ZoneInfo:
    """The zone a journey's schedule runs in for a user with profile ``attrs``."""
    schedule = journey.entry.schedule
    assert schedule is not None
    if schedule.per_user_zone:
        return zone(attrs.get("timezone"), journey.settings.default_timezone)
    return zone(schedule.timezone, "UTC")


def next_due_for(
    catalog: Catalog,
    clock: int,
    attrs: dict[str, Any],
    decided: dict[str, str],
    horizon: int | None = None,
) -> DueOccurrence | None:
    """The earliest occurrence not yet decided for a user with this clock, profile and
    decided keys (a state's ``c``, ``a`` and ``sk``: the worker's scanner calls this on
    stored states). None for a user never seen (clock 0)."""
    if clock <= 0 or not catalog.scheduled:
        return None
    best: DueOccurrence | None = None
    for journey in catalog.scheduled:  # sorted by id: ties go to the first id
        schedule = journey.entry.schedule
        assert schedule is not None
        # Occurrences at the clock's own instant count: the user was known then.
        occ: Occurrence | None = next_occurrence(
            schedule,
            schedule_zone(journey, attrs),
            clock - 1,
            key_after=decided.get(journey.id, ""),
        )
        if occ is None or (horizon is not None and occ.at > horizon):
            continue
        if best is None or occ.at < best.at:
            best = DueOccurrence(occ.at, occ.key, journey)
    return best


def next_due(step: Step) -> DueOccurrence | None:
    if not step.catalog.scheduled:
        return None  # the common case, on every input: nothing to compute
    state = step.state
    return next_due_for(
        step.catalog, state.clock, state.attrs, state.schedules, step.config.schedule_horizon
    )


def decide(step: Step, due: DueOccurrence) -> None:
    """Decide occurrence ``due`` for the user at its instant (``step.now``): remember it,
    then enter the user if the audience matches and the entry rules allow."""
    state, journey = step.state, due.journey
    state.schedules[journey.id] = due.key
    audience = journey.entry.audience or "false"
    scope = {"user": state.attrs, "journey": {"id": journey.id, "version": journey.version}}
    if not compile_expression(audience).test(scope):
        step.trace("entry", "audience_false", journey, occurrence=due.key, audience=audience)
        return
    props = {"occurrence": due.key}
    # The entry path of events, with an event of the occurrence's own: its id makes the
    # instance id, so the same occurrence always makes the same run.
    ev = UserEvent(f"schedule:{journey.id}:{due.key}", state.user_id, "", due.at, props)
    _maybe_enter(step, journey, ev, props, cause={"occurrence": due.key})


def is_unknown_user(state: UserState, tick: Scheduled) -> bool:
    """A tick for a user the core has never seen (or has forgotten) changes nothing: it
    must not make them known."""
    return state.clock <= 0


def handle_scheduled(step: Step, tick: Scheduled) -> None:
    """The tick's occurrence was decided (or not, for a user not known then) by the time
    the clock got here; only say so in the trace."""
    decided = step.state.schedules.get(tick.journey_id, "")
    reason = "occurrence_decided" if tick.occurrence <= decided else "occurrence_not_due"
    step.trace("entry", reason, None, journey=tick.journey_id, occurrence=tick.occurrence)
