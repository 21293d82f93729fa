"""The channel side of ``journeys simulate``: the gateway's steps, synchronously, on the
virtual clock, in front of the one simulated provider.

It does what :class:`~engine.channels.gateway.ChannelGateway` does for a send, without
I/O: :func:`~engine.channels.prepare.prepare` (a refusal is a ``failed`` receipt), the
RCS capability (``not_capable``), then the provider takes the message and says what will
happen to it (:meth:`SimulatedProvider.accept
<engine.channels.providers.simulated.SimulatedProvider.accept>`). Every receipt is
stamped from the request's ``ts``, so the same events give byte-identical outcomes.
"""

from __future__ import annotations

from typing import Any

from engine.channels.prepare import Refused, prepare
from engine.channels.providers.simulated import CONTRACT_DELIVERY_MS, Event, SimulatedProvider
from engine.channels.webhook_sim import SimulatedWebhooks
from engine.core.effects import Revoke, SendRequest, WebhookRequest
from engine.core.inputs import Receipt, WebhookResult


class OfflineGateway:
    def __init__(
        self, delivery_ms: int = CONTRACT_DELIVERY_MS, provider: SimulatedProvider | None = None
    ) -> None:
        """The contract's simulated provider (delivered ``delivery_ms`` after a send)
        unless another ``provider`` is given."""
        self.provider = provider or SimulatedProvider.contract(delivery_ms)
        self.originals: dict[str, dict[str, Any]] = {}  # RCS content, for derived SMS
        self.webhooks = SimulatedWebhooks()  # webhook calls: 200 {} unless scripted

    def send(self, req: SendRequest) -> list[Event]:
        """What this send will produce, each at its time. A repeated id sends nothing."""
        provider = self.provider
        if provider.taken(req.message_id):
            return []
        if req.channel == "rcs":
            self.originals[req.message_id] = req.content
        result = prepare(req, self.originals)
        if isinstance(result, Refused):
            return [Receipt(req.user_id, req.ts, "failed", result.message_id, reason=result.reason)]
        if req.channel == "rcs" and not provider.is_capable(result.to, req.profile):
            provider.take_refused(req.message_id)
            return [Receipt(req.user_id, req.ts, "not_capable", req.message_id)]
        return provider.accept(req)

    def webhook(self, req: WebhookRequest) -> list[WebhookResult]:
        return self.webhooks.call(req)

    def revoke(self, rev: Revoke) -> list[Receipt]:
        return self.provider.revoke_now(rev)

    def cancel(self, message_id: str) -> None:
        """Forget a scheduled delivery (the message failed or fell back meanwhile)."""
        self.provider.cancel(message_id)

    def is_live(self, event: Event) -> bool:
        """A scheduled delivery still happens unless the message was revoked meanwhile."""
        return self.provider.is_live(event)
