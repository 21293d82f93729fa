"""The seeded simulated provider, alone and behind the gateway."""

from __future__ import annotations

import asyncio
import contextlib
import random
import uuid
from typing import Any

from engine.channels.gateway import ChannelGateway
from engine.channels.providers.simulated import SimulatedProvider
from engine.core.effects import Revoke, SendRequest
from engine.core.inputs import Inbound, Receipt

T0 = 1_700_000_000_000
CARD = {
    "channel": "rcs",
    "rich_card": {
        "title": "Order confirmed",
        "suggestions": [{"kind": "reply", "text": "Track", "postback": "track"}],
    },
}


def req(n: int, channel: str = "rcs", **kw: Any) -> SendRequest:
    content = CARD if channel == "rcs" else {"channel": "sms", "text": "Hi"}
    return SendRequest(
        message_id=str(uuid.UUID(int=n)),
        ts=T0 + n,
        user_id=f"u-{n}",
        to=f"+1415555{n % 10000:04d}",
        channel=channel,
        content=content,
        journey_id="j",
        journey_version=1,
        instance_id="i",
        node_id="n",
        **kw,
    )


def gateway(provider: SimulatedProvider) -> ChannelGateway:
    return ChannelGateway(rcs=provider, sms=provider, now_ms=lambda: T0, rng=random.Random(1))


async def drain(provider: SimulatedProvider) -> list[Receipt | Inbound]:
    return provider.due(2**62)


async def test_plan_is_deterministic_per_seed_and_message_whatever_the_order() -> None:
    requests = [req(n) for n in range(1, 200)]
    a, b = SimulatedProvider(seed=42), SimulatedProvider(seed=42)
    for r in requests:
        await gateway(a).handle_send(r)
    shuffled = list(requests)
    random.Random(3).shuffle(shuffled)
    gw_b = gateway(b)
    for r in shuffled:
        await gw_b.handle_send(r)
    events_a, events_b = await drain(a), await drain(b)
    key = lambda e: (e.ts, e.message_id, type(e).__name__)  # noqa: E731
    assert sorted(events_a, key=key) == sorted(events_b, key=key)
    assert events_a  # something happened
    other = SimulatedProvider(seed=43)
    assert [other.plan(r) for r in requests] != [a.plan(r) for r in requests]


async def test_rates_are_roughly_the_configured_ones() -> None:
    sim = SimulatedProvider(seed=1, rcs_capable_share=0.8, failure_rate=0.1, read_rate=0.5)
    n = 4000
    capable = sum(sim.is_capable(f"+1415555{i:04d}") for i in range(n))
    assert 0.77 < capable / n < 0.83
    plans = [sim.plan(req(i)) for i in range(1, n + 1)]
    statuses = [e.status for p in plans for e in p if isinstance(e, Receipt)]
    assert 0.08 < statuses.count("failed") / n < 0.12
    delivered = statuses.count("delivered")
    assert 0.45 < statuses.count("read") / delivered < 0.55
    taps = sum(1 for p in plans for e in p if isinstance(e, Inbound) and e.postback == "track")
    assert 0.15 < taps / statuses.count("read") < 0.25


async def test_receipts_are_timestamped_within_the_latency_range() -> None:
    sim = SimulatedProvider(seed=5, failure_rate=0.0, delivery_latency_ms=(1000, 5000))
    for n in range(1, 100):
        first = sim.plan(req(n))[0]
        assert isinstance(first, Receipt) and first.status == "delivered"
        assert 1000 <= first.ts - req(n).ts < 5000


async def test_not_capable_users_get_not_capable_through_the_gateway() -> None:
    sim = SimulatedProvider(seed=9, rcs_capable_share=0.0)
    [receipt] = await gateway(sim).handle_send(req(1))
    assert (receipt.status, receipt.reason) == ("not_capable", "not_reachable")
    assert sim.sent == {}


async def test_profile_overrides_the_capability_draw() -> None:
    sim = SimulatedProvider(seed=9, rcs_capable_share=0.0)
    assert await gateway(sim).handle_send(req(1, profile={"rcs_capable": True})) == []
    sim2 = SimulatedProvider(seed=9, rcs_capable_share=1.0)
    [receipt] = await gateway(sim2).handle_send(req(1, profile={"rcs_capable": False}))
    assert receipt.status == "not_capable"


async def test_sms_has_no_read_receipts() -> None:
    sim = SimulatedProvider(seed=2, failure_rate=0.0, read_rate=1.0)
    events = sim.plan(req(1, channel="sms"))
    assert [e.status for e in events if isinstance(e, Receipt)] == ["delivered"]


async def test_ttl_shorter_than_latency_is_revoked_by_the_platform() -> None:
    sim = SimulatedProvider(seed=2, delivery_latency_ms=(10_000, 20_000))
    r = req(1, ttl_ms=5_000)
    assert sim.plan(r) == [
        Receipt(r.user_id, r.ts + 5_000, "revoked", r.message_id, None, "ttl_expired")
    ]


async def test_revoke_before_delivery_cancels_it() -> None:
    sim = SimulatedProvider(seed=4, failure_rate=0.0, delivery_latency_ms=(10_000, 20_000))
    gw = gateway(sim)
    r = req(1, ttl_ms=60_000, profile={"rcs_capable": True})
    assert await gw.handle_send(r) == []
    assert await gw.handle_revoke(Revoke(r.message_id, r.user_id, r.ts + 5_000)) == []
    events = await drain(sim)
    assert [(e.status, e.ts - r.ts) for e in events if isinstance(e, Receipt)] == [
        ("revoked", 5_000)
    ]


async def test_revoke_after_delivery_changes_nothing() -> None:
    sim = SimulatedProvider(seed=4, failure_rate=0.0, read_rate=0.0, delivery_latency_ms=(1, 2))
    gw = gateway(sim)
    r = req(1, profile={"rcs_capable": True})
    assert await gw.handle_send(r) == []
    await gw.handle_revoke(Revoke(r.message_id, r.user_id, r.ts + 60_000))
    assert [e.status for e in await drain(sim) if isinstance(e, Receipt)] == ["delivered"]


async def test_replies_are_classified_for_keywords() -> None:
    sim = SimulatedProvider(
        seed=3, failure_rate=0.0, read_rate=1.0, reply_rate=0.0, opt_out_rate=1.0
    )
    inbound = [e for e in sim.plan(req(1)) if isinstance(e, Inbound)]
    stop = [e for e in inbound if e.text == "STOP"]
    assert len(stop) == 1 and stop[0].keyword == "opt_out" and stop[0].event_id


async def test_run_emits_events_when_due() -> None:
    sim = SimulatedProvider(
        seed=6,
        failure_rate=0.0,
        read_rate=0.0,
        tap_rate=0.0,
        reply_rate=0.0,
        delivery_latency_ms=(1000, 1001),
    )
    assert await gateway(sim).handle_send(req(1, channel="sms")) == []
    now = [T0]
    emitted: list[Receipt | Inbound] = []

    async def fake_sleep(seconds: float) -> None:
        now[0] += int(seconds * 1000) or 1
        await asyncio.sleep(0)

    async def emit(event: Receipt | Inbound) -> None:
        emitted.append(event)

    task = asyncio.create_task(sim.run(emit, now_ms=lambda: now[0], sleep=fake_sleep))
    while not emitted:
        await asyncio.sleep(0)
    task.cancel()
    with contextlib.suppress(asyncio.CancelledError):
        await task
    assert [(e.status, e.ts) for e in emitted if isinstance(e, Receipt)] == [
        ("delivered", req(1).ts + 1000)
    ]
    assert now[0] >= req(1).ts + 1000


async def test_repeated_send_is_ignored_like_rbm() -> None:
    sim = SimulatedProvider(seed=1)
    r = req(1, profile={"rcs_capable": True})
    gw1, gw2 = gateway(sim), gateway(sim)  # two gateways without a shared dedupe store
    await gw1.handle_send(r)
    await gw2.handle_send(r)
    delivered = [e for e in await drain(sim) if isinstance(e, Receipt)]
    assert len([e for e in delivered if e.status in ("delivered", "failed")]) == 1
