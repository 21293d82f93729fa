"""Webhook calls in ``journeys simulate`` / backtests: answered offline, deterministically.

Every call is answered ``200`` with an empty JSON object at the request's own time,
unless a script says otherwise (tests inject answers per node or URL). A repeated
``action_id`` gets nothing (the gateway makes a call once), and the allow-list is checked
as the gateway does.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from engine.channels.webhook_answers import answered, not_made
from engine.core.effects import WebhookRequest
from engine.core.inputs import WebhookResult
from engine.journey.webhooks import refusal


@dataclass(frozen=True, slots=True)
class SimulatedAnswer:
    status: int = 200
    body: Any = field(default_factory=dict)  # a JSON value (a str is sent as is)
    latency_ms: int = 0


Script = Callable[[WebhookRequest], SimulatedAnswer | None]


class SimulatedWebhooks:
    def __init__(self, script: Script | None = None, default: SimulatedAnswer | None = None):
        self.script = script
        self.default = default or SimulatedAnswer()
        self.calls: list[WebhookRequest] = []  # every call made, in order
        self._made: set[str] = set()

    @classmethod
    def by_node(cls, answers: dict[str, SimulatedAnswer]) -> SimulatedWebhooks:
        """Answers per node id (the others: the default)."""
        return cls(lambda req: answers.get(req.node_id))

    def call(self, req: WebhookRequest) -> list[WebhookResult]:
        if req.action_id in self._made:
            return []
        self._made.add(req.action_id)
        if refusal(req.url, req.allow) is not None:
            return [not_made(req, req.ts, "url_not_allowed")]
        self.calls.append(req)
        ans = (self.script(req) if self.script is not None else None) or self.default
        body = ans.body if isinstance(ans.body, str) else json.dumps(ans.body)
        return [answered(req, req.ts + ans.latency_ms, ans.status, body)]
