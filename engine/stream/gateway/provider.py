"""The provider behind the gateway: the :class:`Provider` protocol, the simulated provider
the gateway uses today, and :func:`call_provider` (retries).

The default is the contract's simulated provider (:class:`SimulatedProvider`, over
:class:`engine.channels.simulated.ContractProvider`): delivered ``sim_delivery_ms`` after
the send, ``not_capable`` at once for a profile with ``rcs_capable: false``, ``revoked``
for a revoke before delivery.

Where the real channel gateway plugs in: any object with ``idempotent``,
``async send(req) -> list[Receipt]``, ``async revoke(rev) -> list[Receipt]`` and
``remember_original(message_id, content)`` (the :class:`Provider` protocol);
``engine.channels.gateway.ChannelGateway`` (``handle_send`` / ``handle_revoke``) fits
behind a few-line adapter passed to :func:`~engine.stream.gateway.service.run_gateway` /
:func:`~engine.stream.gateway.service.build_gateway`.
"""

from __future__ import annotations

import asyncio
import logging
from collections import OrderedDict
from typing import Any, Protocol

from engine.core.effects import Revoke, SendRequest
from engine.core.inputs import Receipt
from engine.errors import PermanentProviderError, RetryableProviderError
from engine.stream.common.logs import event

log = logging.getLogger("engine.stream.gateway")

ORIGINALS_KEPT = 10_000
RETRIES = 5


class Provider(Protocol):
    #: True when sending the same message_id twice reaches the user once (the provider
    #: dedupes): then a send whose outcome is unknown after a crash is sent again.
    idempotent: bool

    async def send(self, req: SendRequest) -> list[Receipt]: ...

    async def revoke(self, rev: Revoke) -> list[Receipt]: ...

    def remember_original(self, message_id: str, content: dict[str, Any]) -> None: ...


class SimulatedProvider:
    """The contract's simulated provider behind the :class:`Provider` protocol.

    Deterministic and without side effects, hence ``idempotent``. Its own in-memory
    bookkeeping is trimmed after each call: the gateway's table is the durable record
    (dedupe, scheduled deliveries, revokes)."""

    idempotent = True

    def __init__(self, delivery_ms: int) -> None:
        from engine.channels.simulated import ContractProvider

        self.contract = ContractProvider(delivery_ms=delivery_ms)
        self._originals: OrderedDict[str, dict[str, Any]] = OrderedDict()
        self.contract.originals = self._originals
        self.calls = 0

    def remember_original(self, message_id: str, content: dict[str, Any]) -> None:
        self._originals[message_id] = content
        self._originals.move_to_end(message_id)
        while len(self._originals) > ORIGINALS_KEPT:
            self._originals.popitem(last=False)

    async def send(self, req: SendRequest) -> list[Receipt]:
        self.calls += 1
        receipts = self.contract.send(req)
        self.contract.sent.pop(req.message_id, None)
        self.contract.pending.pop(req.message_id, None)
        if req.channel == "rcs":
            self.remember_original(req.message_id, req.content)
        return receipts

    async def revoke(self, rev: Revoke) -> list[Receipt]:
        # Scheduled deliveries live in the gateway's table; nothing else to cancel here.
        return []


async def call_provider(provider: Provider, req: SendRequest) -> list[Receipt]:
    """Send ``req``; the provider's receipts, or a ``failed`` receipt when it refuses the
    message (permanent error) or stays unavailable after ``RETRIES`` attempts."""
    delay = 0.2
    for attempt in range(RETRIES):
        try:
            return await provider.send(req)
        except RetryableProviderError as exc:
            event(
                log,
                "provider_retry",
                logging.WARNING,
                message_id=req.message_id,
                attempt=attempt + 1,
                error=str(exc),
            )
            await asyncio.sleep(delay)
            delay = min(delay * 2, 5.0)
        except PermanentProviderError as exc:
            return [
                Receipt(req.user_id, req.ts, "failed", req.message_id, reason=f"provider: {exc}")
            ]
    return [Receipt(req.user_id, req.ts, "failed", req.message_id, reason="provider_unavailable")]
