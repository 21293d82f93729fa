"""Sends and what comes back: suppression rules, the RCS -> SMS fallback, receipts, taps.

The fallback follows the no-double-delivery sequence of the channel spec. Per RCS
message with a ``fallback``::

    sent --delivered/read-----------------------------> delivered (no SMS, ever)
    sent --not_capable / failed / expired / revoked---> fell_back (SMS now)
    sent --window ends (fallback.after)---------------> revoking  (Revoke effect, grace timer)
    revoking --revoked / expired----------------------> fell_back
    revoking --revoke_failed--------------------------> revoke_failed (grace timer)
    revoking --grace ends, no verdict-----------------> fell_back (the TTL has dropped it)
    revoke_failed --grace ends, no DELIVERED----------> revoke again, then fell_back
    fallback_deferred --delivered/read----------------> delivered (the deferred SMS is dropped)

An SMS goes out only from ``fell_back``, and ``fell_back`` is never entered after a
delivery receipt: that is the guarantee the property tests check.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import replace
from typing import Any

from engine.core.context import Step
from engine.core.effects import Revoke, SendRequest
from engine.core.ids import derive_id, derive_uuid
from engine.core.inputs import Inbound, Receipt
from engine.core.localtime import WEEKDAY_INDEX, quiet_window_end, zone
from engine.core.state import Instance, Message
from engine.durations import format_ts
from engine.errors import TemplateError
from engine.journey.model import Journey, SendNode, time_to_minutes

E164_SHAPE = re.compile(r"^\+[1-9]\d{1,14}$")
LIVE = ("sent", "revoking", "revoke_failed")  # statuses in which delivery is still open
# A delivery receipt still counts while the fallback SMS waits out quiet hours: the SMS
# has not gone out yet, so it is dropped (a DELIVERED can follow a failed revoke).
DELIVERABLE = (*LIVE, "fallback_deferred")


def _render(node: SendNode, scope: dict[str, Any]) -> dict[str, Any]:
    # Imported here: rendering lives with the definitions, next to the templates.
    from engine.journey.render import render_send

    return render_send(node, scope).to_dict()


def phone_problem(attrs: dict[str, Any]) -> str | None:
    phone = attrs.get("phone")
    if phone is None or phone == "":
        return "missing_phone"
    if not isinstance(phone, str) or not E164_SHAPE.match(phone):
        return "invalid_phone"
    return None


def quiet_until(step: Step, journey: Journey) -> int | None:
    qh = journey.settings.quiet_hours
    if qh is None:
        return None
    tz = zone(step.state.attrs.get("timezone"), journey.settings.default_timezone)
    days = frozenset(WEEKDAY_INDEX[d] for d in qh.days)
    return quiet_window_end(step.now, time_to_minutes(qh.from_), time_to_minutes(qh.to), days, tz)


def capped(step: Step, journey: Journey, *, excluding: int | None = None) -> bool:
    """True when the user already got ``max`` sends within ``per`` (across all journeys).
    ``excluding`` leaves out one entry: a fallback SMS replaces its RCS message, it
    doesn't add to it."""
    cap = journey.settings.frequency_cap
    if cap is None:
        return False
    since = step.now - cap.per_ms
    count = sum(1 for t in step.state.send_log if t > since)
    if excluding is not None and excluding > since and excluding in step.state.send_log:
        count -= 1
    return count >= cap.max


def _log_send(step: Step) -> int:
    step.state.send_log.append(step.now)
    keep_from = step.now - step.engine.longest_cap_ms
    if step.state.send_log[0] <= keep_from:
        step.state.send_log[:] = [t for t in step.state.send_log if t > keep_from]
    return step.now


def send_node(step: Step, inst: Instance, node: SendNode, *, deferred: bool = False) -> str | None:
    """Send, suppress or defer the message of ``node``; the next node, or None if deferred."""
    journey = step.journey(inst)
    reason = "opted_out" if step.state.opted_out else phone_problem(step.state.attrs)
    if reason is None and node.marketing:
        end = quiet_until(step, journey)
        if end is not None:
            qh = journey.settings.quiet_hours
            if qh is not None and qh.action == "defer":
                inst.wake_at = end
                step.inst_outcome(
                    "message_deferred",
                    inst,
                    channel=node.channel,
                    reason="quiet_hours",
                    until=format_ts(end),
                )
                return None
            reason = "quiet_hours"
    if reason is None and node.marketing and capped(step, journey):
        reason = "frequency_cap"
    if reason is not None:
        step.inst_outcome("message_suppressed", inst, channel=node.channel, reason=reason)
        return node.next
    try:
        content = _render(node, step.scope(inst))
    except TemplateError as exc:
        step.inst_outcome(
            "message_failed", inst, channel=node.channel, reason="template", detail=exc.message
        )
        return node.next
    message_id = derive_uuid("m", inst.id, inst.node, inst.step)
    has_fallback = node.channel == "rcs" and node.fallback is not None
    msg = Message(
        message_id,
        inst.id,
        inst.journey_id,
        inst.version,
        inst.node,
        node.channel,
        step.now,
        postbacks=_postbacks(content),
        fallback_sms=(content.get("fallback_sms") or "") if has_fallback else None,
        counted_at=_log_send(step) if node.marketing else None,
    )
    ttl = node.ttl_ms
    if has_fallback and node.fallback is not None:
        msg.timer_at = step.now + node.fallback.after_ms
        ttl = node.fallback.after_ms  # RCS expires when the fallback window ends
    step.state.messages[message_id] = msg
    inst.last_send = message_id
    inst.sends[inst.node] = message_id
    _request(step, msg, content, ttl_ms=ttl)
    return node.next


def _postbacks(content: dict[str, Any]) -> list[str]:
    chips = list(content.get("suggestions", ()))
    card = content.get("rich_card")
    cards = [card] if card else list((content.get("carousel") or {}).get("cards", ()))
    for c in cards:
        chips.extend(c.get("suggestions", ()))
    return [s["postback"] for s in chips if s.get("postback")]


def _request(
    step: Step,
    msg: Message,
    content: dict[str, Any],
    *,
    ttl_ms: int | None,
    purpose: str = "journey",
    fallback_of: str | None = None,
) -> None:
    attrs = step.state.attrs
    profile: dict[str, Any] = {k: attrs[k] for k in ("rcs_capable", "timezone") if k in attrs}
    step.effects.append(
        SendRequest(
            msg.id,
            step.now,
            step.user_id,
            str(attrs.get("phone", "")),
            msg.channel,
            content,
            msg.journey_id,
            msg.version,
            msg.instance_id,
            msg.node,
            ttl_ms,
            purpose,
            fallback_of,
            profile,
        )
    )
    extra = {"fallback_of": fallback_of} if fallback_of else {}
    step.msg_outcome("message_sent", msg, **extra)


# --------------------------------------------------------------------------- fallback


def fall_back(step: Step, msg: Message, reason: str) -> None:
    """Replace an undelivered RCS message with its SMS (rules apply to the SMS too)."""
    if msg.fallback_sms is None:
        # The run dropped its fallback (it left by an exit event or its goal) while a
        # revoke was under way: nothing replaces the RCS, which is left to its TTL verdict.
        msg.timer_at = None
        return
    if msg.status != "fallback_deferred":
        step.msg_outcome("fallback_triggered", msg, reason=reason)
    msg.status = "fell_back"
    msg.timer_at = None
    journey = step.journey(msg)
    node = journey.nodes.get(msg.node)
    marketing = node.marketing if isinstance(node, SendNode) else True
    why = "opted_out" if step.state.opted_out else phone_problem(step.state.attrs)
    if why is None and marketing and (end := quiet_until(step, journey)) is not None:
        qh = journey.settings.quiet_hours
        if qh is not None and qh.action == "defer":
            msg.status = "fallback_deferred"
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
    _request(step, sms, content, ttl_ms=None, purpose="fallback", fallback_of=msg.id)


def message_timer(step: Step, msg: Message) -> None:
    """A message's timer fired: the fallback window, a revoke grace, or a deferral ended."""
    msg.timer_at = None
    match msg.status:
        case "sent":
            msg.status = "revoking"
            msg.timer_at = step.now + step.engine.config.revoke_grace_ms
            step.effects.append(Revoke(msg.id, step.user_id, step.now))
        case "revoking":
            fall_back(step, msg, "no_receipt")
        case "revoke_failed":
            step.effects.append(Revoke(msg.id, step.user_id, step.now))
            fall_back(step, msg, "revoke_failed")
        case "fallback_deferred":
            fall_back(step, msg, "quiet_hours")


# --------------------------------------------------------------------------- receipts


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


def _delivered(step: Step, msg: Message, rec: Receipt) -> None:
    if msg.status in DELIVERABLE:
        msg.status = "delivered"
        msg.timer_at = None
        step.msg_outcome("message_delivered", msg)


def _read(step: Step, msg: Message, rec: Receipt) -> None:
    if msg.status in DELIVERABLE:
        _delivered(step, msg, rec)
    if msg.status == "delivered":
        msg.status = "read"
        step.msg_outcome("message_read", msg)
        step.engine.on_message_event(step, msg, "read", None)


def _undeliverable(step: Step, msg: Message, rec: Receipt) -> None:
    if msg.status not in LIVE:
        return
    reason = rec.reason or rec.status
    if rec.status == "failed":
        step.msg_outcome("message_failed", msg, reason=reason)
    if msg.fallback_sms is not None:
        fall_back(step, msg, "ttl_expired" if rec.status in ("expired", "revoked") else reason)
    else:
        if rec.status != "failed":
            step.msg_outcome("message_failed", msg, reason=reason)
        msg.status = "failed"
        msg.timer_at = None


def _revoke_failed(step: Step, msg: Message, rec: Receipt) -> None:
    if msg.status == "revoking":
        msg.status = "revoke_failed"
        msg.timer_at = step.now + step.engine.config.revoke_grace_ms


ON_RECEIPT: dict[str, Callable[[Step, Message, Receipt], None]] = {
    "delivered": _delivered,
    "read": _read,
    "failed": _undeliverable,
    "expired": _undeliverable,
    "not_capable": _undeliverable,
    "revoked": _undeliverable,
    "revoke_failed": _revoke_failed,
}


def handle_receipt(step: Step, rec: Receipt) -> None:
    msg = find_message(step, rec.message_id, rec.node)
    if msg is not None:
        ON_RECEIPT[rec.status](step, msg, rec)


# --------------------------------------------------------------------------- inbound


def _latest_message(step: Step, postback: str | None) -> Message | None:
    best: Message | None = None
    for m in step.state.messages.values():
        if postback is not None and postback not in m.postbacks:
            continue
        if best is None or m.sent_at >= best.sent_at:
            best = m
    return best


def _user_outcome(step: Step, type_: str, msg: Message | None, **attrs: Any) -> None:
    if msg is None:
        step.outcome(type_, key=step.now, **attrs)
    else:
        step.msg_outcome(type_, msg, key=step.now, **attrs)


def handle_inbound(step: Step, inb: Inbound) -> None:
    msg = step.state.messages.get(inb.message_id) if inb.message_id else None
    if inb.keyword == "opt_in" and not step.state.opted_out:
        # "YES" from a user who never opted out is an answer, not a keyword.
        inb = replace(inb, keyword=None)
    if inb.keyword is not None:
        msg = msg or _latest_message(step, None)
        if inb.keyword == "opt_out":
            step.state.opted_out = True
            _user_outcome(step, "user_opted_out", msg)
        elif inb.keyword == "opt_in":
            step.state.opted_out = False
            _user_outcome(step, "user_opted_in", msg)
        else:
            _user_outcome(step, "help_requested", msg)
            _send_help(step, msg)
        return
    if inb.postback is not None:
        msg = msg or _latest_message(step, inb.postback) or _latest_message(step, None)
        if msg is not None:
            step.msg_outcome(
                "message_clicked", msg, key=(step.now, inb.postback), postback=inb.postback
            )
            step.engine.on_message_event(step, msg, "click", inb.postback)
    elif inb.text is not None:
        msg = msg or _latest_message(step, None)
        if msg is not None:
            step.msg_outcome("message_replied", msg, key=(step.now, inb.text), text=inb.text[:500])
            step.engine.on_message_event(step, msg, "reply", inb.text)


def _send_help(step: Step, about: Message | None) -> None:
    """HELP is answered even in quiet hours and past the cap: the user asked for it."""
    text = step.engine.config.help_text
    if about is not None:
        text = step.journey(about).settings.help_text or text
    if phone_problem(step.state.attrs) is not None:
        return
    help_id = derive_uuid("help", step.user_id, step.now)
    step.effects.append(
        SendRequest(
            help_id,
            step.now,
            step.user_id,
            str(step.state.attrs.get("phone")),
            "sms",
            {"channel": "sms", "text": text},
            None,
            None,
            None,
            None,
            None,
            "help",
        )
    )
    step.outcome(
        "message_sent", channel="sms", message_id=help_id, key=derive_id(step.now), purpose="help"
    )
