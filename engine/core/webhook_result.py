"""The gateway's answer to a webhook call: the waiting run goes ``next`` (2xx) or
``on_failure`` (a failure after the gateway's retries), and ``save:`` copies fields of
the JSON response into the user's profile, where a later branch reads them (``user.*``).

A result is matched to the run waiting at the webhook node whose call it answers
(:func:`engine.core.webhook.action_id`). One that matches no waiting run (a repeat, or one
that came after ``give_up_after``) changes nothing.
"""

from __future__ import annotations

import json
from typing import Any

from engine.core.context import Step
from engine.core.inputs import WebhookResult
from engine.core.nodes import goto
from engine.core.profile import apply_profile_update
from engine.core.state import Instance
from engine.core.user_actions import UserAction
from engine.core.webhook import action_id, failed
from engine.errors import ProfileLimitError
from engine.journey.model import WebhookNode
from engine.journey.webhooks import extract


def _answered(step: Step, action: str) -> tuple[Instance, WebhookNode] | None:
    for inst in step.state.instances.values():
        node = step.journey(inst).nodes.get(inst.node)
        if isinstance(node, WebhookNode) and action_id(inst) == action:
            return inst, node
    return None


def _saved(
    step: Step, node: WebhookNode, body: str | None
) -> tuple[list[str], list[str], str | None]:
    """(attributes changed, paths the response lacks, the profile limit that refused the
    save: then nothing is saved and the run goes on, as after an update_profile node)."""
    if not node.save:
        return [], [], None
    try:
        doc = json.loads(body) if body else None
    except ValueError:
        doc = None
    values: dict[str, Any] = {}
    missing: list[str] = []
    for attr, path in node.save.items():
        found, value = extract(doc, path)
        if found:
            values[attr] = value
        else:
            missing.append(attr)
    try:
        return apply_profile_update(step.state.attrs, values), missing, None
    except ProfileLimitError as exc:
        return [], missing, exc.limit


def handle_webhook_result(step: Step, res: WebhookResult) -> UserAction | None:
    hit = _answered(step, res.action_id)
    if hit is None:
        step.trace("webhook", "result_ignored", None, action_id=res.action_id, status=res.status)
        return None
    inst, node = hit
    inst.wake_at = None
    if res.status != "called":
        goto(step, inst, failed(step, inst, node, res.reason or "failed", status=res.code))
        return None
    changed, missing, refused = _saved(step, node, res.body)
    extra: dict[str, Any] = {}
    if node.save:
        extra["saved"] = changed
        if missing:
            extra["missing"] = missing
        if refused is not None:
            extra["save_refused"] = refused
    step.inst_outcome("webhook_called", inst, status=res.code, **extra)
    step.trace("webhook", "called", inst, status=res.code, next=node.next)
    goto(step, inst, node.next)
    return None
