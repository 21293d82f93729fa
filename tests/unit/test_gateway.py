"""ChannelGateway with scripted in-process providers and a fake clock (no real sleeping)."""

from __future__ import annotations

import asyncio
import random
import uuid
from collections.abc import Mapping
from typing import Any

import pytest

from engine.channels.gateway import ChannelGateway, InMemoryDedupeStore, InMemoryDirectory
from engine.channels.prepare import Prepared
from engine.channels.providers.base import (
    Capability,
    NotReachable,
    OutcomeUnknown,
    ProviderRejected,
    RateLimited,
    SendResult,
    UnsupportedFeature,
)
from engine.channels.ratelimit import RateLimit, RetryPolicy, TokenBucket
from engine.core.effects import Revoke, SendRequest
from engine.errors import ProviderError, RetryableProviderError

PHONE = "+14155550123"
TEXT = {"channel": "rcs", "text": "Hello"}
CARD_WITH_DIAL = {
    "channel": "rcs",
    "rich_card": {
        "title": "Hi",
        "suggestions": [
            {"kind": "dial", "text": "Call", "postback": "call", "phone": "+14155552671"}
        ],
    },
}


class FakeClock:
    def __init__(self) -> None:
        self.t = 0.0
        self.sleeps: list[float] = []

    def monotonic(self) -> float:
        return self.t

    async def sleep(self, seconds: float) -> None:
        self.sleeps.append(seconds)
        self.t += seconds

    def now_ms(self) -> int:
        return 1_000_000 + int(self.t * 1000)


class Scripted:
    """An RCS + SMS provider whose answers are scripted: an exception to raise, or None."""

    def __init__(
        self,
        name: str = "scripted",
        *,
        script: list[ProviderError | None] | None = None,
        capability: Capability | ProviderError | None = None,
        revoke_script: list[ProviderError | None] | None = None,
        idempotent: bool = True,
    ) -> None:
        self.name = name
        self.idempotent = idempotent
        self.script = list(script or [])
        self.cap = capability or Capability(reachable=True)
        self.revoke_script = list(revoke_script or [])
        self.sends: list[tuple[Prepared, SendRequest]] = []
        self.capability_calls: list[str] = []
        self.revokes: list[tuple[str, Revoke]] = []
        self.closed = False

    async def send(self, msg: Prepared, req: SendRequest) -> SendResult:
        self.sends.append((msg, req))
        await asyncio.sleep(0)
        if self.script and (exc := self.script.pop(0)) is not None:
            raise exc
        return SendResult(provider_id=f"P-{req.message_id}")

    async def capability(self, phone: str, profile: Mapping[str, Any] | None = None) -> Capability:
        self.capability_calls.append(phone)
        if isinstance(self.cap, ProviderError):
            raise self.cap
        return self.cap

    async def revoke(self, phone: str, rev: Revoke) -> None:
        self.revokes.append((phone, rev))
        if self.revoke_script and (exc := self.revoke_script.pop(0)) is not None:
            raise exc

    async def close(self) -> None:
        self.closed = True


def request(
    n: int = 1, channel: str = "rcs", content: Mapping[str, Any] | None = None, **kw: Any
) -> SendRequest:
    return SendRequest(
        message_id=str(uuid.UUID(int=n)),
        ts=1_000_000,
        user_id=f"u-{n}",
        to=kw.pop("to", PHONE),
        channel=channel,
        content=dict(content or (TEXT if channel == "rcs" else {"channel": "sms", "text": "Hi"})),
        journey_id="j",
        journey_version=1,
        instance_id="i",
        node_id="n",
        **kw,
    )


def gateway(
    clock: FakeClock, rcs: Scripted | None = None, sms: Scripted | None = None, **kw: Any
) -> ChannelGateway:
    return ChannelGateway(
        rcs=rcs,
        sms=sms,
        sleep=clock.sleep,
        monotonic=clock.monotonic,
        now_ms=clock.now_ms,
        rng=random.Random(7),
        **kw,
    )


async def test_same_message_id_twice_is_sent_once() -> None:
    clock, rcs = FakeClock(), Scripted()
    gw = gateway(clock, rcs)
    assert await gw.handle_send(request()) == []
    assert await gw.handle_send(request()) == []
    assert len(rcs.sends) == 1


async def test_concurrent_duplicates_are_sent_once() -> None:
    clock, rcs = FakeClock(), Scripted()
    gw = gateway(clock, rcs)
    await asyncio.gather(*(gw.handle_send(request()) for _ in range(5)))
    assert len(rcs.sends) == 1


async def test_dedupe_store_is_shared_across_gateways() -> None:
    """A restarted worker with the same (durable) store doesn't send again."""
    clock, store = FakeClock(), InMemoryDedupeStore()
    first, second = Scripted(), Scripted()
    await gateway(clock, first, dedupe=store).handle_send(request())
    await gateway(clock, second, dedupe=store).handle_send(request())
    assert len(first.sends) == 1 and second.sends == []
    assert store.states[request().message_id] == "sent"


async def test_429_and_5xx_are_retried_with_backoff_then_succeed() -> None:
    clock = FakeClock()
    rcs = Scripted(
        script=[
            RateLimited("429", retry_after=None),
            RetryableProviderError("503", status=503),
            OutcomeUnknown("500", status=500),
        ]
    )
    gw = gateway(clock, rcs, retry=RetryPolicy(base_s=1.0, factor=2.0, cap_s=30.0))
    assert await gw.handle_send(request()) == []
    assert len(rcs.sends) == 4
    # equal jitter: retry n waits between c/2 and c, c = 1, 2, 4
    assert len(clock.sleeps) == 3
    for wait, ceiling in zip(clock.sleeps, (1.0, 2.0, 4.0), strict=True):
        assert ceiling / 2 <= wait <= ceiling


async def test_backoff_is_deterministic_for_a_seeded_rng() -> None:
    waits = []
    for _ in range(2):
        clock = FakeClock()
        rcs = Scripted(script=[RetryableProviderError("503", status=503)] * 3)
        await gateway(clock, rcs).handle_send(request())
        waits.append(clock.sleeps)
    assert waits[0] == waits[1]


async def test_retry_after_is_a_floor() -> None:
    clock = FakeClock()
    rcs = Scripted(script=[RateLimited("429", retry_after=7.0)])
    await gateway(clock, rcs, retry=RetryPolicy(base_s=0.1)).handle_send(request())
    assert clock.sleeps == [7.0]


async def test_429_holds_the_providers_bucket() -> None:
    clock = FakeClock()
    rcs = Scripted(script=[RateLimited("429", retry_after=5.0)])
    gw = gateway(clock, rcs, rate_limits={"scripted": RateLimit(per_second=100, burst=10)})
    assert await gw.handle_send(request()) == []
    assert len(rcs.sends) == 2
    assert clock.t == pytest.approx(5.0)


async def test_4xx_is_not_retried_and_gives_a_failed_receipt_with_reason() -> None:
    clock = FakeClock()
    sms = Scripted(script=[ProviderRejected("bad number", status=400, code="21211")])
    gw = gateway(clock, sms=sms)
    [receipt] = await gw.handle_send(request(channel="sms"))
    assert (receipt.status, receipt.reason) == ("failed", "provider_rejected:21211")
    assert receipt.user_id == "u-1" and receipt.message_id == request().message_id
    assert len(sms.sends) == 1 and clock.sleeps == []


async def test_giving_up_after_max_attempts() -> None:
    clock = FakeClock()
    rcs = Scripted(script=[RetryableProviderError("503", status=503)] * 10)
    gw = gateway(clock, rcs, retry=RetryPolicy(max_attempts=3))
    [receipt] = await gw.handle_send(request())
    assert (receipt.status, receipt.reason) == ("failed", "provider_unavailable:503")
    assert len(rcs.sends) == 3 and len(clock.sleeps) == 2


async def test_ambiguous_failure_is_not_retried_for_a_non_idempotent_provider() -> None:
    clock = FakeClock()
    sms = Scripted(script=[OutcomeUnknown("timed out")], idempotent=False)
    [receipt] = await gateway(clock, sms=sms).handle_send(request(channel="sms"))
    assert (receipt.status, receipt.reason) == ("failed", "provider_outcome_unknown:timeout")
    assert len(sms.sends) == 1


async def test_token_bucket_limits_the_rate() -> None:
    clock = FakeClock()
    bucket = TokenBucket(
        RateLimit(per_second=2, burst=2), monotonic=clock.monotonic, sleep=clock.sleep
    )
    for _ in range(10):
        await bucket.acquire()
    # two at once from the burst, then one every half second
    assert clock.t == pytest.approx(4.0)
    assert not bucket.try_acquire()
    clock.t += 0.5
    assert bucket.try_acquire()


async def test_gateway_sends_under_the_providers_rate_limit() -> None:
    clock, rcs = FakeClock(), Scripted()
    gw = gateway(
        clock,
        rcs,
        rate_limits={"scripted": RateLimit(per_second=10, burst=1)},
        check_capability=False,
    )
    for n in range(1, 21):
        await gw.handle_send(request(n))
    assert len(rcs.sends) == 20
    assert clock.t == pytest.approx(1.9)


async def test_not_reachable_capability_gives_not_capable_without_sending() -> None:
    clock = FakeClock()
    rcs = Scripted(capability=NotReachable("404", status=404))
    [receipt] = await gateway(clock, rcs).handle_send(request())
    assert (receipt.status, receipt.reason) == ("not_capable", "not_reachable")
    assert rcs.sends == []


async def test_missing_feature_gives_not_capable() -> None:
    clock = FakeClock()
    rcs = Scripted(capability=Capability(True, frozenset({"RICHCARD_STANDALONE"})))
    [receipt] = await gateway(clock, rcs).handle_send(request(content=CARD_WITH_DIAL))
    assert (receipt.status, receipt.reason) == ("not_capable", "missing_features:ACTION_DIAL")


async def test_capability_is_cached_per_phone() -> None:
    clock, rcs = FakeClock(), Scripted()
    gw = gateway(clock, rcs, capability_ttl_s=60)
    await gw.handle_send(request(1))
    await gw.handle_send(request(2))
    assert len(rcs.capability_calls) == 1
    clock.t += 61
    await gw.handle_send(request(3))
    assert len(rcs.capability_calls) == 2


async def test_send_404_and_400_map_to_not_capable() -> None:
    clock = FakeClock()
    rcs = Scripted(script=[NotReachable("404", status=404), UnsupportedFeature("400", status=400)])
    gw = gateway(clock, rcs, check_capability=False)
    [a] = await gw.handle_send(request(1))
    [b] = await gw.handle_send(request(2))
    assert (a.status, a.reason) == ("not_capable", "not_reachable")
    assert (b.status, b.reason) == ("not_capable", "unsupported_feature")


async def test_capability_lookup_failure_does_not_block_the_send() -> None:
    clock = FakeClock()
    rcs = Scripted(capability=ProviderRejected("401", status=401))
    assert await gateway(clock, rcs).handle_send(request()) == []
    assert len(rcs.sends) == 1


async def test_refused_request_never_reaches_the_provider() -> None:
    clock, rcs = FakeClock(), Scripted()
    [receipt] = await gateway(clock, rcs).handle_send(request(to="not a phone"))
    assert (receipt.status, receipt.reason) == ("failed", "invalid_phone")
    assert receipt.ts == clock.now_ms()
    assert rcs.sends == []


async def test_missing_provider_or_unknown_channel_fails_the_send() -> None:
    gw = gateway(FakeClock(), Scripted(), Scripted("sms"))
    [receipt] = await gateway(FakeClock(), Scripted()).handle_send(request(channel="sms"))
    assert (receipt.status, receipt.reason) == ("failed", "no_provider:sms")
    [other] = await gw.handle_send(request(2, channel="email", content={"text": "x"}))
    assert (other.status, other.reason) == ("failed", "unknown_channel:email")


async def test_sms_fallback_derives_its_text_from_the_rcs_original() -> None:
    clock, rcs, sms = FakeClock(), Scripted(capability=Capability(False)), Scripted("sms")
    gw = gateway(clock, rcs, sms)
    original = request(1, content={"channel": "rcs", "rich_card": {"title": "Shipped"}})
    [receipt] = await gw.handle_send(original)
    assert receipt.status == "not_capable"
    fallback = request(
        2,
        channel="sms",
        content={"channel": "sms", "derive_from": original.message_id},
        purpose="fallback",
        fallback_of=original.message_id,
    )
    assert await gw.handle_send(fallback) == []
    [(msg, _)] = sms.sends
    assert msg.payload["body"].startswith("Shipped")


async def test_directory_records_sends_for_webhooks() -> None:
    clock, rcs, directory = FakeClock(), Scripted(), InMemoryDirectory()
    await gateway(clock, rcs, directory=directory).handle_send(request())
    sent = await directory.by_provider_id(f"P-{request().message_id}")
    assert sent is not None and sent.user_id == "u-1" and sent.channel == "rcs"
    assert await directory.user_for_phone(PHONE) == "u-1"


async def test_revoke_calls_the_provider_and_trusts_the_events() -> None:
    clock, rcs = FakeClock(), Scripted()
    gw = gateway(clock, rcs)
    req = request(ttl_ms=600_000)
    await gw.handle_send(req)
    assert await gw.handle_revoke(Revoke(req.message_id, req.user_id, req.ts + 600_000)) == []
    assert [(phone, rev.message_id) for phone, rev in rcs.revokes] == [(PHONE, req.message_id)]


async def test_revoke_failure_gives_revoke_failed() -> None:
    clock = FakeClock()
    rcs = Scripted(revoke_script=[RetryableProviderError("503", status=503)] * 5)
    gw = gateway(clock, rcs, retry=RetryPolicy(max_attempts=2))
    req = request()
    await gw.handle_send(req)
    [receipt] = await gw.handle_revoke(Revoke(req.message_id, req.user_id, req.ts))
    assert (receipt.status, receipt.reason) == ("revoke_failed", "provider_unavailable:503")
    assert len(rcs.revokes) == 2


async def test_revoke_of_unknown_or_sms_message_does_nothing() -> None:
    clock, rcs, sms = FakeClock(), Scripted(), Scripted("sms")
    gw = gateway(clock, rcs, sms)
    req = request(channel="sms")
    await gw.handle_send(req)
    assert await gw.handle_revoke(Revoke(req.message_id, req.user_id, req.ts)) == []
    assert await gw.handle_revoke(Revoke(str(uuid.UUID(int=99)), "u", 0)) == []
    assert rcs.revokes == []


async def test_close_closes_each_provider_once() -> None:
    both = Scripted()
    gw = ChannelGateway(rcs=both, sms=both)
    await gw.close()
    assert both.closed


def test_retry_policy_validates() -> None:
    with pytest.raises(ValueError):
        RetryPolicy(max_attempts=0)
    with pytest.raises(ValueError):
        RateLimit(per_second=0)
