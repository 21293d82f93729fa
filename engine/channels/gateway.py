"""The channel gateway: carries out the engine's send requests and revokes.

A library with a narrow async interface; the stream runtime feeds it from
``journey.send-requests`` and produces what it returns (and what the webhook receiver
emits) to ``journey.channel-receipts`` / ``journey.inbound``.

:meth:`ChannelGateway.handle_send`, for one :class:`SendRequest`:

1. **Dedupe** on ``message_id``: an id already seen (:class:`DedupeStore`) or in flight
   here is not sent again. The id is marked ``sending`` *before* the provider is called:
   after a crash at that point the message is not sent again (at most once; for RCS the
   engine's fallback timer notices the missing receipt and falls back to SMS).
2. **Prepare** (:func:`engine.channels.prepare.prepare`): phone normalization, the RBM
   payload and its limits, SMS text (derived from the original RCS content for a
   fallback without text) and the segment cap. A refusal is a ``failed`` receipt.
3. **Capability** (RCS): not reachable -> ``not_capable`` right away (the engine sends
   the SMS); a feature the message needs but the device lacks -> ``not_capable`` too.
   Answers are cached per phone for ``capability_ttl_s``.
4. **Send** under the provider's token bucket; 429 / 503 / refused connections are
   retried with backoff and jitter (:class:`RetryPolicy`), honouring ``Retry-After``.
   Ambiguous failures (timeout, 500) are retried only for idempotent providers.
   Permanent errors give a ``failed`` receipt (``provider_rejected:<code>``), giving up
   gives ``provider_unavailable:<status>``; RBM 403/404 give ``not_capable``.

A send the provider took returns no receipt: delivery, reads and replies arrive later as
webhooks (:mod:`engine.channels.webhooks`). :meth:`ChannelGateway.handle_revoke` calls
the provider's revoke and returns nothing on success, since a 200 from DELETE proves
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
from typing import Any, Protocol, TypeVar

from engine.channels.phone import mask_phone
from engine.channels.prepare import Prepared, Refused, prepare
from engine.channels.providers.base import (
    Capability,
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
from engine.core.inputs import Receipt, ReceiptStatus
from engine.errors import PermanentProviderError, ProviderError, RetryableProviderError

log = logging.getLogger(__name__)
T = TypeVar("T")
K = TypeVar("K")
V = TypeVar("V")
NowMs = Callable[[], int]


def wall_ms() -> int:
    return time.time_ns() // 1_000_000


# --------------------------------------------------------------------------- stores


class DedupeStore(Protocol):
    """Ids already handled (message ids for sends, event ids for webhooks). The stream
    runtime backs this with a durable table; :class:`InMemoryDedupeStore` is for tests
    and single-process use."""

    async def seen(self, message_id: str) -> bool: ...

    async def mark(self, message_id: str, state: str) -> None: ...


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


class InMemoryDedupeStore:
    def __init__(self, max_entries: int = 1_000_000) -> None:
        self.states: BoundedDict[str, str] = BoundedDict(max_entries)

    async def seen(self, message_id: str) -> bool:
        return message_id in self.states

    async def mark(self, message_id: str, state: str) -> None:
        self.states[message_id] = state


@dataclass(frozen=True, slots=True)
class SentMessage:
    """What the webhook receiver needs to turn a provider event back into a receipt."""

    message_id: str
    user_id: str
    phone: str
    channel: str
    provider: str
    provider_id: str | None = None


class MessageDirectory(Protocol):
    """Sent messages by our id and the provider's id, and the latest user per phone."""

    async def remember(self, sent: SentMessage) -> None: ...

    async def by_message_id(self, message_id: str) -> SentMessage | None: ...

    async def by_provider_id(self, provider_id: str) -> SentMessage | None: ...

    async def user_for_phone(self, phone: str) -> str | None: ...


class InMemoryDirectory:
    def __init__(self, max_entries: int = 1_000_000) -> None:
        self.messages: BoundedDict[str, SentMessage] = BoundedDict(max_entries)
        self.provider_ids: BoundedDict[str, str] = BoundedDict(max_entries)
        self.phones: BoundedDict[str, str] = BoundedDict(max_entries)

    async def remember(self, sent: SentMessage) -> None:
        self.messages[sent.message_id] = sent
        if sent.provider_id:
            self.provider_ids[sent.provider_id] = sent.message_id
        self.phones[sent.phone] = sent.user_id

    async def by_message_id(self, message_id: str) -> SentMessage | None:
        return self.messages.get(message_id)

    async def by_provider_id(self, provider_id: str) -> SentMessage | None:
        mid = self.provider_ids.get(provider_id)
        return None if mid is None else self.messages.get(mid)

    async def user_for_phone(self, phone: str) -> str | None:
        return self.phones.get(phone)


# --------------------------------------------------------------------------- gateway


class ChannelGateway:
    def __init__(
        self,
        *,
        rcs: RcsProvider | None = None,
        sms: SmsProvider | None = None,
        dedupe: DedupeStore | None = None,
        directory: MessageDirectory | None = None,
        originals: MutableMapping[str, Mapping[str, Any]] | None = None,
        rate_limits: Mapping[str, RateLimit] | None = None,
        retry: RetryPolicy | None = None,
        check_capability: bool = True,
        capability_ttl_s: float = 3600.0,
        sleep: Sleep = asyncio.sleep,
        monotonic: Monotonic = time.monotonic,
        now_ms: NowMs = wall_ms,
        rng: random.Random | None = None,
    ) -> None:
        """``originals`` keeps RCS content by message id, for SMS fallbacks that derive
        their text from it; ``rate_limits`` is keyed by provider name."""
        self.rcs = rcs
        self.sms = sms
        self.dedupe: DedupeStore = dedupe or InMemoryDedupeStore()
        self.directory: MessageDirectory = directory or InMemoryDirectory()
        self.originals: MutableMapping[str, Mapping[str, Any]] = (
            originals if originals is not None else BoundedDict(100_000)
        )
        self.retry = retry or RetryPolicy()
        self.check_capability = check_capability
        self.capability_ttl_s = capability_ttl_s
        self._sleep = sleep
        self._monotonic = monotonic
        self._now_ms = now_ms
        self._rng = rng or random.Random()
        self.buckets = {
            name: TokenBucket(limit, monotonic=monotonic, sleep=sleep)
            for name, limit in (rate_limits or {}).items()
        }
        self._capabilities: BoundedDict[tuple[str, str], tuple[float, Capability]] = BoundedDict(
            100_000
        )
        self._inflight: set[str] = set()

    async def close(self) -> None:
        for provider in {id(p): p for p in (self.rcs, self.sms) if p is not None}.values():
            await provider.close()

    # -- sends

    async def handle_send(self, req: SendRequest) -> list[Receipt]:
        mid = req.message_id
        if mid in self._inflight or await self.dedupe.seen(mid):
            log.info("send %s: duplicate request, not sent again", mid)
            return []
        self._inflight.add(mid)
        try:
            await self.dedupe.mark(mid, "sending")
            receipts = await self._send(req)
            await self.dedupe.mark(mid, receipts[0].status if receipts else "sent")
            return receipts
        finally:
            self._inflight.discard(mid)

    def _receipt(
        self, req: SendRequest, status: ReceiptStatus, reason: str | None = None
    ) -> list[Receipt]:
        ts = max(req.ts, self._now_ms())
        return [Receipt(req.user_id, ts, status, req.message_id, reason=reason)]

    async def _send(self, req: SendRequest) -> list[Receipt]:
        if req.channel not in ("rcs", "sms"):
            return self._receipt(req, "failed", f"unknown_channel:{req.channel}")
        if req.channel == "rcs":
            self.originals[req.message_id] = req.content
        provider: RcsProvider | SmsProvider | None = self.rcs if req.channel == "rcs" else self.sms
        if provider is None:
            return self._receipt(req, "failed", f"no_provider:{req.channel}")
        result = prepare(req, self.originals)
        if isinstance(result, Refused):
            log.info("send %s refused: %s (%s)", req.message_id, result.reason, result.detail)
            return self._receipt(req, "failed", result.reason)
        sent = SentMessage(req.message_id, req.user_id, result.to, req.channel, provider.name)
        await self.directory.remember(sent)
        if self.rcs is not None and req.channel == "rcs":
            refusal = await self._capable(self.rcs, result, req)
            if refusal is not None:
                return self._receipt(req, "not_capable", refusal)
        try:
            answer: SendResult = await self._call(provider, lambda: provider.send(result, req))
        except ProviderError as exc:
            status, reason = _failure(exc)
            log.warning("send %s to %s failed: %s", req.message_id, mask_phone(result.to), exc)
            return self._receipt(req, status, reason)
        if answer.provider_id:
            await self.directory.remember(replace(sent, provider_id=answer.provider_id))
        return []

    async def _capable(self, rcs: RcsProvider, msg: Prepared, req: SendRequest) -> str | None:
        """``None`` when the message may go out over RCS, else the not_capable reason."""
        if not self.check_capability:
            return None
        key = (rcs.name, msg.to)
        cached = self._capabilities.get(key)
        if cached is not None and cached[0] > self._monotonic():
            cap = cached[1]
        else:
            try:
                cap = await self._call(rcs, lambda: rcs.capability(msg.to, req.profile))
            except NotReachable:
                cap = Capability(reachable=False)
            except ProviderError as exc:  # the send will tell; don't block on a lookup
                log.warning("capability of %s unknown: %s", mask_phone(msg.to), exc)
                return None
            self._capabilities[key] = (self._monotonic() + self.capability_ttl_s, cap)
        if not cap.reachable:
            return "not_reachable"
        if cap.features is not None:
            missing = sorted(required_features(msg.payload) - cap.features)
            if missing:
                return "missing_features:" + ",".join(missing)
        return None

    async def _call(self, provider: RcsProvider | SmsProvider, op: Callable[[], Awaitable[T]]) -> T:
        """``op`` under the provider's rate limit, retried per :attr:`retry`."""
        bucket = self.buckets.get(provider.name)
        retry = 0
        while True:
            if bucket is not None:
                await bucket.acquire()
            try:
                return await op()
            except RetryableProviderError as exc:
                if isinstance(exc, OutcomeUnknown) and not provider.idempotent:
                    raise
                if retry + 1 >= self.retry.max_attempts:
                    raise
                after = exc.retry_after if isinstance(exc, RateLimited) else None
                delay = self.retry.delay(retry, self._rng, after)
                log.info("%s: %s; retry %d in %.2fs", provider.name, exc, retry + 1, delay)
                retry += 1
                if bucket is not None and isinstance(exc, RateLimited):
                    bucket.hold(delay)  # every caller of this provider slows down
                else:
                    await self._sleep(delay)

    # -- revokes

    async def handle_revoke(self, rev: Revoke) -> list[Receipt]:
        sent = await self.directory.by_message_id(rev.message_id)
        if sent is None or sent.channel != "rcs" or self.rcs is None:
            log.info("revoke %s: not an RCS message sent here; nothing to do", rev.message_id)
            return []
        rcs = self.rcs
        try:
            await self._call(rcs, lambda: rcs.revoke(sent.phone, rev))
        except ProviderError as exc:
            log.warning("revoke %s failed: %s", rev.message_id, exc)
            ts = max(rev.ts, self._now_ms())
            _, reason = _failure(exc)
            return [Receipt(rev.user_id, ts, "revoke_failed", rev.message_id, reason=reason)]
        return []


def _failure(exc: ProviderError) -> tuple[ReceiptStatus, str]:
    """The receipt status and reason for a provider error."""
    if isinstance(exc, NotReachable):
        return "not_capable", "not_reachable"
    if isinstance(exc, UnsupportedFeature):
        return "not_capable", "unsupported_feature"
    if isinstance(exc, PermanentProviderError):
        code = exc.code if isinstance(exc, ProviderRejected) else None
        return "failed", f"provider_rejected:{code or exc.status or 'error'}"
    if isinstance(exc, OutcomeUnknown):
        return "failed", f"provider_outcome_unknown:{exc.status or 'timeout'}"
    return "failed", f"provider_unavailable:{exc.status or 'connection'}"
