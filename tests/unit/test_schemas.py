"""The wire-format schemas: committed files are the generated ones, and real outcomes,
send requests and input lines (from the simulator) validate against the models."""

from __future__ import annotations

from collections import Counter
from pathlib import Path
from typing import Any

import pytest
import yaml
from pydantic import TypeAdapter, ValidationError

from engine import cli
from engine.core import schema
from engine.core.effects import SCHEMA_VERSION
from engine.core.wire import decode_line
from engine.journey.model import Journey
from engine.sim.simulator import Simulator
from engine.stats.aggregate import _COUNTED

ROOT = Path(__file__).resolve().parents[2]
SCHEMAS = ROOT / "docs" / "schemas"
PHONE = "+14155550123"

JOURNEY = """
id: schema-tour
version: 1
name: Schema tour
entry: {event: signed_up}
exit_on: [account_closed]
goal: {event: purchased, within: 7d}
settings:
  quiet_hours: {from: "21:00", to: "08:00", action: defer}
  default_timezone: UTC
start: pick
nodes:
  pick:
    type: split
    variants:
      - {name: A, weight: 50, next: hello}
      - {name: B, weight: 50, next: hello_sms}
  hello:
    type: send
    channel: rcs
    rich_card:
      title: "Hi {{ user.first_name | default: 'there' }}"
      description: "A deal for you"
      suggestions:
        - reply: {text: "Buy", postback: buy}
    fallback: {sms: "Hi, a deal for you. Reply STOP to opt out.", after: 10m}
    next: wait_buy
  hello_sms: {type: send, channel: sms, text: "A deal! Reply STOP to opt out.", next: wait_buy}
  wait_buy:
    type: wait_for
    paths:
      - {click: buy, of: hello, next: thanks}
      - {event: purchased, next: done}
    timeout: 1d
    on_timeout: done
  thanks: {type: send, channel: sms, text: "Thanks! Reply STOP to opt out.", next: done}
  done: {type: exit}
"""


def _event(user: str, name: str, ts: str, **profile: Any) -> dict[str, Any]:
    line: dict[str, Any] = {"event_id": f"{user}-{name}-{ts}", "user_id": user, "name": name}
    line["ts"] = ts
    if profile:
        line["profile"] = profile
    return line


def input_lines() -> list[dict[str, Any]]:
    day = "2026-11-02T"
    lines = [
        _event(f"u{i}", "signed_up", f"{day}10:0{i}:00Z", phone=PHONE, rcs_capable=i % 3 != 0)
        for i in range(8)
    ]
    lines += [
        {"type": "inbound", "user_id": "u1", "ts": f"{day}10:30:00Z", "postback": "buy"},
        {"type": "inbound", "user_id": "u2", "ts": f"{day}10:31:00Z", "postback": "buy"},
        {
            "type": "receipt",
            "user_id": "u4",
            "ts": f"{day}10:40:00Z",
            "node": "hello",
            "status": "read",
        },
        {"type": "inbound", "user_id": "u5", "ts": f"{day}11:00:00Z", "text": "nice one"},
        {"type": "inbound", "user_id": "u5", "ts": f"{day}11:05:00Z", "text": "STOP"},
        {"type": "inbound", "user_id": "u5", "ts": f"{day}11:06:00Z", "text": "START"},
        {"type": "inbound", "user_id": "u5", "ts": f"{day}11:07:00Z", "text": "HELP"},
        _event("u6", "purchased", f"{day}12:00:00Z"),
        _event("u7", "account_closed", f"{day}12:00:00Z"),
        _event("u8", "signed_up", f"{day}22:30:00Z", phone=PHONE),  # quiet hours: deferred
        _event("u9", "signed_up", f"{day}12:00:00Z", phone="12"),  # invalid phone
    ]
    return lines


def journey() -> Journey:
    return Journey.model_validate(yaml.safe_load(JOURNEY))


def simulate() -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """(outcomes, send requests) of the schema tour, in wire form."""
    result = Simulator([journey()]).run([decode_line(line) for line in input_lines()])
    return [o.to_wire() for o in result.outcomes], [s.to_wire() for s in result.sends]


def test_committed_schema_files_are_the_generated_ones() -> None:
    generated = schema.render_all()
    assert sorted(generated) == sorted(p.name for p in SCHEMAS.glob("*.schema.json"))
    for name, data in generated.items():
        assert (SCHEMAS / name).read_bytes() == data, (
            f"docs/schemas/{name} is out of date: run journeys schema --wire docs/schemas/"
        )
    assert cli.main(["schema", "--wire", str(SCHEMAS), "--check"]) == 0


def test_generator_writes_and_checks(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert cli.main(["schema", "--wire", str(tmp_path), "--check"]) == 1
    assert cli.main(["schema", "--wire", str(tmp_path)]) == 0
    assert cli.main(["schema", "--wire", str(tmp_path), "--check"]) == 0
    assert "wrote" in capsys.readouterr().out
    doc = schema.json_schema("outcome")
    assert doc["x-schema-version"] == SCHEMA_VERSION
    assert doc["$schema"].endswith("2020-12/schema")
    assert doc["discriminator"]["propertyName"] == "type"
    assert set(doc["discriminator"]["mapping"]) == set(schema.OUTCOME_TYPES)


def test_real_outcomes_validate() -> None:
    outcomes, _ = simulate()
    kinds = Counter(o["type"] for o in outcomes)
    for o in outcomes:
        model = schema.OUTCOME.validate_python(o)
        assert model.type == o["type"]
        assert o["schema_version"] == SCHEMA_VERSION
    wanted = {
        "journey_entered", "node_entered", "message_sent", "message_delivered", "message_read",
        "message_clicked", "message_replied", "fallback_triggered", "message_suppressed",
        "message_deferred", "goal_converted", "journey_exited", "user_opted_out",
        "user_opted_in", "help_requested",
    }  # fmt: skip
    assert wanted <= set(kinds), (
        f"the tour should produce every kind; missing {wanted - set(kinds)}"
    )


def test_sends_and_inputs_validate() -> None:
    _, sends = simulate()
    assert sends
    send = TypeAdapter(schema.SendRequest)
    for s in sends:
        send.validate_python(s)
    adapters: dict[str, TypeAdapter[Any]] = {
        "receipt": TypeAdapter(schema.Receipt),
        "inbound": TypeAdapter(schema.Inbound),
        "event": TypeAdapter(schema.UserEvent),
    }
    for line in input_lines():
        adapters[line.get("type", "event")].validate_python(line)


@pytest.mark.parametrize(
    "change",
    [
        {"type": "message_teleported"},
        {"outcome_id": ""},
        {"ts": "yesterday"},
        {"journey_id": None},  # node_entered is always about a journey
        {"attributes": {"variant": 3}},
        {"channel": "fax"},
    ],
)
def test_invalid_outcomes_are_rejected(change: dict[str, Any]) -> None:
    outcomes, _ = simulate()
    node_entered = next(o for o in outcomes if o["type"] == "node_entered")
    schema.OUTCOME.validate_python(node_entered)
    with pytest.raises(ValidationError):
        schema.OUTCOME.validate_python({**node_entered, **change})


def test_unknown_attributes_are_allowed() -> None:
    outcomes, _ = simulate()
    sent = next(o for o in outcomes if o["type"] == "message_sent")
    extra = {**sent, "attributes": {**sent["attributes"], "cost_usd": 0.01}, "region": "eu"}
    schema.OUTCOME.validate_python(extra)


def test_the_consumer_guide_covers_every_type() -> None:
    guide = (ROOT / "docs" / "outcomes.md").read_text(encoding="utf-8")
    assert set(_COUNTED) <= set(schema.OUTCOME_TYPES)
    for kind in schema.OUTCOME_TYPES:
        assert f"`{kind}`" in guide, f"docs/outcomes.md does not describe {kind}"
    for name in schema.SCHEMAS:
        assert f"schemas/{name}.schema.json" in guide
