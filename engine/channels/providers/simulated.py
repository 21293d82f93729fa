"""The one simulated provider: a seeded model of a provider and its users.

It stands in for RBM and Twilio at once, in ``journeys simulate`` (through
:class:`engine.channels.offline.OfflineGateway`, on the virtual clock) and behind
``journeys gateway --rcs simulated --sms simulated`` (through
:class:`engine.channels.gateway.ChannelGateway`, like any adapter).

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
* like RBM, a repeated message id is ignored: the message reaches the user once.

:meth:`SimulatedProvider.contract` is the model ``docs/journeys.md`` promises (and the
golden files pin): every message delivered ``delivery_ms`` after it is sent, nothing
read, tapped, replied or failed, ``not_capable`` only for ``rcs_capable: false``.

Results are timestamped from the request's ``ts`` and come back with the send
(:attr:`SendResult.events`): the caller produces each when its time comes.
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Mapping
from typing import Any

from engine.channels.prepare import Prepared
from engine.channels.providers.base import Capability, NotReachable, SendResult
from engine.core.effects import Revoke, SendRequest
from engine.core.ids import bucket, derive_id
from engine.core.inputs import Inbound, Receipt

Event = Receipt | Inbound
REPLY_TEXTS = ("Thanks!", "When will it arrive?", "OK", "Can I change the address?")
#: the contract's delivery time (docs/journeys.md): delivered 5 s after the send
CONTRACT_DELIVERY_MS = 5_000
#: message ids remembered for dedupe and revokes (a long-running gateway forgets the oldest)
REMEMBERED = 1_000_000


def _postbacks(content: Mapping[str, Any]) -> list[str]:
    chips = list(content.get("suggestions") or ())
    card = content.get("rich_card")
    cards = [card] if card else list((content.get("carousel") or {}).get("cards") or ())
    for c in cards:
        chips.extend(c.get("suggestions") or ())
    return [s["postback"] for s in chips if isinstance(s, Mapping) and s.get("postback")]


class SimulatedProvider:
    name = "simulated"
    idempotent = True  # a repeated message id is ignored, as RBM does

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
        # message id -> delivery time (None: failed, expired or revoked); its keys are the
        # ids taken, so a repeated id is ignored
        self._delivery_at: OrderedDict[str, int | None] = OrderedDict()
        self.repeats = 0  # sends of an id taken before (ignored, as Google does)

    @classmethod
    def contract(cls, delivery_ms: int = CONTRACT_DELIVERY_MS, seed: int = 0) -> SimulatedProvider:
        """The contract of docs/journeys.md: every message delivered ``delivery_ms`` after
        the send, ``not_capable`` only for a profile with ``rcs_capable: false``, nothing
        read, tapped, replied or failed."""
        return cls(
            seed,
            rcs_capable_share=1.0,
            delivery_latency_ms=(delivery_ms, delivery_ms),
            failure_rate=0.0,
            read_rate=0.0,
            tap_rate=0.0,
            reply_rate=0.0,
        )

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
            event_id=derive_id("sim", kind, self.seed, mid),
        )

    # -- the provider's bookkeeping (synchronous: the offline gateway calls it directly)

    def taken(self, message_id: str) -> bool:
        return message_id in self._delivery_at

    def accept(self, req: SendRequest) -> list[Event]:
        """Take the message: its planned events, or nothing for an id taken before."""
        if req.message_id in self._delivery_at:
            self.repeats += 1
            return []
        events = self.plan(req)
        delivered = [e.ts for e in events if isinstance(e, Receipt) and e.status == "delivered"]
        self._delivery_at[req.message_id] = delivered[0] if delivered else None
        while len(self._delivery_at) > REMEMBERED:
            self._delivery_at.popitem(last=False)
        return events

    def take_refused(self, message_id: str) -> None:
        """Remember an id that was refused (not capable): a repeat is ignored too."""
        self._delivery_at.setdefault(message_id, None)

    def revoke_now(self, rev: Revoke) -> list[Receipt]:
        """A revoke before the delivery cancels it (``revoked`` at the revoke's time);
        after the delivery, or for an unknown id, it is too late and changes nothing."""
        at = self._delivery_at.get(rev.message_id)
        if at is None or at <= rev.ts:
            return []
        self._delivery_at[rev.message_id] = None
        return [Receipt(rev.user_id, rev.ts, "revoked", rev.message_id)]

    def cancel(self, message_id: str) -> None:
        """Forget a scheduled delivery (the message failed or fell back meanwhile)."""
        if self._delivery_at.get(message_id) is not None:
            self._delivery_at[message_id] = None

    def is_live(self, event: Event) -> bool:
        """A planned delivery, read or reply still happens unless the message was revoked
        or given up on since (its delivery time no longer stands)."""
        mid = event.message_id
        if mid is None or not isinstance(event, Receipt) or event.status != "delivered":
            return True
        return self._delivery_at.get(mid) == event.ts

    # -- the provider protocol (RcsProvider and SmsProvider)

    async def send(self, msg: Prepared, req: SendRequest) -> SendResult:
        if req.channel == "rcs" and not self.is_capable(msg.to, req.profile):
            raise NotReachable("simulated: user is not RCS-capable", status=404)
        return SendResult(req.message_id, tuple(self.accept(req)))

    async def capability(self, phone: str, profile: Mapping[str, Any] | None = None) -> Capability:
        return Capability(reachable=self.is_capable(phone, profile))

    async def revoke(self, phone: str, rev: Revoke) -> None:
        # The outcome comes as an event; the Kafka gateway keeps the planned delivery in
        # its durable record and cancels it there (see engine.stream.gateway.receipts).
        self.revoke_now(rev)

    async def close(self) -> None:
        return None
