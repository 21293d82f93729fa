"""A seeded model of a provider and its users, for load tests and demos without a carrier.

Every draw hashes ``(seed, what, message id)`` (or the phone, for capability) instead of
consuming a shared random generator, so a message's fate depends only on the seed and
the message, never on the order messages were sent in.

The model, per message (rates are probabilities):

* RCS capability: ``rcs_capable_share`` of phone numbers; a profile's ``rcs_capable``
  overrides it. A send to an incapable user fails like RBM's 404 (``NotReachable``).
* delivery after ``delivery_latency_ms`` (uniform in the range); ``failure_rate`` of
  messages fail instead. An RCS message whose latency exceeds its ``ttl`` is revoked by
  the platform at the ttl (``revoked``, as a TTL_EXPIRATION_REVOKED event says).
* ``read_rate`` of delivered RCS messages are read (SMS has no read receipts).
* of the *read* RCS messages (delivered SMS), ``tap_rate`` get a suggestion tap (when the
  message has suggestions), ``reply_rate`` a free-text reply and ``opt_out_rate`` a STOP.
* a revoke before delivery cancels it (``revoked`` at the revoke time); after delivery
  it is too late and changes nothing.

Results are timestamped from the request's ``ts`` and come out through :meth:`due` /
:meth:`run`, like webhooks from a real provider.
"""

from __future__ import annotations

import asyncio
import heapq
import itertools
from collections.abc import Awaitable, Callable, Mapping
from typing import Any

from engine.channels.prepare import Prepared
from engine.channels.providers.base import Capability, NotReachable, SendResult
from engine.core.effects import Revoke, SendRequest
from engine.core.ids import bucket, derive_id
from engine.core.inputs import Inbound, Receipt
from engine.core.keywords import classify_keyword

Event = Receipt | Inbound
REPLY_TEXTS = ("Thanks!", "When will it arrive?", "OK", "Can I change the address?")


def _postbacks(content: Mapping[str, Any]) -> list[str]:
    chips = list(content.get("suggestions") or ())
    card = content.get("rich_card")
    cards = [card] if card else list((content.get("carousel") or {}).get("cards") or ())
    for c in cards:
        chips.extend(c.get("suggestions") or ())
    return [s["postback"] for s in chips if isinstance(s, Mapping) and s.get("postback")]


class SimulatedProvider:
    name = "simulated"
    idempotent = True

    def __init__(
        self,
        seed: int,
        rcs_capable_share: float = 0.8,
        delivery_latency_ms: tuple[int, int] = (1000, 5000),
        failure_rate: float = 0.02,
        read_rate: float = 0.6,
        tap_rate: float = 0.2,
        reply_rate: float = 0.05,
        *,
        opt_out_rate: float = 0.0,
        read_delay_ms: tuple[int, int] = (2_000, 600_000),
        engage_delay_ms: tuple[int, int] = (1_000, 120_000),
    ) -> None:
        self.seed = seed
        self.rcs_capable_share = rcs_capable_share
        self.delivery_latency_ms = delivery_latency_ms
        self.failure_rate = failure_rate
        self.read_rate = read_rate
        self.tap_rate = tap_rate
        self.reply_rate = reply_rate
        self.opt_out_rate = opt_out_rate
        self.read_delay_ms = read_delay_ms
        self.engage_delay_ms = engage_delay_ms
        self.sent: dict[str, SendRequest] = {}
        self._delivery_at: dict[str, int | None] = {}
        self._cutoff: dict[str, int] = {}  # revoked: nothing of that message after this
        self._heap: list[tuple[int, int, str, Event]] = []
        self._seq = itertools.count()

    # -- the model (pure)

    def _u(self, *parts: object) -> float:
        return bucket("simulated", self.seed, *parts)

    def _between(self, span: tuple[int, int], *parts: object) -> int:
        lo, hi = span
        return lo + int(self._u(*parts) * (hi - lo))

    def is_capable(self, phone: str, profile: Mapping[str, Any] | None = None) -> bool:
        hint = (profile or {}).get("rcs_capable")
        if isinstance(hint, bool):
            return hint
        return self._u("capable", phone) < self.rcs_capable_share

    def plan(self, req: SendRequest) -> list[Event]:
        """What will happen to this message: the same for the same (seed, message)."""
        mid, user, rcs = req.message_id, req.user_id, req.channel == "rcs"
        at = req.ts + self._between(self.delivery_latency_ms, "latency", mid)
        if rcs and req.ttl_ms is not None and at - req.ts > req.ttl_ms:
            return [Receipt(user, req.ts + req.ttl_ms, "revoked", mid, reason="ttl_expired")]
        if self._u("fail", mid) < self.failure_rate:
            return [Receipt(user, at, "failed", mid, reason="simulated_failure")]
        out: list[Event] = [Receipt(user, at, "delivered", mid)]
        if rcs:
            if self._u("read", mid) >= self.read_rate:
                return out
            at += self._between(self.read_delay_ms, "read_delay", mid)
            out.append(Receipt(user, at, "read", mid))
        postbacks = _postbacks(req.content) if rcs else []
        if postbacks and self._u("tap", mid) < self.tap_rate:
            pick = postbacks[int(self._u("tap_which", mid) * len(postbacks))]
            ts = at + self._between(self.engage_delay_ms, "tap_delay", mid)
            out.append(
                Inbound(
                    user,
                    ts,
                    postback=pick,
                    message_id=mid,
                    event_id=derive_id("sim-tap", self.seed, mid),
                )
            )
        if self._u("reply", mid) < self.reply_rate:
            text = REPLY_TEXTS[int(self._u("reply_which", mid) * len(REPLY_TEXTS))]
            out.append(self._text(req, at, text, "reply"))
        if self._u("opt_out", mid) < self.opt_out_rate:
            out.append(self._text(req, at, "STOP", "opt_out"))
        return sorted(out, key=lambda e: e.ts)

    def _text(self, req: SendRequest, after: int, text: str, kind: str) -> Inbound:
        mid = req.message_id
        ts = after + self._between(self.engage_delay_ms, kind, "delay", mid)
        return Inbound(
            req.user_id,
            ts,
            text=text,
            message_id=mid,
            keyword=classify_keyword(text),
            event_id=derive_id("sim", kind, self.seed, mid),
        )

    # -- the provider protocol

    async def send(self, msg: Prepared, req: SendRequest) -> SendResult:
        if req.channel == "rcs" and not self.is_capable(msg.to, req.profile):
            raise NotReachable("simulated: user is not RCS-capable", status=404)
        if req.message_id in self.sent:  # like RBM: a repeated id is ignored
            return SendResult(req.message_id)
        self.sent[req.message_id] = req
        events = self.plan(req)
        delivered = [e.ts for e in events if isinstance(e, Receipt) and e.status == "delivered"]
        self._delivery_at[req.message_id] = delivered[0] if delivered else None
        for event in events:
            self._push(event)
        return SendResult(req.message_id)

    async def capability(self, phone: str, profile: Mapping[str, Any] | None = None) -> Capability:
        return Capability(reachable=self.is_capable(phone, profile))

    async def revoke(self, phone: str, rev: Revoke) -> None:
        at = self._delivery_at.get(rev.message_id)
        if at is None or at <= rev.ts:
            return  # unknown, failed, expired, or delivered already: too late
        self._delivery_at[rev.message_id] = None
        self._cutoff[rev.message_id] = rev.ts
        self._push(Receipt(rev.user_id, rev.ts, "revoked", rev.message_id, reason="revoked"))

    async def close(self) -> None:
        return None

    # -- events out

    def _push(self, event: Event) -> None:
        heapq.heappush(self._heap, (event.ts, next(self._seq), event.message_id or "", event))

    def next_due(self) -> int | None:
        return self._heap[0][0] if self._heap else None

    def due(self, now_ms: int) -> list[Event]:
        """Events due at or before ``now_ms``, in time order (revoked ones left out)."""
        out: list[Event] = []
        while self._heap and self._heap[0][0] <= now_ms:
            ts, _, mid, event = heapq.heappop(self._heap)
            cutoff = self._cutoff.get(mid)
            if cutoff is not None and ts > cutoff:
                continue
            out.append(event)
        return out

    async def run(
        self,
        emit: Callable[[Event], Awaitable[None]],
        *,
        now_ms: Callable[[], int],
        sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
        idle_s: float = 0.05,
    ) -> None:
        """Emit events as they fall due, until cancelled."""
        while True:
            now = now_ms()
            for event in self.due(now):
                await emit(event)
            nxt = self.next_due()
            wait = idle_s if nxt is None else min(idle_s, max(0.001, (nxt - now) / 1000))
            await sleep(wait)
