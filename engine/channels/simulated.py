"""The contract's simulated provider, as used by ``journeys simulate``.

Deterministic and simple on purpose (docs/journeys.md): a user whose profile says
``"rcs_capable": false`` can't be reached over RCS (``not_capable`` at once); every
other message is delivered ``delivery_ms`` after it is sent. A revoke before delivery
succeeds (``revoked``); after delivery it is too late and changes nothing.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from engine.channels.prepare import Prepared, Refused, prepare
from engine.core.effects import Revoke, SendRequest
from engine.core.inputs import Receipt

DEFAULT_DELIVERY_MS = 5_000


@dataclass
class ContractProvider:
    delivery_ms: int = DEFAULT_DELIVERY_MS
    sent: dict[str, Prepared] = field(default_factory=dict)  # dedupe by message_id
    originals: dict[str, dict[str, Any]] = field(default_factory=dict)
    delivered: set[str] = field(default_factory=set)
    pending: dict[str, int] = field(default_factory=dict)  # message_id -> delivery time

    def send(self, req: SendRequest) -> list[Receipt]:
        """Receipts this send will produce (with their times). A repeated id sends nothing."""
        if req.message_id in self.sent:
            return []
        if req.channel == "rcs":
            self.originals[req.message_id] = req.content
        result = prepare(req, self.originals)
        if isinstance(result, Refused):
            return [Receipt(req.user_id, req.ts, "failed", result.message_id, reason=result.reason)]
        self.sent[req.message_id] = result
        if req.channel == "rcs" and req.profile.get("rcs_capable") is False:
            return [Receipt(req.user_id, req.ts, "not_capable", req.message_id)]
        at = req.ts + self.delivery_ms
        self.pending[req.message_id] = at
        return [Receipt(req.user_id, at, "delivered", req.message_id)]

    def revoke(self, rev: Revoke) -> list[Receipt]:
        at = self.pending.get(rev.message_id)
        if at is None or at <= rev.ts:
            return []  # unknown, or delivered already: too late to revoke
        del self.pending[rev.message_id]
        return [Receipt(rev.user_id, rev.ts, "revoked", rev.message_id)]

    def cancel(self, message_id: str) -> None:
        """Forget a scheduled delivery (the message failed or fell back meanwhile)."""
        self.pending.pop(message_id, None)

    def is_live(self, receipt: Receipt) -> bool:
        """A scheduled delivery still happens unless the message was revoked meanwhile."""
        if receipt.status != "delivered" or receipt.message_id is None:
            return True
        return self.pending.get(receipt.message_id) == receipt.ts
