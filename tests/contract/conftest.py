"""Contract tests: the HTTP adapters against a local fake provider on 127.0.0.1, and the
webhook receiver called back by it. Never a real provider; no real sleeping."""

from __future__ import annotations

import random
from collections.abc import AsyncIterator
from typing import Any

import pytest
from fake_provider import NOW_MS, FakeProvider, Stack

from engine.channels.gateway import ChannelGateway, InMemoryDirectory
from engine.channels.providers.rbm import RbmProvider
from engine.channels.providers.twilio import TwilioSmsProvider
from engine.channels.ratelimit import RetryPolicy
from engine.channels.webhooks import WebhookReceiver
from engine.core.inputs import Inbound, Receipt


@pytest.fixture
async def stack() -> AsyncIterator[Stack]:
    fake = FakeProvider()
    directory = InMemoryDirectory()
    emitted: list[Receipt | Inbound] = []
    dead: list[tuple[str, Any]] = []
    sleeps: list[float] = []

    async def sink(item: Receipt | Inbound) -> None:
        emitted.append(item)

    async def dead_letter(reason: str, raw: Any) -> None:
        dead.append((reason, raw))

    async def fake_sleep(seconds: float) -> None:
        sleeps.append(seconds)

    receiver = WebhookReceiver(
        sink=sink,
        directory=directory,
        rbm_client_token=fake.client_token,
        sms_auth_token=fake.auth_token,
        dead_letter=dead_letter,
        now_ms=lambda: NOW_MS,
    )
    gateway: ChannelGateway | None = None
    try:
        base = await fake.start()
        port = await receiver.start("127.0.0.1", 0)
        fake.webhook_base = f"http://127.0.0.1:{port}"
        rbm = RbmProvider(agent_id=fake.agent_id, token=fake.bearer, base_url=base, timeout_s=5)
        sms = TwilioSmsProvider(
            account_sid=fake.account_sid,
            auth_token=fake.auth_token,
            from_number="+15005550006",
            status_callback=f"{fake.webhook_base}/webhooks/sms",
            base_url=base,
            timeout_s=5,
        )
        gateway = ChannelGateway(
            rcs=rbm,
            sms=sms,
            directory=directory,
            retry=RetryPolicy(max_attempts=4, base_s=0.2),
            sleep=fake_sleep,
            now_ms=lambda: NOW_MS,
            rng=random.Random(11),
        )
        yield Stack(fake, gateway, receiver, rbm, sms, emitted, dead, sleeps)
    finally:
        if gateway is not None:
            await gateway.close()
        await receiver.stop()
        await fake.stop()
