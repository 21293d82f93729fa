"""Core: sends. Templates, quiet hours, frequency caps, STOP / START / HELP, phone checks,
and the outcome fields the contract fixes."""

from __future__ import annotations

import orjson
import pytest
from core_harness import (
    DAY,
    HOUR,
    MIN,
    NY,
    PHONE,
    T0,
    Harness,
    journey,
    outcomes,
    sends,
    ts,
    types,
)

from engine.core import EngineConfig, SendRequest, wire
from engine.core.ids import derive_id
from engine.durations import format_ts
from engine.errors import InputError


def one_send(
    send: str, settings: str = "", jid: str = "j", event: str = "go", reentry: str = "always"
) -> str:
    return f"""
id: {jid}
version: 1
entry: {{event: {event}, reentry: {reentry}}}
{settings}
start: s
nodes:
  s: {send}
  done: {{type: exit}}
"""


SMS = (
    "{type: send, channel: sms, text: \"Hi {{ user.first_name | default: 'there' }}\", next: done}"
)


def suppressed_reasons(h: Harness) -> list[str]:
    return [str(o.attributes["reason"]) for o in h.outcomes("message_suppressed")]


# ----------------------------------------------------------------------------- templates


def test_send_personalization() -> None:
    text = """
id: j
version: 3
entry: {event: go}
start: card
nodes:
  card:
    type: send
    channel: rcs
    rich_card:
      title: "Order {{ event.order_id }} confirmed"
      description: >-
        Hi {{ user.first_name | default: 'there' }} ({{ journey.id }} v{{ journey.version }})
      suggestions:
        - reply: {text: "Track {{ entry.order_id }}", postback: "track_{{ entry.order_id }}"}
    next: sms
  sms:
    type: send
    channel: sms
    text: "Total {{ entry.total }} for {{ user.first_name }}"
    next: done
  done: {type: exit}
"""
    h = Harness(journey(text))
    eff = h.enter(props={"order_id": "A1", "total": 59.5}, first_name="Asha")
    card, sms = sends(eff)
    rc = card.content["rich_card"]
    assert rc["title"] == "Order A1 confirmed"
    assert rc["description"] == "Hi Asha (j v3)"
    assert rc["suggestions"][0]["text"] == "Track A1"
    assert rc["suggestions"][0]["postback"] == "track_A1"
    assert sms.content["text"] == "Total 59.5 for Asha"
    # a default filter for a missing attribute
    h2 = Harness(journey(one_send(SMS)))
    (s,) = sends(h2.enter())
    assert s.content["text"] == "Hi there"
    # the rendered postback is what a tap is matched on
    h.inbound(T0 + MIN, postback="track_A1")
    (c,) = h.outcomes("message_clicked")
    assert c.message_id == card.message_id


def test_template_error_is_a_failed_send_and_the_run_goes_on() -> None:
    bad = '{type: send, channel: sms, text: "{{ user.first_name | nosuchfilter }}", next: done}'
    h = Harness(journey(one_send(bad)))
    eff = h.enter()
    assert sends(eff) == []
    (f,) = outcomes(eff, "message_failed")
    assert f.attributes["reason"] == "template"
    assert types(eff)[-1] == "journey_exited"


# ----------------------------------------------------------------------------- quiet hours

QUIET = 'settings: {quiet_hours: {from: "21:00", to: "08:00", action: %s}}'


def test_quiet_hours_defer_sends_at_window_end_in_user_local_time() -> None:
    h = Harness(journey(one_send(SMS, QUIET % "defer")))
    at = ts("2026-01-06T03:00:00Z")  # 22:00 in New York
    eff = h.enter(at, timezone=NY)
    assert sends(eff) == []
    (d,) = outcomes(eff, "message_deferred")
    assert d.attributes == {"reason": "quiet_hours", "until": "2026-01-06T13:00:00Z"}
    assert d.channel == "sms"
    assert h.state().wake_at == ts("2026-01-06T13:00:00Z")  # 08:00 EST
    assert h.run_until(ts("2026-01-06T12:59:59Z")) == []
    eff = h.run_until(ts("2026-01-06T13:00:00Z"))
    (s,) = sends(eff)
    assert format_ts(s.ts) == "2026-01-06T13:00:00Z"
    assert types(eff) == ["message_sent", "node_entered", "journey_exited"]


def test_quiet_hours_defer_after_midnight_and_across_dst() -> None:
    h = Harness(journey(one_send(SMS, QUIET % "defer")))
    # 2026-03-08 01:30 EST (06:30Z); the window ends at 08:00 EDT = 12:00Z.
    h.enter(ts("2026-03-08T06:30:00Z"), timezone=NY)
    assert format_ts(h.state().wake_at or 0) == "2026-03-08T12:00:00Z"
    # 2026-11-01 00:30 EDT (04:30Z); the window ends at 08:00 EST = 13:00Z.
    h.enter(ts("2026-11-01T04:30:00Z"), user="v", timezone=NY)
    assert format_ts(h.state("v").wake_at or 0) == "2026-11-01T13:00:00Z"


@pytest.mark.parametrize(
    ("at", "until"),
    [
        # 01:15 EDT, the first pass of the repeated hour: the window ends at 01:30 EDT.
        ("2026-11-01T05:15:00Z", "2026-11-01T05:30:00Z"),
        # 01:15 EST, the second pass: the wall clock shows a quiet time again, so the send
        # waits for 01:30 EST; it used to go out at once.
        ("2026-11-01T06:15:00Z", "2026-11-01T06:30:00Z"),
        ("2026-11-01T06:30:00Z", None),
    ],
)
def test_quiet_hours_ending_inside_the_repeated_hour(at: str, until: str | None) -> None:
    settings = 'settings: {quiet_hours: {from: "21:00", to: "01:30", action: defer}}'
    h = Harness(journey(one_send(SMS, settings)))
    eff = h.enter(ts(at), timezone=NY)
    if until is None:
        assert len(sends(eff)) == 1
        return
    assert sends(eff) == []
    assert format_ts(h.state().wake_at or 0) == until
    (s,) = sends(h.run_until(ts(until)))
    assert format_ts(s.ts) == until


def test_quiet_hours_use_default_timezone() -> None:
    settings = (
        'settings: {quiet_hours: {from: "21:00", to: "08:00"}, default_timezone: Europe/Paris}'
    )
    h = Harness(journey(one_send(SMS, settings)))
    h.enter(ts("2026-01-05T21:30:00Z"))  # 22:30 in Paris
    assert format_ts(h.state().wake_at or 0) == "2026-01-06T07:00:00Z"


def test_quiet_hours_outside_window_send_right_away() -> None:
    h = Harness(journey(one_send(SMS, QUIET % "defer")))
    eff = h.enter(ts("2026-01-06T01:59:00Z"), timezone=NY)  # 20:59 local
    assert len(sends(eff)) == 1


def test_quiet_hours_skip_suppresses() -> None:
    h = Harness(journey(one_send(SMS, QUIET % "skip")))
    eff = h.enter(ts("2026-01-06T03:00:00Z"), timezone=NY)
    assert sends(eff) == []
    (sup,) = outcomes(eff, "message_suppressed")
    assert sup.attributes == {"reason": "quiet_hours"}
    assert sup.channel == "sms"
    assert types(eff)[-1] == "journey_exited"  # the run goes on past a suppressed send


def test_quiet_hours_do_not_apply_to_transactional_sends() -> None:
    tx = SMS.replace("next: done", "marketing: false, next: done")
    h = Harness(journey(one_send(tx, QUIET % "skip")))
    assert len(sends(h.enter(ts("2026-01-06T03:00:00Z"), timezone=NY))) == 1


def test_quiet_hours_days_are_the_days_a_window_starts_on() -> None:
    settings = 'settings: {quiet_hours: {from: "21:00", to: "08:00", action: skip, days: [fri]}}'
    h = Harness(journey(one_send(SMS, settings)))
    # Saturday 2026-01-10 03:00 local: inside Friday night's window
    h.enter(ts("2026-01-10T08:00:00Z"), timezone=NY)
    # Sunday 2026-01-11 03:00 local: Saturday started no window
    h.enter(ts("2026-01-11T08:00:00Z"), timezone=NY)
    assert suppressed_reasons(h) == ["quiet_hours"]
    assert len(h.sends()) == 1


# ----------------------------------------------------------------------------- frequency cap

CAP = "settings: {frequency_cap: {max: 2, per: 1d}}"


def test_frequency_cap_across_journeys() -> None:
    a = journey(one_send(SMS, CAP, jid="a", event="ev_a"))
    b = journey(one_send(SMS, CAP, jid="b", event="ev_b"))
    h = Harness(a, b)
    h.event("ev_a", T0, profile={"phone": PHONE})
    h.event("ev_b", T0 + HOUR)
    eff = h.event("ev_a", T0 + 2 * HOUR)
    (sup,) = outcomes(eff, "message_suppressed")
    assert sup.attributes == {"reason": "frequency_cap"}
    assert sup.journey_id == "a"
    h.event("ev_b", T0 + 3 * HOUR)
    assert suppressed_reasons(h) == ["frequency_cap"] * 2
    assert len(h.sends()) == 2
    # the window rolls: one day after the first send, one slot opens again
    h.event("ev_b", T0 + DAY - 1)
    assert len(h.sends()) == 2
    h.event("ev_b", T0 + DAY)
    assert len(h.sends()) == 3
    h.event("ev_a", T0 + DAY + 1)
    assert len(h.sends()) == 3


def test_frequency_cap_counts_sends_of_uncapped_journeys() -> None:
    a = journey(one_send(SMS, "", jid="a", event="ev_a"))  # no cap of its own
    b = journey(one_send(SMS, CAP, jid="b", event="ev_b"))
    h = Harness(a, b)
    h.event("ev_a", T0, profile={"phone": PHONE})
    h.event("ev_a", T0 + 1)
    h.event("ev_a", T0 + 2)  # a isn't capped
    assert len(h.sends()) == 3
    h.event("ev_b", T0 + 3)
    assert suppressed_reasons(h) == ["frequency_cap"]


def test_suppressed_sends_do_not_count_toward_the_cap() -> None:
    h = Harness(journey(one_send(SMS, "settings: {frequency_cap: {max: 1, per: 1d}}")))
    h.enter()
    h.enter(T0 + 1)
    h.enter(T0 + 2)
    assert suppressed_reasons(h) == ["frequency_cap"] * 2
    h.enter(T0 + DAY)
    assert len(h.sends()) == 2


CAPPED = """
id: {id}
version: 1
entry: {{event: {event}, reentry: always}}
settings: {{frequency_cap: {{max: 1, per: 1d}}}}
start: s
nodes:
  s: {{type: send, channel: sms, text: hi, marketing: {marketing}, next: done}}
  done: {{type: exit}}
"""


def test_utility_sends_are_neither_capped_nor_counted() -> None:
    util = journey(CAPPED.format(id="util", event="receipt", marketing="false"))
    promo = journey(CAPPED.format(id="promo", event="promo", marketing="true"))
    h = Harness(util, promo)
    h.enter(T0, name="receipt")
    h.enter(T0 + 1000, name="receipt")
    h.enter(T0 + 2000, name="promo")
    h.enter(T0 + 3000, name="promo")
    sent = [o.journey_id for o in h.outcomes("message_sent")]
    assert sent == ["util", "util", "promo"]
    [supp] = h.outcomes("message_suppressed")
    assert (supp.journey_id, supp.attributes["reason"]) == ("promo", "frequency_cap")


# ----------------------------------------------------------------------------- keywords


def test_stop_then_start() -> None:
    h = Harness(journey(one_send(SMS)))
    h.enter()
    eff = h.inbound(T0 + MIN, text="STOP", keyword="opt_out")
    (o,) = outcomes(eff, "user_opted_out")
    assert o.message_id == sends(h.effects)[0].message_id
    assert h.state().opted_out
    eff = h.enter(T0 + HOUR)
    assert sends(eff) == []
    (sup,) = outcomes(eff, "message_suppressed")
    assert sup.attributes == {"reason": "opted_out"}
    h.inbound(T0 + 2 * HOUR, text="start", keyword="opt_in")
    assert not h.state().opted_out
    assert len(sends(h.enter(T0 + 3 * HOUR))) == 1
    assert [o.type for o in h.outcomes("user_opted_out", "user_opted_in")] == [
        "user_opted_out",
        "user_opted_in",
    ]


def test_stop_before_any_send() -> None:
    h = Harness(journey(one_send(SMS)))
    eff = h.inbound(T0, text="STOP", keyword="opt_out")
    (o,) = outcomes(eff)
    assert (o.type, o.journey_id, o.message_id) == ("user_opted_out", None, None)
    assert suppressed_reasons(h) == []
    h.enter(T0 + 1)
    assert suppressed_reasons(h) == ["opted_out"]


def test_help_gets_the_help_sms() -> None:
    h = Harness(journey(one_send(SMS, "settings: {help_text: 'Acme: reply STOP to stop.'}")))
    h.enter()
    eff = h.inbound(T0 + MIN, text="HELP", keyword="help")
    assert types(eff) == ["help_requested", "message_sent"]
    (s,) = sends(eff)
    assert (s.channel, s.purpose, s.to) == ("sms", "help", PHONE)
    assert s.content == {"channel": "sms", "text": "Acme: reply STOP to stop."}
    sent = outcomes(eff, "message_sent")[0]
    assert sent.attributes == {"purpose": "help"}
    assert sent.message_id == s.message_id


def test_help_without_a_journey_send_uses_the_engine_text() -> None:
    h = Harness(journey(one_send(SMS)), config=EngineConfig(help_text="Help text"))
    h.event("unrelated_but_known", T0)  # unknown: does nothing
    h.state().attrs["phone"] = PHONE
    (s,) = sends(h.inbound(T0, text="info", keyword="help"))
    assert s.content["text"] == "Help text"


def test_help_is_answered_even_past_the_cap_and_in_quiet_hours() -> None:
    settings = (
        'settings: {quiet_hours: {from: "00:00", to: "23:59", action: skip},'
        " frequency_cap: {max: 1, per: 1d}}"
    )
    h = Harness(journey(one_send(SMS, settings)))
    h.enter(timezone=NY)
    assert suppressed_reasons(h) == ["quiet_hours"]
    assert len(sends(h.inbound(T0 + 1, text="HELP", keyword="help"))) == 1


ASK = """
id: ask
version: 1
entry: {event: go}
start: q
nodes:
  q:
    type: send
    channel: rcs
    text: "Keep your slot?"
    suggestions: [{reply: {text: "Yes", postback: "yes"}}]
    next: w
  w:
    type: wait_for
    paths: [{reply: "yes", of: q, next: kept}]
    timeout: 1d
    on_timeout: done
  kept: {type: exit, reason: kept}
  done: {type: exit}
"""


def test_yes_from_a_user_who_never_opted_out_is_an_answer() -> None:
    h = Harness(journey(ASK))
    h.enter(T0)
    eff = h.inbound(T0 + 60_000, text="Yes", keyword="opt_in")
    assert "user_opted_in" not in types(eff)
    assert "message_replied" in types(eff)
    [exited] = h.outcomes("journey_exited")
    assert exited.attributes["reason"] == "kept"


def test_start_after_stop_is_an_opt_in() -> None:
    h = Harness(journey(ASK))
    h.enter(T0)
    h.inbound(T0 + 1000, text="STOP", keyword="opt_out")
    eff = h.inbound(T0 + 2000, text="START", keyword="opt_in")
    assert types(eff) == ["user_opted_in"]
    assert not h.state().opted_out


# ----------------------------------------------------------------------------- phones


@pytest.mark.parametrize(
    ("profile", "reason"),
    [
        ({}, "missing_phone"),
        ({"phone": ""}, "missing_phone"),
        ({"phone": "4155550123"}, "invalid_phone"),
        ({"phone": "+0123"}, "invalid_phone"),
        ({"phone": 14155550123}, "invalid_phone"),
    ],
)
def test_missing_or_invalid_phone_is_suppressed(profile: dict[str, object], reason: str) -> None:
    h = Harness(journey(one_send(SMS)))
    eff = h.event("go", T0, profile=profile)
    assert sends(eff) == []
    (sup,) = outcomes(eff, "message_suppressed")
    assert sup.attributes == {"reason": reason}


def test_help_without_phone_sends_nothing() -> None:
    h = Harness(journey(one_send(SMS)))
    eff = h.inbound(T0, text="HELP", keyword="help")
    assert types(eff) == ["help_requested"]


# ----------------------------------------------------------------------------- outcome fields


def test_outcome_fields_follow_the_contract() -> None:
    text = """
id: order-updates
version: 3
entry: {event: order_placed}
exit_on: [order_cancelled]
start: confirm
nodes:
  confirm:
    type: send
    channel: rcs
    text: "Order {{ event.order_id }}"
    fallback: {sms: "Order {{ event.order_id }}", after: 10m}
    next: sp
  sp:
    type: split
    variants:
      - {name: only, weight: 1, next: w}
      - {name: never, weight: 0, next: w}
  w: {type: wait, duration: 1d, next: done}
  done: {type: exit}
"""
    h = Harness(journey(text))
    eff = h.event("order_placed", T0, props={"order_id": "A1"}, profile={"phone": PHONE})
    (req,) = sends(eff)
    entered, n_confirm, sent, n_split, _n_w = outcomes(eff)
    iid = entered.instance_id
    assert iid is not None
    for o in outcomes(eff):
        assert (o.user_id, o.journey_id, o.journey_version, o.instance_id, o.ts) == (
            "u",
            "order-updates",
            3,
            iid,
            T0,
        )
    assert (entered.type, entered.node_id) == ("journey_entered", "confirm")
    assert (n_confirm.type, n_confirm.node_id, n_confirm.channel) == (
        "node_entered",
        "confirm",
        None,
    )
    assert (sent.type, sent.node_id, sent.channel, sent.message_id) == (
        "message_sent",
        "confirm",
        "rcs",
        req.message_id,
    )
    assert (n_split.node_id, n_split.attributes) == ("sp", {"variant": "only"})
    assert req.instance_id == iid and req.node_id == "confirm" and req.ttl_ms == 10 * MIN
    # every outcome id is distinct, and stable: the same inputs give the same ids
    ids = [o.outcome_id for o in outcomes(eff)]
    assert len(set(ids)) == len(ids)
    h2 = Harness(journey(text))
    eff2 = h2.event("order_placed", T0, props={"order_id": "A1"}, profile={"phone": PHONE})
    assert [o.outcome_id for o in outcomes(eff2)] == ids
    assert sends(eff2)[0].message_id == req.message_id

    d = outcomes(h.receipt("delivered", T0 + 5000, req.message_id), "message_delivered")[0]
    assert (d.channel, d.message_id, d.node_id, d.instance_id) == (
        "rcs",
        req.message_id,
        "confirm",
        iid,
    )
    ex = outcomes(h.event("order_cancelled", T0 + HOUR), "journey_exited")[0]
    assert (ex.node_id, ex.attributes, ex.instance_id) == ("w", {"reason": "exit_event"}, iid)
    wire = ex.to_wire()
    assert list(wire) == [
        "outcome_id",
        "type",
        "ts",
        "user_id",
        "journey_id",
        "journey_version",
        "instance_id",
        "node_id",
        "channel",
        "message_id",
        "attributes",
        "schema_version",
    ]
    assert wire["ts"] == "2026-01-05T13:00:00Z"


def test_message_ids_are_uuids_and_outcome_ids_hex() -> None:
    h = Harness(journey(one_send(SMS)))
    (s,) = sends(h.enter())
    assert isinstance(s, SendRequest)
    parts = s.message_id.split("-")
    assert [len(p) for p in parts] == [8, 4, 4, 4, 12]
    assert parts[2][0] == "8"  # version 8
    for o in h.outcomes():
        assert len(o.outcome_id) == 20 and int(o.outcome_id, 16) >= 0
    assert derive_id("x") != derive_id("y")


def test_quiet_hours_from_equal_to_is_an_empty_window() -> None:
    """The linter calls from == to an empty window; the core used to read it as 24 hours
    and defer the send every day, forever (re-emitting the same message_deferred id)."""
    settings = 'settings: {quiet_hours: {from: "21:00", to: "21:00", action: defer}}'
    h = Harness(journey(one_send(SMS, settings)))
    for k, at in enumerate(["2026-01-06T02:30:00Z", "2026-01-06T15:00:00Z"]):
        eff = h.enter(ts(at), user=f"u{k}", timezone=NY)
        assert len(sends(eff)) == 1
    assert h.outcomes("message_deferred") == []


# ----------------------------------------------------------------------------- send rate

RATED_RCS = """{type: send, channel: rcs, text: "Hi", fallback: {sms: "Hi (sms)", after: 1m},
      next: done}"""


def test_send_rate_goes_on_every_send_request_of_the_journey() -> None:
    settings = "settings: {send_rate: {max: 50, per: 1s}, help_text: Help}"
    h = Harness(journey(one_send(RATED_RCS, settings)))
    (rcs,) = sends(h.enter())
    assert rcs.send_rate == {"max": 50, "per_ms": 1000}
    h.receipt("not_capable", T0 + 1, rcs.message_id)
    h.inbound(T0 + 2, text="HELP", keyword="help")
    fallback, help_sms = h.sends()[1:]
    assert (fallback.purpose, fallback.send_rate) == ("fallback", {"max": 50, "per_ms": 1000})
    assert (help_sms.purpose, help_sms.send_rate) == ("help", None)  # not the journey's send
    raw = wire.send_request_value(rcs)
    assert b'"send_rate":{"max":50,"per_ms":1000}' in raw
    assert wire.decode_gateway_request(raw) == rcs


def test_no_send_rate_no_key_on_the_wire() -> None:
    h = Harness(journey(one_send(SMS)))
    (s,) = sends(h.enter())
    assert s.send_rate is None
    assert "send_rate" not in s.to_wire()


@pytest.mark.parametrize(
    "rate",
    [{"max": 0, "per_ms": 1000}, {"max": 5}, {"max": 5, "per_ms": "1s"}, {"max": True,
     "per_ms": 1}, [5, 1000]],
)  # fmt: skip
def test_a_malformed_send_rate_is_refused_on_the_wire(rate: object) -> None:
    h = Harness(journey(one_send(SMS)))
    (s,) = sends(h.enter())
    record = {**wire.send_request_wire(s), "send_rate": rate}
    with pytest.raises(InputError, match="send_rate"):
        wire.decode_gateway_request(orjson.dumps(record))
