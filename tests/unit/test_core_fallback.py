"""Core: the RCS -> SMS fallback sequence of docs/channels.md, receipt by receipt."""

from __future__ import annotations

import pytest
from core_harness import (
    HOUR,
    MIN,
    NY,
    T0,
    Harness,
    journey,
    outcomes,
    revokes,
    sends,
    ts,
    types,
)

from engine.core import EngineConfig, Receipt, SendRequest
from engine.core.inputs import ReceiptStatus

GRACE = 60_000
WINDOW = 10 * MIN

RCS = """
id: j
version: 1
entry: {event: go, reentry: always}
%s
start: card
nodes:
  card:
    type: send
    channel: rcs
    rich_card:
      title: "Order {{ event.order_id }}"
      suggestions:
        - reply: {text: "Track", postback: track}
    fallback: {sms: "Order {{ event.order_id }} (sms)", after: 10m}
    next: w
  w:
    type: wait_for
    paths: [{reply: track, of: card, next: done}]
    timeout: 1d
    on_timeout: done
  done: {type: exit}
"""


def start(settings: str = "", **profile: object) -> tuple[Harness, SendRequest]:
    h = Harness(journey(RCS % settings), config=EngineConfig(revoke_grace_ms=GRACE))
    eff = h.enter(props={"order_id": "A1"}, **profile)
    (rcs,) = sends(eff)
    assert rcs.channel == "rcs" and rcs.ttl_ms == WINDOW
    return h, rcs


def sms_sends(h: Harness) -> list[SendRequest]:
    return [s for s in h.sends() if s.purpose == "fallback"]


def assert_one_fallback_sms(h: Harness, rcs: SendRequest, at: int) -> SendRequest:
    (sms,) = sms_sends(h)
    assert sms.channel == "sms" and sms.fallback_of == rcs.message_id
    assert sms.content == {"channel": "sms", "text": "Order A1 (sms)"}
    assert sms.ts == at
    assert sms.instance_id == rcs.instance_id and sms.node_id == "card"
    (sent,) = [o for o in h.outcomes("message_sent") if o.channel == "sms"]
    assert sent.message_id == sms.message_id
    assert sent.attributes == {"fallback_of": rcs.message_id}
    return sms


@pytest.mark.parametrize("status", ["not_capable", "failed", "expired"])
def test_unreachable_rcs_falls_back_to_sms_right_away(status: ReceiptStatus) -> None:
    h, rcs = start()
    eff = h.receipt(status, T0 + 1000, rcs.message_id)
    assert revokes(eff) == []
    (trig,) = outcomes(eff, "fallback_triggered")
    assert trig.message_id == rcs.message_id and trig.channel == "rcs"
    expected_reason = "ttl_expired" if status == "expired" else status
    assert trig.attributes == {"reason": expected_reason}
    assert_one_fallback_sms(h, rcs, T0 + 1000)
    # the window timer is gone: nothing more happens at the window end
    assert [o for o in h.run_until(T0 + HOUR) if type(o).__name__ != "ScheduleWake"] == []
    assert len(sms_sends(h)) == 1


def test_not_capable_is_not_reported_as_failed() -> None:
    h, rcs = start()
    eff = h.receipt("not_capable", T0, rcs.message_id)
    assert "message_failed" not in types(eff)


def test_window_elapsed_revoke_then_revoked_then_sms() -> None:
    h, rcs = start()
    assert h.state().wake_at == T0 + WINDOW
    assert h.wake(T0 + WINDOW - 1) == []
    eff = h.wake(T0 + WINDOW)
    (rv,) = revokes(eff)
    assert (rv.message_id, rv.ts) == (rcs.message_id, T0 + WINDOW)
    assert sends(eff) == [] and outcomes(eff) == []
    eff = h.receipt("revoked", T0 + WINDOW + 2000, rcs.message_id)
    assert outcomes(eff, "fallback_triggered")[0].attributes == {"reason": "ttl_expired"}
    assert_one_fallback_sms(h, rcs, T0 + WINDOW + 2000)
    # a DELIVERED now is impossible by the spec; if one shows up it changes nothing
    eff = h.receipt("delivered", T0 + WINDOW + 3000, rcs.message_id)
    assert outcomes(eff) == [] and sends(eff) == []
    assert outcomes(h.receipt("read", T0 + WINDOW + 4000, rcs.message_id)) == []
    assert len(sms_sends(h)) == 1


def test_revoke_without_verdict_falls_back_after_the_grace() -> None:
    h, rcs = start()
    h.wake(T0 + WINDOW)
    assert h.state().wake_at == T0 + WINDOW + GRACE
    eff = h.wake(T0 + WINDOW + GRACE)
    assert outcomes(eff, "fallback_triggered")[0].attributes == {"reason": "no_receipt"}
    assert revokes(eff) == []
    assert_one_fallback_sms(h, rcs, T0 + WINDOW + GRACE)


def test_revoke_failed_then_grace_then_revoke_again_and_sms() -> None:
    h, rcs = start()
    h.wake(T0 + WINDOW)
    eff = h.receipt("revoke_failed", T0 + WINDOW + 1000, rcs.message_id)
    assert outcomes(eff) == [] and sends(eff) == [] and revokes(eff) == []
    assert h.state().wake_at == T0 + WINDOW + 1000 + GRACE
    eff = h.wake(T0 + WINDOW + 1000 + GRACE)
    (rv,) = revokes(eff)
    assert rv.message_id == rcs.message_id
    assert outcomes(eff, "fallback_triggered")[0].attributes == {"reason": "revoke_failed"}
    # the revoke comes before the SMS
    kinds = [type(e).__name__ for e in eff]
    assert kinds.index("Revoke") < kinds.index("SendRequest")
    assert_one_fallback_sms(h, rcs, T0 + WINDOW + 1000 + GRACE)


def test_revoke_failed_then_delivered_in_the_grace_means_no_sms() -> None:
    h, rcs = start()
    h.wake(T0 + WINDOW)
    h.receipt("revoke_failed", T0 + WINDOW + 1000, rcs.message_id)
    eff = h.receipt("delivered", T0 + WINDOW + 2000, rcs.message_id)
    assert types(eff) == ["message_delivered"]
    h.run_until(T0 + 2 * HOUR)
    assert sms_sends(h) == []
    assert len(revokes(h.effects)) == 1


def test_delivered_while_revoking_means_no_sms() -> None:
    h, rcs = start()
    h.wake(T0 + WINDOW)
    h.receipt("delivered", T0 + WINDOW + 10, rcs.message_id)
    h.receipt("revoked", T0 + WINDOW + 20, rcs.message_id)  # contradictory, ignored
    h.run_until(T0 + 2 * HOUR)
    assert sms_sends(h) == []
    assert len(h.outcomes("message_delivered")) == 1


@pytest.mark.parametrize("status", ["delivered", "read"])
def test_delivered_before_the_window_means_no_sms_ever(status: ReceiptStatus) -> None:
    h, rcs = start()
    eff = h.receipt(status, T0 + 5000, rcs.message_id)
    assert types(eff)[0] == "message_delivered"
    assert h.state().wake_at == T0 + 24 * HOUR  # only the wait_for timeout is left
    for st in ("failed", "expired", "not_capable", "revoked", "revoke_failed"):
        h.receipt(st, T0 + 6000, rcs.message_id)  # type: ignore[arg-type]
    h.run_until(T0 + 3 * 24 * HOUR)
    assert sms_sends(h) == []
    assert revokes(h.effects) == []
    assert h.outcomes("fallback_triggered", "message_failed") == []


def test_read_implies_delivered_once() -> None:
    h, rcs = start()
    eff = h.receipt("read", T0 + 5000, rcs.message_id)
    assert types(eff)[:2] == ["message_delivered", "message_read"]
    eff = h.receipt("delivered", T0 + 6000, rcs.message_id)
    assert outcomes(eff) == []
    assert outcomes(h.receipt("read", T0 + 7000, rcs.message_id)) == []


def test_failed_rcs_without_fallback_is_a_failure() -> None:
    text = (RCS % "").replace(
        '    fallback: {sms: "Order {{ event.order_id }} (sms)", after: 10m}\n', ""
    )
    h = Harness(journey(text))
    (rcs,) = sends(h.enter(props={"order_id": "A1"}))
    eff = h.receipt("not_capable", T0 + 1, rcs.message_id)
    (f,) = outcomes(eff)
    assert (f.type, f.attributes) == ("message_failed", {"reason": "not_capable"})
    assert h.sends() == [rcs]


def test_fallback_sms_without_text_is_derived_by_the_gateway() -> None:
    text = (RCS % "").replace(
        '{sms: "Order {{ event.order_id }} (sms)", after: 10m}', "{after: 5m}"
    )
    h = Harness(journey(text))
    (rcs,) = sends(h.enter(props={"order_id": "A1"}))
    h.receipt("not_capable", T0 + 1, rcs.message_id)
    (sms,) = sms_sends(h)
    assert sms.content == {"channel": "sms", "derive_from": rcs.message_id}


def test_reply_on_the_rcs_after_fallback_still_moves_the_user() -> None:
    h, rcs = start()
    h.receipt("not_capable", T0 + 1, rcs.message_id)
    h.inbound(T0 + MIN, postback="track")
    assert [o.attributes["reason"] for o in h.outcomes("journey_exited")] == ["completed"]


def test_fallback_sms_respects_opt_out() -> None:
    h, rcs = start()
    h.inbound(T0 + MIN, text="STOP", keyword="opt_out")
    eff = h.receipt("not_capable", T0 + 2 * MIN, rcs.message_id)
    assert sends(eff) == []
    (sup,) = outcomes(eff, "message_suppressed")
    assert sup.attributes == {"reason": "opted_out", "fallback_of": rcs.message_id}
    assert sup.channel == "sms"


def test_fallback_sms_does_not_count_twice_against_the_cap() -> None:
    h, rcs = start("settings: {frequency_cap: {max: 1, per: 1d}}")
    h.receipt("not_capable", T0 + 1, rcs.message_id)
    assert len(sms_sends(h)) == 1  # it replaces the RCS, not adds to it
    h.enter(T0 + HOUR, props={"order_id": "B"})
    assert [o.attributes["reason"] for o in h.outcomes("message_suppressed")] == ["frequency_cap"]


QUIET = 'settings: {quiet_hours: {from: "21:00", to: "08:00", action: %s}}'


def test_fallback_sms_in_quiet_hours_is_deferred_to_the_window_end() -> None:
    at = ts("2026-01-06T01:55:00Z")  # 20:55 in New York
    h = Harness(journey(RCS % (QUIET % "defer")), config=EngineConfig(revoke_grace_ms=GRACE))
    (rcs,) = sends(h.enter(at, props={"order_id": "A1"}, timezone=NY))
    h.wake(at + WINDOW)  # 21:05: revoke
    h.receipt("revoked", at + WINDOW + 1000, rcs.message_id)
    assert sms_sends(h) == []
    assert len(h.outcomes("fallback_triggered")) == 1
    end = ts("2026-01-06T13:00:00Z")
    assert h.state().wake_at == end
    h.run_until(end)
    assert_one_fallback_sms(h, rcs, end)
    assert len(h.outcomes("fallback_triggered")) == 1


@pytest.mark.parametrize("status", ["delivered", "read"])
def test_delivery_while_the_fallback_sms_is_deferred_cancels_it(status: ReceiptStatus) -> None:
    """revoke_failed -> grace -> revoke again -> SMS deferred by quiet hours; a DELIVERED
    (possible: the revoke failed) then arrives before the SMS went out. The SMS must not
    go out: the user already has the message."""
    at = ts("2026-01-06T01:49:00Z")  # 20:49 in New York
    h = Harness(journey(RCS % (QUIET % "defer")), config=EngineConfig(revoke_grace_ms=GRACE))
    (rcs,) = sends(h.enter(at, props={"order_id": "A1"}, timezone=NY))
    h.wake(at + WINDOW)  # 20:59: revoke
    h.receipt("revoke_failed", at + WINDOW + 30_000, rcs.message_id)
    eff = h.run_until(at + WINDOW + 30_000 + GRACE)  # 21:00:30: revoke again, SMS deferred
    assert len(revokes(eff)) == 1
    assert sms_sends(h) == []
    assert h.state().wake_at == ts("2026-01-06T13:00:00Z")
    eff = h.receipt(status, ts("2026-01-06T04:00:00Z"), rcs.message_id)
    assert "message_delivered" in types(eff)
    h.run_until(ts("2026-01-07T00:00:00Z"))
    assert sms_sends(h) == []


def test_fallback_sms_in_quiet_hours_with_skip_is_suppressed() -> None:
    at = ts("2026-01-06T03:00:00Z")  # 22:00 in New York; the RCS itself is transactional
    text = (RCS % (QUIET % "skip")).replace("    next: w\n", "    marketing: false\n    next: w\n")
    h = Harness(journey(text))
    (rcs,) = sends(h.enter(at, props={"order_id": "A1"}, timezone=NY))
    eff = h.receipt("not_capable", at + 1, rcs.message_id)
    # the fallback of a transactional send is transactional too
    assert len(sends(eff)) == 1


EXIT_ON = (RCS % "").replace(
    "entry: {event: go, reentry: always}", "entry: {event: go, reentry: always}\nexit_on: [cancel]"
)


@pytest.mark.parametrize("verdict", [None, "revoke_failed"])
def test_exit_event_while_revoking_sends_no_sms(verdict: ReceiptStatus | None) -> None:
    """An exit by event drops the run's pending fallbacks: also once the revoke is under way
    (and never as an SMS derived from the card instead of the journey's text)."""
    h = Harness(journey(EXIT_ON), config=EngineConfig(revoke_grace_ms=GRACE))
    (rcs,) = sends(h.enter(props={"order_id": "A1"}))
    h.wake(T0 + WINDOW)
    if verdict is not None:
        h.receipt(verdict, T0 + WINDOW + 1, rcs.message_id)
    h.event("cancel", T0 + WINDOW + 2)
    h.run_until(T0 + HOUR)
    assert sms_sends(h) == []
    assert h.outcomes("fallback_triggered") == []
    # the RCS is left to its TTL verdict: a late delivery is still reported
    eff = h.receipt("delivered", T0 + HOUR + 1, rcs.message_id)
    assert types(eff) == ["message_delivered"]


def test_exit_event_before_the_window_sends_no_sms() -> None:
    h = Harness(journey(EXIT_ON), config=EngineConfig(revoke_grace_ms=GRACE))
    (rcs,) = sends(h.enter(props={"order_id": "A1"}))
    h.event("cancel", T0 + MIN)
    h.receipt("not_capable", T0 + 2 * MIN, rcs.message_id)
    h.run_until(T0 + HOUR)
    assert sms_sends(h) == []


# --------------------------------------------------------------------------- fate unknown


def test_unknown_rcs_is_revoked_but_never_falls_back_without_a_verdict() -> None:
    """The gateway crashed between its claim and the provider's answer: possibly delivered.
    The window's end still revokes; the grace ends with no verdict and no SMS; the run goes
    on as the journey says (here: the wait_for times out after a day)."""
    h, rcs = start()
    eff = h.receipt("unknown", T0 + 2000, rcs.message_id)
    (unknown,) = outcomes(eff)
    assert (unknown.type, unknown.channel, unknown.message_id) == (
        "message_unknown",
        "rcs",
        rcs.message_id,
    )
    assert unknown.attributes == {"reason": "unknown"}
    assert h.state().wake_at == T0 + WINDOW  # the window still runs
    (rv,) = revokes(h.wake(T0 + WINDOW))
    assert rv.message_id == rcs.message_id
    assert h.state().wake_at == T0 + WINDOW + GRACE
    eff = h.wake(T0 + WINDOW + GRACE)
    assert outcomes(eff) == [] and sends(eff) == []
    assert h.state().messages[rcs.message_id].status == "unresolved"
    h.run_until(T0 + 2 * 24 * HOUR)
    assert sms_sends(h) == [] and h.outcomes("fallback_triggered") == []
    (exited,) = h.outcomes("journey_exited")
    assert exited.ts == T0 + 24 * HOUR  # the wait_for timeout applied as usual
    # a late verdict after the SMS was given up is reported, and still sends nothing
    eff = h.receipt("expired", T0 + 2 * 24 * HOUR + 1, rcs.message_id)
    assert [(o.type, o.attributes) for o in outcomes(eff)] == [
        ("message_failed", {"reason": "expired"})
    ]
    assert sms_sends(h) == []


@pytest.mark.parametrize("during", ["window", "grace"])
@pytest.mark.parametrize("verdict", ["expired", "revoked"])
def test_unknown_rcs_falls_back_on_a_ttl_verdict(during: str, verdict: ReceiptStatus) -> None:
    h, rcs = start()
    h.receipt("unknown", T0 + 2000, rcs.message_id)
    at = T0 + 5 * MIN
    if during == "grace":
        h.wake(T0 + WINDOW)
        at = T0 + WINDOW + 1000
    eff = h.receipt(verdict, at, rcs.message_id)
    assert outcomes(eff, "fallback_triggered")[0].attributes == {"reason": "ttl_expired"}
    assert_one_fallback_sms(h, rcs, at)


def test_unknown_after_the_window_ended_keeps_the_grace_but_needs_a_verdict() -> None:
    h, rcs = start()
    h.wake(T0 + WINDOW)  # revoking: without news, the SMS would go at the grace's end
    h.receipt("unknown", T0 + WINDOW + 1000, rcs.message_id)
    assert h.state().wake_at == T0 + WINDOW + GRACE
    h.run_until(T0 + 2 * HOUR)
    assert sms_sends(h) == []
    assert len(revokes(h.effects)) == 1


@pytest.mark.parametrize("status", ["delivered", "read"])
def test_unknown_then_delivered_is_reported(status: ReceiptStatus) -> None:
    h, rcs = start()
    h.receipt("unknown", T0 + 2000, rcs.message_id)
    eff = h.receipt(status, T0 + 3000, rcs.message_id)
    assert types(eff)[0] == "message_delivered"
    h.run_until(T0 + 2 * HOUR)
    assert sms_sends(h) == [] and revokes(h.effects) == []


def test_unknown_drops_a_fallback_sms_waiting_for_quiet_hours() -> None:
    at = ts("2026-01-06T01:55:00Z")  # 20:55 in New York
    h = Harness(journey(RCS % (QUIET % "defer")), config=EngineConfig(revoke_grace_ms=GRACE))
    (rcs,) = sends(h.enter(at, props={"order_id": "A1"}, timezone=NY))
    h.run_until(at + WINDOW + GRACE)  # no verdict: the SMS waits for 08:00
    assert h.state().messages[rcs.message_id].status == "fallback_deferred"
    eff = h.receipt("unknown", at + WINDOW + GRACE + 1000, rcs.message_id)
    assert types(eff) == ["message_unknown"]
    h.run_until(ts("2026-01-07T00:00:00Z"))
    assert sms_sends(h) == []


def test_unknown_after_the_sms_went_out_is_reported() -> None:
    h, rcs = start()
    h.receipt("not_capable", T0 + 1000, rcs.message_id)
    eff = h.receipt("unknown", T0 + 2000, rcs.message_id)
    assert types(eff) == ["message_unknown"]
    assert len(sms_sends(h)) == 1


def test_unknown_fallback_sms_is_final() -> None:
    h, rcs = start()
    h.receipt("not_capable", T0 + 1000, rcs.message_id)
    (sms,) = sms_sends(h)
    eff = h.receipt("unknown", T0 + 2000, sms.message_id)
    (o,) = outcomes(eff)
    assert (o.type, o.channel, o.message_id) == ("message_unknown", "sms", sms.message_id)
    assert h.state().messages[sms.message_id].status == "unresolved"


# --------------------------------------------------------------------------- accepted late


def test_accepted_late_restarts_the_window_from_the_hand_over() -> None:
    """The gateway held the RCS for the send rate and handed it over 3 minutes after the
    request: the fallback window (and so the revoke) counts from then."""
    h, rcs = start()
    handed_over = T0 + 3 * MIN
    # the receipt names the hand-over (ts) and arrives a little later
    eff = h.feed(Receipt("u", handed_over, "accepted", rcs.message_id), now=handed_over + 500)
    assert outcomes(eff) == [] and sends(eff) == [] and revokes(eff) == []
    assert h.state().wake_at == handed_over + WINDOW
    assert revokes(h.run_until(T0 + WINDOW)) == []
    (rv,) = revokes(h.run_until(handed_over + WINDOW))
    assert rv.ts == handed_over + WINDOW
    h.run_until(handed_over + WINDOW + GRACE)
    assert_one_fallback_sms(h, rcs, handed_over + WINDOW + GRACE)


def test_accepted_for_an_sms_changes_nothing() -> None:
    h, rcs = start()
    h.receipt("not_capable", T0 + 1000, rcs.message_id)
    (sms,) = sms_sends(h)
    wake_at = h.state().wake_at
    assert h.receipt("accepted", T0 + 5 * MIN, sms.message_id) == []
    assert h.state().wake_at == wake_at
