"""Control groups: the users who get no sends, so that what the sends cause can be measured.

* **Journey holdout** (``holdout: 10%`` on a journey). A run whose user falls in the
  holdout enters and moves through the journey as any other (waits, paths, branches,
  goal tracking), but none of its sends goes out: each ends ``message_suppressed``
  (reason ``holdout``). Its ``journey_entered`` has ``attributes.holdout: true``, which is
  what the stats compare conversions by. The bucket hashes the user and the journey id,
  never the version or the run: a user is held out of every run of every version (as long
  as the share doesn't change), and a replay draws the same users. The decision is made
  once, on entry, and kept on the run, so a new version with another share doesn't move
  runs in flight from one group to the other.
* **Global control group** (``global_control`` in ``journeys/_settings.yaml``). A share of
  all users, by a hash of the user id and the file's salt alone, gets no *marketing* send
  from any journey (reason ``global_control``); utility sends (``marketing: false``) still
  go. A run of a journey with a marketing send has ``attributes.global_control: true`` on
  its ``journey_entered``, so the stats can compare the group with everybody else.

Both are decided before any other rule of a send (opt-out, phone, quiet hours, cap): a
user in a control group is never deferred by quiet hours for a message they won't get.
"""

from __future__ import annotations

from typing import Any

from engine.core.context import Step
from engine.core.ids import bucket
from engine.core.state import Instance
from engine.journey.deployment import GlobalControl
from engine.journey.model import Journey, SendNode


def in_holdout(user_id: str, journey_id: str, share: float) -> bool:
    """Whether the user is in the journey's holdout: the same answer for every version."""
    return share > 0 and bucket("holdout", user_id, journey_id) < share


def in_global_control(user_id: str, control: GlobalControl | None) -> bool:
    """Whether the user is in the deployment's global control group."""
    if control is None or control.fraction <= 0:
        return False
    return bucket("global_control", control.salt, user_id) < control.fraction


def has_marketing_send(journey: Journey) -> bool:
    return any(isinstance(n, SendNode) and n.marketing for n in journey.nodes.values())


def on_entry(step: Step, journey: Journey, inst: Instance) -> dict[str, Any]:
    """Decide the new run's groups (kept on the run); the attributes of its
    ``journey_entered`` that say so (none for a run in neither)."""
    inst.holdout = in_holdout(step.user_id, journey.id, journey.holdout_share)
    attrs: dict[str, Any] = {"holdout": True} if inst.holdout else {}
    if has_marketing_send(journey) and in_global_control(
        step.user_id, step.config.global_control
    ):
        attrs["global_control"] = True
    return attrs


def held_back(step: Step, inst: Instance, node: SendNode) -> str | None:
    """Why the run's send doesn't go out because of a control group, or None."""
    if inst.holdout:
        return "holdout"
    if node.marketing and in_global_control(step.user_id, step.config.global_control):
        return "global_control"
    return None
