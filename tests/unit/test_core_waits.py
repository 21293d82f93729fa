"""Core: wait (duration, local time across DST, property), wait_for paths, branch, split."""

from __future__ import annotations

from collections import Counter

import pytest
from core_harness import (
    DAY,
    HOUR,
    MIN,
    NY,
    T0,
    Harness,
    journey,
    outcomes,
    sends,
    ts,
    types,
)

from engine.durations import format_ts


def node_of(h: Harness, user: str = "u") -> str | None:
    insts = list(h.state(user).instances.values())
    assert len(insts) <= 1
    return insts[0].node if insts else None


def after_wait(wait: str, extra_nodes: str = "") -> str:
    return f"""
id: j
version: 1
entry: {{event: go}}
start: w
nodes:
  w: {wait}
  s: {{type: send, channel: sms, text: "done {{{{ event.k }}}}", next: done}}
  done: {{type: exit}}
{extra_nodes}
"""


# ----------------------------------------------------------------------------- wait


def test_wait_duration() -> None:
    h = Harness(journey(after_wait("{type: wait, duration: 90m, next: s}")))
    eff = h.enter()
    assert h.state().wake_at == T0 + 90 * MIN
    assert [w.at for w in eff if type(w).__name__ == "ScheduleWake"] == [T0 + 90 * MIN]
    assert h.wake(T0 + 90 * MIN - 1) == []
    eff = h.wake(T0 + 90 * MIN)
    (s,) = sends(eff)
    assert s.ts == T0 + 90 * MIN
    assert h.state().instances == {}
    assert h.state().wake_at is None


UNTIL_10 = "{type: wait, until: {time: '10:00', days: %s}, next: s}"


@pytest.mark.parametrize(
    ("start", "days", "expected"),
    [
        # Standard time: 10:00 EST = 15:00Z.
        ("2026-03-06T17:00:00Z", "[sat]", "2026-03-07T15:00:00Z"),
        # Saturday noon EST -> Sunday 2026-03-08, the first day of EDT: 10:00 EDT = 14:00Z.
        ("2026-03-07T17:00:00Z", "[sun, mon]", "2026-03-08T14:00:00Z"),
        # Friday before the change -> Monday after it.
        ("2026-03-06T17:00:00Z", "[mon]", "2026-03-09T14:00:00Z"),
        # 02:30 local doesn't exist on 2026-03-08; the wait still ends at 10:00 EDT.
        ("2026-03-08T06:59:00Z", "[sun]", "2026-03-08T14:00:00Z"),
        # Already past 10:00 local on an allowed day -> next allowed day.
        ("2026-03-08T14:00:01Z", "[sun, tue]", "2026-03-10T14:00:00Z"),
        # Exactly at 10:00 local: the wait ends at once.
        ("2026-03-09T14:00:00Z", "[mon]", "2026-03-09T14:00:00Z"),
        # Autumn: Saturday 2026-10-31 noon EDT -> Sunday 2026-11-01 10:00 EST = 15:00Z.
        ("2026-10-31T16:00:00Z", "[sun]", "2026-11-01T15:00:00Z"),
        # Friday EDT -> Monday EST.
        ("2026-10-30T16:00:00Z", "[mon, tue]", "2026-11-02T15:00:00Z"),
        # Sunday 01:30 local, the repeated hour (second pass, EST) -> 10:00 EST the same day.
        ("2026-11-01T06:30:00Z", "[sun]", "2026-11-01T15:00:00Z"),
        # First pass of the repeated hour (EDT) -> the same instant.
        ("2026-11-01T05:30:00Z", "[sun]", "2026-11-01T15:00:00Z"),
        # Local weekday, not UTC weekday: Monday 21:00 EST is Tuesday 02:00Z.
        ("2026-01-06T02:00:00Z", "[tue]", "2026-01-06T15:00:00Z"),
    ],
)
def test_wait_until_local_time_across_dst(start: str, days: str, expected: str) -> None:
    h = Harness(journey(after_wait(UNTIL_10 % days)))
    at = ts(start)
    eff = h.enter(at, timezone=NY)
    if ts(expected) == at:
        assert len(sends(eff)) == 1
        return
    assert format_ts(h.state().wake_at or 0) == expected
    assert h.run_until(ts(expected) - 1) == []
    (s,) = sends(h.run_until(ts(expected)))
    assert format_ts(s.ts) == expected


def test_wait_until_uses_default_timezone_when_the_user_has_none() -> None:
    text = after_wait(UNTIL_10 % "[mon]").replace(
        "start: w", "settings: {default_timezone: Asia/Tokyo}\nstart: w"
    )
    h = Harness(journey(text))
    h.enter(ts("2026-01-05T12:00:00Z"))  # Monday 21:00 in Tokyo
    assert format_ts(h.state().wake_at or 0) == "2026-01-12T01:00:00Z"  # next Monday 10:00 JST


def test_wait_until_unknown_timezone_falls_back_to_default() -> None:
    h = Harness(journey(after_wait(UNTIL_10 % "[mon]")))
    h.enter(ts("2026-01-05T08:00:00Z"), timezone="Mars/Olympus")
    assert format_ts(h.state().wake_at or 0) == "2026-01-05T10:00:00Z"


UNTIL_PROP = "{type: wait, until_property: %s, offset: %s, next: s}"


def test_until_property_with_negative_offset() -> None:
    h = Harness(journey(after_wait(UNTIL_PROP % ("user.renewal_date", "-2d"))))
    h.enter(renewal_date="2026-01-20T09:30:00Z")
    assert format_ts(h.state().wake_at or 0) == "2026-01-18T09:30:00Z"
    (s,) = sends(h.run_until(ts("2026-01-18T09:30:00Z")))
    assert format_ts(s.ts) == "2026-01-18T09:30:00Z"


def test_until_property_from_the_entry_event_epoch_seconds() -> None:
    h = Harness(journey(after_wait(UNTIL_PROP % ("entry.due", "1h"))))
    due = ts("2026-01-07T00:00:00Z")
    h.enter(props={"due": due // 1000})
    assert h.state().wake_at == due + HOUR


def test_until_property_in_the_past_after_offset_goes_on_at_once() -> None:
    h = Harness(journey(after_wait(UNTIL_PROP % ("user.renewal_date", "-30d"))))
    eff = h.enter(renewal_date="2026-01-20")
    assert len(sends(eff)) == 1
    assert sends(eff)[0].ts == T0


@pytest.mark.parametrize("value", [None, "not a date", True, {"x": 1}])
def test_until_property_missing_or_unreadable_goes_on_at_once(value: object) -> None:
    h = Harness(journey(after_wait(UNTIL_PROP % ("user.renewal_date", "-1d"))))
    profile = {} if value is None else {"renewal_date": value}
    eff = h.enter(**profile)
    assert len(sends(eff)) == 1
    assert h.state().instances == {}


# ----------------------------------------------------------------------------- wait_for

WAIT_FOR = """
id: j
version: 1
entry: {event: go}
start: ask
nodes:
  ask:
    type: send
    channel: rcs
    text: "Pick one"
    suggestions:
      - reply: {text: "Yes", postback: "yes"}
      - reply: {text: "No", postback: "no"}
      - open_url: {text: "Site", url: "https://example.com"}
    next: info
  info: {type: send, channel: sms, text: "info", next: w}
  w:
    type: wait_for
    paths:
      - {event: paid, when: "event.order_id == entry.order_id", next: thanks}
      - {click: site, of: ask, next: clicked}
      - {reply: "yes", of: ask, next: said_yes}
      - {read: ask, next: was_read}
      - {reply: "*", next: any_reply}
    timeout: 2d
    on_timeout: timed_out
  thanks: {type: exit, reason: paid}
  clicked: {type: exit, reason: clicked}
  said_yes: {type: exit, reason: said_yes}
  was_read: {type: exit, reason: was_read}
  any_reply: {type: exit, reason: any_reply}
  timed_out: {type: send, channel: sms, text: "bye", next: done}
  done: {type: exit}
"""


def wait_for_harness() -> tuple[Harness, str, str]:
    h = Harness(journey(WAIT_FOR))
    eff = h.enter(props={"order_id": "A1"})
    ask, info = sends(eff)
    assert node_of(h) == "w"
    return h, ask.message_id, info.message_id


def exit_reason(h: Harness) -> str:
    (ex,) = h.outcomes("journey_exited")
    return str(ex.attributes["reason"])


def test_wait_for_event_path_with_when() -> None:
    h, _, _ = wait_for_harness()
    assert types(h.event("paid", T0 + MIN, props={"order_id": "B2"})) == []
    assert node_of(h) == "w"
    eff = h.event("paid", T0 + 2 * MIN, props={"order_id": "A1"})
    entered = outcomes(eff, "node_entered")
    assert [o.node_id for o in entered] == ["thanks"]
    assert entered[0].attributes == {"via": "event paid"}
    assert exit_reason(h) == "paid"
    assert h.state().wake_at is None


def test_wait_for_click_of_an_earlier_send() -> None:
    h, ask, _ = wait_for_harness()
    eff = h.inbound(T0 + MIN, postback="site")
    (c,) = outcomes(eff, "message_clicked")
    assert c.message_id == ask
    assert c.attributes == {"postback": "site"}
    assert exit_reason(h) == "clicked"


def test_wait_for_reply_by_tap_of_an_earlier_send() -> None:
    h, _, _ = wait_for_harness()
    h.inbound(T0 + MIN, postback="yes")
    assert exit_reason(h) == "said_yes"


def test_wait_for_reply_by_free_text_matches_case_insensitively() -> None:
    h, _, _ = wait_for_harness()
    # Free text goes to the latest message (the SMS "info"), but the path names "ask":
    h.inbound(T0 + MIN, text="  YES ")
    assert exit_reason(h) == "any_reply"  # the "*" path on the latest send matched instead


def test_wait_for_reply_text_with_message_id_of_the_named_send() -> None:
    h, ask, _ = wait_for_harness()
    eff = h.inbound(T0 + MIN, text="  YES ", message_id=ask)
    (r,) = outcomes(eff, "message_replied")
    assert r.message_id == ask
    assert exit_reason(h) == "said_yes"


def test_wait_for_read_of_an_earlier_send() -> None:
    h, ask, info = wait_for_harness()
    h.receipt("read", T0 + MIN, info)  # a read of another send: no move
    assert node_of(h) == "w"
    eff = h.receipt("read", T0 + 2 * MIN, ask)
    assert types(eff)[:2] == ["message_delivered", "message_read"]
    assert exit_reason(h) == "was_read"


def test_wait_for_timeout_goes_to_on_timeout() -> None:
    h, _, _ = wait_for_harness()
    assert h.state().wake_at == T0 + 2 * DAY
    eff = h.run_until(T0 + 2 * DAY)
    (n, s, _n2, ex) = outcomes(eff)
    assert (n.type, n.node_id, n.attributes) == ("node_entered", "timed_out", {"via": "timeout"})
    assert s.type == "message_sent" and s.ts == T0 + 2 * DAY
    assert ex.attributes == {"reason": "completed"}


def test_wait_for_timeout_without_on_timeout_exits_with_timeout() -> None:
    text = WAIT_FOR.replace("    on_timeout: timed_out\n", "")
    h = Harness(journey(text))
    h.enter()
    h.run_until(T0 + 2 * DAY)
    assert exit_reason(h) == "timeout"


def test_wait_for_a_path_taken_cancels_the_timeout() -> None:
    h, _, _ = wait_for_harness()
    h.inbound(T0 + MIN, postback="yes")
    assert h.run_until(T0 + 5 * DAY) == []
    assert len(h.outcomes("journey_exited")) == 1


# ----------------------------------------------------------------------------- branch

BRANCH = """
id: j
version: 1
entry: {event: go}
start: b
nodes:
  b:
    type: branch
    cases:
      - {when: "event.total > 100", next: big}
      - {when: "user.tier == 'gold'", next: gold}
    default: other
  big: {type: exit, reason: big}
  gold: {type: exit, reason: gold}
  other: {type: exit, reason: other}
"""


@pytest.mark.parametrize(
    ("total", "tier", "expected"),
    [(500, "gold", "big"), (5, "gold", "gold"), (5, "silver", "other"), (101, None, "big")],
)
def test_branch(total: int, tier: str | None, expected: str) -> None:
    h = Harness(journey(BRANCH))
    profile = {"tier": tier} if tier else {}
    h.enter(props={"total": total}, **profile)
    assert [o.node_id for o in h.outcomes("node_entered")] == ["b", expected]
    assert exit_reason(h) == expected


# ----------------------------------------------------------------------------- split

SPLIT = """
id: j
version: 1
entry: {event: go, reentry: always}
start: sp
nodes:
  sp:
    type: split
    variants:
      - {name: A, weight: 70, next: a}
      - {name: B, weight: 30, next: b}
  a: {type: exit, reason: a}
  b: {type: exit, reason: b}
"""


def variants_of(h: Harness) -> list[str]:
    return [str(o.attributes["variant"]) for o in h.outcomes("node_entered") if o.node_id == "sp"]


def test_split_is_deterministic_per_user_and_across_runs() -> None:
    picks: dict[str, str] = {}
    for user in [f"user-{i}" for i in range(200)]:
        h = Harness(journey(SPLIT))
        h.enter(user=user)
        h.enter(T0 + DAY, user=user)
        variants = variants_of(h)
        assert len(variants) == 2 and variants[0] == variants[1]
        reasons = [o.attributes["reason"] for o in h.outcomes("journey_exited")]
        assert reasons == [variants[0].lower()] * 2
        picks[user] = variants[0]
    # A fresh engine gives the same answer.
    h = Harness(journey(SPLIT))
    for user, v in picks.items():
        h.enter(user=user)
        assert variants_of(h)[-1] == v
    counts = Counter(picks.values())
    assert set(counts) == {"A", "B"}


def test_split_variant_is_stable_across_versions() -> None:
    v2 = SPLIT.replace("version: 1", "version: 2")
    users = [f"u{i}" for i in range(50)]
    got = []
    for text in (SPLIT, v2):
        h = Harness(journey(text))
        for u in users:
            h.enter(user=u)
        got.append(variants_of(h))
    assert got[0] == got[1]
