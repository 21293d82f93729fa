"""Receipt and inbound handling return what the user did (a ``UserAction``); the engine
routes it to the ``wait_for`` path it answers (engine/core/paths.py)."""

from __future__ import annotations

import pytest
import yaml

from engine.core import Engine, Inbound, Outcome, Receipt, UserAction, UserEvent, UserState
from engine.core.context import Step
from engine.core.fallback import handle_receipt
from engine.core.inbound import handle_inbound
from engine.core.paths import route
from engine.core.user_actions import UserActionKind
from engine.durations import parse_ts_ms
from engine.journey.model import Journey

T0 = parse_ts_ms("2026-01-05T12:00:00Z")
JOURNEY = Journey.model_validate(
    yaml.safe_load(
        """
id: j
version: 1
entry: {event: go}
start: ask
nodes:
  ask:
    type: send
    channel: rcs
    text: "Still interested?"
    suggestions:
      - reply: {text: "Yes", postback: "yes"}
    next: info
  info: {type: send, channel: sms, text: "FYI", next: w}
  w:
    type: wait_for
    paths:
      - {read: ask, next: was_read}
      - {click: "yes", of: ask, next: tapped}
      - {reply: "*", of: info, next: replied}
    timeout: 1d
    on_timeout: timeout
  was_read: {type: exit, reason: was_read}
  tapped: {type: exit, reason: tapped}
  replied: {type: exit, reason: replied}
  timeout: {type: exit, reason: timeout}
"""
    )
)


def entered() -> tuple[Engine, UserState, str, str]:
    engine = Engine([JOURNEY])
    ev = UserEvent("e1", "u", "go", T0, {}, {"phone": "+14155550123"})
    state, _ = engine.advance(engine.new_state("u"), ev, T0)
    by_node = {m.node: m.id for m in state.messages.values()}
    return engine, state, by_node["ask"], by_node["info"]


def step(engine: Engine, state: UserState, now: int) -> Step:
    return Step(engine.catalog, engine.config, state, now)


def exit_reason(effects: list[object]) -> str | None:
    exits = [e for e in effects if isinstance(e, Outcome) and e.type == "journey_exited"]
    return exits[0].attributes["reason"] if exits else None


def test_a_read_receipt_returns_a_read() -> None:
    engine, state, ask, _ = entered()
    s = step(engine, state, T0 + 1)
    action = handle_receipt(s, Receipt("u", T0 + 1, "read", ask))
    assert action == UserAction("read", state.messages[ask])
    assert state.instances  # handling only reports: the run has not moved
    assert [e.type for e in s.effects if isinstance(e, Outcome)] == [
        "message_delivered",
        "message_read",
    ]


def test_a_delivery_is_not_something_the_user_did() -> None:
    engine, state, ask, _ = entered()
    delivered = Receipt("u", T0 + 1, "delivered", ask)
    assert handle_receipt(step(engine, state, T0 + 1), delivered) is None


def test_a_tap_and_a_reply_are_returned_with_their_value() -> None:
    engine, state, ask, info = entered()
    s = step(engine, state, T0 + 1)
    tap = handle_inbound(s, Inbound("u", T0 + 1, postback="yes"))
    assert tap == UserAction("click", state.messages[ask], "yes")
    reply = handle_inbound(s, Inbound("u", T0 + 1, text="sure"))
    assert reply == UserAction("reply", state.messages[info], "sure")
    assert handle_inbound(s, Inbound("u", T0 + 1, text="STOP")) is None  # a keyword


@pytest.mark.parametrize(
    ("kind", "node", "value", "want"),
    [
        ("read", "ask", None, "was_read"),
        ("click", "ask", "yes", "tapped"),
        ("reply", "info", "ok", "replied"),
    ],
)
def test_route_takes_the_path_the_action_answers(
    kind: UserActionKind, node: str, value: str | None, want: str
) -> None:
    engine, state, ask, info = entered()
    s = step(engine, state, T0 + 1)
    route(s, UserAction(kind, state.messages[{"ask": ask, "info": info}[node]], value))
    assert exit_reason(list(s.effects)) == want


def test_route_ignores_an_action_no_path_answers() -> None:
    engine, state, ask, info = entered()
    s = step(engine, state, T0 + 1)
    route(s, UserAction("read", state.messages[info]))  # the path wants a read of "ask"
    route(s, UserAction("click", state.messages[ask], "no"))
    assert s.effects == []
    assert [i.node for i in state.instances.values()] == ["w"]


def test_the_engine_routes_what_handling_returned() -> None:
    engine, state, ask, _ = entered()
    _, effects = engine.advance(state, Receipt("u", T0 + 1, "read", ask), T0 + 1)
    assert exit_reason(list(effects)) == "was_read"
