"""A webhook journey run in the simulator with scripted answers: every webhook outcome and
record kind, for the wire tests (tests/unit/test_wire_schema.py) and the node's tests."""

from __future__ import annotations

from pathlib import Path

from engine.channels.offline import OfflineGateway
from engine.channels.webhook_sim import SimulatedAnswer, SimulatedWebhooks
from engine.core.effects import WebhookRequest
from engine.core.inputs import UserEvent
from engine.lint.linter import load_journeys
from engine.sim.simulator import SimResult, Simulator

JOURNEY = Path(__file__).resolve().parent / "fixtures" / "webhooks" / "crm-sync.yaml"
T0 = 1_793_000_000_000  # 2026-10-25


def answers(req: WebhookRequest) -> SimulatedAnswer | None:
    """gold-*: 200 with a gold account; bad-*: 404; down-*: 503; the rest: 200 {}."""
    if req.user_id.startswith("gold"):
        return SimulatedAnswer(200, {"id": f"crm-{req.user_id}", "account": {"tiers": ["gold"]}})
    if req.user_id.startswith("bad"):
        return SimulatedAnswer(404, {"error": "no such lead"})
    if req.user_id.startswith("down"):
        return SimulatedAnswer(503, "")
    return None


def events() -> list[UserEvent]:
    users = ["gold-1", "plain-1", "bad-1", "down-1"]
    return [
        UserEvent(f"e-{u}", u, "lead_qualified", T0 + i * 1000, {"lead_id": f"L{i}", "plan": "pro"})
        for i, u in enumerate(users)
    ]


def webhook_tour() -> SimResult:
    gateway = OfflineGateway()
    gateway.webhooks = SimulatedWebhooks(answers)
    return Simulator(load_journeys([JOURNEY]), provider=gateway).run(events())
