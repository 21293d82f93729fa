"""A message's delivery and the RCS -> SMS fallback, as a transition table.

Every message the core sends has a ``status``. An RCS message with a ``fallback`` can
take every path below; any other message only goes sent -> delivered -> read, sent ->
failed, or sent -> unresolved (its fate unknown). ``TRANSITIONS`` is the whole state
machine, in the style of h11's ``_state.py``: it maps ``(status, event)`` to the new
status and the actions that go with the move. A pair that is not in the table changes
nothing: a late, repeated or out-of-order receipt is ignored. The functions below the
table only turn receipts and timers into events, look rows up and run their actions; they
make no decision of their own.

Events: a receipt from the channel (``delivered``, ``read``, ``revoke_failed``;
``undeliverable`` for failed / not_capable, the send itself didn't go; ``expired`` for
expired / revoked, the platform's verdict that the message was dropped undelivered;
``unknown``, the gateway can't tell whether the provider took the message; ``accepted``,
the provider took it only now, after the gateway held it back for rate limits), the
message's ``timer`` (the fallback window, a revoke grace, or a deferral ended), and two
the core raises itself: ``deferred`` (the fallback SMS must wait out quiet hours) and
``sms_dropped`` (the run left because of what the user did, so no SMS copy of the old
message goes out). ``undeliverable``, ``expired``, ``unknown``, ``accepted`` and
``timer`` become ``<event>_no_sms`` when the message has no fallback SMS (none declared,
or dropped); ``accepted_no_sms`` has no row (no window to restart)::

    [sent] --timer: window ends--> [revoking] --revoke_failed--> [revoke_failed]
      |     (Revoke, grace timer)      |          (grace timer)         |
      |                                | timer: grace ends,             | timer: grace ends
      | undeliverable, expired         | or undeliverable, expired      | (Revoke again),
      |                                v                                | or undeliverable,
      +--------------------------> [fell_back] <------------------------+ expired
                                     |    ^
                            deferred |    | timer: quiet hours end
                                     v    |
                               [fallback_deferred]

    [sent | revoking | revoke_failed | fallback_deferred] --delivered--> [delivered]
    [sent | revoking | revoke_failed | fallback_deferred] --read-------> [read]
    [delivered] --read--> [read]
    [sent | revoking | revoke_failed] --undeliverable_no_sms, expired_no_sms--> [failed]
    [sent] --accepted--> [sent]: the window restarts from the hand-over (no outcome)

The fate unknown (``message_unknown``): possibly delivered, so only a verdict sends the
SMS; the window's end still revokes, but a grace with no verdict gives the SMS up::

    [sent] --unknown--> [unknown] --timer: window ends--> [unknown_revoking]
                           |          (Revoke, grace timer)     |       |
                           | expired                    expired |       | timer: grace ends,
                           v                                    |       | or revoke_failed
                      [fell_back] <-----------------------------+       v
                                                                  [unresolved]
    [revoking] --unknown--> [unknown_revoking]
    [revoke_failed | fallback_deferred] --unknown--> [unresolved]   (no SMS, none waits)
    [sent | revoking | revoke_failed | fallback_deferred] --unknown_no_sms--> [unresolved]
    [unknown] --sms_dropped--> [unresolved]
    [unknown | unknown_revoking | unresolved] --delivered / read--> [delivered / read]
    [unknown_revoking] --expired_no_sms--> [failed]       (message_failed)
    [unresolved] --expired, expired_no_sms--> [failed]    (message_failed, no SMS)

``unresolved`` is final for the fallback: no SMS goes out for the message, whatever comes
later; a late delivery, read or expiry is still reported, and a read still moves a
``wait_for`` on (the run itself never waits for a message's status: it went on at the
send, and its ``wait_for`` paths and timeouts apply as usual). After ``unknown``, a
``failed`` or ``not_capable`` receipt proves nothing (a send that went through may fail
when tried again) and is ignored. ``unknown`` on a message that already ``fell_back`` is
reported but changes nothing: its SMS is out.

Not drawn: the rows that keep the status (a timer with no SMS left to send, the SMS
dropped, ``unknown`` after the SMS went out). Entering ``fell_back`` is what sends the
SMS, after the same rules as any send (opt-out, phone, quiet hours, frequency cap): a rule
may suppress it, and quiet hours with ``defer`` raise ``deferred``.

The no-double-delivery guarantee: an SMS goes out only on entering ``fell_back``, and no
row leads to ``fell_back`` from ``delivered``, ``read`` or ``unresolved``; a delivery or an
``unknown`` while the SMS waits in ``fallback_deferred`` drops the SMS. So once a delivery
receipt is in, no SMS goes out for that message. And once the gateway said ``unknown``,
the only rows into ``fell_back`` are ``expired`` ones: the SMS goes out only on the
platform's verdict that the RCS message expired or was revoked undelivered. The property
tests check both over random receipt orders.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from functools import partial
from typing import Any, Literal, cast

from engine.core.context import Step
from engine.core.effects import Revoke
from engine.core.ids import derive_uuid
from engine.core.inputs import Receipt
from engine.core.sends import capped, phone_problem, quiet_until, request, rule_values
from engine.core.state import Message, UserState
from engine.core.trace import transition_values
from engine.core.user_actions import UserAction
from engine.durations import format_ts
from engine.journey.model import SendNode

Status = Literal[
    "sent",
    "delivered",
    "read",
    "failed",
    "revoking",
    "revoke_failed",
    "fell_back",
    "fallback_deferred",
    "unknown",
    "unknown_revoking",
    "unresolved",
]
Event = Literal[
    "delivered",
    "read",
    "undeliverable",
    "undeliverable_no_sms",
    "expired",
    "expired_no_sms",
    "revoke_failed",
    "timer",
    "timer_no_sms",
    "deferred",
    "sms_dropped",
    "unknown",
    "unknown_no_sms",
    "accepted",
    "accepted_no_sms",
]
# An action runs with the step, the message and the receipt that caused the event (None
# for timers and the events the core raises).
Action = Callable[[Step, Message, Receipt | None], None]


@dataclass(frozen=True, slots=True)
class Transition:
    to: Status
    actions: tuple[Action, ...] = ()
    user_action: Literal["read"] | None = None  # what the user did, for wait_for paths


# --------------------------------------------------------------------------- actions


def _stop_timer(step: Step, msg: Message, rec: Receipt | None) -> None:
    msg.timer_at = None


def _grace_timer(step: Step, msg: Message, rec: Receipt | None) -> None:
    msg.timer_at = step.now + step.config.revoke_grace_ms


def _revoke(step: Step, msg: Message, rec: Receipt | None) -> None:
    step.effects.append(Revoke(msg.id, step.user_id, step.now))


def _report_delivered(step: Step, msg: Message, rec: Receipt | None) -> None:
    step.msg_outcome("message_delivered", msg)


def _report_read(step: Step, msg: Message, rec: Receipt | None) -> None:
    step.msg_outcome("message_read", msg)


def _receipt_reason(rec: Receipt | None) -> str:
    return "" if rec is None else rec.reason or rec.status


def _report_failed(step: Step, msg: Message, rec: Receipt | None) -> None:
    step.msg_outcome("message_failed", msg, reason=_receipt_reason(rec))


def _report_if_failed(step: Step, msg: Message, rec: Receipt | None) -> None:
    # A "failed" receipt is a failure even when an SMS replaces the message; an expiry or
    # a revocation is the planned way to the SMS, not a failure.
    if rec is not None and rec.status == "failed":
        _report_failed(step, msg, rec)


def _report_unknown(step: Step, msg: Message, rec: Receipt | None) -> None:
    step.msg_outcome("message_unknown", msg, reason=_receipt_reason(rec))


def _restart_window(step: Step, msg: Message, rec: Receipt | None) -> None:
    """The provider took the message only at ``rec.ts`` (the gateway held it for rate
    limits): the fallback window counts from that hand-over, never shorter than before."""
    node = step.journey(msg).nodes.get(msg.node)
    if rec is None or not isinstance(node, SendNode) or node.fallback is None:
        return
    handed_over = rec.ts + node.fallback.after_ms
    msg.timer_at = handed_over if msg.timer_at is None else max(msg.timer_at, handed_over)


def _announce(reason: str) -> Action:
    def announce(step: Step, msg: Message, rec: Receipt | None) -> None:
        step.msg_outcome("fallback_triggered", msg, reason=reason)

    return announce


def _announce_receipt(step: Step, msg: Message, rec: Receipt | None) -> None:
    expired = rec is not None and rec.status in ("expired", "revoked")
    reason = "ttl_expired" if expired else _receipt_reason(rec)
    step.msg_outcome("fallback_triggered", msg, reason=reason)


def _send_sms(step: Step, msg: Message, rec: Receipt | None) -> None:
    """Replace the undelivered RCS message with its SMS; the send rules apply to it too."""
    msg.timer_at = None
    journey = step.journey(msg)
    node = journey.nodes.get(msg.node)
    marketing = node.marketing if isinstance(node, SendNode) else True
    why = "opted_out" if step.state.opted_out else phone_problem(step.state.attrs)
    if why is None and marketing and (end := quiet_until(step, journey)) is not None:
        qh = journey.settings.quiet_hours
        if qh is not None and qh.action == "defer":
            why_deferred = partial(rule_values, step, journey, "deferred")
            step.trace(
                "send", "deferred", msg, channel="sms", fallback_of=msg.id, more=why_deferred
            )
            fire(step, msg, "deferred")
            msg.timer_at = end
            step.msg_outcome(
                "message_deferred",
                msg,
                key="fallback",
                reason="quiet_hours",
                until=format_ts(end),
                fallback_of=msg.id,
            )
            return
        why = "quiet_hours"
    if why is None and marketing and capped(step, journey, excluding=msg.counted_at):
        why = "frequency_cap"
    sms_id = derive_uuid("sms", msg.id)
    if why is not None:
        values = partial(rule_values, step, journey, why, excluding=msg.counted_at)
        step.trace("send", why, msg, channel="sms", fallback_of=msg.id, more=values)
        step.outcome(
            "message_suppressed",
            journey_id=msg.journey_id,
            version=msg.version,
            instance_id=msg.instance_id,
            node_id=msg.node,
            channel="sms",
            message_id=sms_id,
            reason=why,
            fallback_of=msg.id,
        )
        return
    sms = Message(
        sms_id,
        msg.instance_id,
        msg.journey_id,
        msg.version,
        msg.node,
        "sms",
        step.now,
        counted_at=msg.counted_at,
    )
    step.state.messages[sms_id] = sms
    text = msg.fallback_sms
    content: dict[str, Any] = (
        {"channel": "sms", "text": text} if text else {"channel": "sms", "derive_from": msg.id}
    )
    request(step, sms, content, ttl_ms=None, purpose="fallback", fallback_of=msg.id)


def _t(to: Status, *actions: Action, user_action: Literal["read"] | None = None) -> Transition:
    return Transition(to, actions, user_action)


_DELIVERED = _t("delivered", _stop_timer, _report_delivered)
_READ = _t("read", _stop_timer, _report_delivered, _report_read, user_action="read")
_FELL_BACK = _t("fell_back", _report_if_failed, _announce_receipt, _send_sms)
_FAILED = _t("failed", _report_failed, _stop_timer)
# The fate unknown and no SMS will follow (none left, or no verdict can come any more).
_UNRESOLVED = _t("unresolved", _report_unknown, _stop_timer)

# --------------------------------------------------------------------------- the table

TRANSITIONS: dict[tuple[Status, Event], Transition] = {
    # sent: out on the channel; for an RCS message with a fallback, its window is open.
    ("sent", "delivered"): _DELIVERED,
    ("sent", "read"): _READ,
    ("sent", "undeliverable"): _FELL_BACK,
    ("sent", "undeliverable_no_sms"): _FAILED,
    ("sent", "expired"): _FELL_BACK,
    ("sent", "expired_no_sms"): _FAILED,
    ("sent", "timer"): _t("revoking", _grace_timer, _revoke),
    ("sent", "timer_no_sms"): _t("revoking", _grace_timer, _revoke),
    ("sent", "sms_dropped"): _t("sent", _stop_timer),
    ("sent", "unknown"): _t("unknown", _report_unknown),
    ("sent", "unknown_no_sms"): _UNRESOLVED,
    # held back for rate limits: the window counts from the hand-over to the provider.
    ("sent", "accepted"): _t("sent", _restart_window),
    # revoking: the window ended; a revoke is out and the grace timer waits for a verdict.
    ("revoking", "delivered"): _DELIVERED,
    ("revoking", "read"): _READ,
    ("revoking", "undeliverable"): _FELL_BACK,
    ("revoking", "undeliverable_no_sms"): _FAILED,
    ("revoking", "expired"): _FELL_BACK,
    ("revoking", "expired_no_sms"): _FAILED,
    ("revoking", "revoke_failed"): _t("revoke_failed", _grace_timer),
    # no verdict within the grace: the TTL has dropped the RCS message.
    ("revoking", "timer"): _t("fell_back", _announce("no_receipt"), _send_sms),
    # the run dropped its SMS meanwhile: the RCS is left to its TTL verdict.
    ("revoking", "timer_no_sms"): _t("revoking"),
    # the grace goes on, but now only a verdict sends the SMS.
    ("revoking", "unknown"): _t("unknown_revoking", _report_unknown),
    ("revoking", "unknown_no_sms"): _UNRESOLVED,
    # revoke_failed: the revoke came too late or was refused; a delivery may still come.
    ("revoke_failed", "delivered"): _DELIVERED,
    ("revoke_failed", "read"): _READ,
    ("revoke_failed", "undeliverable"): _FELL_BACK,
    ("revoke_failed", "undeliverable_no_sms"): _FAILED,
    ("revoke_failed", "expired"): _FELL_BACK,
    ("revoke_failed", "expired_no_sms"): _FAILED,
    ("revoke_failed", "timer"): _t("fell_back", _revoke, _announce("revoke_failed"), _send_sms),
    ("revoke_failed", "timer_no_sms"): _t("revoke_failed", _revoke),
    # the revoke failed, so no verdict will come: possibly delivered, no SMS.
    ("revoke_failed", "unknown"): _UNRESOLVED,
    ("revoke_failed", "unknown_no_sms"): _UNRESOLVED,
    # fell_back: entered, the SMS goes out, unless quiet hours defer it.
    ("fell_back", "deferred"): _t("fallback_deferred"),
    # too late to hold the SMS back: reported, so that the possible double shows.
    ("fell_back", "unknown"): _t("fell_back", _report_unknown),
    ("fell_back", "unknown_no_sms"): _t("fell_back", _report_unknown),
    # fallback_deferred: the SMS waits for quiet hours to end; a delivery drops it.
    ("fallback_deferred", "delivered"): _DELIVERED,
    ("fallback_deferred", "read"): _READ,
    ("fallback_deferred", "timer"): _t("fell_back", _send_sms),
    ("fallback_deferred", "timer_no_sms"): _t("fallback_deferred"),
    ("fallback_deferred", "sms_dropped"): _t("fallback_deferred", _stop_timer),
    # possibly delivered after all: the waiting SMS is dropped.
    ("fallback_deferred", "unknown"): _UNRESOLVED,
    ("fallback_deferred", "unknown_no_sms"): _UNRESOLVED,
    # delivered: only a read is still news.
    ("delivered", "read"): _t("read", _report_read, user_action="read"),
    # unknown: possibly delivered; the window is open, and only a verdict sends the SMS.
    ("unknown", "delivered"): _DELIVERED,
    ("unknown", "read"): _READ,
    ("unknown", "expired"): _FELL_BACK,
    ("unknown", "timer"): _t("unknown_revoking", _grace_timer, _revoke),
    ("unknown", "sms_dropped"): _t("unresolved", _stop_timer),
    # unknown_revoking: the window ended; a revoke is out, the grace waits for a verdict.
    ("unknown_revoking", "delivered"): _DELIVERED,
    ("unknown_revoking", "read"): _READ,
    ("unknown_revoking", "expired"): _FELL_BACK,
    ("unknown_revoking", "expired_no_sms"): _FAILED,
    # no verdict within the grace, or none can come: the SMS is given up.
    ("unknown_revoking", "timer"): _t("unresolved"),
    ("unknown_revoking", "timer_no_sms"): _t("unresolved"),
    ("unknown_revoking", "revoke_failed"): _t("unresolved", _stop_timer),
    # unresolved: no SMS any more; what the channel still says is reported.
    ("unresolved", "delivered"): _DELIVERED,
    ("unresolved", "read"): _READ,
    ("unresolved", "expired"): _FAILED,
    ("unresolved", "expired_no_sms"): _FAILED,
}

# After these statuses the channel is not expected to deliver the message any more: it
# failed, or its SMS replaced it (or will, after quiet hours).
GIVEN_UP: frozenset[Status] = frozenset({"failed", "fell_back", "fallback_deferred"})


def fire(step: Step, msg: Message, event: Event, rec: Receipt | None = None) -> UserAction | None:
    """Move ``msg`` by ``event`` as the table says; what the user did, if anything."""
    row = TRANSITIONS.get((cast(Status, msg.status), event))
    if row is None:
        return None
    step.trace("message", event, msg, more=lambda: transition_values(msg, row.to, rec))
    msg.status = row.to
    for action in row.actions:
        action(step, msg, rec)
    return None if row.user_action is None else UserAction(row.user_action, msg)


# --------------------------------------------------------------------------- events in


def _has_sms(msg: Message) -> bool:
    return msg.fallback_sms is not None


RECEIPT_EVENTS: dict[str, Callable[[Message], Event]] = {
    "delivered": lambda msg: "delivered",
    "read": lambda msg: "read",
    "revoke_failed": lambda msg: "revoke_failed",
    **dict.fromkeys(
        ("failed", "not_capable"),
        lambda msg: "undeliverable" if _has_sms(msg) else "undeliverable_no_sms",
    ),
    **dict.fromkeys(
        ("expired", "revoked"),
        lambda msg: "expired" if _has_sms(msg) else "expired_no_sms",
    ),
    "unknown": lambda msg: "unknown" if _has_sms(msg) else "unknown_no_sms",
    "accepted": lambda msg: "accepted" if _has_sms(msg) else "accepted_no_sms",
}


def find_message(step: Step, message_id: str | None, node: str | None) -> Message | None:
    if message_id is not None:
        return step.state.messages.get(message_id)
    if node is None:
        return None
    # A simulation file names the node: the user's latest message from it that is still
    # in play (an RCS message that fell back gives way to its SMS).
    best: Message | None = None
    best_key = (-1, False)
    for m in step.state.messages.values():
        key = (m.sent_at, m.status != "fell_back")
        if m.node == node and key >= best_key:
            best, best_key = m, key
    return best


def handle_receipt(step: Step, rec: Receipt) -> UserAction | None:
    """A channel receipt; a read comes back as what the user did."""
    msg = find_message(step, rec.message_id, rec.node)
    if msg is None:
        return None
    return fire(step, msg, RECEIPT_EVENTS[rec.status](msg), rec)


def message_timer(step: Step, msg: Message) -> None:
    """A message's timer fired: the fallback window, a revoke grace, or a deferral ended."""
    msg.timer_at = None  # spent, whatever the table does next
    fire(step, msg, "timer" if _has_sms(msg) else "timer_no_sms")


def drop_sms(step: Step, msg: Message) -> None:
    """The run left because of what the user did (cancelled, converted): an SMS copy of a
    message about the old situation would be wrong, so a pending fallback is dropped."""
    if msg.fallback_sms is not None:
        msg.fallback_sms = None
        fire(step, msg, "sms_dropped")


def messages_given_up(state: UserState) -> list[str]:
    """Ids of the user's messages the channel is no longer expected to deliver (failed, or
    replaced by their SMS). A simulated channel uses it to cancel deliveries it scheduled
    before a failure receipt overtook them."""
    return [m.id for m in state.messages.values() if m.status in GIVEN_UP]
