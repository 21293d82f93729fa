"""Keyword classification is part of handling ``Inbound`` in the core: an adapter hands
over the text as it came, and the core decides whether it is STOP / START / HELP."""

from __future__ import annotations

import pytest
import yaml

from engine.core import Engine, Inbound, Outcome, SendRequest, UserEvent, UserState
from engine.core.effects import Effect
from engine.durations import parse_ts_ms
from engine.journey.model import Journey

T0 = parse_ts_ms("2026-01-05T12:00:00Z")
PHONE = "+14155550123"
JOURNEY = Journey.model_validate(
    yaml.safe_load(
        """
id: j
version: 1
entry: {event: go}
start: s
nodes:
  s: {type: send, channel: sms, text: "Shall we?", next: w}
  w:
    type: wait_for
    paths: [{reply: "*", next: done}]
    timeout: 1d
    on_timeout: done
  done: {type: exit}
"""
    )
)


def entered() -> tuple[Engine, UserState]:
    engine = Engine([JOURNEY])
    state, _ = engine.advance(
        engine.new_state("u"), UserEvent("e1", "u", "go", T0, {}, {"phone": PHONE}), T0
    )
    return engine, state


def types(effects: list[Effect]) -> list[str]:
    return [e.type for e in effects if isinstance(e, Outcome)]


@pytest.mark.parametrize("text", ["STOP", "stop", "  opt   out ", "ＳＴＯＰ", "Unsubscribe"])
def test_opt_out_words_are_classified_by_the_core(text: str) -> None:
    engine, state = entered()
    _, effects = engine.advance(state, Inbound("u", T0 + 1, text=text), T0 + 1)
    assert types(effects) == ["user_opted_out"]
    assert state.opted_out


def test_start_after_stop_opts_back_in() -> None:
    engine, state = entered()
    engine.advance(state, Inbound("u", T0 + 1, text="stop"), T0 + 1)
    _, effects = engine.advance(state, Inbound("u", T0 + 2, text="Start"), T0 + 2)
    assert types(effects) == ["user_opted_in"]
    assert not state.opted_out


def test_help_is_answered() -> None:
    engine, state = entered()
    _, effects = engine.advance(state, Inbound("u", T0 + 1, text="help"), T0 + 1)
    assert types(effects) == ["help_requested", "message_sent"]
    (sms,) = [e for e in effects if isinstance(e, SendRequest)]
    assert sms.purpose == "help"


@pytest.mark.parametrize("text", ["stop it", "Please STOP", "STOP.", "yes"])
def test_other_text_is_a_reply(text: str) -> None:
    """Not whole-message keywords, and "yes" from a user who never opted out."""
    engine, state = entered()
    _, effects = engine.advance(state, Inbound("u", T0 + 1, text=text), T0 + 1)
    assert types(effects)[:1] == ["message_replied"]
    assert "journey_exited" in types(effects)  # the reply took the wait_for path
    assert not state.opted_out


def test_a_keyword_set_by_the_adapter_is_kept() -> None:
    engine, state = entered()
    inb = Inbound("u", T0 + 1, text="arrêtez", keyword="opt_out")
    _, effects = engine.advance(state, inb, T0 + 1)
    assert types(effects) == ["user_opted_out"]


def test_a_tap_is_not_classified() -> None:
    engine, state = entered()
    _, effects = engine.advance(state, Inbound("u", T0 + 1, postback="STOP"), T0 + 1)
    assert types(effects)[:1] == ["message_clicked"]
    assert not state.opted_out
