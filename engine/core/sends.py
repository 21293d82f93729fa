"""Sends: the suppression rules, a send node's message, and the request for the gateway.

A send node's message goes out unless a rule stops it, checked in this order: the run is
in a control group (:mod:`.holdout`), the user opted out, has no usable phone number, is
in quiet hours (marketing only: the send is suppressed, or deferred to the end of the
window), or has reached the frequency cap (marketing only). The RCS -> SMS fallback
applies the same rules to its SMS (:mod:`.fallback`).
"""

from __future__ import annotations

import re
from typing import Any

from engine.core.context import Step
from engine.core.effects import SendRequest
from engine.core.holdout import held_back
from engine.core.ids import derive_uuid
from engine.core.localtime import WEEKDAY_INDEX, quiet_window_end, zone
from engine.core.state import Instance, Message
from engine.core.trace import cap_values, mask_phone, quiet_values
from engine.durations import format_ts
from engine.errors import TemplateError
from engine.journey.model import Journey, SendNode, time_to_minutes
from engine.journey.render import render_send

E164_SHAPE = re.compile(r"^\+[1-9]\d{1,14}$")


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
    return sent_within(step, cap.per_ms, excluding) >= cap.max


def sent_within(step: Step, per_ms: int, excluding: int | None = None) -> int:
    """Sends the cap counts in the ``per_ms`` before now (``excluding``: see :func:`capped`)."""
    since = step.now - per_ms
    count = sum(1 for t in step.state.send_log if t > since)
    if excluding is not None and excluding > since and excluding in step.state.send_log:
        count -= 1
    return count


def rule_values(
    step: Step, journey: Journey, reason: str, *, excluding: int | None = None
) -> dict[str, Any]:
    """What a send rule decided on, for a trace record (:mod:`.trace`)."""
    settings, attrs = journey.settings, step.state.attrs
    if reason == "frequency_cap" and (cap := settings.frequency_cap) is not None:
        return cap_values(cap, sent_within(step, cap.per_ms, excluding), step.now)
    if reason in ("quiet_hours", "deferred") and (qh := settings.quiet_hours) is not None:
        tz = zone(attrs.get("timezone"), settings.default_timezone)
        return quiet_values(qh, tz, step.now, quiet_until(step, journey))
    if reason in ("missing_phone", "invalid_phone"):
        return {"phone": mask_phone(attrs.get("phone") or "")}
    return {}


def _log_send(step: Step) -> int:
    step.state.send_log.append(step.now)
    keep_from = step.now - step.catalog.longest_cap_ms
    if step.state.send_log[0] <= keep_from:
        step.state.send_log[:] = [t for t in step.state.send_log if t > keep_from]
    return step.now


def send_node(step: Step, inst: Instance, node: SendNode, *, deferred: bool = False) -> str | None:
    """Send, suppress or defer the message of ``node``; the next node, or None if deferred."""
    journey = step.journey(inst)
    reason = held_back(step, inst, node)  # a control group (engine.core.holdout) comes first
    if reason is None:
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
                step.trace(
                    "send",
                    "deferred",
                    inst,
                    channel=node.channel,
                    more=lambda: rule_values(step, journey, "deferred"),
                )
                return None
            reason = "quiet_hours"
    if reason is None and node.marketing and capped(step, journey):
        reason = "frequency_cap"
    if reason is not None:
        step.inst_outcome("message_suppressed", inst, channel=node.channel, reason=reason)
        why = reason
        step.trace(
            "send", why, inst, channel=node.channel, more=lambda: rule_values(step, journey, why)
        )
        return node.next
    try:
        content = render_send(node, step.scope(inst)).to_dict()
    except TemplateError as exc:
        step.inst_outcome(
            "message_failed", inst, channel=node.channel, reason="template", detail=exc.message
        )
        step.trace("send", "template", inst, channel=node.channel, detail=exc.message)
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
    request(step, msg, content, ttl_ms=ttl)
    if msg.timer_at is not None:
        step.trace("fallback", "timer_set", msg, until=lambda: format_ts(msg.timer_at), ttl_ms=ttl)
    return node.next


def _postbacks(content: dict[str, Any]) -> list[str]:
    chips = list(content.get("suggestions", ()))
    card = content.get("rich_card")
    cards = [card] if card else list((content.get("carousel") or {}).get("cards", ()))
    for c in cards:
        chips.extend(c.get("suggestions", ()))
    return [s["postback"] for s in chips if s.get("postback")]


def request(
    step: Step,
    msg: Message,
    content: dict[str, Any],
    *,
    ttl_ms: int | None,
    purpose: str = "journey",
    fallback_of: str | None = None,
) -> None:
    """Ask the gateway to send ``msg`` (a ``SendRequest``, with its journey's send rate)
    and report it sent."""
    attrs = step.state.attrs
    profile: dict[str, Any] = {k: attrs[k] for k in ("rcs_capable", "timezone") if k in attrs}
    rate = step.journey(msg).settings.send_rate
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
            None if rate is None else {"max": rate.max, "per_ms": rate.per_ms},
        )
    )
    extra: dict[str, Any] = {"fallback_of": fallback_of} if fallback_of else {}
    step.msg_outcome("message_sent", msg, **extra)
    step.trace("send", "sent", msg, channel=msg.channel, purpose=purpose, **extra)
