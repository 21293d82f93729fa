"""What a webhook answer means, for the gateway and the simulator alike: the result the
engine gets (:class:`~engine.core.inputs.WebhookResult`) and the failure reasons.

``called``: the server answered 2xx. ``failed``, with ``reason``:

* ``rejected:<status>``: a 4xx other than 408/429 (not retried: the request is wrong);
* ``unavailable:<status>``: 5xx, 408 or 429 on every attempt of the retry budget;
* ``timeout``: no answer within the node's ``timeout`` on every attempt;
* ``unreachable``: no connection on every attempt;
* ``url_not_allowed``: the gateway's own check of the allow-list refused the URL;
* ``no_secret``: the gateway has no signing secret (``JOURNEYS_WEBHOOK_SECRET``).
"""

from __future__ import annotations

from engine.core.effects import WebhookRequest
from engine.core.inputs import WebhookResult
from engine.core.wire import WEBHOOK_BODY_KEPT


def is_retryable(status: int) -> bool:
    """The gateway's retry policy for an HTTP answer: 5xx, 408 and 429 are tried again."""
    return status >= 500 or status in (408, 429)


def answered(req: WebhookRequest, ts: int, status: int, body: bytes | str | None) -> WebhookResult:
    """The result of a call the server answered with ``status`` (its last answer)."""
    text = body.decode("utf-8", "replace") if isinstance(body, bytes) else body
    kept = text[:WEBHOOK_BODY_KEPT] if text else None
    if 200 <= status < 300:
        return WebhookResult(req.user_id, ts, req.action_id, "called", status, None, kept)
    reason = f"unavailable:{status}" if is_retryable(status) else f"rejected:{status}"
    return WebhookResult(req.user_id, ts, req.action_id, "failed", status, reason, kept)


def not_made(req: WebhookRequest, ts: int, reason: str) -> WebhookResult:
    """The result of a call that got no HTTP answer (or was never made)."""
    return WebhookResult(req.user_id, ts, req.action_id, "failed", None, reason)
