"""The channel gateway: carries out the engine's send requests and revokes.

A library with a narrow async interface. ``journeys gateway`` (``engine.stream.gateway``)
is the Kafka shell around it: it feeds it from ``journey.send-requests``, gives it the
durable claim table as its :class:`ClaimStore`, and produces what it returns (and what
the webhook receiver, :mod:`engine.channels.webhooks`, emits) to
``journey.channel-receipts`` / ``journey.inbound``. ``journeys simulate`` takes the same
steps synchronously (:class:`engine.channels.offline.OfflineGateway`).

:meth:`ChannelGateway.send`, for one :class:`SendRequest`:

1. **Prepare** (:func:`engine.channels.prepare.prepare`): phone normalization, the RBM
   payload and its limits, SMS text (derived from the original RCS content for a
   fallback without text) and the segment cap. A refusal is a ``failed`` receipt.
2. **Capability** (RCS): not reachable -> ``not_capable`` right away (the engine sends
   the SMS); a feature the message needs but the device lacks -> ``not_capable`` too.
   Answers are cached per phone for ``capability_ttl_s``.
3. **Claim**: :meth:`ClaimStore.claim` makes a record of the send durable (the number
   and the exact text, for a lookup) *before* the provider is called. A send is never
   claimed twice: after a crash, a claimed send whose answer was lost is settled by
   :meth:`ChannelGateway.resume`, by provider kind.
4. **Send** under the provider's token bucket; 429 / 503 / refused connections are
   retried with backoff and jitter (:class:`RetryPolicy`), and a ``Retry-After`` holds
   back every send to that provider. An ambiguous failure (timeout, 500) is retried for
   an idempotent provider (RBM: same ``messageId``); another is looked up first
   (:class:`LookupProvider`): found -> sent; the server answered 5xx and has no such
   message -> retried; no answer at all and none found -> ``unknown`` (never sent
   blindly). Permanent errors give ``failed`` (``provider_rejected:<code>``), giving up
   gives ``provider_unavailable:<status>``; RBM 403/404 give ``not_capable``.

The one set of failure reasons is :func:`failure`. A send the provider took returns no
receipt: delivery, reads and replies arrive later as webhooks (the simulated provider
announces them: :attr:`SendOutcome.later`). :meth:`ChannelGateway.revoke` calls the
provider's revoke and returns nothing on success, since a 200 from DELETE proves
nothing (the TTL events tell); if the call fails, a ``revoke_failed`` receipt.
"""

from __future__ import annotations

import asyncio
import logging
import random
import time
from collections import OrderedDict
from collections.abc import Awaitable, Callable, Mapping, MutableMapping
from dataclasses import dataclass, replace
from typing import Any, Literal, Protocol, TypeVar

from engine.channels.phone import mask_phone
from engine.channels.prepare import Prepared, Refused, prepare
from engine.channels.providers.base import (
    Capability,
    LookupProvider,
    NotReachable,
    OutcomeUnknown,
    ProviderRejected,
    RateLimited,
    RcsProvider,
    SendResult,
    SmsProvider,
    UnsupportedFeature,
)
from engine.channels.ratelimit import Monotonic, RateLimit, RetryPolicy, Sleep, TokenBucket
from engine.channels.rcs import required_features
from engine.core.effects import Revoke, SendRequest
from engine.core.inputs import Inbound, Receipt, ReceiptStatus
from engine.errors import PermanentProviderError, ProviderError, RetryableProviderError

log = logging.getLogger(__name__)
T = TypeVar("T")
K = TypeVar("K")
V = TypeVar("V")
NowMs = Callable[[], int]
Provider = RcsProvider | SmsProvider

#: a send the gateway held (rate limits) this long after the request's ts is announced
#: with an ``accepted`` receipt when the provider takes it (the fallback window restarts)
HELD_MS = 1_000
#: the receipt status for a send whose fate the gateway cannot know (CONTRACT: core side)
UNKNOWN: ReceiptStatus = "unknown"
ACCEPTED: ReceiptStatus = "accepted"


def wall_ms() -> int:
    return time.time_ns() // 1_000_000


class BoundedDict(OrderedDict[K, V]):
    """A dict that forgets its oldest entries beyond ``max_entries``."""

    def __init__(self, max_entries: int = 1_000_000) -> None:
        super().__init__()
        self.max_entries = max_entries

    def __setitem__(self, key: K, value: V) -> None:
        super().__setitem__(key, value)
        self.move_to_end(key)
        while len(self) > self.max_entries:
            self.popitem(last=False)


# --------------------------------------------------------------------------- claims


@dataclass(frozen=True, slots=True)
class Claim:
    """What is kept, durably, about a send before its provider call: enough to settle it
    after a crash without the provider's answer."""

    message_id: str
    channel: str  # rcs | sms
    provider: str  # the provider's name: rbm, twilio, simulated
    idempotent: bool  # may the same send be repeated (the provider dedupes on the id)?
    to: str  # the E.164 number it went to
    body: str | None  # the exact SMS text (what a lookup matches)
    at_ms: int  # wall clock of the claim, epoch ms

    def to_wire(self) -> dict[str, Any]:
        return {
            "pv": self.provider,
            "idem": self.idempotent,
            "to": self.to,
            "body": self.body,
            "at": self.at_ms,
        }

    @classmethod
    def from_wire(cls, message_id: str, channel: str, w: Mapping[str, Any]) -> Claim:
        body = w.get("body")
        return cls(
            message_id,
            channel,
            str(w["pv"]),
            bool(w["idem"]),
            str(w["to"]),
            body if isinstance(body, str) else None,
            int(w["at"]),
        )


class ClaimStore(Protocol):
    """The gateway's dedupe store: one durable claim per message id. Backed by the Kafka
    gateway's claim table (a changelog-backed faust table)."""

    async def claim(self, req: SendRequest, claim: Claim) -> None:
        """Record ``claim``; return only once it is durable (the provider is called
        next)."""
        ...


SendStatus = Literal["sent", "refused", "not_capable", "failed", "unknown"]


@dataclass(frozen=True, slots=True)
class SendOutcome:
    """What became of one send."""

    status: SendStatus
    receipts: tuple[Receipt, ...] = ()  # to hand on now
    later: tuple[Receipt | Inbound, ...] = ()  # announced by the provider, each at its ts
    provider_id: str | None = None  # Twilio's SID, RBM's message name
    claim: Claim | None = None  # None: the provider was never called
    handed_over_ms: int | None = None  # when the provider took it (wall clock)
    held_s: float = 0.0  # waited for the provider's rate limit or a Retry-After
    attempts: int = 0  # provider calls made for it
    looked_up: bool = False  # its fate came from a status lookup


# --------------------------------------------------------------------------- gateway


class ChannelGateway:
    def __init__(
        self,
        *,
        rcs: RcsProvider | None = None,
        sms: SmsProvider | None = None,
        claims: ClaimStore | None = None,
        originals: MutableMapping[str, Mapping[str, Any]] | None = None,
        rate_limits: Mapping[str, RateLimit] | None = None,
        retry: RetryPolicy | None = None,
        check_capability: bool = True,
        capability_ttl_s: float = 3600.0,
        lookup_settle_s: float = 2.0,
        sleep: Sleep = asyncio.sleep,
        monotonic: Monotonic = time.monotonic,
        now_ms: NowMs = wall_ms,
        rng: random.Random | None = None,
    ) -> None:
        """``claims`` makes each claim durable (none: claims are not kept, for a caller
        that needs no crash safety); ``originals`` keeps RCS content by message id, for
        SMS fallbacks that derive their text from it; ``rate_limits`` is keyed by provider
        name and is for this instance (see :meth:`set_share`); ``lookup_settle_s`` is how
        long an ambiguous send is given to show up before it is looked up."""
        self.rcs = rcs
        self.sms = sms
        self.claims = claims
        self.originals: MutableMapping[str, Mapping[str, Any]] = (
            originals if originals is not None else BoundedDict(100_000)
        )
        self.retry = retry or RetryPolicy()
        self.check_capability = check_capability
        self.capability_ttl_s = capability_ttl_s
        self.lookup_settle_s = lookup_settle_s
        self._sleep = sleep
        self._monotonic = monotonic
        self._now_ms = now_ms
        self._rng = rng or random.Random()
        self.rate_limits = dict(rate_limits or {})
        self.buckets = {
            name: TokenBucket(limit, monotonic=monotonic, sleep=sleep)
            for name, limit in self.rate_limits.items()
        }
        self._holds: dict[str, float] = {}  # provider -> monotonic time a 429 holds it until
        self._capabilities: BoundedDict[tuple[str, str], tuple[float, Capability]] = BoundedDict(
            100_000
        )

    async def close(self) -> None:
        for provider in {id(p): p for p in (self.rcs, self.sms) if p is not None}.values():
            await provider.close()

    def set_share(self, fraction: float) -> None:
        """This instance's share of the deployment-wide rates (the fraction of the
        send-requests partitions it owns)."""
        fraction = min(1.0, max(fraction, 1e-3))
        for name, bucket in self.buckets.items():
            bucket.set_rate(self.rate_limits[name].per_second * fraction)

    def remember_original(self, message_id: str, content: Mapping[str, Any]) -> None:
        """The content of an RCS message, for an SMS fallback that derives its text."""
        self.originals[message_id] = content

    def provider_for(self, channel: str) -> Provider | None:
        return self.rcs if channel == "rcs" else self.sms if channel == "sms" else None

    # -- sends

    def _receipt(
        self, req: SendRequest, status: ReceiptStatus, reason: str | None = None
    ) -> tuple[Receipt, ...]:
        ts = max(req.ts, self._now_ms())
        return (Receipt(req.user_id, ts, status, req.message_id, reason=reason),)

    async def send(self, req: SendRequest, *, held_s: float = 0.0) -> SendOutcome:
        """Send ``req`` once (the caller dedupes on its id, through the claim table).
        ``held_s``: how long the caller held it already (a journey's send rate)."""
        if req.channel not in ("rcs", "sms"):
            return SendOutcome(
                "refused", self._receipt(req, "failed", f"unknown_channel:{req.channel}")
            )
        if req.channel == "rcs":
            self.originals[req.message_id] = req.content
        provider = self.provider_for(req.channel)
        if provider is None:
            return SendOutcome(
                "refused", self._receipt(req, "failed", f"no_provider:{req.channel}")
            )
        msg = prepare(req, self.originals)
        if isinstance(msg, Refused):
            log.info("send %s refused: %s (%s)", req.message_id, msg.reason, msg.detail)
            return SendOutcome("refused", self._receipt(req, "failed", msg.reason))
        waits: list[float] = []  # rate-limit waits of the calls made for it
        if self.rcs is not None and req.channel == "rcs":
            capable, reason = await self._capable(self.rcs, msg, req, waits)
            if not capable:
                return SendOutcome("not_capable", self._receipt(req, "not_capable", reason))
        claim = Claim(
            req.message_id,
            req.channel,
            provider.name,
            provider.idempotent,
            msg.to,
            str(msg.payload["body"]) if msg.channel == "sms" else None,
            self._now_ms(),
        )
        if self.claims is not None:
            await self.claims.claim(req, claim)
        return await self._deliver(provider, msg, req, claim, held_s + sum(waits))

    async def resume(self, req: SendRequest, claim: Claim) -> SendOutcome:
        """Settle a send claimed before a crash whose answer was lost, by provider kind:

        * idempotent (RBM, the simulated provider: a repeated id is ignored): sent again
          with the same id;
        * otherwise a status lookup with the claimed number and text: found -> sent;
          not found (or no lookup) -> ``unknown``: never sent blindly.
        """
        provider = self.provider_for(claim.channel)
        same = provider is not None and provider.name == claim.provider
        if provider is not None and same and claim.idempotent:
            if req.channel == "rcs":
                self.originals[req.message_id] = req.content
            msg = prepare(req, self.originals)
            if isinstance(msg, Prepared):
                return await self._deliver(provider, msg, req, claim, 0.0)
        can_look_up = isinstance(provider, LookupProvider) and claim.body is not None
        if provider is not None and same and can_look_up:
            found = await self._look_up(provider, claim)
            if found is not None:
                return SendOutcome(
                    "sent",
                    provider_id=found.provider_id,
                    claim=claim,
                    handed_over_ms=claim.at_ms,
                    looked_up=True,
                )
            why = "claimed_before_restart:not_found"
        else:
            why = f"claimed_before_restart:{claim.provider}_has_no_lookup"
        log.warning("send %s: fate unknown after a restart (%s)", req.message_id, why)
        return SendOutcome("unknown", self._receipt(req, UNKNOWN, why), claim=claim, looked_up=True)

    async def _deliver(
        self, provider: Provider, msg: Prepared, req: SendRequest, claim: Claim, held_s: float
    ) -> SendOutcome:
        attempts, held = 0, held_s
        in_doubt = False  # an ambiguous answer from an idempotent provider: may have gone out
        while True:
            held += await self._wait_turn(provider.name)
            handed = self._now_ms()
            # The provider sees the hand-over as the send time of a send held back.
            call = replace(req, ts=handed) if held > 0 and handed - req.ts > HELD_MS else req
            attempts += 1
            try:
                answer = await provider.send(msg, call)
                return SendOutcome(
                    "sent",
                    later=answer.events,
                    provider_id=answer.provider_id,
                    claim=claim,
                    handed_over_ms=handed,
                    held_s=held,
                    attempts=attempts,
                )
            except RetryableProviderError as exc:
                if isinstance(exc, OutcomeUnknown) and not provider.idempotent:
                    found = await self._look_up(provider, claim)
                    if found is not None:
                        return SendOutcome(
                            "sent",
                            provider_id=found.provider_id,
                            claim=claim,
                            handed_over_ms=handed,
                            held_s=held,
                            attempts=attempts,
                            looked_up=True,
                        )
                    if exc.status is None:  # no answer at all: it may still appear
                        log.warning(
                            "send %s to %s: %s, and not found: fate unknown",
                            req.message_id,
                            mask_phone(msg.to),
                            exc,
                        )
                        reason = f"provider_outcome_unknown:{type(exc).__name__}"
                        return SendOutcome(
                            "unknown",
                            self._receipt(req, UNKNOWN, reason),
                            claim=claim,
                            attempts=attempts,
                            looked_up=True,
                        )
                    # it answered 5xx and took nothing: a retry is not blind
                elif isinstance(exc, OutcomeUnknown):
                    in_doubt = True
                if attempts >= self.retry.max_attempts:
                    log.warning("send %s gave up after %d tries: %s", req.message_id, attempts, exc)
                    status: ReceiptStatus = UNKNOWN if in_doubt else "failed"
                    reason = f"provider_unavailable:{exc.status or 'connection'}"
                    if in_doubt:  # possibly delivered: no fallback without a TTL verdict
                        reason = f"provider_outcome_unknown:{exc.status or 'timeout'}"
                    return SendOutcome(
                        "unknown" if in_doubt else "failed",
                        self._receipt(req, status, reason),
                        claim=claim,
                        attempts=attempts,
                    )
                await self._back_off(provider.name, exc, attempts - 1)
            except ProviderError as exc:
                final, why = failure(exc)
                log.warning("send %s to %s failed: %s", req.message_id, mask_phone(msg.to), exc)
                return SendOutcome(
                    "not_capable" if final == "not_capable" else "failed",
                    self._receipt(req, final, why),
                    claim=claim,
                    attempts=attempts,
                )

    async def _look_up(self, provider: Provider, claim: Claim) -> SendResult | None:
        """The provider's record of a claimed SMS, or None (none, or no way to ask)."""
        if not isinstance(provider, LookupProvider) or claim.body is None:
            return None
        body = claim.body
        # Let a message in flight show up: give it lookup_settle_s from the claim (after a
        # restart that has usually passed already).
        settle = claim.at_ms / 1000 + self.lookup_settle_s - self._now_ms() / 1000
        if settle > 0:
            await self._sleep(min(settle, self.lookup_settle_s))
        try:
            return await self._call(provider, lambda: provider.lookup(claim.to, body, claim.at_ms))
        except ProviderError as exc:
            log.warning("lookup of %s failed: %s", claim.message_id, exc)
            return None

    async def _capable(
        self, rcs: RcsProvider, msg: Prepared, req: SendRequest, waits: list[float]
    ) -> tuple[bool, str | None]:
        """Whether the message may go out over RCS, and the not_capable reason if not."""
        if not self.check_capability:
            return True, None
        key = (rcs.name, msg.to)
        cached = self._capabilities.get(key)
        if cached is not None and cached[0] > self._monotonic():
            cap = cached[1]
        else:
            try:
                cap = await self._call(rcs, lambda: rcs.capability(msg.to, req.profile), waits)
            except NotReachable:
                cap = Capability(reachable=False)
            except ProviderError as exc:  # the send will tell; don't block on a lookup
                log.warning("capability of %s unknown: %s", mask_phone(msg.to), exc)
                return True, None
            self._capabilities[key] = (self._monotonic() + self.capability_ttl_s, cap)
        if not cap.reachable:
            return False, None
        if cap.features is not None:
            missing = sorted(required_features(msg.payload) - cap.features)
            if missing:
                return False, "missing_features:" + ",".join(missing)
        return True, None

    # -- rate limits and retries

    async def _wait_turn(self, name: str) -> float:
        """Wait out a Retry-After hold and take a token; returns the seconds waited."""
        waited = 0.0
        hold = self._holds.get(name, 0.0) - self._monotonic()
        if hold > 0:
            await self._sleep(hold)
            waited += hold
        bucket = self.buckets.get(name)
        if bucket is not None:
            waited += await bucket.acquire()
        return waited

    async def _back_off(self, name: str, exc: RetryableProviderError, retry: int) -> None:
        after = exc.retry_after if isinstance(exc, RateLimited) else None
        delay = self.retry.delay(retry, self._rng, after)
        log.info("%s: %s; retry %d in %.2fs", name, exc, retry + 1, delay)
        if isinstance(exc, RateLimited):  # every send to this provider slows down
            self._holds[name] = max(self._holds.get(name, 0.0), self._monotonic() + delay)
        else:
            await self._sleep(delay)

    async def _call(
        self, provider: Provider, op: Callable[[], Awaitable[T]], waits: list[float] | None = None
    ) -> T:
        """A call that is safe to repeat (capability, revoke, lookup) under the provider's
        rate limit, retried per :attr:`retry`; what it waited for the limit goes to
        ``waits``."""
        retry = 0
        while True:
            waited = await self._wait_turn(provider.name)
            if waits is not None:
                waits.append(waited)
            try:
                return await op()
            except RetryableProviderError as exc:
                if retry + 1 >= self.retry.max_attempts:
                    raise
                await self._back_off(provider.name, exc, retry)
                retry += 1

    # -- revokes

    async def revoke(self, rev: Revoke, phone: str) -> list[Receipt]:
        """Ask the RCS provider to drop an undelivered message sent to ``phone``."""
        rcs = self.rcs
        if rcs is None:
            return []
        try:
            await self._call(rcs, lambda: rcs.revoke(phone, rev))
        except ProviderError as exc:
            log.warning("revoke %s failed: %s", rev.message_id, exc)
            ts = max(rev.ts, self._now_ms())
            _, reason = failure(exc)
            return [Receipt(rev.user_id, ts, "revoke_failed", rev.message_id, reason=reason)]
        return []


def failure(exc: ProviderError) -> tuple[ReceiptStatus, str | None]:
    """The receipt status and reason for a provider error that ends a call: the one set
    of reasons (:meth:`ChannelGateway._deliver` adds ``provider_unavailable:<status>``
    and ``provider_outcome_unknown:<status>`` for a retry budget run out)."""
    if isinstance(exc, NotReachable):
        return "not_capable", None  # as the simulated provider says it
    if isinstance(exc, UnsupportedFeature):
        return "not_capable", "unsupported_feature"
    if isinstance(exc, PermanentProviderError):
        code = exc.code if isinstance(exc, ProviderRejected) else None
        return "failed", f"provider_rejected:{code or exc.status or 'error'}"
    return "failed", f"provider_unavailable:{exc.status or 'connection'}"


__all__ = [
    "ACCEPTED",
    "HELD_MS",
    "UNKNOWN",
    "BoundedDict",
    "ChannelGateway",
    "Claim",
    "ClaimStore",
    "SendOutcome",
    "failure",
]
