"""Entering a ``webhook`` node: render the request, check the URL, ask the gateway.

The core never makes the call. It emits a :class:`~engine.core.effects.WebhookRequest`
and the run waits at the node for the gateway's :class:`~engine.core.inputs.WebhookResult`
(:mod:`engine.core.webhook_result`), with a safety timer (``give_up_after``, 1 h by
default): a result lost for good never strands the run, which then goes ``on_failure``
with reason ``no_receipt``. A result that comes after that is ignored.

A request that can't be made goes ``on_failure`` at once, without a request: a template
that doesn't render (``template``), a body that isn't JSON (``invalid_json``) or is too
big (``body_too_large``), a URL outside ``settings.webhooks.allow`` (``url_not_allowed``).
"""

from __future__ import annotations

import json
from typing import Any

from engine.core.context import Step
from engine.core.effects import WebhookRequest
from engine.core.ids import derive_uuid
from engine.core.state import Instance
from engine.durations import clamp_instant
from engine.errors import TemplateError
from engine.journey.model import WebhookNode
from engine.journey.templates import compile_template
from engine.journey.webhooks import refusal

MAX_BODY_BYTES = 64 * 1024  # a request body the gateway will send


def action_id(inst: Instance) -> str:
    """The call's id (its ``Idempotency-Key``): stable for the run's visit to the node, so
    a replay asks for the same call and the gateway makes it once. Not the node id: a run
    that a new version moves (``migrate``) to the node's new id still takes its answer."""
    return derive_uuid("w", inst.id, inst.step)


def _render(value: Any, scope: dict[str, Any]) -> Any:
    if isinstance(value, str):
        return compile_template(value).render(scope)
    if isinstance(value, dict):
        return {str(k): _render(v, scope) for k, v in value.items()}
    if isinstance(value, list):
        return [_render(v, scope) for v in value]
    return value


def render_body(body: dict[str, Any] | list[Any] | str | None, scope: dict[str, Any]) -> str | None:
    """The JSON text of a node's body. A mapping (or list) has its strings rendered one by
    one (so it is always valid JSON); a string is rendered whole and must be JSON.
    Raises TemplateError, or ValueError for a string that doesn't render to JSON."""
    if body is None:
        return None
    if isinstance(body, str):
        text = compile_template(body).render(scope).strip()
        json.loads(text)  # ValueError: not JSON
        return text
    return json.dumps(_render(body, scope), ensure_ascii=False, separators=(",", ":"))


def allow_list(step: Step, inst: Instance) -> list[str]:
    hooks = step.journey(inst).settings.webhooks
    return [] if hooks is None else list(hooks.allow)


def failed(step: Step, inst: Instance, node: WebhookNode, reason: str, **attrs: Any) -> str:
    """Report the call failed (``webhook_failed``) and give the node to go to."""
    step.inst_outcome(
        "webhook_failed", inst, status=attrs.pop("status", None), reason=reason, **attrs
    )
    step.trace("webhook", reason, inst, next=node.on_failure)
    return node.on_failure


def enter_webhook(step: Step, inst: Instance, node: WebhookNode) -> str | None:
    scope = step.scope(inst)
    try:
        url = compile_template(node.url).render(scope).strip()
        body = render_body(node.body, scope)
    except TemplateError as exc:
        return failed(step, inst, node, "template", detail=exc.message)
    except ValueError as exc:
        return failed(step, inst, node, "invalid_json", detail=str(exc)[:200])
    if body is not None and len(body.encode()) > MAX_BODY_BYTES:
        return failed(step, inst, node, "body_too_large")
    allow = allow_list(step, inst)
    why = refusal(url, allow)
    if why is not None:
        return failed(step, inst, node, "url_not_allowed", detail=why[:300])
    step.effects.append(
        WebhookRequest(
            action_id(inst),
            step.now,
            step.user_id,
            url,
            node.method,
            body,
            dict(node.headers),
            node.timeout_ms,
            allow,
            inst.journey_id,
            inst.version,
            inst.id,
            inst.node,
        )
    )
    inst.wake_at = clamp_instant(step.now + node.give_up_after_ms)
    step.trace("webhook", "requested", inst, method=node.method, url=url)
    return None


def gave_up(step: Step, inst: Instance, node: WebhookNode) -> str:
    """The safety timer: no result came back in ``give_up_after``."""
    return failed(step, inst, node, "no_receipt")
