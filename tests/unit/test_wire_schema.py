"""The wire module and the wire models agree, both ways.

* What :mod:`engine.core.wire` writes, for every record kind, validates against the model
  of its kind (strictly, as a JSON validator would) and has no key the model leaves out:
  records from a simulated run (outcomes, sends, receipts, revokes, states, input lines),
  every golden outcome, and hypothesis-built core values.
* What the models accept (instances generated from the models' JSON Schemas) decodes
  through the wire module and encodes back to the same values; real records come back
  byte for byte.
* Model timestamps are ones the wire module reads.

The committed schema files are the generated ones: ``tests/unit/test_schemas.py``.
"""

from __future__ import annotations

import base64
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import orjson
import pytest
import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from pydantic import BaseModel, TypeAdapter, ValidationError

from engine.channels.offline import OfflineGateway
from engine.core import schema, wire
from engine.core.effects import SCHEMA_VERSION, Outcome, Revoke, SendRequest
from engine.core.engine import Engine, EngineConfig
from engine.core.ids import wake_token
from engine.core.inputs import RECEIPT_STATUSES, Inbound, Receipt, UserEvent, Wake
from engine.durations import format_ts, parse_ts_ms
from engine.errors import InputError
from engine.journey.model import Journey
from engine.sim.simulator import SimResult, Simulator
from tests import experiment_log
from tests.webhook_log import webhook_tour

ROOT = Path(__file__).resolve().parents[2]
GOLDEN = ROOT / "tests" / "golden"
PHONE = "+14155550123"

ADAPTERS: dict[str, TypeAdapter[Any]] = {
    "outcome": schema.OUTCOME,
    "user-event": TypeAdapter(schema.UserEvent),
    "receipt": TypeAdapter(schema.Receipt),
    "inbound": TypeAdapter(schema.Inbound),
    "wake": TypeAdapter(schema.Wake),
    "forget": TypeAdapter(schema.Forget),
    "scheduled": TypeAdapter(schema.Scheduled),
    "send-request": TypeAdapter(schema.SendRequest),
    "revoke": TypeAdapter(schema.Revoke),
    "webhook-request": TypeAdapter(schema.WebhookRequest),
    "webhook-result": TypeAdapter(schema.WebhookResult),
    "dead-letter": TypeAdapter(schema.DeadLetter),
    "state": TypeAdapter(schema.StateRecord),
    "split-decision": TypeAdapter(schema.SplitDecision),
    "trace": TypeAdapter(schema.Trace),
}


def test_every_schema_file_has_an_adapter_here() -> None:
    assert set(schema.SCHEMAS) <= set(ADAPTERS)


def undeclared(value: Any, path: str = "") -> list[str]:
    """Keys a model took in as extras (every model allows them), anywhere inside."""
    found: list[str] = []
    if isinstance(value, BaseModel):
        found += [f"{path}.{k}" for k in value.model_extra or {}]
        for name in type(value).model_fields:
            found += undeclared(getattr(value, name), f"{path}.{name}")
    elif isinstance(value, list | tuple):
        for i, v in enumerate(value):
            found += undeclared(v, f"{path}[{i}]")
    elif isinstance(value, dict):
        for k, v in value.items():
            found += undeclared(v, f"{path}.{k}")
    return found


def described(kind: str, record: bytes | dict[str, Any]) -> Any:
    """The record validated as JSON (strict: no coercion), with no undeclared key."""
    raw = record if isinstance(record, bytes) else orjson.dumps(record)
    if kind == "state":
        raw = wire.state_json(raw)  # the table value is compact: its JSON is what is described
    model = ADAPTERS[kind].validate_json(raw, strict=True)
    assert undeclared(model) == [], f"{kind}: the model does not declare {undeclared(model)}"
    return model


# --------------------------------------------------------------------------- real records

JOURNEY = """
id: wire-tour
version: 1
name: Wire tour
entry: {event: signed_up}
exit_on: [account_closed]
goal: {event: purchased, within: 7d}
settings:
  quiet_hours: {from: "21:00", to: "08:00", action: defer}
  send_rate: {max: 20, per: 1s}
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
  hello_sms: {type: send, channel: sms, text: "A deal! Reply STOP to opt out.", next: broken}
  broken:
    type: send
    channel: sms
    text: "{{ user.first_name | nope }} Reply STOP to opt out."
    next: wait_buy
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
# Version 2 moves the users waiting in version 1 (instance_migrated).
JOURNEY_V2 = JOURNEY.replace("version: 1", "version: 2").replace(
    "name: Wire tour", "name: Wire tour\nmigrate: [{from_version: 1, nodes: {wait_buy: wait_buy}}]"
)


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
    lines += [  # not reachable over RCS: whoever gets the RCS variant falls back to SMS
        _event(f"n{i}", "signed_up", f"{day}10:1{i}:00Z", phone=PHONE, rcs_capable=False)
        for i in range(6)
    ]
    lines += [
        {"type": "inbound", "user_id": "u1", "ts": f"{day}10:30:00Z", "postback": "buy"},
        {"type": "inbound", "user_id": "u2", "ts": f"{day}10:31:00Z", "postback": "buy"},
        {"type": "receipt", "user_id": "u4", "ts": f"{day}10:40:00Z", "node": "hello",
         "status": "read"},
        # the gateway held u1's first send back, and lost track of u7's (message_unknown);
        # whichever variant they got, one of the two nodes names their send
        *({"type": "receipt", "user_id": u, "ts": f"{day}10:0{u[1]}:01Z", "node": node,
           "status": status} for u, status in (("u1", "accepted"), ("u7", "unknown"))
          for node in ("hello", "hello_sms")),
        {"type": "inbound", "user_id": "u5", "ts": f"{day}11:00:00Z", "text": "nice one"},
        {"type": "inbound", "user_id": "u5", "ts": f"{day}11:05:00Z", "text": "STOP"},
        {"type": "inbound", "user_id": "u5", "ts": f"{day}11:06:00Z", "text": "START"},
        {"type": "inbound", "user_id": "u5", "ts": f"{day}11:07:00Z", "text": "HELP"},
        _event("u6", "purchased", f"{day}12:00:00Z"),
        _event("u7", "account_closed", f"{day}12:00:00Z"),
        _event("u8", "signed_up", f"{day}22:30:00Z", phone=PHONE),  # quiet hours: deferred
        _event("u9", "signed_up", f"{day}12:00:00Z", phone="12"),  # invalid phone
        {"type": "forget", "user_id": "u3", "ts": f"{day}13:00:00Z", "request_id": "r-1"},
    ]  # fmt: skip
    return lines


PROFILE_TOUR = """
id: profile-tour
version: 1
entry: {event: upgraded}
start: keep
nodes:
  keep: {type: update_profile, set: {tier: "'gold'", plan: event.plan}, unset: [trial], next: big}
  big: {type: update_profile, set: {blob: event.blob}, next: done}
  done: {type: exit}
"""
PROFILE_LINES = [
    {"event_id": "p1", "user_id": "p", "name": "profile_updated", "ts": "2026-11-02T09:00:00Z",
     "properties": {"trial": True, "first_name": "Ada"}},
    {"event_id": "p2", "user_id": "p", "name": "upgraded", "ts": "2026-11-02T09:01:00Z",
     "properties": {"plan": "pro", "blob": "x" * 3000}},
]  # fmt: skip


class RecordingProvider(OfflineGateway):
    """The simulator's provider, keeping the receipts it makes and the revokes it gets."""

    def __init__(self, delivery_ms: int = 5_000, log: RecordingProvider | None = None) -> None:
        super().__init__(delivery_ms)
        self.receipts: list[Receipt] = log.receipts if log else []
        self.revokes: list[Revoke] = log.revokes if log else []

    def send(self, req: SendRequest) -> list[Receipt]:
        out = super().send(req)
        self.receipts += out
        return out

    def revoke(self, rev: Revoke) -> list[Receipt]:
        self.revokes.append(rev)
        out = super().revoke(rev)
        self.receipts += out
        return out


@dataclass
class Tour:
    result: SimResult
    provider: RecordingProvider
    lines: list[dict[str, Any]]


def tour() -> Tour:
    v1 = Journey.model_validate(yaml.safe_load(JOURNEY))
    v2 = Journey.model_validate(yaml.safe_load(JOURNEY_V2))
    provider = RecordingProvider()
    lines = input_lines()
    traced = EngineConfig(trace_sample=1.0)  # every user: trace records of every kind
    result = Simulator([v1], traced, provider).run([wire.decode_line(x) for x in lines])
    # A user waiting in version 1 takes a step once version 2 is live: instance_migrated.
    state = Engine([v1]).new_state("mover")
    first = _event("mover", "signed_up", "2026-11-02T10:00:00Z", phone=PHONE)
    Engine([v1]).advance(state, wire.decode_line(first), parse_ts_ms(first["ts"]))
    later = wire.decode_line(_event("mover", "signed_up", "2026-11-04T11:00:00Z"))  # timed out
    _, effects = Engine([v1, v2]).advance(state, later, later.ts)
    result.outcomes += [e for e in effects if isinstance(e, Outcome)]
    result.states["mover"] = state
    # A split that picks its winner: split_winner_chosen (tests/experiment_log.py).
    experiment = Simulator([experiment_log.journey()]).run(
        [wire.decode_line(x) for x in experiment_log.lines()]
    )
    result.outcomes += [o for o in experiment.outcomes if o.type == "split_winner_chosen"]
    result.decisions += experiment.decisions
    # Profile updates: a profile event, an update_profile node, one past a profile limit.
    profile = Simulator([Journey.model_validate(yaml.safe_load(PROFILE_TOUR))], traced).run(
        [wire.decode_line(x) for x in PROFILE_LINES]
    )
    result.outcomes += profile.outcomes
    result.traces += profile.traces
    result.states.update(profile.states)
    # A webhook node: webhook_called and webhook_failed (tests/webhook_log.py).
    result.outcomes += webhook_tour().outcomes
    # A provider slower than the fallback window: the RCS sends are revoked.
    Simulator([v1], provider=RecordingProvider(30 * 60_000, provider)).run(
        [wire.decode_line(x) for x in lines[:8]]
    )
    return Tour(result, provider, lines)


@pytest.fixture(scope="module")
def real() -> Tour:
    return tour()


def test_real_outcomes_of_every_type_are_described_and_come_back(real: Tour) -> None:
    kinds = set()
    for o in real.result.outcomes:
        raw = wire.outcome_value(o)
        model = described("outcome", raw)
        kinds.add(model.type)
        assert wire.decode_outcome(raw) == o
        assert wire.outcome_value(wire.decode_outcome(raw)) == raw
        assert wire.outcome_record(raw) == wire.outcome_wire(o)
    missing = set(schema.OUTCOME_TYPES) - kinds
    assert not missing, f"the tour should produce every type; missing {missing}"


def test_real_effects_are_described_and_come_back(real: Tour) -> None:
    assert real.result.sends and real.provider.revokes
    rates = {(req.purpose, str(req.send_rate)) for req in real.result.sends}
    journey_rate = str({"max": 20, "per_ms": 1000})  # the journey's send_rate; none for HELP
    assert rates == {("journey", journey_rate), ("fallback", journey_rate), ("help", "None")}
    for req in real.result.sends:
        raw = wire.send_request_value(req)
        described("send-request", raw)
        assert wire.decode_gateway_request(raw) == req
        assert wire.send_request_value(wire.decode_gateway_request(raw)) == raw
    for rev in real.provider.revokes:
        raw = wire.revoke_value(rev)
        described("revoke", raw)
        assert wire.decode_gateway_request(raw) == rev
        assert wire.revoke_value(rev) == raw


def test_real_receipts_and_input_lines_are_described_and_come_back(real: Tour) -> None:
    statuses = {r.status for r in real.provider.receipts}
    assert {"delivered", "not_capable", "revoked"} <= statuses
    for r in real.provider.receipts:
        w = wire.receipt_wire(r)
        described("receipt", w)
        assert wire.receipt_from_wire(orjson.loads(orjson.dumps(w))) == r
    kind_of = {"event": "user-event", "receipt": "receipt", "inbound": "inbound"}
    kind_of["forget"] = "forget"
    for line in real.lines:
        inp = wire.decode_line(line)
        w = wire.input_wire(inp)
        described(kind_of[line.get("type", "event")], w)
        assert wire.decode_line(orjson.loads(wire.input_value(inp))) == inp


def test_real_traces_are_described_and_come_back(real: Tour) -> None:
    kinds = set()
    for t in real.result.traces:
        raw = wire.trace_value(t)
        described("trace", raw)
        assert wire.decode_trace(raw) == t
        assert wire.trace_value(wire.decode_trace(raw)) == raw
        kinds.add(t.kind)
    assert {"entry", "node", "split", "send", "fallback", "message", "keyword"} <= kinds


def test_real_states_are_described_and_come_back(real: Tour) -> None:
    assert len(real.result.states) > 10
    for n, state in enumerate(real.result.states.values()):
        raw = wire.state_record(n % 4, state)
        described("state", raw)
        partition, back = wire.state_from_record(raw)
        assert (partition, back) == (n % 4, state)
        assert wire.state_record(partition, back) == raw
        assert wire.state_wake_at(raw) == (partition, state.wake_at)
        assert wire.parse_state_record(raw) == (partition, state.to_wire())


def test_real_split_decisions_are_described_and_come_back(real: Tour) -> None:
    assert real.result.decisions
    for d in real.result.decisions:
        raw = wire.split_decision_value(d)
        described("split-decision", raw)
        assert wire.decode_split_decision(raw) == d
        assert wire.decode_split_decision(raw).figures == d.figures
        assert wire.split_decision_value(wire.decode_split_decision(raw)) == raw


def test_golden_outcomes_are_described_and_come_back_byte_for_byte() -> None:
    files = sorted(GOLDEN.glob("*/expected.jsonl"))
    assert files
    for path in files:
        for raw in path.read_bytes().splitlines():
            described("outcome", raw)
            assert wire.outcome_value(wire.decode_outcome(raw)) == raw, path


def test_dead_letters_are_described_and_come_back() -> None:
    record = wire.dead_letter(
        reason="bad_json",
        detail="x" * 5000,
        stage="engine",
        topic="journey.user-events",
        partition=3,
        offset=41,
        key=b"\xffu",
        value=b"{" * (wire.DEAD_LETTER_MAX_ORIGINAL + 1),
        dead_lettered_at=1_764_410_400_123,
        timestamp_ms=1_764_410_400_000,
    )
    described("dead-letter", record)
    dl = wire.decode_dead_letter(record)
    assert (dl.truncated, dl.size, dl.key, len(dl.detail)) == (
        True,
        wire.DEAD_LETTER_MAX_ORIGINAL + 1,
        b"\xffu",
        wire.DEAD_LETTER_MAX_DETAIL,
    )
    assert dl.value == b"{" * wire.DEAD_LETTER_MAX_ORIGINAL
    assert orjson.dumps(wire.dead_letter_wire(dl)) == record
    assert orjson.loads(record)["key"] is None  # not UTF-8: base64 only


# --------------------------------------------------------------------------- written: hypothesis

texts = st.text(max_size=12)
ids = st.text(min_size=1, max_size=12)
opt = st.none() | texts
epoch_ms = st.integers(min_value=946_684_800_000, max_value=4_102_444_800_000)  # 2000..2100
json_leaf = st.none() | st.booleans() | st.integers(-(2**53), 2**53) | texts
json_obj = st.dictionaries(
    texts,
    st.recursive(
        json_leaf,
        lambda inner: st.lists(inner, max_size=3) | st.dictionaries(texts, inner, max_size=3),
        max_leaves=6,
    ),
    max_size=4,
)
profiles = st.fixed_dictionaries(
    {}, optional={"phone": st.just(PHONE), "timezone": st.just("UTC"), "first_name": ids}
)


@given(
    st.builds(UserEvent, ids, ids, ids, epoch_ms, json_obj, st.none() | profiles),
    st.builds(Receipt, ids, epoch_ms, st.sampled_from(RECEIPT_STATUSES), ids, st.none() | ids, opt),
    st.builds(
        Inbound,
        ids,
        epoch_ms,
        opt,
        ids,
        opt,
        st.sampled_from([None, "opt_out", "opt_in", "help"]),
        opt,
    ),
    st.builds(Wake, ids, epoch_ms, ids),  # the engine always writes a token
)
@settings(max_examples=60, deadline=None)
def test_inputs_written_are_described(
    event: UserEvent, receipt: Receipt, inbound: Inbound, wake: Wake
) -> None:
    for kind, inp in [
        ("user-event", event),
        ("receipt", receipt),
        ("inbound", inbound),
        ("wake", wake),
    ]:
        raw = wire.input_value(inp)
        described(kind, raw)
        assert wire.decode_line(wire.loads(raw)) == inp
    raw = wire.wake_value(wake.user_id, wake.ts, wake.token)
    assert raw == wire.input_value(wake)
    assert wire.wake_from(raw) == wake


@given(
    st.builds(
        SendRequest,
        ids,
        epoch_ms,
        ids,
        texts,
        st.sampled_from(["rcs", "sms"]),
        json_obj,
        opt,
        st.none() | st.integers(1, 99),
        opt,
        opt,
        st.none() | st.integers(0, 10**9),
        st.sampled_from(["journey", "fallback", "help"]),
        opt,
        json_obj,
        st.none() | st.fixed_dictionaries({"max": st.integers(1, 10**6), "per_ms": epoch_ms}),
    ),
    st.builds(Revoke, ids, ids, epoch_ms),
    st.binary(max_size=40) | st.none(),
    st.binary(max_size=8) | st.none(),
    epoch_ms,
)
@settings(max_examples=60, deadline=None)
def test_effects_and_dead_letters_written_are_described(
    req: SendRequest, rev: Revoke, value: bytes | None, key: bytes | None, now: int
) -> None:
    for kind, eff, raw in [
        ("send-request", req, wire.send_request_value(req)),
        ("revoke", rev, wire.revoke_value(rev)),
    ]:
        described(kind, raw)
        assert wire.decode_gateway_request(raw) == eff
    letter = wire.dead_letter(
        reason="bad_json",
        detail="d",
        stage="gateway",
        topic="t",
        partition=0,
        offset=7,
        key=key,
        value=value,
        dead_lettered_at=now,
        timestamp_ms=now - 5,
    )
    described("dead-letter", letter)
    dl = wire.decode_dead_letter(letter)
    assert (dl.key, dl.value, dl.dead_lettered_at, dl.timestamp) == (key, value, now, now - 5)


# --------------------------------------------------------------------------- accepted: hypothesis


def from_schema(node: dict[str, Any], defs: dict[str, Any]) -> st.SearchStrategy[Any]:
    """Instances of the JSON Schema subset pydantic generates for these models. Objects get
    their declared properties only (optional ones or not); timestamps are drawn as the
    engine writes them (other forms: ``test_model_timestamps_are_read``)."""
    if "$ref" in node:
        return st.deferred(lambda: from_schema(defs[node["$ref"].split("/")[-1]], defs))
    if "const" in node:
        return st.just(node["const"])
    if "enum" in node:
        return st.sampled_from(node["enum"])
    branches = node.get("anyOf") or node.get("oneOf")
    if branches and "properties" not in node:
        if any(b.get("format") == "date-time" for b in branches):
            branches = [b for b in branches if b.get("type") != "number"]
        return st.one_of([from_schema(b, defs) for b in branches])
    kind = node.get("type")
    if node.get("format") == "date-time":
        return epoch_ms.map(format_ts)
    if kind == "string":
        if "pattern" in node:
            return st.from_regex(node["pattern"], fullmatch=True)
        return st.text(
            min_size=node.get("minLength", 0), max_size=min(node.get("maxLength", 12), 12)
        )
    if kind == "integer":
        return st.integers(node.get("minimum", -(2**40)), node.get("maximum", 2**40))
    if kind == "number":
        return st.floats(-1.0, 1.0, allow_nan=False)  # rates and their intervals
    if kind == "boolean":
        return st.booleans()
    if kind == "null":
        return st.none()
    if kind == "array":
        if "prefixItems" in node:
            return st.tuples(*(from_schema(i, defs) for i in node["prefixItems"])).map(list)
        return st.lists(from_schema(node["items"], defs), max_size=3)
    if kind == "object" and "properties" in node:
        props, required = node["properties"], set(node.get("required", ()))
        return st.fixed_dictionaries(
            {k: from_schema(v, defs) for k, v in props.items() if k in required},
            optional={k: from_schema(v, defs) for k, v in props.items() if k not in required},
        )
    if kind == "object":
        values = node.get("additionalProperties")
        if isinstance(values, dict) and values:
            return st.dictionaries(texts, from_schema(values, defs), max_size=3)
        return json_obj
    raise AssertionError(f"no strategy for {node}")


def accepted(kind: str) -> st.SearchStrategy[dict[str, Any]]:
    doc = ADAPTERS[kind].json_schema(mode="validation")
    return from_schema(doc, doc.get("$defs", {}))


def _b64_and_key(draw: st.DrawFn, d: dict[str, Any]) -> dict[str, Any]:
    """A dead letter's ``key`` is its ``key_b64`` as text: derived, not free."""
    key = draw(st.none() | st.binary(max_size=6) | texts.map(str.encode))
    value = draw(st.none() | st.binary(max_size=20))
    text: str | None
    try:
        text = key.decode() if key is not None else None
    except UnicodeDecodeError:
        text = None
    b64 = base64.b64encode
    return {
        **d,
        "key": text,
        "key_b64": b64(key).decode() if key is not None else None,
        "value_b64": b64(value).decode() if value is not None else None,
    }


def _unique_runs(draw: st.DrawFn, d: dict[str, Any]) -> dict[str, Any]:
    """A state's instances and messages are keyed by their (unique) ids; a goal tracking
    entry is written with its four fields (states from before had three)."""
    s = d["s"]
    for key in ("i", "m"):
        if key in s:
            s[key] = [[f"{key}{n}", *row[1:]] for n, row in enumerate(s[key])]
    for hist in s.get("h", {}).values():
        hist[2] = [[*t, {}] if len(t) == 3 else t for t in hist[2]]
    return d


def _current_version(draw: st.DrawFn, d: dict[str, Any]) -> dict[str, Any]:
    """The models take any later ``schema_version``; this reader writes its own."""
    return {**d, "schema_version": SCHEMA_VERSION}


def _same(draw: st.DrawFn, d: dict[str, Any]) -> dict[str, Any]:
    return d


Codec = tuple[Callable[[bytes], Any], Callable[[Any], bytes]]
CODECS: dict[str, Codec] = {
    "user-event": (lambda raw: wire.decode_line(wire.loads(raw)), wire.input_value),
    "receipt": (lambda raw: wire.receipt(wire.loads(raw)), wire.input_value),
    "inbound": (lambda raw: wire.inbound(wire.loads(raw)), wire.input_value),
    "wake": (wire.wake_from, wire.input_value),
    "forget": (lambda raw: wire.decode_line(wire.loads(raw)), wire.input_value),
    "scheduled": (lambda raw: wire.timer_record(wire.loads(raw)), wire.input_value),
    "send-request": (wire.decode_gateway_request, wire.send_request_value),
    "revoke": (wire.decode_gateway_request, wire.revoke_value),
    "webhook-request": (wire.decode_gateway_request, wire.webhook_request_value),
    "webhook-result": (lambda raw: wire.receipt(wire.loads(raw)), wire.input_value),
    "outcome": (wire.decode_outcome, wire.outcome_value),
    "dead-letter": (wire.decode_dead_letter, lambda dl: wire.dumps(wire.dead_letter_wire(dl))),
    "state": (wire.state_from_record, lambda ps: wire.state_record(*ps)),
    "split-decision": (wire.decode_split_decision, wire.split_decision_value),
    "trace": (wire.decode_trace, wire.trace_value),
}
FIXES: dict[str, Callable[[st.DrawFn, dict[str, Any]], dict[str, Any]]] = {
    "dead-letter": _b64_and_key,
    "state": _unique_runs,
    "outcome": _current_version,
    "split-decision": _current_version,
    "trace": _current_version,
}


def test_every_model_has_a_codec_here() -> None:
    assert set(CODECS) == set(ADAPTERS)


def _values(model: Any) -> dict[str, Any]:
    """The model's values; an absent ``type`` (receipts, inbound, wake-ups are read by
    topic) counts as the type the wire module writes."""
    values: dict[str, Any] = model.model_dump()
    if "type" in values and values["type"] is None:
        del values["type"]
    return values


@pytest.mark.parametrize("kind", sorted(CODECS))
@settings(
    max_examples=80, deadline=None, suppress_health_check=[HealthCheck.too_slow]
)  # fmt: skip
@given(data=st.data())
def test_what_the_models_accept_decodes_and_comes_back(kind: str, data: st.DataObject) -> None:
    instance = data.draw(accepted(kind))
    instance = FIXES.get(kind, _same)(data.draw, instance)
    raw = orjson.dumps(instance)
    try:
        model = ADAPTERS[kind].validate_json(raw, strict=True)
    except ValidationError:
        return  # a combination the schema's anyOf rules out (a receipt naming no message)
    decode, encode = CODECS[kind]
    value = decode(raw)  # never an InputError: the model accepted it
    again = encode(value)
    back = described(kind, again)
    assert decode(again) == value
    want, got = _values(model), _values(back)
    if "type" not in want:
        got.pop("type", None)
    if kind == "wake" and not want.get("token"):
        # No token: the wake-up scheduled at its time, whose token the decoder fills in.
        want["token"] = wake_token(want["user_id"], value.ts)
    assert got == want


@pytest.mark.parametrize(
    ("kind", "record"),
    [
        ("receipt", {"user_id": "u", "ts": "2026-11-02T10:00:00Z", "status": "read"}),
        ("receipt", {"user_id": "u", "ts": 1.5, "status": "read", "message_id": None}),
        ("inbound", {"user_id": "u", "ts": "2026-11-02T10:00:00Z", "text": None}),
        ("user-event", {"user_id": "u", "ts": "2026-11-02T10:00:00Z", "name": "n",
                        "event_id": "e", "type": None}),
        ("send-request", {"type": None}),
    ],
)  # fmt: skip
def test_what_the_wire_module_refuses_the_models_refuse(kind: str, record: dict[str, Any]) -> None:
    with pytest.raises(ValidationError):
        ADAPTERS[kind].validate_json(orjson.dumps(record), strict=True)
    decode = CODECS[kind][0]
    with pytest.raises(InputError):
        decode(orjson.dumps(record))


def test_a_newer_outcome_schema_version_is_described_but_not_read_as_the_current_one() -> None:
    o = {**orjson.loads(next(GOLDEN.glob("*/expected.jsonl")).read_bytes().splitlines()[0])}
    o["schema_version"] = SCHEMA_VERSION + 1
    described("outcome", o)
    assert wire.outcome_record(orjson.dumps(o))["schema_version"] == SCHEMA_VERSION + 1
    with pytest.raises(InputError, match="unsupported_version"):
        wire.decode_outcome(orjson.dumps(o))


# --------------------------------------------------------------------------- timestamps


@given(
    st.datetimes(
        min_value=datetime(1975, 1, 1), max_value=datetime(2100, 1, 1), timezones=st.just(UTC)
    ),
    st.integers(0, 6),
    st.integers(-14 * 60, 14 * 60),
)
def test_model_timestamps_are_read(when: datetime, digits: int, offset_min: int) -> None:
    """Every form the Timestamp pattern allows (fraction digits, Z or an offset) is read
    as the instant it names; epoch seconds and milliseconds are refused by both."""
    local = when.astimezone(timezone(timedelta(minutes=offset_min)))
    fraction = f"{local.microsecond:06d}"[:digits]
    text = local.strftime("%Y-%m-%dT%H:%M:%S") + (f".{fraction}" if digits else "")
    if offset_min == 0 and digits % 2:
        text += "Z"
    else:
        sign, hhmm = "-" if offset_min < 0 else "+", divmod(abs(offset_min), 60)
        text += f"{sign}{hhmm[0]:02d}:{hhmm[1]:02d}"
    described("wake", {"user_id": "u", "ts": text})
    micros = int(fraction.ljust(6, "0")) if digits else 0
    want = (when.replace(microsecond=micros) - datetime(1970, 1, 1, tzinfo=UTC)) // timedelta(
        milliseconds=1
    )
    assert wire.wake({"user_id": "u", "ts": text}).ts == want == parse_ts_ms(text)
    seconds = int(when.timestamp())
    event = {"event_id": "e", "user_id": "u", "name": "n"}
    for ts in (seconds, seconds * 1000):
        with pytest.raises(ValidationError):
            described("user-event", {**event, "ts": ts})
        with pytest.raises(InputError, match="bad_timestamp"):
            wire.user_event({**event, "ts": ts})


def test_a_wake_line_without_a_token_stands_for_the_wake_up_at_its_time() -> None:
    """A hand-written wake-up line gets the token of the wake-up scheduled at its time, so
    the simulator and the worker read it the same way (the core drops it unless due)."""
    w = wire.wake({"type": "wake", "user_id": "u", "ts": "2026-11-29T10:00:00Z"})
    assert w.token == wake_token("u", w.ts)
    assert wire.wake({"user_id": "u", "ts": "2026-11-29T10:00:00Z", "token": "t"}).token == "t"
