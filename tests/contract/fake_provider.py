"""The contract tests' view of the fake providers (tests/fakes/providers.py).

:class:`FakeProvider` is :class:`tests.fakes.providers.FakeProviders` with the settings
these tests were written for: a fixed bearer token (no token endpoint), account ``AC0001``
and every callback posted to our :class:`WebhookReceiver`.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from engine.channels.gateway import ChannelGateway
from engine.channels.providers.rbm import RbmProvider
from engine.channels.providers.twilio import TwilioSmsProvider
from engine.channels.webhooks import WebhookReceiver
from engine.core.effects import Revoke, SendRequest
from engine.core.inputs import Inbound, Receipt
from tests.fakes.gateway import MemoryClaims, MemoryDirectory, send
from tests.fakes.providers import DEFAULT_FEATURES, Call, FakeProviders

__all__ = ["DEFAULT_FEATURES", "NOW_MS", "Call", "FakeProvider", "Stack"]


class FakeProvider(FakeProviders):
    def __init__(
        self,
        *,
        bearer: str = "test-token",
        agent_id: str = "test-agent",
        client_token: str = "client-token",
        account_sid: str = "AC0001",
        auth_token: str = "sms-auth-token",
    ) -> None:
        super().__init__(
            agent_id=agent_id,
            client_token=client_token,
            account_sid=account_sid,
            auth_token=auth_token,
            bearer=bearer,
        )
        self.event_time = "2026-11-29T10:00:00Z"


NOW_MS = 1_800_000_000_000


@dataclass
class Stack:
    fake: FakeProvider
    gateway: ChannelGateway
    receiver: WebhookReceiver
    rbm: RbmProvider
    sms: TwilioSmsProvider
    claims: MemoryClaims
    directory: MemoryDirectory
    emitted: list[Receipt | Inbound] = field(default_factory=list)
    dead: list[tuple[str, Any]] = field(default_factory=list)
    sleeps: list[float] = field(default_factory=list)

    async def send(self, req: SendRequest) -> list[Receipt]:
        """The receipts due now (none once the provider took it)."""
        return await send(self.gateway, req, self.directory)

    async def revoke(self, rev: Revoke) -> list[Receipt]:
        sent = self.directory.by_message_id(rev.message_id)
        assert sent is not None, "revoke of a message never sent"
        return await self.gateway.revoke(rev, sent.phone)
