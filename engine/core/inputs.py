"""What the core reacts to. Adapters decode wire messages into these (see :mod:`.wire`)."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Literal

ReceiptStatus = Literal[
    "delivered", "read", "failed", "expired", "not_capable", "revoked", "revoke_failed"
]
RECEIPT_STATUSES: tuple[str, ...] = (
    "delivered",
    "read",
    "failed",
    "expired",
    "not_capable",
    "revoked",
    "revoke_failed",
)
Keyword = Literal["opt_out", "opt_in", "help"]


@dataclass(frozen=True, slots=True)
class UserEvent:
    event_id: str
    user_id: str
    name: str
    ts: int  # epoch ms
    properties: dict[str, Any] = field(default_factory=dict)
    profile: dict[str, Any] | None = None


@dataclass(frozen=True, slots=True)
class Receipt:
    """A channel receipt. ``message_id`` on Kafka; in a simulation file, ``node`` instead
    (the user's latest send from that node)."""

    user_id: str
    ts: int
    status: ReceiptStatus
    message_id: str | None = None
    node: str | None = None
    reason: str | None = None


@dataclass(frozen=True, slots=True)
class Inbound:
    """A message from the user: a suggestion tap (``postback``) or free ``text``.

    ``keyword`` is set by the adapter when the whole text is a compliance keyword
    (STOP / START / HELP and their synonyms); the core doesn't know keyword lists.
    """

    user_id: str
    ts: int
    postback: str | None = None
    text: str | None = None
    message_id: str | None = None
    keyword: Keyword | None = None
    event_id: str | None = None


@dataclass(frozen=True, slots=True)
class Wake:
    """A durable timer fired. Stale wake-ups (nothing due any more) change nothing."""

    user_id: str
    ts: int
    token: str = ""


Input = UserEvent | Receipt | Inbound | Wake
