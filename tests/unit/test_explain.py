"""``journeys explain`` names the reason for every journey a user did not enter and every
message they did not get, with the values the core decided on: in scenarios built here,
not the repository's examples. The reasons come from the core's trace records."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import orjson
import pytest
import yaml

from engine.cli import main as cli_main
from engine.durations import parse_ts_ms
from engine.explain.sources import from_events
from engine.explain.text import format_report
from engine.journey.model import Journey

PHONE = "+14155550123"

# Users: ann (entry condition false, not RCS-capable -> SMS, cooldown, frequency cap),
# bob (quiet hours: skipped in one journey, deferred in another), cat (opt-out),
# dan (no phone), eve (not RCS-capable and no SMS fallback), fay (re-entry never, already in).
JOURNEYS = {
    "cart.yaml": """
id: cart
version: 1
entry:
  event: cart_updated
  when: event.total >= 50 and user.tier == 'gold'
  reentry: always
  cooldown: 1d
settings: {default_timezone: UTC}
start: offer
nodes:
  offer:
    type: send
    channel: rcs
    text: "Your cart is waiting. Reply STOP to opt out."
    fallback: {sms: "Your cart is waiting. Reply STOP to opt out.", after: 10m}
    next: done
  done: {type: exit}
""",
    "news.yaml": """
id: news
version: 1
entry: {event: newsletter_ready}
settings:
  default_timezone: UTC
  frequency_cap: {max: 1, per: 1d}
  quiet_hours: {from: "21:00", to: "08:00", action: skip}
start: letter
nodes:
  letter: {type: send, channel: sms, text: "News! Reply STOP to opt out.", next: done}
  done: {type: exit}
""",
    "digest.yaml": """
id: digest
version: 1
entry: {event: digest_ready}
settings:
  default_timezone: America/New_York
  quiet_hours: {from: "21:00", to: "08:00", action: defer}
start: digest
nodes:
  digest: {type: send, channel: sms, text: "Your digest. Reply STOP to opt out.", next: done}
  done: {type: exit}
""",
    "alerts.yaml": """
id: alerts
version: 1
entry: {event: alert, reentry: never}
start: alert
nodes:
  alert:
    type: send
    channel: rcs
    text: "Heads up"
    next: wait
  wait: {type: wait, duration: 2d, next: done}
  done: {type: exit}
""",
    "survey.yaml": """
id: survey
version: 1
entry: {event: visit, reentry: after_exit}
start: ask
nodes:
  ask: {type: wait_for, paths: [{event: answered, next: done}], timeout: 3d, on_timeout: done}
  done: {type: exit}
""",
}


def ev(user: str, name: str, ts: str, n: int = 0, **props: Any) -> dict[str, Any]:
    return {"event_id": f"{user}-{name}-{n}", "user_id": user, "name": name, "ts": ts,
            "properties": props}  # fmt: skip


def with_profile(line: dict[str, Any], **profile: Any) -> dict[str, Any]:
    return {**line, "profile": profile}


LINES: list[dict[str, Any]] = [
    # ann: a gold member, not reachable over RCS
    with_profile(ev("ann", "cart_updated", "2026-03-02T10:00:00Z", 1, total=30),
                 phone=PHONE, tier="gold", rcs_capable=False),
    ev("ann", "cart_updated", "2026-03-02T10:05:00Z", 2, total=80),
    ev("ann", "cart_updated", "2026-03-02T11:00:00Z", 3, total=90),
    ev("ann", "newsletter_ready", "2026-03-02T12:00:00Z"),
    # bob: in New York; a newsletter at 23:30 UTC and a digest at 03:00 UTC (22:00 local)
    with_profile(ev("bob", "newsletter_ready", "2026-03-02T23:30:00Z"), phone=PHONE),
    with_profile(ev("bob", "digest_ready", "2026-03-03T03:00:00Z"), phone=PHONE,
                 timezone="America/New_York"),
    # cat: gets a newsletter, says STOP, then a digest is held back
    with_profile(ev("cat", "newsletter_ready", "2026-03-02T12:00:00Z"), phone=PHONE),
    {"type": "inbound", "user_id": "cat", "ts": "2026-03-02T12:10:00Z", "text": "STOP"},
    ev("cat", "digest_ready", "2026-03-02T15:00:00Z"),
    # dan: no phone number
    ev("dan", "newsletter_ready", "2026-03-02T12:00:00Z"),
    # eve: not reachable over RCS, and the alert has no SMS fallback
    with_profile(ev("eve", "alert", "2026-03-02T12:00:00Z"), phone=PHONE, rcs_capable=False),
    # fay: alerts never twice; a survey while already in it
    with_profile(ev("fay", "alert", "2026-03-02T12:00:00Z", 1), phone=PHONE),
    ev("fay", "alert", "2026-03-05T12:00:00Z", 2),
    ev("fay", "visit", "2026-03-02T12:00:00Z", 1),
    ev("fay", "visit", "2026-03-03T12:00:00Z", 2),
]  # fmt: skip


@pytest.fixture(scope="module")
def scenario(tmp_path_factory: pytest.TempPathFactory) -> tuple[list[Journey], Path, Path]:
    root = tmp_path_factory.mktemp("explain")
    jdir = root / "journeys"
    jdir.mkdir()
    for name, text in JOURNEYS.items():
        (jdir / name).write_text(text)
    events = root / "events.jsonl"
    events.write_bytes(b"".join(orjson.dumps(line) + b"\n" for line in LINES))
    journeys = [Journey.model_validate(yaml.safe_load(t)) for t in JOURNEYS.values()]
    return journeys, jdir, events


def report(scenario: tuple[list[Journey], Path, Path], user: str) -> dict[str, Any]:
    journeys, _jdir, events = scenario
    return from_events(journeys, events, user)


def refusals(r: dict[str, Any]) -> dict[tuple[str, str], dict[str, Any]]:
    return {(row["journey_id"], row["reason"]): row for row in r["not_entered"]}


def held_back(r: dict[str, Any]) -> dict[tuple[str, str], dict[str, Any]]:
    return {(row["journey_id"], row["reason"]): row for row in r["not_received"]}


def test_entry_condition_false_names_the_operands(scenario: Any) -> None:
    r = report(scenario, "ann")
    row = refusals(r)[("cart", "when_false")]
    assert row["values"]["when"] == "event.total >= 50 and user.tier == 'gold'"
    assert row["values"]["operands"] == {"event.total": 30, "user.tier": "gold"}
    assert row["values"]["parts"] == {"event.total >= 50": False, "user.tier == 'gold'": True}
    assert "event.total = 30" in row["text"] and "`event.total >= 50` false" in row["text"]


def test_cooldown_says_the_time_left(scenario: Any) -> None:
    row = refusals(report(scenario, "ann"))[("cart", "cooldown")]
    # entered at 10:05, cooldown 1d, refused at 11:00: 23h05m left
    assert row["values"]["time_left_ms"] == (23 * 60 + 5) * 60_000
    assert row["values"]["until"] == "2026-03-03T10:05:00Z"
    assert "23h 5m left" in row["text"]


def test_not_rcs_capable_falls_back_to_sms(scenario: Any) -> None:
    r = report(scenario, "ann")
    row = held_back(r)[("cart", "undeliverable")]
    assert row["values"]["receipt"] == "not_capable" and row["channel"] == "rcs"
    assert "not RCS-capable" in row["text"]
    assert "then" in row and "sent the SMS fallback" in row["then"]


def test_frequency_cap_says_the_count_and_the_window(scenario: Any) -> None:
    row = held_back(report(scenario, "ann"))[("news", "frequency_cap")]
    assert {k: row["values"][k] for k in ("count", "max", "per")} == {
        "count": 1,
        "max": 1,
        "per": "1d",
    }
    assert "frequency cap reached: 1 of at most 1 sends in the last 1d" in row["text"]


def test_quiet_hours_skip_and_defer(scenario: Any) -> None:
    r = report(scenario, "bob")
    skipped = held_back(r)[("news", "quiet_hours")]
    assert skipped["values"]["quiet_hours"] == "21:00-08:00"
    assert skipped["values"]["local_time"] == "Mon 23:30"  # news is in UTC
    # the digest at 22:00 New York time waits for 08:00 there, then goes: not listed
    assert ("digest", "deferred") not in held_back(r)
    text = format_report(r)
    assert "deferred by quiet hours 21:00-08:00 (America/New_York, local time Mon 22:00)" in text
    assert "tried again at 2026-03-03T13:00:00Z" in text


def test_opt_out(scenario: Any) -> None:
    r = report(scenario, "cat")
    row = held_back(r)[("digest", "opted_out")]
    assert "opted out" in row["text"]
    assert r["now"]["opted_out"] is True
    assert "opted out (STOP)" in format_report(r)


def test_missing_phone(scenario: Any) -> None:
    row = held_back(report(scenario, "dan"))[("news", "missing_phone")]
    assert "no phone number" in row["text"]


def test_not_rcs_capable_without_fallback_is_not_received(scenario: Any) -> None:
    journeys, _jdir, events = scenario
    r = from_events(journeys, events, "eve", until=parse_ts_ms("2026-03-03T00:00:00Z"))
    row = held_back(r)[("alerts", "undeliverable_no_sms")]
    assert row["values"]["receipt"] == "not_capable"
    assert "NOT received" in row["text"]
    # and she is still in the journey, waiting: where and until when
    (run,) = r["now"]["runs"]
    assert (run["journey_id"], run["node_id"], run["node_type"]) == ("alerts", "wait", "wait")
    assert run["since"] == "2026-03-02T12:00:00Z" and run["until"] == "2026-03-04T12:00:00Z"
    assert r["now"]["next_timer"]["what"] == "the wait ends"


def test_reentry_never_and_already_in(scenario: Any) -> None:
    rows = refusals(report(scenario, "fay"))
    assert rows[("alerts", "reentry_never")]["values"]["entries"] == 1
    already = rows[("survey", "already_in")]
    assert already["values"]["reentry"] == "after_exit" and "already in it" in already["text"]


def test_every_refusal_and_held_back_send_is_named(scenario: Any) -> None:
    """Across all users, no journey left unexplained and no send without its reason."""
    journeys, _jdir, events = scenario
    for user in ("ann", "bob", "cat", "dan", "eve", "fay"):
        r = from_events(journeys, events, user)
        assert r["traced"]
        for row in r["not_entered"]:
            assert row["reason"] and row["text"], row
        names = {row["journey_id"] for row in r["not_entered"]}
        entered = {
            s["journey_id"]
            for m in r["timeline"]
            for s in m["steps"]
            if (s["kind"], s["reason"]) == ("entry", "entered")
        }
        assert names | entered == {j.id for j in journeys}, user
        for row in r["not_received"]:
            assert row["reason"], row
            assert any(w in row["text"] for w in ("NOT", "falls back", "quiet hours")), row


def test_journey_filter_and_never_came(scenario: Any) -> None:
    journeys, _jdir, events = scenario
    r = from_events(journeys, events, "dan", journey="cart")
    assert {row["journey_id"] for row in r["not_entered"]} == {"cart"}
    assert r["not_entered"][0]["reason"] == "no_entry_event"
    assert all(s["journey_id"] in (None, "cart") for m in r["timeline"] for s in m["steps"])


def test_cli_text_and_json(scenario: Any, capsys: pytest.CaptureFixture[str]) -> None:
    _journeys, jdir, events = scenario
    assert cli_main(["explain", "ann", "--journeys", str(jdir), "--events", str(events)]) == 0
    text = capsys.readouterr().out
    for want in (
        "NOT entered: the entry condition `event.total >= 50 and user.tier == 'gold'` is false",
        "not RCS-capable (receipt not_capable): falls back to SMS",
        "frequency cap reached",
        "cooldown 1d since the last entry at 2026-03-02T10:05:00Z",
        "Journeys not entered",
        "Messages not received",
        "Where the user is now",
    ):
        assert want in text, want
    assert cli_main(["explain", "ann", "--journeys", str(jdir), "--events", str(events),
                     "--json"]) == 0  # fmt: skip
    data = orjson.loads(capsys.readouterr().out)
    assert data["user_id"] == "ann" and data["traced"] is True
    assert cli_main(["explain", "ann", "--events", str(events)]) == 2
    assert "pass --journeys DIR too" in capsys.readouterr().err


def test_a_receipt_handled_after_the_users_clock_moved_on_shows_where_it_was_handled() -> None:
    """On Kafka a receipt may arrive after later events: the core handles it at the user's
    clock, and the timeline shows it there, with its own stamp."""
    from engine.core.inputs import Receipt
    from engine.core.trace import Trace
    from engine.explain.timeline import Records, explain

    receipt = Receipt("u", parse_ts_ms("2026-03-02T10:00:00Z"), "not_capable", "m1")
    later = parse_ts_ms("2026-03-02T10:00:05Z")
    moved = Trace("t1", later, "u", "message", "undeliverable", "cart", 1, "i1", "offer",
                  {"message_id": "m1", "receipt": "not_capable", "channel": "rcs",
                   "from": "sent", "to": "fell_back"})  # fmt: skip
    r = explain(Records("u", [receipt], [], [moved], None), source="test")
    (moment,) = r["timeline"]
    assert moment["ts"] == "2026-03-02T10:00:05Z"
    assert moment["inputs"][0]["handled_at"] == "2026-03-02T10:00:05Z"
    assert moment["inputs"][0]["ts"] == "2026-03-02T10:00:00Z"
    assert "(stamped 2026-03-02T10:00:00Z; handled at the user's clock)" in format_report(r)
