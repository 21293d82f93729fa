"""ChannelGateway with scripted in-process providers and a fake clock (no real sleeping)."""

from __future__ import annotations

import asyncio
import random
import uuid
from collections.abc import Mapping
from typing import Any

import pytest

from engine.channels.gateway import ChannelGateway, Claim
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
from engine.channels.ratelimit import RateLimit, RetryPolicy, TokenBucket, WindowLimit
from engine.core.effects import Revoke, SendRequest
from engine.core.inputs import Receipt
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
        self.order: list[str] = []  # what happened, with the claims (see Claims)

    async def send(self, msg: Prepared, req: SendRequest) -> SendResult:
        self.sends.append((msg, req))
        self.order.append(f"send {req.message_id}")
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


class LookingUp(Scripted):
    """A provider without idempotency key that can be asked about a send (Twilio)."""

    def __init__(self, found: SendResult | None = None, **kw: Any) -> None:
        super().__init__("lookup", idempotent=False, **kw)
        self.found = found
        self.lookups: list[tuple[str, str, int]] = []

    async def lookup(self, to: str, body: str, since_ms: int) -> SendResult | None:
        self.lookups.append((to, body, since_ms))
        return self.found


class Claims:
    """A claim store that notes when each claim became durable."""

    def __init__(self, order: list[str]) -> None:
        self.order = order
        self.claims: dict[str, Claim] = {}

    async def claim(self, req: SendRequest, claim: Claim) -> None:
        self.order.append(f"claim {req.message_id}")
        self.claims[req.message_id] = claim


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


async def receipts(gw: ChannelGateway, req: SendRequest) -> list[Receipt]:
    return list((await gw.send(req)).receipts)


async def test_the_claim_is_durable_before_the_provider_is_called() -> None:
    clock, sms = FakeClock(), Scripted("sms", idempotent=False)
    claims = Claims(sms.order)
    gw = gateway(clock, sms=sms, claims=claims)
    outcome = await gw.send(request(channel="sms"))
    mid = request().message_id
    assert sms.order == [f"claim {mid}", f"send {mid}"]
    claim = claims.claims[mid]
    # what a lookup needs after a crash: the exact number and text
    assert (claim.to, claim.body, claim.provider, claim.idempotent) == (PHONE, "Hi", "sms", False)
    assert (outcome.status, outcome.provider_id, outcome.claim) == ("sent", f"P-{mid}", claim)


async def test_a_refused_or_not_capable_send_is_never_claimed() -> None:
    clock, rcs = FakeClock(), Scripted(capability=Capability(False))
    claims = Claims(rcs.order)
    gw = gateway(clock, rcs, claims=claims)
    assert (await gw.send(request(1))).status == "not_capable"
    assert (await gw.send(request(2, to="not a phone"))).status == "refused"
    assert claims.claims == {} and rcs.sends == []


async def test_resume_sends_an_idempotent_claim_again_with_the_same_id() -> None:
    clock, rcs = FakeClock(), Scripted()
    gw = gateway(clock, rcs)
    req = request()
    claim = Claim(req.message_id, "rcs", "scripted", True, PHONE, None, 1_000)
    outcome = await gw.resume(req, claim)
    assert outcome.status == "sent" and not outcome.looked_up
    [(msg, sent)] = rcs.sends
    assert sent.message_id == req.message_id and msg.to == PHONE


async def test_resume_looks_up_a_claim_of_a_provider_without_idempotency() -> None:
    clock = FakeClock()
    found = LookingUp(found=SendResult("SM1"))
    req = request(channel="sms")
    claim = Claim(req.message_id, "sms", "lookup", False, PHONE, "Hi", 1_000)
    outcome = await gateway(clock, sms=found).resume(req, claim)
    assert (outcome.status, outcome.provider_id, outcome.looked_up) == ("sent", "SM1", True)
    assert found.lookups == [(PHONE, "Hi", 1_000)] and found.sends == []
    missing = LookingUp(found=None)
    outcome = await gateway(clock, sms=missing).resume(req, claim)
    [receipt] = outcome.receipts
    assert (outcome.status, receipt.status) == ("unknown", "unknown")
    assert receipt.reason == "claimed_before_restart:not_found" and missing.sends == []


async def test_resume_without_a_lookup_is_unknown_never_sent_blindly() -> None:
    clock, sms = FakeClock(), Scripted("sms", idempotent=False)
    req = request(channel="sms")
    claim = Claim(req.message_id, "sms", "sms", False, PHONE, "Hi", 1_000)
    outcome = await gateway(clock, sms=sms).resume(req, claim)
    assert outcome.status == "unknown" and sms.sends == []
    assert outcome.receipts[0].reason == "claimed_before_restart:sms_has_no_lookup"


async def test_resume_with_another_provider_configured_is_unknown() -> None:
    """Claimed by RBM, resumed by a gateway now on the simulated provider: unknown."""
    clock, rcs = FakeClock(), Scripted("other")
    req = request()
    claim = Claim(req.message_id, "rcs", "rbm", True, PHONE, None, 1_000)
    outcome = await gateway(clock, rcs).resume(req, claim)
    assert outcome.status == "unknown" and rcs.sends == []


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
    assert await receipts(gw, request()) == []
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
        await gateway(clock, rcs).send(request())
        waits.append(clock.sleeps)
    assert waits[0] == waits[1]


async def test_retry_after_is_a_floor() -> None:
    clock = FakeClock()
    rcs = Scripted(script=[RateLimited("429", retry_after=7.0)])
    await gateway(clock, rcs, retry=RetryPolicy(base_s=0.1)).send(request())
    assert clock.sleeps == [7.0]


async def test_429_holds_every_send_to_that_provider() -> None:
    clock = FakeClock()
    rcs = Scripted(script=[RateLimited("429", retry_after=5.0)])
    gw = gateway(clock, rcs, rate_limits={"scripted": RateLimit(per_second=100, burst=10)})
    first, second = await asyncio.gather(gw.send(request(1)), gw.send(request(2)))
    assert len(rcs.sends) == 3
    assert clock.t == pytest.approx(5.0, abs=0.1)
    # the other send waited for the hold too (it was in flight when the 429 came)
    assert first.held_s >= 5.0 or second.held_s >= 4.9


async def test_4xx_is_not_retried_and_gives_a_failed_receipt_with_reason() -> None:
    clock = FakeClock()
    sms = Scripted(script=[ProviderRejected("bad number", status=400, code="21211")])
    gw = gateway(clock, sms=sms)
    [receipt] = await receipts(gw, request(channel="sms"))
    assert (receipt.status, receipt.reason) == ("failed", "provider_rejected:21211")
    assert receipt.user_id == "u-1" and receipt.message_id == request().message_id
    assert len(sms.sends) == 1 and clock.sleeps == []


async def test_giving_up_after_max_attempts() -> None:
    clock = FakeClock()
    rcs = Scripted(script=[RetryableProviderError("503", status=503)] * 10)
    gw = gateway(clock, rcs, retry=RetryPolicy(max_attempts=3))
    [receipt] = await receipts(gw, request())
    assert (receipt.status, receipt.reason) == ("failed", "provider_unavailable:503")
    assert len(rcs.sends) == 3 and len(clock.sleeps) == 2


async def test_an_idempotent_provider_ambiguous_to_the_end_leaves_the_fate_unknown() -> None:
    clock = FakeClock()
    rcs = Scripted(script=[OutcomeUnknown("500", status=500)] * 5)
    [receipt] = await receipts(gateway(clock, rcs, retry=RetryPolicy(max_attempts=3)), request())
    assert (receipt.status, receipt.reason) == ("unknown", "provider_outcome_unknown:500")


async def test_ambiguous_failure_without_lookup_is_unknown_never_repeated() -> None:
    clock = FakeClock()
    sms = Scripted(script=[OutcomeUnknown("timed out")], idempotent=False)
    [receipt] = await receipts(gateway(clock, sms=sms), request(channel="sms"))
    assert (receipt.status, receipt.reason) == (
        "unknown",
        "provider_outcome_unknown:OutcomeUnknown",
    )
    assert len(sms.sends) == 1


async def test_ambiguous_failure_of_a_non_idempotent_provider_is_looked_up() -> None:
    clock = FakeClock()
    sms = LookingUp(found=SendResult("SM9"), script=[OutcomeUnknown("timed out")])
    outcome = await gateway(clock, sms=sms, lookup_settle_s=2.0).send(request(channel="sms"))
    assert (outcome.status, outcome.provider_id, outcome.looked_up) == ("sent", "SM9", True)
    assert len(sms.sends) == 1 and clock.sleeps == [2.0]  # given time to show up first


async def test_a_5xx_found_nowhere_is_sent_again_a_timeout_is_not() -> None:
    clock = FakeClock()
    answered = LookingUp(found=None, script=[OutcomeUnknown("500", status=500)])
    assert (await gateway(clock, sms=answered).send(request(channel="sms"))).status == "sent"
    assert len(answered.sends) == 2  # it answered, and has no such message: not blind
    silent = LookingUp(found=None, script=[OutcomeUnknown("timed out")])
    outcome = await gateway(clock, sms=silent).send(request(channel="sms"))
    assert outcome.status == "unknown" and len(silent.sends) == 1


async def test_token_bucket_limits_the_rate() -> None:
    clock = FakeClock()
    bucket = TokenBucket(
        RateLimit(per_second=2, burst=2), monotonic=clock.monotonic, sleep=clock.sleep
    )
    for _ in range(10):
        await bucket.acquire()
    # two at once from the burst, then one every half second
    assert clock.t == pytest.approx(4.0)
    assert await bucket.acquire() == pytest.approx(0.5)


async def test_gateway_sends_under_the_providers_rate_limit() -> None:
    clock, rcs = FakeClock(), Scripted()
    gw = gateway(
        clock,
        rcs,
        rate_limits={"scripted": RateLimit(per_second=10, burst=1)},
        check_capability=False,
    )
    for n in range(1, 21):
        await gw.send(request(n))
    assert len(rcs.sends) == 20
    assert clock.t == pytest.approx(1.9)


async def test_an_instance_takes_its_share_of_the_rate() -> None:
    clock, rcs = FakeClock(), Scripted()
    gw = gateway(
        clock,
        rcs,
        rate_limits={"scripted": RateLimit(per_second=10, burst=1)},
        check_capability=False,
    )
    gw.set_share(0.5)  # half the partitions: 5 a second
    for n in range(1, 11):
        await gw.send(request(n))
    assert clock.t == pytest.approx(1.8)


async def test_a_held_send_reaches_the_provider_with_its_hand_over_time() -> None:
    clock, rcs = FakeClock(), Scripted()
    gw = gateway(
        clock,
        rcs,
        rate_limits={"scripted": RateLimit(per_second=0.5, burst=1)},
        check_capability=False,
    )
    await gw.send(request(1))
    held = await gw.send(request(2))  # waits 2 s for a token
    assert held.held_s == pytest.approx(2.0)
    assert held.handed_over_ms == clock.now_ms()
    (_, first), (_, second) = rcs.sends
    assert first.ts == request(1).ts and second.ts == held.handed_over_ms


async def test_a_journey_send_rate_window_keeps_the_order() -> None:
    clock = FakeClock()
    window = WindowLimit(2, 10.0, monotonic=clock.monotonic, sleep=clock.sleep)
    order: list[tuple[int, float]] = []

    async def one(n: int) -> None:
        await window.acquire()
        order.append((n, clock.t))

    await asyncio.gather(*(one(n) for n in range(5)))
    assert order == [(0, 0.0), (1, 0.0), (2, 10.0), (3, 10.0), (4, 20.0)]


async def test_not_reachable_capability_gives_not_capable_without_sending() -> None:
    clock = FakeClock()
    rcs = Scripted(capability=NotReachable("404", status=404))
    [receipt] = await receipts(gateway(clock, rcs), request())
    assert (receipt.status, receipt.reason) == ("not_capable", None)  # as the simulator says
    assert rcs.sends == []


async def test_missing_feature_gives_not_capable() -> None:
    clock = FakeClock()
    rcs = Scripted(capability=Capability(True, frozenset({"RICHCARD_STANDALONE"})))
    [receipt] = await receipts(gateway(clock, rcs), request(content=CARD_WITH_DIAL))
    assert (receipt.status, receipt.reason) == ("not_capable", "missing_features:ACTION_DIAL")


async def test_capability_is_cached_per_phone() -> None:
    clock, rcs = FakeClock(), Scripted()
    gw = gateway(clock, rcs, capability_ttl_s=60)
    await gw.send(request(1))
    await gw.send(request(2))
    assert len(rcs.capability_calls) == 1
    clock.t += 61
    await gw.send(request(3))
    assert len(rcs.capability_calls) == 2


async def test_send_404_and_400_map_to_not_capable() -> None:
    clock = FakeClock()
    rcs = Scripted(script=[NotReachable("404", status=404), UnsupportedFeature("400", status=400)])
    gw = gateway(clock, rcs, check_capability=False)
    [a] = await receipts(gw, request(1))
    [b] = await receipts(gw, request(2))
    assert (a.status, a.reason) == ("not_capable", None)
    assert (b.status, b.reason) == ("not_capable", "unsupported_feature")


async def test_capability_lookup_failure_does_not_block_the_send() -> None:
    clock = FakeClock()
    rcs = Scripted(capability=ProviderRejected("401", status=401))
    assert await receipts(gateway(clock, rcs), request()) == []
    assert len(rcs.sends) == 1


async def test_refused_request_never_reaches_the_provider() -> None:
    clock, rcs = FakeClock(), Scripted()
    [receipt] = await receipts(gateway(clock, rcs), request(to="not a phone"))
    assert (receipt.status, receipt.reason) == ("failed", "invalid_phone")
    assert receipt.ts == clock.now_ms()
    assert rcs.sends == []


async def test_missing_provider_or_unknown_channel_fails_the_send() -> None:
    gw = gateway(FakeClock(), Scripted(), Scripted("sms"))
    [receipt] = await receipts(gateway(FakeClock(), Scripted()), request(channel="sms"))
    assert (receipt.status, receipt.reason) == ("failed", "no_provider:sms")
    [other] = await receipts(gw, request(2, channel="email", content={"text": "x"}))
    assert (other.status, other.reason) == ("failed", "unknown_channel:email")


async def test_sms_fallback_derives_its_text_from_the_rcs_original() -> None:
    clock, rcs, sms = FakeClock(), Scripted(capability=Capability(False)), Scripted("sms")
    gw = gateway(clock, rcs, sms)
    original = request(1, content={"channel": "rcs", "rich_card": {"title": "Shipped"}})
    [receipt] = await receipts(gw, original)
    assert receipt.status == "not_capable"
    fallback = request(
        2,
        channel="sms",
        content={"channel": "sms", "derive_from": original.message_id},
        purpose="fallback",
        fallback_of=original.message_id,
    )
    assert await receipts(gw, fallback) == []
    [(msg, _)] = sms.sends
    assert msg.payload["body"].startswith("Shipped")


async def test_revoke_calls_the_provider_and_trusts_the_events() -> None:
    clock, rcs = FakeClock(), Scripted()
    gw = gateway(clock, rcs)
    req = request(ttl_ms=600_000)
    await gw.send(req)
    assert await gw.revoke(Revoke(req.message_id, req.user_id, req.ts + 600_000), PHONE) == []
    assert [(phone, rev.message_id) for phone, rev in rcs.revokes] == [(PHONE, req.message_id)]


async def test_revoke_failure_gives_revoke_failed() -> None:
    clock = FakeClock()
    rcs = Scripted(revoke_script=[RetryableProviderError("503", status=503)] * 5)
    gw = gateway(clock, rcs, retry=RetryPolicy(max_attempts=2))
    req = request()
    await gw.send(req)
    [receipt] = await gw.revoke(Revoke(req.message_id, req.user_id, req.ts), PHONE)
    assert (receipt.status, receipt.reason) == ("revoke_failed", "provider_unavailable:503")
    assert len(rcs.revokes) == 2


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
