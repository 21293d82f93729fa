"""In-memory stand-ins for what the Kafka gateway gives the channel gateway library: a
claim store, a message directory and a webhook event log (the real ones are the claim
table and the id-map topic, in engine/stream/gateway)."""

from __future__ import annotations

from dataclasses import dataclass, field

from engine.channels.gateway import ChannelGateway, Claim, SendOutcome
from engine.channels.webhooks import SentMessage
from engine.core.effects import SendRequest
from engine.core.inputs import Receipt


@dataclass
class MemoryClaims:
    """Claims kept in a dict; ``directory`` (if any) learns each claimed message."""

    claims: dict[str, Claim] = field(default_factory=dict)
    directory: MemoryDirectory | None = None

    async def claim(self, req: SendRequest, claim: Claim) -> None:
        assert req.message_id not in self.claims, "claimed twice"
        self.claims[req.message_id] = claim
        if self.directory is not None:
            self.directory.remember(sent_message(req, claim))


def sent_message(req: SendRequest, claim: Claim, provider_id: str | None = None) -> SentMessage:
    return SentMessage(
        req.message_id,
        req.user_id,
        claim.to,
        req.channel,
        claim.provider,
        req.journey_id,
        req.node_id,
        0,
        provider_id,
    )


@dataclass
class MemoryDirectory:
    messages: dict[str, SentMessage] = field(default_factory=dict)
    provider_ids: dict[str, str] = field(default_factory=dict)
    phones: dict[str, str] = field(default_factory=dict)

    def remember(self, sent: SentMessage) -> None:
        self.messages[sent.message_id] = sent
        if sent.provider_id:
            self.provider_ids[sent.provider_id] = sent.message_id
        self.phones[sent.phone] = sent.message_id

    def by_message_id(self, message_id: str) -> SentMessage | None:
        return self.messages.get(message_id)

    def by_provider_id(self, provider_id: str) -> SentMessage | None:
        mid = self.provider_ids.get(provider_id)
        return None if mid is None else self.messages.get(mid)

    def latest_for_phone(self, phone: str) -> SentMessage | None:
        mid = self.phones.get(phone)
        return None if mid is None else self.messages.get(mid)


@dataclass
class MemoryEvents:
    keys: set[str] = field(default_factory=set)

    def seen(self, key: str) -> bool:
        return key in self.keys

    async def mark(self, key: str) -> None:
        self.keys.add(key)


async def send(
    gateway: ChannelGateway, req: SendRequest, directory: MemoryDirectory | None = None
) -> list[Receipt]:
    """Send through the library like the Kafka gateway does; the receipts due now (the
    provider's id goes to ``directory``, as the gateway's id map would have it)."""
    outcome: SendOutcome = await gateway.send(req)
    if directory is not None and outcome.claim is not None and outcome.provider_id:
        directory.remember(sent_message(req, outcome.claim, outcome.provider_id))
    return list(outcome.receipts)
