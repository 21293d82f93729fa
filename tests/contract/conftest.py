"""Contract tests: the HTTP adapters against a local fake provider on 127.0.0.1, and the
webhook receiver called back by it. Never a real provider; no real sleeping."""

from __future__ import annotations

import random
from collections.abc import AsyncIterator

import pytest
from aiohttp import web
from fake_provider import NOW_MS, FakeProvider, Stack

from engine.channels.gateway import ChannelGateway
from engine.channels.providers.rbm import RbmProvider
from engine.channels.providers.twilio import TwilioSmsProvider
from engine.channels.ratelimit import RetryPolicy
from engine.channels.webhooks import SentMessage, WebhookReceiver
from engine.core.inputs import Inbound, Receipt
from tests.fakes.gateway import MemoryClaims, MemoryDirectory, MemoryEvents


@pytest.fixture
async def stack() -> AsyncIterator[Stack]:
    fake = FakeProvider()
    directory = MemoryDirectory()
    claims = MemoryClaims(directory=directory)
    emitted: list[Receipt | Inbound] = []
    dead: list[tuple[str, str]] = []
    sleeps: list[float] = []
    clock = [0.0]  # the gateway's monotonic clock: only sleeping moves it

    async def sink(item: Receipt | Inbound, sent: SentMessage) -> None:
        emitted.append(item)

    async def dead_letter(reason: str, detail: str, path: str, body: bytes) -> None:
        dead.append((reason, detail))

    async def fake_sleep(seconds: float) -> None:
        sleeps.append(seconds)
        clock[0] += seconds

    receiver = WebhookReceiver(
        sink=sink,
        directory=directory,
        events=MemoryEvents(),
        dead_letter=dead_letter,
        rbm_client_token=fake.client_token,
        twilio_auth_token=fake.auth_token,
        lookup_wait_s=0.0,
        now_ms=lambda: NOW_MS,
    )
    gateway: ChannelGateway | None = None
    runner = web.AppRunner(receiver.app())
    try:
        base = await fake.start()
        await runner.setup()
        site = web.TCPSite(runner, "127.0.0.1", 0)
        await site.start()
        fake.webhook_base = f"http://127.0.0.1:{runner.addresses[0][1]}"
        rbm = RbmProvider(agent_id=fake.agent_id, token=fake.bearer, base_url=base, timeout_s=5)
        sms = TwilioSmsProvider(
            account_sid=fake.account_sid,
            auth_token=fake.auth_token,
            from_number="+15005550006",
            status_callback=f"{fake.webhook_base}/webhooks/twilio",
            base_url=base,
            timeout_s=5,
        )
        gateway = ChannelGateway(
            rcs=rbm,
            sms=sms,
            claims=claims,
            retry=RetryPolicy(max_attempts=4, base_s=0.2),
            lookup_settle_s=0.0,
            sleep=fake_sleep,
            monotonic=lambda: clock[0],
            now_ms=lambda: NOW_MS,
            rng=random.Random(11),
        )
        yield Stack(fake, gateway, receiver, rbm, sms, claims, directory, emitted, dead, sleeps)
    finally:
        if gateway is not None:
            await gateway.close()
        await runner.cleanup()
        await fake.stop()
