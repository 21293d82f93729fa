"""The webhook node without the gateway: the model, the allow-list and save paths, the
linter, the core (request, result routing, save, safety timer) and the simulator."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
import yaml
from pydantic import ValidationError

from engine.core import wire
from engine.core.effects import Outcome, WebhookRequest
from engine.core.engine import Engine
from engine.core.inputs import UserEvent, Wake, WebhookResult
from engine.journey.model import Journey, WebhookNode
from engine.journey.webhooks import allowed_by, extract, parse_path, refusal, url_problem
from engine.lint.linter import lint_paths
from tests.webhook_log import JOURNEY, T0, webhook_tour


def journey(**node: Any) -> Journey:
    raw = yaml.safe_load(JOURNEY.read_text())
    raw["nodes"]["tell_crm"].update(node)
    return Journey.model_validate(raw)


def outcomes(effects: list[Any], kind: str) -> list[Outcome]:
    return [e for e in effects if isinstance(e, Outcome) and e.type == kind]


def enter(engine: Engine, user: str = "u1", **props: Any) -> tuple[Any, list[Any]]:
    state = engine.new_state(user)
    event = UserEvent(f"e-{user}", user, "lead_qualified", T0, {"lead_id": "L1", **props})
    _, effects = engine.advance(state, event, T0)
    return state, effects


# --------------------------------------------------------------------------- the model


@pytest.mark.parametrize(
    ("change", "says"),
    [
        ({"headers": {"Authorization": "Bearer x"}}, "set by the gateway"),
        ({"timeout": "31s"}, "at most 30s"),
        ({"give_up_after": "10s"}, "at least 1m"),
        ({"method": "GET"}, "a GET has no body"),
        ({"method": "TRACE"}, "method"),
    ],
)
def test_the_model_refuses(change: dict[str, Any], says: str) -> None:
    with pytest.raises(ValidationError, match=says):
        journey(**change)


def test_on_failure_is_required() -> None:
    raw = yaml.safe_load(JOURNEY.read_text())
    del raw["nodes"]["tell_crm"]["on_failure"]
    with pytest.raises(ValidationError, match="on_failure"):
        Journey.model_validate(raw)


# --------------------------------------------------------------------------- allow-list


ALLOW = ["https://crm.example.com/api/", "https://hooks.example.com/v1", "http://127.0.0.1:9000"]


@pytest.mark.parametrize(
    ("url", "allowed"),
    [
        ("https://crm.example.com/api/hooks/x", True),
        ("https://CRM.example.com/api/x?y=1", True),
        ("https://crm.example.com/api", True),
        ("https://crm.example.com/apix", False),
        ("https://crm.example.com/other", False),
        ("http://crm.example.com/api/x", False),  # scheme differs (and plain http)
        ("https://crm.example.com:8443/api/x", False),  # port differs
        ("https://evil.com/api/x", False),
        ("https://crm.example.com.evil.com/api/x", False),
        ("https://user:pw@crm.example.com/api/x", False),
        ("https://crm.example.com/api/../admin", False),
        ("https://crm.example.com/api/%2e%2e/admin", False),
        ("https://hooks.example.com/v1", True),
        ("https://hooks.example.com/v1/a", True),
        ("https://hooks.example.com/v10", False),
        ("http://127.0.0.1:9000/anything", True),
        ("http://127.0.0.1:9001/anything", False),
    ],
)
def test_allow_list(url: str, allowed: bool) -> None:
    assert (allowed_by(url, ALLOW) is not None) is allowed
    assert (refusal(url, ALLOW) is None) is allowed


def test_plain_http_only_to_loopback() -> None:
    assert url_problem("http://localhost:8080/x") is None
    assert "https" in (url_problem("http://crm.example.com/x") or "")


def test_save_paths() -> None:
    doc = {"a": {"b": [{"c": 1}, 2]}, "x-y": True}
    assert parse_path("$.a.b[0].c") == ["a", "b", 0, "c"]
    assert extract(doc, "$.a.b[0].c") == (True, 1)
    assert extract(doc, "$.a.b[1]") == (True, 2)
    assert extract(doc, "$.x-y") == (True, True)
    assert extract(doc, "$.a.b[5]") == (False, None)
    assert extract(doc, "$.a.z") == (False, None)
    assert extract(None, "$.a") == (False, None)
    for bad in ("a.b", "$", "$.a[*]", "$..a"):
        with pytest.raises(ValueError):
            parse_path(bad)


# --------------------------------------------------------------------------- the linter


def _lint(tmp_path: Path, **node: Any) -> list[str]:
    raw = yaml.safe_load(JOURNEY.read_text())
    raw["nodes"]["tell_crm"].update(node)
    path = tmp_path / "j.yaml"
    path.write_text(yaml.safe_dump(raw))
    return [p.message for p in lint_paths([path])]


def test_the_linter_accepts_the_fixture(tmp_path: Path) -> None:
    assert _lint(tmp_path) == []


@pytest.mark.parametrize(
    ("node", "says"),
    [
        ({"url": "https://evil.example.com/api/x"}, "outside the allow-list"),
        ({"url": "https://{{ event.host }}/api/x"}, "path or query"),
        ({"url": "https://crm.example.com/apix/{{ event.id }}"}, "outside the allow-list"),
        ({"body": '{"amount": {{ event.amount }}}'}, "doesn't render to JSON"),
        ({"body": {"a": "{{ event.x | nope }}"}}, "unknown filter"),
        ({"save": {"crm id": "$.id"}}, "not an attribute name"),
        ({"save": {"crm_id": "id"}}, "must start with $"),
        ({"on_failure": "nowhere"}, "on_failure 'nowhere' names no node"),
        ({"next": "chek"}, "did you mean 'check'"),
    ],
)
def test_the_linter_refuses(tmp_path: Path, node: dict[str, Any], says: str) -> None:
    problems = _lint(tmp_path, **node)
    assert any(says in p for p in problems), problems


def test_the_linter_wants_an_allow_list(tmp_path: Path) -> None:
    raw = yaml.safe_load(JOURNEY.read_text())
    del raw["settings"]
    path = tmp_path / "j.yaml"
    path.write_text(yaml.safe_dump(raw))
    assert any("need settings.webhooks.allow" in p.message for p in lint_paths([path]))


def test_a_templated_path_and_a_json_string_body_pass(tmp_path: Path) -> None:
    body = '{"amount": {{ event.amount | default: 0 }}, "id": "{{ entry.lead_id }}"}'
    url = "https://crm.example.com/api/leads/{{ entry.lead_id }}"
    assert _lint(tmp_path, url=url, body=body) == []


# --------------------------------------------------------------------------- the core


def test_entering_asks_the_gateway_and_waits() -> None:
    engine = Engine([journey()])
    state, effects = enter(engine, plan="pro")
    [req] = [e for e in effects if isinstance(e, WebhookRequest)]
    assert req.url == "https://crm.example.com/api/hooks/lead" and req.method == "POST"
    assert json.loads(req.body or "") == {"lead": "L1", "plan": "pro", "source": "journeys"}
    assert req.headers == {"X-Tenant": "acme"} and req.timeout_ms == 5000
    assert req.allow == ["https://crm.example.com/api/", "http://127.0.0.1"]
    [inst] = state.instances.values()
    assert inst.node == "tell_crm" and inst.wake_at == T0 + 3_600_000
    # the same input again (a replay on a fresh state) asks for the same call
    _, again = enter(Engine([journey()]), plan="pro")
    assert [e for e in again if isinstance(e, WebhookRequest)] == [req]


def test_a_2xx_goes_next_and_saves_into_the_profile_where_a_branch_reads_it() -> None:
    engine = Engine([journey()])
    state, effects = enter(engine)
    [req] = [e for e in effects if isinstance(e, WebhookRequest)]
    body = json.dumps({"id": "c-9", "account": {"tiers": ["gold", "x"]}})
    res = WebhookResult("u1", T0 + 500, req.action_id, "called", 201, None, body)
    _, effects = engine.advance(state, res, res.ts)
    [called] = outcomes(effects, "webhook_called")
    assert called.attributes == {"status": 201, "saved": ["crm_id", "crm_tier"]}
    assert state.attrs == {"crm_id": "c-9", "crm_tier": "gold"}
    [exited] = outcomes(effects, "journey_exited")
    assert exited.attributes["reason"] == "gold" and not state.instances
    # a repeat of the result changes nothing
    _, effects = engine.advance(state, res, res.ts + 1)
    assert not [e for e in effects if isinstance(e, Outcome)]


def test_a_failure_goes_on_failure() -> None:
    engine = Engine([journey()])
    state, effects = enter(engine)
    [req] = [e for e in effects if isinstance(e, WebhookRequest)]
    res = WebhookResult("u1", T0 + 500, req.action_id, "failed", 422, "rejected:422", "{}")
    _, effects = engine.advance(state, res, res.ts)
    [failed] = outcomes(effects, "webhook_failed")
    assert failed.attributes == {"status": 422, "reason": "rejected:422"}
    assert outcomes(effects, "journey_exited")[0].attributes["reason"] == "crm_failed"
    assert state.attrs == {}


def test_no_result_in_give_up_after_goes_on_failure_and_a_late_one_is_ignored() -> None:
    engine = Engine([journey(give_up_after="10m")])
    state, effects = enter(engine)
    [req] = [e for e in effects if isinstance(e, WebhookRequest)]
    _, effects = engine.advance(state, Wake("u1", T0 + 600_000), T0 + 600_000)
    [failed] = outcomes(effects, "webhook_failed")
    assert failed.attributes == {"status": None, "reason": "no_receipt"}
    assert not state.instances
    late = WebhookResult("u1", T0 + 700_000, req.action_id, "called", 200, None, '{"id": "x"}')
    _, effects = engine.advance(state, late, late.ts)
    assert not [e for e in effects if isinstance(e, Outcome)] and state.attrs == {}


@pytest.mark.parametrize(
    ("node", "reason"),
    [
        ({"url": "https://crm.example.com/api/{{ event.path }}"}, "url_not_allowed"),
        ({"body": '{"a": {{ event.nope }}}'}, "invalid_json"),
        ({"body": {"a": "{{ 1 | divided_by: 0 }}"}}, "template"),
    ],
)
def test_a_call_that_cant_be_made_goes_on_failure_at_once(
    node: dict[str, Any], reason: str
) -> None:
    engine = Engine([journey(**node)])
    state, effects = enter(engine, path="../admin")
    assert not [e for e in effects if isinstance(e, WebhookRequest)]
    [failed] = outcomes(effects, "webhook_failed")
    assert failed.attributes["reason"] == reason
    assert not state.instances


def test_the_state_survives_the_wire_while_waiting() -> None:
    engine = Engine([journey()])
    state, effects = enter(engine)
    [req] = [e for e in effects if isinstance(e, WebhookRequest)]
    again = wire.state_from_record(wire.state_record(0, state))[1]
    res = WebhookResult("u1", T0 + 1, req.action_id, "called", 200, None, None)
    _, effects = engine.advance(again, res, res.ts)
    assert outcomes(effects, "webhook_called")


def test_wire_records_come_back() -> None:
    engine = Engine([journey()])
    _, effects = enter(engine)
    [req] = [e for e in effects if isinstance(e, WebhookRequest)]
    assert wire.decode_gateway_request(wire.webhook_request_value(req)) == req
    res = WebhookResult("u1", T0, req.action_id, "failed", 503, "unavailable:503", "x" * 5000)
    back = wire.receipt(wire.loads(wire.input_value(res)))
    assert isinstance(back, WebhookResult) and back.body == "x" * 4096
    assert back == WebhookResult(
        "u1", T0, req.action_id, "failed", 503, "unavailable:503", back.body
    )


# --------------------------------------------------------------------------- the simulator


def test_the_simulator_routes_on_scripted_answers() -> None:
    result = webhook_tour()
    by_user = {o.user_id: o for o in result.outcomes if o.type == "journey_exited"}
    assert {u: o.attributes["reason"] for u, o in by_user.items()} == {
        "gold-1": "gold",
        "plain-1": "synced",
        "bad-1": "crm_failed",
        "down-1": "crm_failed",
    }
    failed = {o.user_id: o.attributes for o in result.outcomes if o.type == "webhook_failed"}
    assert failed == {
        "bad-1": {"status": 404, "reason": "rejected:404"},
        "down-1": {"status": 503, "reason": "unavailable:503"},
    }
    assert result.states["gold-1"].attrs == {"crm_id": "crm-gold-1", "crm_tier": "gold"}


def test_the_simulator_answers_200_empty_by_default() -> None:
    from engine.sim.simulator import Simulator

    result = Simulator([journey()]).run(
        [UserEvent("e1", "u1", "lead_qualified", T0, {"lead_id": "L1"})]
    )
    [called] = [o for o in result.outcomes if o.type == "webhook_called"]
    assert called.attributes == {"status": 200, "saved": [], "missing": ["crm_id", "crm_tier"]}


def test_a_webhook_node_type_is_drawn() -> None:
    from engine.journey.diagram import diagram

    d = diagram(journey())
    [node] = [n for n in d.nodes if n.id == "tell_crm"]
    assert node.kind == "webhook"
    assert any("POST https://crm.example.com" in f for f in node.facts)
    assert isinstance(journey().nodes["tell_crm"], WebhookNode)


def test_stats_and_the_dashboard_count_the_node() -> None:
    from engine.stats.aggregate import Aggregator
    from engine.stats.dashboard import graph_counts

    agg = Aggregator()
    agg.add_all(o.to_wire() for o in webhook_tour().outcomes)
    [report] = agg.to_json([journey()])
    row = report["nodes"]["tell_crm"]
    assert (row["type"], row["entered"]) == ("webhook", 4)
    assert (row["webhook_called"], row["webhook_failed"]) == (2, 2)
    assert row["webhook_failed_reasons"] == {"rejected:404": 1, "unavailable:503": 1}
    board = {"summary": {"entered": 4, "converted": 0}, "nodes": report["nodes"], "splits": {}}
    counts = graph_counts(journey(), board)["tell_crm"]
    assert counts == {"entered": 4, "called": 2, "failed": 2}
