"""What changes a user's profile inside the core: profile events and ``update_profile`` nodes.

Both go through :func:`engine.core.profile.apply_profile_update` (the limits) and report
the same way: a ``profile_updated`` outcome with the changed keys, **only when something
changed** (an update that sets what is already there is traced, not reported), so the
counts of ``profile_updated`` are counts of real changes.

* A **profile event** (a name in ``settings.profile_events``, default ``profile_updated``)
  sets its ``properties`` and its ``profile`` (``profile`` wins on a key in both) and does
  nothing else: no entry, goal, ``wait_for`` path or ``exit_on``. Its outcome has no
  journey fields. Past a limit it raises, and the adapter refuses the input.
* An **update_profile node** sets the values of its ``set`` expressions (scope as a
  branch's: ``event``, ``entry``, ``user``, ``journey``) and removes its ``unset`` keys,
  then goes to ``next``; nodes after it read the new ``user.*``. Past a limit its update
  is refused whole: ``profile_update_refused`` (``reason``: the limit) and the run goes on.
"""

from __future__ import annotations

from typing import Any

from engine.core.context import Step
from engine.core.inputs import UserEvent
from engine.core.profile import apply_profile_update
from engine.core.state import Instance
from engine.errors import ProfileLimitError
from engine.journey.expressions import compile_expression
from engine.journey.model import UpdateProfileNode

DEFAULT_PROFILE_EVENTS = frozenset({"profile_updated"})


def handle_profile_event(step: Step, ev: UserEvent) -> None:
    """A profile event: update the profile, nothing else. Raises ProfileLimitError."""
    values: dict[str, Any] = {**ev.properties, **(ev.profile or {})}
    changed = apply_profile_update(step.state.attrs, values)
    step.trace("profile", "updated" if changed else "unchanged", event=ev.name, keys=changed)
    if changed:
        step.outcome("profile_updated", key=ev.event_id, event=ev.name, keys=changed)


def enter_update_profile(step: Step, inst: Instance, node: UpdateProfileNode) -> str | None:
    scope = step.scope(inst)
    values = {k: compile_expression(v).evaluate(scope) for k, v in node.set_.items()}
    try:
        changed = apply_profile_update(step.state.attrs, values, node.unset)
    except ProfileLimitError as exc:
        step.trace("profile", "refused", inst, limit=exc.limit, detail=exc.detail)
        step.inst_outcome("profile_update_refused", inst, reason=exc.limit, detail=exc.detail)
        return node.next
    step.trace("profile", "updated" if changed else "unchanged", inst, keys=changed)
    if changed:
        step.inst_outcome("profile_updated", inst, keys=changed)
    return node.next
