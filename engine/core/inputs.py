"""What the core reacts to. Adapters decode wire messages into these (see :mod:`.wire`)."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Literal, get_args

from engine.core.fastinit import fast_init

# "accepted": the provider took the message at ``ts`` (the gateway sends it only for a
# send it held back, for rate limits, well after the request). "unknown": the gateway
# can't tell whether the provider took it (a crash between its durable claim and the
# provider's answer, for a provider it may not call again): possibly delivered.
ReceiptStatus = Literal[
    "delivered",
    "read",
    "failed",
    "expired",
    "not_capable",
    "revoked",
    "revoke_failed",
    "unknown",
    "accepted",
]
RECEIPT_STATUSES: tuple[str, ...] = get_args(ReceiptStatus)
Keyword = Literal["opt_out", "opt_in", "help"]


@fast_init
@dataclass(frozen=True, slots=True)
class UserEvent:
    event_id: str
    user_id: str
    name: str
    ts: int  # epoch ms
    properties: dict[str, Any] = field(default_factory=dict)
    profile: dict[str, Any] | None = None


@fast_init
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


@fast_init
@dataclass(frozen=True, slots=True)
class Inbound:
    """A message from the user: a suggestion tap (``postback``) or free ``text``.

    ``keyword`` says the whole text is a compliance keyword (STOP / START / HELP and
    their synonyms). Left None, the core classifies ``text`` itself
    (:mod:`engine.core.keywords`); an adapter sets it only to pass on a classification
    made elsewhere (a simulation file's ``keyword`` field, say).
    """

    user_id: str
    ts: int
    postback: str | None = None
    text: str | None = None
    message_id: str | None = None
    keyword: Keyword | None = None
    event_id: str | None = None


@fast_init
@dataclass(frozen=True, slots=True)
class Wake:
    """A durable timer fired. ``token`` is the one of the ``ScheduleWake`` that asked for
    it (:func:`engine.core.ids.wake_token`): the core drops a wake-up whose token is not
    the one of the user's current timer (stale: the timer moved or fired already), and
    returns the state untouched with no effects. Without a token, it is a plain "the
    clock is now ``ts``" (tests, tools): whatever is due by then fires."""

    user_id: str
    ts: int
    token: str = ""


@fast_init
@dataclass(frozen=True, slots=True)
class Forget:
    """Erase the user (``journeys forget``): see :mod:`engine.core.forget`.
    ``request_id`` makes the ``user_forgotten`` outcome's id, so a repeat is one outcome."""

    user_id: str
    ts: int
    request_id: str = ""


@dataclass(frozen=True, slots=True)
class WebhookResult:
    """The gateway's answer to a :class:`~engine.core.effects.WebhookRequest` (on
    ``journey.channel-receipts``): ``called`` (a 2xx, ``code``) or ``failed`` (after the
    retries; ``code`` when the server answered). ``body``: the response, cut to 4 KB."""

    user_id: str
    ts: int
    action_id: str
    status: Literal["called", "failed"]
    code: int | None = None
    reason: str | None = None
    body: str | None = None


@dataclass(frozen=True, slots=True)
class Scheduled:
    """Occurrence ``occurrence`` (its local key, ``2026-12-07T10:00``) of the scheduled
    journey ``journey_id`` is due for the user at ``ts``: a clock tick. The core decides
    occurrences itself as the user's clock passes them (:mod:`.audience`), so this only
    moves the clock on, for a known user; a repeat changes nothing. The worker's scanner
    sends it to users whose stored wake-up predates the deployed schedule."""

    user_id: str
    ts: int
    journey_id: str = ""
    occurrence: str = ""


Input = UserEvent | Receipt | Inbound | Wake | Forget | WebhookResult | Scheduled
