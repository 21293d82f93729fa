"""Messages from the user: compliance keywords (STOP / START / HELP), taps and replies.

A whole-message keyword is classified here (:mod:`.keywords`) unless the adapter already
set ``Inbound.keyword``. Opting out or in and asking for help are handled on the spot; a
tap on a suggestion or a free-text reply is reported and returned as a
:class:`~.user_actions.UserAction`, for the engine to route to a ``wait_for`` path.
"""

from __future__ import annotations

from dataclasses import replace
from typing import Any

from engine.core.context import Step
from engine.core.effects import SendRequest
from engine.core.ids import derive_id, derive_uuid
from engine.core.inputs import Inbound
from engine.core.keywords import classify_keyword
from engine.core.sends import phone_problem
from engine.core.state import Message
from engine.core.user_actions import UserAction


def handle_inbound(step: Step, inb: Inbound) -> UserAction | None:
    if inb.event_id is not None and not step.state.remember_event(inb.event_id):
        step.trace("input", "duplicate", event_id=inb.event_id)
        return None  # a redelivered message: handled already
    if inb.keyword is None and inb.text is not None:
        inb = replace(inb, keyword=classify_keyword(inb.text))
    msg = step.state.messages.get(inb.message_id) if inb.message_id else None
    if inb.keyword == "opt_in" and not step.state.opted_out:
        # "YES" from a user who never opted out is an answer, not a keyword.
        inb = replace(inb, keyword=None)
    if inb.keyword is not None:
        msg = msg or _latest_message(step, None)
        step.trace("keyword", inb.keyword, msg, text=inb.text)
        if inb.keyword == "opt_out":
            step.state.opted_out = True
            _user_outcome(step, "user_opted_out", msg)
        elif inb.keyword == "opt_in":
            step.state.opted_out = False
            _user_outcome(step, "user_opted_in", msg)
        else:
            _user_outcome(step, "help_requested", msg)
            _send_help(step, msg)
        return None
    if inb.postback is not None:
        msg = msg or _latest_message(step, inb.postback) or _latest_message(step, None)
        if msg is None:
            step.trace("inbound", "no_message", postback=inb.postback)
            return None
        step.trace("inbound", "click", msg, postback=inb.postback)
        step.msg_outcome(
            "message_clicked", msg, key=(step.now, inb.postback), postback=inb.postback
        )
        return UserAction("click", msg, inb.postback)
    if inb.text is not None:
        msg = msg or _latest_message(step, None)
        if msg is None:
            step.trace("inbound", "no_message", text=inb.text[:100])
            return None
        step.trace("inbound", "reply", msg, text=inb.text[:100])
        step.msg_outcome("message_replied", msg, key=(step.now, inb.text), text=inb.text[:500])
        return UserAction("reply", msg, inb.text)
    return None


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


def _send_help(step: Step, about: Message | None) -> None:
    """HELP is answered even in quiet hours and past the cap: the user asked for it."""
    text = step.config.help_text
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
    step.trace("send", "sent", channel="sms", message_id=help_id, purpose="help")
