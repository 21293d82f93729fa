"""The delivery / fallback transition table (engine/core/fallback.py), row by row.

Each row is fired on a message in its status and checked against what the channel
rules say should happen: the new status, the outcomes (with their reasons), revokes,
the fallback SMS, the message's timer and what the user did. ``EXPECTED`` lists every
row of ``TRANSITIONS`` and nothing else, so a row added or removed without a decision
here fails the test.
"""

from __future__ import annotations

from typing import Any, get_args

import pytest
import yaml

from engine.core.catalog import Catalog
from engine.core.config import EngineConfig
from engine.core.context import Step
from engine.core.effects import Outcome, Revoke, SendRequest
from engine.core.fallback import (
    GIVEN_UP,
    TRANSITIONS,
    Event,
    Status,
    drop_sms,
    fire,
    handle_receipt,
    message_timer,
    messages_given_up,
)
from engine.core.inputs import Receipt
from engine.core.state import Message, UserState
from engine.durations import parse_ts_ms
from engine.journey.model import Journey

T0 = parse_ts_ms("2026-01-05T12:00:00Z")
GRACE = 60_000
OLD_TIMER = T0 + 5_000  # the message's timer before the event
JOURNEY = Journey.model_validate(
    yaml.safe_load(
        """
id: j
version: 1
entry: {event: go}
start: card
nodes:
  card:
    type: send
    channel: rcs
    rich_card: {title: "Hi"}
    fallback: {sms: "Hi (sms)", after: 10m}
    next: done
  done: {type: exit}
"""
    )
)

NONE, KEPT, GRACE_TIMER = "cleared", "kept", "grace"
DELIVERED = (("message_delivered", None),)
READ = (("message_delivered", None), ("message_read", None))
# A "failed" receipt with reason "carrier": reported, then the SMS replaces the message.
FELL_BACK = (
    ("message_failed", "carrier"),
    ("fallback_triggered", "carrier"),
    ("message_sent", None),
)
FAILED = (("message_failed", "carrier"),)
SMS_SENT = ("message_sent", None)
# An "expired" receipt: the TTL verdict, the planned way to the SMS (not a failure).
FELL_BACK_EXPIRED = (("fallback_triggered", "ttl_expired"), SMS_SENT)
EXPIRED = (("message_failed", "expired"),)
UNKNOWN = (("message_unknown", "crash"),)  # the gateway's reason
ACCEPTED_AT = T0 + 30_000  # the hand-over an "accepted" receipt names


def row(
    to: str,
    outcomes: tuple[tuple[str, str | None], ...] = (),
    timer: str = KEPT,
    revokes: int = 0,
    sms: bool = False,
    user_action: str | None = None,
) -> dict[str, Any]:
    return {
        "to": to,
        "outcomes": list(outcomes),
        "timer": timer,
        "revokes": revokes,
        "sms": sms,
        "user_action": user_action,
    }


EXPECTED: dict[tuple[str, str], dict[str, Any]] = {
    ("sent", "delivered"): row("delivered", DELIVERED, NONE),
    ("sent", "read"): row("read", READ, NONE, user_action="read"),
    ("sent", "undeliverable"): row("fell_back", FELL_BACK, NONE, sms=True),
    ("sent", "undeliverable_no_sms"): row("failed", FAILED, NONE),
    ("sent", "timer"): row("revoking", timer=GRACE_TIMER, revokes=1),
    ("sent", "timer_no_sms"): row("revoking", timer=GRACE_TIMER, revokes=1),
    ("sent", "sms_dropped"): row("sent", timer=NONE),
    ("revoking", "delivered"): row("delivered", DELIVERED, NONE),
    ("revoking", "read"): row("read", READ, NONE, user_action="read"),
    ("revoking", "undeliverable"): row("fell_back", FELL_BACK, NONE, sms=True),
    ("revoking", "undeliverable_no_sms"): row("failed", FAILED, NONE),
    ("revoking", "revoke_failed"): row("revoke_failed", timer=GRACE_TIMER),
    ("revoking", "timer"): row(
        "fell_back", (("fallback_triggered", "no_receipt"), ("message_sent", None)), NONE, sms=True
    ),
    ("revoking", "timer_no_sms"): row("revoking"),
    ("revoke_failed", "delivered"): row("delivered", DELIVERED, NONE),
    ("revoke_failed", "read"): row("read", READ, NONE, user_action="read"),
    ("revoke_failed", "undeliverable"): row("fell_back", FELL_BACK, NONE, sms=True),
    ("revoke_failed", "undeliverable_no_sms"): row("failed", FAILED, NONE),
    ("revoke_failed", "timer"): row(
        "fell_back",
        (("fallback_triggered", "revoke_failed"), ("message_sent", None)),
        NONE,
        revokes=1,
        sms=True,
    ),
    ("revoke_failed", "timer_no_sms"): row("revoke_failed", revokes=1),
    ("fell_back", "deferred"): row("fallback_deferred"),
    ("fallback_deferred", "delivered"): row("delivered", DELIVERED, NONE),
    ("fallback_deferred", "read"): row("read", READ, NONE, user_action="read"),
    ("fallback_deferred", "timer"): row("fell_back", (("message_sent", None),), NONE, sms=True),
    ("fallback_deferred", "timer_no_sms"): row("fallback_deferred"),
    ("fallback_deferred", "sms_dropped"): row("fallback_deferred", timer=NONE),
    ("delivered", "read"): row("read", (("message_read", None),), user_action="read"),
    # expiry / revocation verdicts: like undeliverable, reported as ttl_expired
    ("sent", "expired"): row("fell_back", FELL_BACK_EXPIRED, NONE, sms=True),
    ("sent", "expired_no_sms"): row("failed", EXPIRED, NONE),
    ("revoking", "expired"): row("fell_back", FELL_BACK_EXPIRED, NONE, sms=True),
    ("revoking", "expired_no_sms"): row("failed", EXPIRED, NONE),
    ("revoke_failed", "expired"): row("fell_back", FELL_BACK_EXPIRED, NONE, sms=True),
    ("revoke_failed", "expired_no_sms"): row("failed", EXPIRED, NONE),
    # accepted: the window restarts from the hand-over, no outcome
    ("sent", "accepted"): row("sent", timer="restarted"),
    # unknown: possibly delivered
    ("sent", "unknown"): row("unknown", UNKNOWN),
    ("sent", "unknown_no_sms"): row("unresolved", UNKNOWN, NONE),
    ("revoking", "unknown"): row("unknown_revoking", UNKNOWN),
    ("revoking", "unknown_no_sms"): row("unresolved", UNKNOWN, NONE),
    ("revoke_failed", "unknown"): row("unresolved", UNKNOWN, NONE),
    ("revoke_failed", "unknown_no_sms"): row("unresolved", UNKNOWN, NONE),
    ("fell_back", "unknown"): row("fell_back", UNKNOWN),
    ("fell_back", "unknown_no_sms"): row("fell_back", UNKNOWN),
    ("fallback_deferred", "unknown"): row("unresolved", UNKNOWN, NONE),
    ("fallback_deferred", "unknown_no_sms"): row("unresolved", UNKNOWN, NONE),
    ("unknown", "delivered"): row("delivered", DELIVERED, NONE),
    ("unknown", "read"): row("read", READ, NONE, user_action="read"),
    ("unknown", "expired"): row("fell_back", FELL_BACK_EXPIRED, NONE, sms=True),
    ("unknown", "timer"): row("unknown_revoking", timer=GRACE_TIMER, revokes=1),
    ("unknown", "sms_dropped"): row("unresolved", timer=NONE),
    ("unknown_revoking", "delivered"): row("delivered", DELIVERED, NONE),
    ("unknown_revoking", "read"): row("read", READ, NONE, user_action="read"),
    ("unknown_revoking", "expired"): row("fell_back", FELL_BACK_EXPIRED, NONE, sms=True),
    ("unknown_revoking", "expired_no_sms"): row("failed", EXPIRED, NONE),
    # the grace ends with no verdict: the SMS is given up (the timer itself is spent by
    # message_timer; fire() alone leaves it)
    ("unknown_revoking", "timer"): row("unresolved"),
    ("unknown_revoking", "timer_no_sms"): row("unresolved"),
    ("unknown_revoking", "revoke_failed"): row("unresolved", timer=NONE),
    ("unresolved", "delivered"): row("delivered", DELIVERED, NONE),
    ("unresolved", "read"): row("read", READ, NONE, user_action="read"),
    ("unresolved", "expired"): row("failed", EXPIRED, NONE),
    ("unresolved", "expired_no_sms"): row("failed", EXPIRED, NONE),
}


def setup(status: str, *, sms: bool = True) -> tuple[Step, Message]:
    state = UserState("u", attrs={"phone": "+14155550123"})
    msg = Message("m1", "i1", "j", 1, "card", "rcs", T0, status=status, timer_at=OLD_TIMER)
    msg.fallback_sms = "Hi (sms)" if sms else None
    state.messages[msg.id] = msg
    step = Step(Catalog.of([JOURNEY]), EngineConfig(revoke_grace_ms=GRACE), state, T0 + 60_000)
    return step, msg


def receipt_for(event: str) -> Receipt | None:
    if event in ("delivered", "read", "revoke_failed"):
        return Receipt("u", T0, event, "m1")  # type: ignore[arg-type]
    if event.startswith("undeliverable"):
        return Receipt("u", T0, "failed", "m1", reason="carrier")
    if event.startswith("expired"):
        return Receipt("u", T0, "expired", "m1")
    if event.startswith("unknown"):
        return Receipt("u", T0, "unknown", "m1", reason="crash")
    if event.startswith("accepted"):
        return Receipt("u", ACCEPTED_AT, "accepted", "m1")
    return None


def test_every_row_is_expected_and_every_expectation_is_a_row() -> None:
    assert set(EXPECTED) == set(TRANSITIONS)


@pytest.mark.parametrize(("status", "event"), sorted(EXPECTED))
def test_row(status: str, event: str) -> None:
    want = EXPECTED[(status, event)]
    step, msg = setup(status, sms=not event.endswith("_no_sms"))
    action = fire(step, msg, event, receipt_for(event))  # type: ignore[arg-type]
    assert msg.status == want["to"]
    got = [
        (e.type, e.attributes.get("reason")) for e in step.effects if isinstance(e, Outcome)
    ]
    assert got == want["outcomes"]
    assert sum(isinstance(e, Revoke) for e in step.effects) == want["revokes"]
    sends = [e for e in step.effects if isinstance(e, SendRequest)]
    if want["sms"]:
        (sms,) = sends
        assert (sms.channel, sms.purpose, sms.fallback_of) == ("sms", "fallback", "m1")
        assert sms.content == {"channel": "sms", "text": "Hi (sms)"}
    else:
        assert sends == []
    timer = {
        NONE: None,
        KEPT: OLD_TIMER,
        GRACE_TIMER: step.now + GRACE,
        "restarted": ACCEPTED_AT + 10 * 60_000,  # the hand-over + fallback.after
    }[want["timer"]]
    assert msg.timer_at == timer
    if want["user_action"] is None:
        assert action is None
    else:
        assert action is not None
        assert (action.kind, action.message, action.value) == (want["user_action"], msg, None)


ALL_PAIRS = [(s, e) for s in get_args(Status) for e in get_args(Event)]


@pytest.mark.parametrize(("status", "event"), [p for p in ALL_PAIRS if p not in TRANSITIONS])
def test_a_pair_without_a_row_changes_nothing(status: str, event: str) -> None:
    step, msg = setup(status, sms=not event.endswith("_no_sms"))
    assert fire(step, msg, event, receipt_for(event)) is None  # type: ignore[arg-type]
    assert (msg.status, msg.timer_at, step.effects) == (status, OLD_TIMER, [])


def test_no_row_leads_from_a_delivery_to_the_sms() -> None:
    """The no-double-delivery guarantee, read off the table."""
    for (status, _), transition in TRANSITIONS.items():
        if status in ("delivered", "read"):
            assert transition.to not in ("fell_back", "fallback_deferred")


def test_only_rows_into_fell_back_send_the_sms() -> None:
    for (status, event), transition in TRANSITIONS.items():
        step, msg = setup(status, sms=not event.endswith("_no_sms"))
        fire(step, msg, event, receipt_for(event))
        sent = any(isinstance(e, SendRequest) for e in step.effects)
        assert sent == (transition.to == "fell_back" != status), (status, event)


UNKNOWN_STATUSES = ("unknown", "unknown_revoking", "unresolved")


def test_after_unknown_only_a_verdict_leads_to_the_sms() -> None:
    """Once the gateway said unknown, the SMS needs the platform's expiry verdict."""
    for (status, event), transition in TRANSITIONS.items():
        if status in UNKNOWN_STATUSES and transition.to in ("fell_back", "fallback_deferred"):
            assert event == "expired", (status, event)
    assert not any(
        t.to in ("fell_back", "fallback_deferred")
        for (status, _), t in TRANSITIONS.items()
        if status == "unresolved"
    )
    # every way into the unknown statuses starts with an unknown receipt
    for (status, event), transition in TRANSITIONS.items():
        if transition.to in UNKNOWN_STATUSES and status not in UNKNOWN_STATUSES:
            assert event in ("unknown", "unknown_no_sms"), (status, event)


@pytest.mark.parametrize("status", ["unknown", "unknown_revoking"])
@pytest.mark.parametrize("receipt", ["failed", "not_capable"])
def test_after_unknown_a_failure_receipt_proves_nothing(status: str, receipt: str) -> None:
    step, msg = setup(status)
    handle_receipt(step, Receipt("u", T0, receipt, "m1"))  # type: ignore[arg-type]
    assert (msg.status, msg.timer_at, step.effects) == (status, OLD_TIMER, [])


def test_the_revoke_grace_of_an_unknown_message_ends_without_sms() -> None:
    step, msg = setup("unknown")
    message_timer(step, msg)  # the window ends: revoke, grace
    assert msg.status == "unknown_revoking" and msg.timer_at == step.now + GRACE
    assert [type(e) for e in step.effects] == [Revoke]
    message_timer(step, msg)  # the grace ends with no verdict
    assert (msg.status, msg.timer_at) == ("unresolved", None)
    assert [type(e) for e in step.effects] == [Revoke]
    handle_receipt(step, Receipt("u", T0, "revoked", "m1"))  # a late verdict: no SMS
    assert msg.status == "failed"
    assert [(e.type, e.attributes) for e in step.effects if isinstance(e, Outcome)] == [
        ("message_failed", {"reason": "revoked"})
    ]


@pytest.mark.parametrize("channel", ["sms", "rcs"])
def test_unknown_without_a_fallback_is_final_but_a_delivery_is_still_news(channel: str) -> None:
    step, msg = setup("sent", sms=False)
    msg.channel, msg.timer_at = channel, None
    handle_receipt(step, Receipt("u", T0, "unknown", "m1"))
    assert (msg.status, msg.timer_at) == ("unresolved", None)
    (unknown,) = step.effects
    assert isinstance(unknown, Outcome)
    assert (unknown.type, unknown.channel, unknown.message_id) == ("message_unknown", channel, "m1")
    assert unknown.attributes == {"reason": "unknown"}
    handle_receipt(step, Receipt("u", T0, "accepted", "m1"))
    handle_receipt(step, Receipt("u", T0, "unknown", "m1"))  # repeated: nothing new
    assert len(step.effects) == 1
    assert handle_receipt(step, Receipt("u", T0, "read", "m1")) is not None
    assert msg.status == "read"


@pytest.mark.parametrize(
    ("old_timer", "accepted_at", "want"),
    [
        (T0 + 600_000, T0 + 30_000, T0 + 630_000),  # later hand-over: the window moves on
        (T0 + 600_000, T0 - 30_000, T0 + 600_000),  # never earlier than the request's window
    ],
)
def test_accepted_restarts_the_window_from_the_hand_over(
    old_timer: int, accepted_at: int, want: int
) -> None:
    step, msg = setup("sent")
    msg.timer_at = old_timer
    handle_receipt(step, Receipt("u", accepted_at, "accepted", "m1"))
    assert (msg.status, msg.timer_at, step.effects) == ("sent", want, [])


@pytest.mark.parametrize("status", ["revoking", "revoke_failed", "unknown", "delivered"])
def test_accepted_changes_nothing_once_the_window_is_over_or_the_fate_known(status: str) -> None:
    step, msg = setup(status)
    handle_receipt(step, Receipt("u", T0 + 30_000, "accepted", "m1"))
    assert (msg.status, msg.timer_at, step.effects) == (status, OLD_TIMER, [])


def test_accepted_without_a_fallback_sms_sets_no_timer() -> None:
    step, msg = setup("sent", sms=False)
    msg.timer_at = None
    handle_receipt(step, Receipt("u", T0 + 30_000, "accepted", "m1"))
    assert (msg.status, msg.timer_at, step.effects) == ("sent", None, [])


@pytest.mark.parametrize(
    ("status", "reason", "sms", "want_outcomes"),
    [
        ("expired", None, True, [("fallback_triggered", "ttl_expired"), SMS_SENT]),
        ("revoked", None, True, [("fallback_triggered", "ttl_expired"), SMS_SENT]),
        ("not_capable", None, True, [("fallback_triggered", "not_capable"), SMS_SENT]),
        ("expired", None, False, [("message_failed", "expired")]),
        ("not_capable", "no_rcs", False, [("message_failed", "no_rcs")]),
    ],
)
def test_undeliverable_receipts_and_their_reasons(
    status: str, reason: str | None, sms: bool, want_outcomes: list[tuple[str, str | None]]
) -> None:
    step, msg = setup("sent", sms=sms)
    handle_receipt(step, Receipt("u", T0, status, "m1", reason=reason))  # type: ignore[arg-type]
    got = [(e.type, e.attributes.get("reason")) for e in step.effects if isinstance(e, Outcome)]
    assert got == want_outcomes
    assert msg.status == ("fell_back" if sms else "failed")


def test_a_fired_timer_is_spent_even_when_no_row_applies() -> None:
    step, msg = setup("delivered")
    message_timer(step, msg)
    assert (msg.status, msg.timer_at, step.effects) == ("delivered", None, [])


def test_dropping_the_sms_makes_the_next_events_the_no_sms_ones() -> None:
    step, msg = setup("revoking")
    drop_sms(step, msg)
    assert (msg.fallback_sms, msg.timer_at) == (None, OLD_TIMER)  # revoking keeps its grace
    message_timer(step, msg)
    assert (msg.status, msg.timer_at, step.effects) == ("revoking", None, [])


def test_messages_given_up() -> None:
    step, _ = setup("sent")
    for i, status in enumerate(get_args(Status)):
        step.state.messages[f"x{i}"] = Message(f"x{i}", "i1", "j", 1, "card", "rcs", T0, status)
    given_up = {step.state.messages[m].status for m in messages_given_up(step.state)}
    assert given_up == GIVEN_UP == {"failed", "fell_back", "fallback_deferred"}
