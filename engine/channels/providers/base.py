"""What the gateway needs from a provider adapter, and what adapters hand back.

Adapters raise the engine's provider errors with a little more meaning attached:

* :class:`NotReachable` (RBM 403/404): the user can't get RCS -> ``not_capable``;
* :class:`UnsupportedFeature` (RBM 400): the device lacks something the message uses;
* :class:`RateLimited` (429) carries the provider's ``Retry-After``;
* :class:`OutcomeUnknown` (timeout, 500/502/504, connection lost mid-request): the
  request may have been carried out. The gateway retries it only for an *idempotent*
  provider (RBM dedupes on ``messageId``); for another it asks the provider first
  (:class:`LookupProvider`), since retrying a plain SMS API could send twice.

Webhook parsers turn provider callbacks into :class:`ReceiptEvent` / :class:`InboundEvent`,
which still name the user by phone or message id; the webhook receiver resolves the user.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Protocol, runtime_checkable

from engine.channels.prepare import Prepared
from engine.core.effects import Revoke, SendRequest
from engine.core.inputs import Inbound, Receipt, ReceiptStatus
from engine.errors import PermanentProviderError, RetryableProviderError


class RateLimited(RetryableProviderError):
    """429: slow down; ``retry_after`` seconds when the provider said so."""

    def __init__(
        self, message: str, *, status: int | None = 429, retry_after: float | None = None
    ) -> None:
        super().__init__(message, status=status)
        self.retry_after = retry_after


class OutcomeUnknown(RetryableProviderError):
    """The request may or may not have been carried out (timeout, 500, 502, 504)."""


class ProviderRejected(PermanentProviderError):
    """A 4xx with the provider's own error ``code`` (Twilio ``21211``...), when it gave one."""

    def __init__(self, message: str, *, status: int | None = None, code: str | None = None) -> None:
        super().__init__(message, status=status)
        self.code = code


class NotReachable(PermanentProviderError):
    """The user can't be reached on this channel (RBM 403/404): report ``not_capable``."""


class UnsupportedFeature(PermanentProviderError):
    """The device lacks a feature the message uses (RBM 400)."""


@dataclass(frozen=True, slots=True)
class Capability:
    """``features`` is ``None`` when the provider doesn't list them (anything goes)."""

    reachable: bool
    features: frozenset[str] | None = None


@dataclass(frozen=True, slots=True)
class SendResult:
    """The provider took the message; ``provider_id`` is its own id (Twilio ``sid``).

    ``events`` is what the provider already knows will happen to the message, each at its
    ``ts`` (the simulated provider's plan: its delivery 5 s later). Real providers report
    through webhooks instead and leave it empty."""

    provider_id: str | None = None
    events: tuple[Receipt | Inbound, ...] = ()


@runtime_checkable
class LookupProvider(Protocol):
    """A provider without an idempotency key that can say whether a message went out."""

    async def lookup(self, to: str, body: str, since_ms: int) -> SendResult | None:
        """The message sent to ``to`` with text ``body`` at or after ``since_ms`` (epoch
        ms), or ``None`` when the provider has none."""
        ...


@runtime_checkable
class SmsProvider(Protocol):
    name: str
    idempotent: bool  # may an ambiguous send be repeated without risking a second message?

    async def send(self, msg: Prepared, req: SendRequest) -> SendResult: ...

    async def close(self) -> None: ...


@runtime_checkable
class RcsProvider(Protocol):
    name: str
    idempotent: bool

    async def send(self, msg: Prepared, req: SendRequest) -> SendResult: ...

    async def capability(self, phone: str, profile: Mapping[str, Any] | None = None) -> Capability:
        """``profile`` is a hint only simulated providers use (``rcs_capable``)."""
        ...

    async def revoke(self, phone: str, rev: Revoke) -> None:
        """Ask the provider to drop an undelivered message. Success proves nothing: the
        outcome arrives later as an event (revoked / revoke_failed / delivered)."""
        ...

    async def close(self) -> None: ...


@dataclass(frozen=True, slots=True)
class ReceiptEvent:
    """A status callback. ``message_id`` is ours when the provider echoes it (RBM does;
    an SMS callback carries it in the callback URL), else look up ``provider_id``."""

    status: ReceiptStatus
    dedupe_key: str
    message_id: str | None = None
    provider_id: str | None = None
    phone: str | None = None
    ts: int | None = None
    reason: str | None = None


@dataclass(frozen=True, slots=True)
class InboundEvent:
    """A message from the user: a suggestion tap (``postback``) or ``text``. Keywords
    (STOP, START, HELP) are left to the core to classify."""

    phone: str
    dedupe_key: str
    postback: str | None = None
    text: str | None = None  # a shared location as ``geo:<lat>,<lng>`` (RFC 5870)
    message_id: str | None = None  # the provider's id of the user's message
    ts: int | None = None


@dataclass(frozen=True, slots=True)
class Ignored:
    """A callback that needs no action (typing indicator, ``ENROUTE``...), or one that
    can't be used (``dead_letter``: hand it to operators, don't drop it silently)."""

    dedupe_key: str | None
    why: str
    dead_letter: bool = False


ProviderEvent = ReceiptEvent | InboundEvent | Ignored
