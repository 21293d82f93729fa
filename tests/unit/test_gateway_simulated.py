"""The one seeded simulated provider: alone, behind the gateway, and as the contract's
(what ``journeys simulate`` and ``journeys gateway`` run by default)."""

from __future__ import annotations

import random
import uuid
from typing import Any

from engine.channels.gateway import ChannelGateway
from engine.channels.offline import OfflineGateway
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
        to=kw.pop("to", f"+1415555{n % 10000:04d}"),
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


async def events(gw: ChannelGateway, r: SendRequest) -> list[Receipt | Inbound]:
    """What the provider announced for this send (the gateway produces each when due)."""
    outcome = await gw.send(r)
    return [*outcome.receipts, *outcome.later]


async def test_plan_is_deterministic_per_seed_and_message_whatever_the_order() -> None:
    requests = [req(n) for n in range(1, 200)]
    a, b = SimulatedProvider(seed=42), SimulatedProvider(seed=42)
    events_a = [e for r in requests for e in await events(gateway(a), r)]
    shuffled = list(requests)
    random.Random(3).shuffle(shuffled)
    gw_b = gateway(b)
    events_b = [e for r in shuffled for e in await events(gw_b, r)]
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
    [receipt] = await events(gateway(sim), req(1))
    assert (receipt.status, receipt.reason) == ("not_capable", None)
    assert not sim.taken(req(1).message_id)


async def test_profile_overrides_the_capability_draw() -> None:
    sim = SimulatedProvider(seed=9, rcs_capable_share=0.0)
    assert (await gateway(sim).send(req(1, profile={"rcs_capable": True}))).status == "sent"
    sim2 = SimulatedProvider(seed=9, rcs_capable_share=1.0)
    [receipt] = await events(gateway(sim2), req(1, profile={"rcs_capable": False}))
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
    r = req(1, ttl_ms=60_000, profile={"rcs_capable": True})
    [delivered] = sim.accept(r)
    assert sim.revoke_now(Revoke(r.message_id, r.user_id, r.ts + 5_000)) == [
        Receipt(r.user_id, r.ts + 5_000, "revoked", r.message_id)
    ]
    assert not sim.is_live(delivered)


async def test_revoke_after_delivery_changes_nothing() -> None:
    sim = SimulatedProvider(seed=4, failure_rate=0.0, read_rate=0.0, delivery_latency_ms=(1, 2))
    r = req(1, profile={"rcs_capable": True})
    [delivered] = sim.accept(r)
    assert sim.revoke_now(Revoke(r.message_id, r.user_id, r.ts + 60_000)) == []
    assert sim.is_live(delivered)


async def test_replies_are_left_for_the_core_to_classify() -> None:
    sim = SimulatedProvider(
        seed=3, failure_rate=0.0, read_rate=1.0, reply_rate=0.0, opt_out_rate=1.0
    )
    inbound = [e for e in sim.plan(req(1)) if isinstance(e, Inbound)]
    stop = [e for e in inbound if e.text == "STOP"]
    assert len(stop) == 1 and stop[0].keyword is None and stop[0].event_id


async def test_repeated_send_is_ignored_like_rbm() -> None:
    """A gateway restarted after a crash sends a claimed message again with its id: the
    user gets it once."""
    sim = SimulatedProvider(seed=1)
    r = req(1, profile={"rcs_capable": True})
    first = await events(gateway(sim), r)
    again = await events(gateway(sim), r)
    assert first and again == [] and sim.repeats == 1


async def test_the_contract_delivers_five_seconds_after_the_send_and_nothing_else() -> None:
    sim = SimulatedProvider.contract()
    for n in range(1, 50):
        for channel in ("rcs", "sms"):
            r = req(n, channel)
            assert sim.plan(r) == [Receipt(r.user_id, r.ts + 5_000, "delivered", r.message_id)]
    assert not sim.is_capable("+14155550000", {"rcs_capable": False})


async def test_the_offline_gateway_and_the_library_agree_on_the_contract() -> None:
    """journeys simulate and journeys gateway run the same provider: the same receipts."""
    offline = OfflineGateway()
    online = ChannelGateway(
        rcs=(shared := SimulatedProvider.contract()), sms=shared, now_ms=lambda: T0
    )
    cases = [
        req(1),
        req(2, "sms"),
        req(3, profile={"rcs_capable": False}),
        req(4, to="555"),  # refused: invalid_phone
    ]
    for r in cases:
        assert offline.send(r) == await events(online, r), r
