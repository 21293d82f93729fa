"""The channel guarantee (docs/channels.md, "RCS -> SMS fallback"): no sequence of
receipts, in any order and at any time, and no timing of timer firings ever makes the
core both report an RCS message delivered and send its fallback SMS.

Precisely, for every RCS message X:

- no fallback SMS for X is requested at or after the step that brought a ``delivered``
  or ``read`` receipt for X;
- no ``message_delivered`` for X is reported at or after the step that requested X's
  fallback SMS;
- at most one fallback SMS for X, at most one ``message_delivered`` for X, and no
  fallback at all for a send without ``fallback``;
- once an ``unknown`` receipt for X is in (the gateway can't tell whether the provider
  took it), a fallback SMS for X goes out only after an ``expired`` or ``revoked`` receipt
  for X that came after the ``unknown``;
- an ``accepted`` receipt causes no outcome, send or revoke, and an ``unknown`` one no
  send or revoke and no outcome but ``message_unknown``.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from prop_world import (
    BASES,
    DT,
    DTS,
    HOUR,
    MIN,
    PHONE,
    USER,
    Script,
    World,
    assert_no_send_in_quiet_hours,
    examples,
    journeys,
    quiet_hours,
    scripts,
)

from engine.core import (
    EngineConfig,
    Outcome,
    Receipt,
    ScheduleWake,
    SendRequest,
    UserEvent,
    Wake,
)
from engine.core.inputs import RECEIPT_STATUSES
from engine.core.localtime import zone
from engine.journey.model import Journey

# Every status, the gateway's "unknown" and "accepted" twice as often as the others.
STATUSES = (*RECEIPT_STATUSES, "unknown", "accepted")
VERDICTS = ("expired", "revoked")  # the platform dropped the message undelivered

# Receipts for the RCS messages, mostly: k indexes the user's sends (0: the first RCS).
RECEIPT = st.tuples(
    st.just("receipt"),
    USER,
    st.sampled_from(STATUSES),
    st.sampled_from([0, 0, 0, 1, 2, 3]),
    st.sampled_from([0, 1, 30_000, 5 * MIN, 10 * MIN + 1, 61 * MIN, 3 * HOUR]),
)
HEAVY = st.one_of(
    RECEIPT,
    RECEIPT,
    RECEIPT,
    RECEIPT,
    st.tuples(st.just("timer"), USER),
    st.tuples(st.just("wake"), USER, st.sampled_from(DTS)),
    st.tuples(
        st.just("event"),
        USER,
        st.sampled_from(["cancel", "buy", "go", "ping"]),
        DT,
        st.integers(0, 10),
        st.booleans(),
    ),
    st.tuples(st.just("inbound"), USER, st.sampled_from(["a", "STOP", "START"]), DT),
)


def focused(settings_: dict[str, Any], after: str, sms: bool, marketing: bool) -> Journey:
    fallback: dict[str, Any] = {"after": after}
    if sms:
        fallback["sms"] = "Order {{ entry.x }} (sms)"
    return Journey.model_validate(
        {
            "id": "f",
            "version": 1,
            "entry": {"event": "go", "reentry": "always"},
            "exit_on": ["cancel"],
            "goal": {"event": "buy", "within": "1d"},
            "settings": settings_,
            "start": "card",
            "nodes": {
                "card": {
                    "type": "send",
                    "channel": "rcs",
                    "marketing": marketing,
                    "rich_card": {
                        "title": "Order {{ entry.x }}",
                        "suggestions": [{"reply": {"text": "A", "postback": "a"}}],
                    },
                    "fallback": fallback,
                    "next": "w",
                },
                "w": {
                    "type": "wait_for",
                    "paths": [{"reply": "a", "next": "again"}],
                    "timeout": "1h",
                    "on_timeout": "end",
                },
                "again": {"type": "send", "channel": "rcs", "text": "no fallback", "next": "end"},
                "end": {"type": "exit"},
            },
        }
    )


@st.composite
def focused_journeys(draw: st.DrawFn, script: Script | None = None) -> Journey:
    settings_: dict[str, Any] = {}
    after = draw(st.sampled_from(["1m", "10m", "1h"]))
    if script is not None and draw(st.booleans()):
        # A quiet window that starts shortly after the RCS goes out: its fallback SMS
        # falls inside the window (deferred or skipped), the case the guarantee is most
        # likely to miss.
        tz = zone(script.users[0].get("timezone"), "UTC")
        lead = draw(st.sampled_from([0, 1, 2, 5, 9, 11, 30, 59, 61]))
        local = datetime.fromtimestamp(script.base / 1000, UTC).astimezone(tz)
        local += timedelta(minutes=lead)
        qh = draw(quiet_hours())
        qh["from"] = f"{local.hour:02d}:{local.minute:02d}"
        if qh["to"] == qh["from"]:
            qh["to"] = "23:59" if qh["from"] != "23:59" else "00:00"
        settings_["quiet_hours"] = qh
    elif draw(st.booleans()):
        settings_["quiet_hours"] = draw(quiet_hours())
    if draw(st.booleans()):
        settings_["frequency_cap"] = {"max": draw(st.integers(1, 2)), "per": "1h"}
    marketing = "quiet_hours" in settings_ or draw(st.booleans())
    return focused(settings_, after, draw(st.booleans()), marketing)


@st.composite
def focused_cases(draw: st.DrawFn) -> tuple[Journey, Script]:
    script = draw(scripts(action=HEAVY, max_actions=30, phone=True))
    return draw(focused_journeys(script)), script


GRACES = st.sampled_from([1, 30_000, 60_000, 10 * MIN])


def check_guarantee(w: World) -> dict[str, int]:
    """``w.punctual``: due timers fired in a step of their own before each receipt, so a
    receipt's step holds only what the receipt caused. Otherwise an SMS requested in the
    step of a delivery receipt came from a timer that was due before it (the core fires
    those first), which is allowed."""
    delivered_at: dict[str, int] = {}  # RCS id -> first step with a delivered/read receipt
    unknown_at: dict[str, int] = {}  # message id -> first step with an unknown receipt
    verdicts_at: dict[str, list[int]] = {}  # message id -> steps with expired/revoked
    reported_at: dict[str, list[int]] = {}  # RCS id -> effect numbers of message_delivered
    sms_at: dict[str, list[tuple[int, int]]] = {}  # RCS id -> (step, effect number) of SMS
    rcs: dict[str, SendRequest] = {}
    n = 0
    for step in w.steps:
        inp = step.inp
        if isinstance(inp, Receipt) and inp.status in ("delivered", "read"):
            assert inp.message_id is not None
            delivered_at.setdefault(inp.message_id, step.index)
        if isinstance(inp, Receipt) and inp.message_id is not None:
            if inp.status == "unknown":
                unknown_at.setdefault(inp.message_id, step.index)
            elif inp.status in VERDICTS:
                verdicts_at.setdefault(inp.message_id, []).append(step.index)
        if w.punctual and isinstance(inp, Receipt) and inp.status in ("accepted", "unknown"):
            # due timers fired in a step of their own: this step is the receipt's alone
            caused = [e for e in step.effects if not isinstance(e, ScheduleWake)]
            allowed = {"accepted": set(), "unknown": {"message_unknown"}}[inp.status]
            assert all(isinstance(e, Outcome) and e.type in allowed for e in caused), (
                inp.status,
                caused,
            )
        for e in step.effects:
            n += 1
            if isinstance(e, SendRequest):
                if e.channel == "rcs":
                    rcs[e.message_id] = e
                if e.purpose == "fallback":
                    assert e.fallback_of is not None
                    sms_at.setdefault(e.fallback_of, []).append((step.index, n))
            elif isinstance(e, Outcome) and e.type == "message_delivered" and e.channel == "rcs":
                assert e.message_id is not None
                reported_at.setdefault(e.message_id, []).append(n)
    for mid, sms in sms_at.items():
        assert len(sms) == 1, f"two fallback SMS for {mid}"
        (sms_step, sms_n) = sms[0]
        req = rcs[mid]
        journey = w.journey_of(req.journey_id or "", req.journey_version or 0)
        node = journey.nodes[req.node_id or ""]
        assert getattr(node, "fallback", None) is not None, "fallback for a send without one"
        if mid in delivered_at:
            if w.punctual:
                assert sms_step < delivered_at[mid], "fallback SMS after a delivery receipt"
            else:
                assert sms_step <= delivered_at[mid], "fallback SMS after a delivery receipt"
        if mid in reported_at:
            assert max(reported_at[mid]) < sms_n, "message_delivered after the fallback SMS"
        if mid in unknown_at and unknown_at[mid] < sms_step:
            assert any(unknown_at[mid] < v <= sms_step for v in verdicts_at.get(mid, ())), (
                "fallback SMS after unknown without an expired/revoked verdict"
            )
    for mid, numbers in reported_at.items():
        assert len(numbers) == 1, f"two message_delivered for {mid}"
    after_unknown = sum(1 for m, sms in sms_at.items() if unknown_at.get(m, sms[0][0]) < sms[0][0])
    return {
        "sms": len(sms_at),
        "delivered": len(reported_at),
        "rcs": len(rcs),
        "sms_after_unknown": after_unknown,
    }


@settings(max_examples=examples(300), deadline=None)
@given(focused_cases(), GRACES, st.booleans())
def test_never_both_delivered_and_fallback_sms(
    case: tuple[Journey, Script], grace: int, punctual: bool
) -> None:
    journey, script = case
    w = World([journey], EngineConfig(revoke_grace_ms=grace), punctual=punctual)
    w.play(script)
    w.drain()
    check_guarantee(w)


@settings(max_examples=examples(60), deadline=None)
@given(
    st.tuples(journeys("a", "go"), journeys("b", "go2")),
    GRACES,
    st.booleans(),
    scripts(action=HEAVY, max_actions=25, entry_events=("go", "go2")),
)
def test_never_both_on_random_journeys(
    js: tuple[Journey, Journey], grace: int, punctual: bool, script: Script
) -> None:
    w = World(list(js), EngineConfig(revoke_grace_ms=grace), punctual=punctual)
    w.play(script)
    w.drain()
    check_guarantee(w)


ONE_MESSAGE = st.one_of(
    st.tuples(
        st.just("receipt"),
        st.just(0),
        st.sampled_from(STATUSES),
        st.just(0),
        st.sampled_from([0, 1, 30_000, 5 * MIN, 10 * MIN + 1, 61 * MIN, 3 * HOUR, 9 * HOUR]),
    ),
    st.tuples(st.just("timer"), st.just(0)),
)


@st.composite
def one_message_cases(draw: st.DrawFn) -> tuple[Journey, Script]:
    """Only receipts for the first RCS message, and timer firings, in any order at any
    times; half the time a quiet window (defer) opens just after the RCS goes out."""
    script = draw(scripts(action=ONE_MESSAGE, max_actions=8, phone=True))
    script.users = script.users[:1]
    settings_: dict[str, Any] = {}
    if draw(st.booleans()):
        tz = zone(script.users[0].get("timezone"), "UTC")
        lead = draw(st.sampled_from([1, 2, 5, 11, 30, 61]))
        local = datetime.fromtimestamp(script.base / 1000, UTC).astimezone(tz)
        local += timedelta(minutes=lead)
        start = f"{local.hour:02d}:{local.minute:02d}"
        end = draw(st.sampled_from(["08:00", "23:59", "00:00"]).filter(lambda e: e != start))
        settings_["quiet_hours"] = {"from": start, "to": end, "action": "defer"}
    after = draw(st.sampled_from(["1m", "10m", "1h"]))
    return focused(settings_, after, draw(st.booleans()), True), script


@settings(max_examples=examples(300), deadline=None)
@given(one_message_cases(), GRACES, st.booleans())
def test_any_receipts_for_one_rcs_message(
    case: tuple[Journey, Script], grace: int, punctual: bool
) -> None:
    journey, script = case
    w = World([journey], EngineConfig(revoke_grace_ms=grace), punctual=punctual)
    w.play(script)
    w.drain()
    check_guarantee(w)
    assert_no_send_in_quiet_hours(w, script)


@st.composite
def unknown_first_cases(draw: st.DrawFn) -> tuple[Journey, Script]:
    """One RCS message whose fate the gateway lost early (before or after its window),
    then any receipts and timer firings."""
    journey, script = draw(one_message_cases())
    unknown = ("receipt", 0, "unknown", 0, draw(st.sampled_from([0, 1, 5 * MIN, 10 * MIN + 1])))
    script.actions.insert(1, unknown)
    return journey, script


@settings(max_examples=examples(200), deadline=None)
@given(unknown_first_cases(), GRACES, st.booleans())
def test_after_unknown_only_a_verdict_sends_the_sms(
    case: tuple[Journey, Script], grace: int, punctual: bool
) -> None:
    journey, script = case
    w = World([journey], EngineConfig(revoke_grace_ms=grace), punctual=punctual)
    w.play(script)
    w.drain()
    check_guarantee(w)
    assert_no_send_in_quiet_hours(w, script)


def test_the_unknown_check_is_reachable_and_can_fail() -> None:
    """A fixed run: unknown, then an expiry verdict sends the SMS (counted as an SMS after
    unknown). With the verdict taken out of the record, the check must object."""
    w = World([focused({}, "10m", True, False)], EngineConfig(revoke_grace_ms=60_000))
    base = BASES[-1]
    w.feed(UserEvent("e1", "u0", "go", base, {"x": 1}, {"phone": PHONE}), base)
    (rcs,) = w.sent["u0"]
    w.feed(Receipt("u0", base + 1000, "unknown", rcs.message_id), base + 1000)
    w.feed(Wake("u0", base + 10 * MIN), base + 10 * MIN)  # window ends: revoke, grace
    w.feed(Receipt("u0", base + 10 * MIN + 5, "revoked", rcs.message_id), base + 10 * MIN + 5)
    assert check_guarantee(w)["sms_after_unknown"] == 1
    verdict = w.steps[-1]
    verdict.inp = Wake("u0", verdict.now)
    with pytest.raises(AssertionError, match="without an expired/revoked verdict"):
        check_guarantee(w)
