"""What the core asks its adapter to do. Effects are plain data; adapters carry them out."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from engine.core.fastinit import fast_init
from engine.core.trace import Trace
from engine.durations import format_ts

SCHEMA_VERSION = 1


@fast_init
@dataclass(frozen=True, slots=True)
class Outcome:
    outcome_id: str
    type: str
    ts: int
    user_id: str
    journey_id: str | None
    journey_version: int | None
    instance_id: str | None
    node_id: str | None
    channel: str | None = None
    message_id: str | None = None
    attributes: dict[str, Any] = field(default_factory=dict)

    def to_wire(self) -> dict[str, Any]:
        return {
            "outcome_id": self.outcome_id,
            "type": self.type,
            "ts": format_ts(self.ts),
            "user_id": self.user_id,
            "journey_id": self.journey_id,
            "journey_version": self.journey_version,
            "instance_id": self.instance_id,
            "node_id": self.node_id,
            "channel": self.channel,
            "message_id": self.message_id,
            "attributes": self.attributes,
            "schema_version": SCHEMA_VERSION,
        }


@fast_init
@dataclass(frozen=True, slots=True)
class SendRequest:
    """Ask the channel gateway to send one message. ``message_id`` is deterministic:
    the gateway sends a given id at most once."""

    message_id: str
    ts: int
    user_id: str
    to: str
    channel: str  # rcs | sms
    content: dict[str, Any]  # rendered node content (text / rich_card / carousel / suggestions)
    journey_id: str | None
    journey_version: int | None
    instance_id: str | None
    node_id: str | None
    ttl_ms: int | None = None
    purpose: str = "journey"  # journey | fallback | help
    fallback_of: str | None = None
    profile: dict[str, Any] = field(default_factory=dict)  # what adapters may need (rcs_capable)
    # The journey's settings.send_rate, {"max": int, "per_ms": int}: the gateway sends at
    # most ``max`` messages of this journey per ``per_ms``; the others wait, in order.
    send_rate: dict[str, int] | None = None

    def to_wire(self) -> dict[str, Any]:
        rate = {} if self.send_rate is None else {"send_rate": self.send_rate}
        return {
            "message_id": self.message_id,
            "ts": format_ts(self.ts),
            "user_id": self.user_id,
            "to": self.to,
            "channel": self.channel,
            "content": self.content,
            "journey_id": self.journey_id,
            "journey_version": self.journey_version,
            "instance_id": self.instance_id,
            "node_id": self.node_id,
            "ttl_ms": self.ttl_ms,
            "purpose": self.purpose,
            "fallback_of": self.fallback_of,
            "profile": self.profile,
            **rate,
        }


@fast_init
@dataclass(frozen=True, slots=True)
class Revoke:
    """Ask the gateway to revoke an RCS message that has not been delivered."""

    message_id: str
    user_id: str
    ts: int


@fast_init
@dataclass(frozen=True, slots=True)
class ScheduleWake:
    """The user's earliest pending timer is now ``at`` (None: nothing pending). The adapter
    hands ``token`` back on the ``Wake`` it delivers at ``at``."""

    user_id: str
    at: int | None
    token: str


@fast_init
@dataclass(frozen=True, slots=True)
class Erase:
    """The user was forgotten: the adapter deletes the stored state (a tombstone) and asks
    the gateway to drop its records of the user (message ids, phone mapping)."""

    user_id: str


@dataclass(frozen=True, slots=True)
class WebhookRequest:
    """Ask the gateway to call a webhook (engine/core/webhook.py). ``action_id`` is
    deterministic: it is the call's ``Idempotency-Key``, and the result receipt names it.
    ``allow`` is the journey's allow-list: the gateway checks the URL against it again."""

    action_id: str
    ts: int
    user_id: str
    url: str
    method: str
    body: str | None  # the rendered JSON text, sent and signed as is
    headers: dict[str, str]
    timeout_ms: int
    allow: list[str]
    journey_id: str
    journey_version: int
    instance_id: str
    node_id: str


# Trace: why the core decided what it did, for traced users only (engine/core/trace.py).
Effect = Outcome | SendRequest | Revoke | ScheduleWake | Erase | Trace | WebhookRequest
