"""Per-user state: everything the core knows about one user, across all journeys.

The adapter owns the object; :meth:`engine.core.engine.Engine.advance` updates it in
place and returns it (like h11's ``Connection``). ``to_wire`` / ``from_wire`` give a
compact JSON-able form with short keys, because millions of these sit in a table.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

# How many handled event ids to remember for dedupe. Producers retry within seconds to
# minutes; a few hundred ids per user covers that with room to spare.
SEEN_EVENTS_KEPT = 256


@dataclass(slots=True)
class Instance:
    """One user's run through one journey version."""

    id: str
    journey_id: str
    version: int
    node: str
    entered_at: int
    entry: dict[str, Any]  # properties of the event that entered the user
    event: dict[str, Any]  # properties of the event that last moved the user
    step: int = 0  # node entries so far: part of every derived id
    wake_at: int | None = None  # the current node's timer (wait end, timeout, deferral)
    last_send: str | None = None  # message_id of the latest send
    sends: dict[str, str] = field(default_factory=dict)  # node id -> latest message_id
    holdout: bool = False  # in the journey's holdout: no sends (engine.core.holdout)

    def to_wire(self) -> list[Any]:
        w = [
            self.id,
            self.journey_id,
            self.version,
            self.node,
            self.entered_at,
            self.entry,
            self.event,
            self.step,
            self.wake_at,
            self.last_send,
            self.sends,
        ]
        if self.holdout:  # only then: the other runs' wire form stays as it was
            w.append(1)
        return w

    @classmethod
    def from_wire(cls, w: list[Any]) -> Instance:
        holdout = len(w) > 11 and bool(w[11])
        return cls(w[0], w[1], w[2], w[3], w[4], w[5], w[6], w[7], w[8], w[9], w[10], holdout)


@dataclass(slots=True)
class Message:
    """A message in flight, kept for receipts, taps and the RCS -> SMS fallback."""

    id: str
    instance_id: str
    journey_id: str
    version: int
    node: str
    channel: str
    sent_at: int
    status: str = "sent"  # one of engine.core.fallback.Status; moves only by its TRANSITIONS
    postbacks: list[str] = field(default_factory=list)
    fallback_sms: str | None = None  # rendered fallback text ("" = derive from the card)
    timer_at: int | None = None  # fallback window end, revoke grace, or fallback deferral
    counted_at: int | None = None  # its entry in the frequency-cap log

    def to_wire(self) -> list[Any]:
        return [
            self.id,
            self.instance_id,
            self.journey_id,
            self.version,
            self.node,
            self.channel,
            self.sent_at,
            self.status,
            self.postbacks,
            self.fallback_sms,
            self.timer_at,
            self.counted_at,
        ]

    @classmethod
    def from_wire(cls, w: list[Any]) -> Message:
        return cls(*w)


@dataclass(slots=True)
class JourneyHistory:
    """What outlives a run: entry counts for re-entry rules, and goal tracking after exit."""

    entries: int = 0
    last_entry: int | None = None
    # (instance_id, version, entered_at) of finished runs still inside their goal window
    tracking: list[tuple[str, int, int, dict[str, Any]]] = field(default_factory=list)
    converted: list[str] = field(default_factory=list)  # instance ids already converted
    # The last max_entries entry times, for entry.max_entries_per (engine.core.entry_limits)
    entry_times: list[int] = field(default_factory=list)

    def to_wire(self) -> list[Any]:
        w: list[Any] = [
            self.entries,
            self.last_entry,
            [list(t) for t in self.tracking],
            self.converted,
        ]
        if self.entry_times:  # only then: other histories' wire form stays as it was
            w.append(self.entry_times)
        return w

    @classmethod
    def from_wire(cls, w: list[Any]) -> JourneyHistory:
        # States written before entry properties were tracked have three fields.
        tracking = [(t[0], t[1], t[2], t[3] if len(t) > 3 else {}) for t in w[2]]
        return cls(w[0], w[1], tracking, w[3], w[4] if len(w) > 4 else [])


@dataclass(slots=True)
class UserState:
    user_id: str
    attrs: dict[str, Any] = field(default_factory=dict)  # profile attributes, merged
    clock: int = 0  # the latest time this user's state has seen; time never goes back
    seen: list[str] = field(default_factory=list)  # recent event ids, oldest first
    opted_out: bool = False
    send_log: list[int] = field(default_factory=list)  # send times, for frequency caps
    instances: dict[str, Instance] = field(default_factory=dict)
    messages: dict[str, Message] = field(default_factory=dict)
    history: dict[str, JourneyHistory] = field(default_factory=dict)
    wake_at: int | None = None  # earliest pending timer, as last told to the adapter
    # Reads, taps and replies per local hour (24 small ints, or empty): engine.core.send_time
    engagement: list[int] = field(default_factory=list)
    # Scheduled entries: journey id -> the last occurrence key decided (engine.core.audience)
    schedules: dict[str, str] = field(default_factory=dict)

    def to_wire(self) -> dict[str, Any]:
        w: dict[str, Any] = {"u": self.user_id, "c": self.clock}
        if self.attrs:
            w["a"] = self.attrs
        if self.seen:
            w["s"] = self.seen
        if self.opted_out:
            w["o"] = 1
        if self.send_log:
            w["l"] = self.send_log
        if self.instances:
            w["i"] = [i.to_wire() for i in self.instances.values()]
        if self.messages:
            w["m"] = [m.to_wire() for m in self.messages.values()]
        if self.history:
            w["h"] = {k: v.to_wire() for k, v in self.history.items()}
        if self.wake_at is not None:
            w["w"] = self.wake_at
        if self.engagement:
            w["e"] = self.engagement
        if self.schedules:
            w["sk"] = self.schedules
        return w

    @classmethod
    def from_wire(cls, w: dict[str, Any]) -> UserState:
        instances = [Instance.from_wire(x) for x in w.get("i", ())]
        messages = [Message.from_wire(x) for x in w.get("m", ())]
        return cls(
            user_id=w["u"],
            attrs=w.get("a", {}),
            clock=w.get("c", 0),
            seen=w.get("s", []),
            opted_out=bool(w.get("o")),
            send_log=w.get("l", []),
            instances={i.id: i for i in instances},
            messages={m.id: m for m in messages},
            history={k: JourneyHistory.from_wire(v) for k, v in w.get("h", {}).items()},
            wake_at=w.get("w"),
            engagement=w.get("e", []),
            schedules=w.get("sk", {}),
        )

    def remember_event(self, event_id: str) -> bool:
        """Record an event id; False when it was already handled (a duplicate)."""
        if event_id in self.seen:
            return False
        self.seen.append(event_id)
        if len(self.seen) > SEEN_EVENTS_KEPT:
            del self.seen[: len(self.seen) - SEEN_EVENTS_KEPT]
        return True

    def next_timer(self) -> int | None:
        # A loop, not min() of lists: this runs two or three times in every step.
        earliest: int | None = None
        for i in self.instances.values():
            at = i.wake_at
            if at is not None and (earliest is None or at < earliest):
                earliest = at
        for m in self.messages.values():
            at = m.timer_at
            if at is not None and (earliest is None or at < earliest):
                earliest = at
        return earliest
