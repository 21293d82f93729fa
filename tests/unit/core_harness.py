"""The harness of the core unit tests (``test_core_*.py``): build journeys, feed inputs to
:meth:`Engine.advance` for a few users, and pick outcomes out of the effects.

No broker, no simulator: every input goes straight to the pure core, at the time the
test says.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

import yaml

from engine.core import (
    Effect,
    Engine,
    EngineConfig,
    Inbound,
    Input,
    Outcome,
    Receipt,
    Revoke,
    ScheduleWake,
    SendRequest,
    UserEvent,
    UserState,
    Wake,
)
from engine.core.inputs import Keyword, ReceiptStatus
from engine.durations import format_ts, parse_ts_ms
from engine.journey.model import Journey

PHONE = "+14155550123"
NY = "America/New_York"
MIN = 60_000
HOUR = 60 * MIN
DAY = 24 * HOUR


def ts(text: str) -> int:
    return parse_ts_ms(text)


T0 = ts("2026-01-05T12:00:00Z")  # a Monday, 07:00 in New York


def journey(text: str) -> Journey:
    return Journey.model_validate(yaml.safe_load(text))


def outcomes(effects: Iterable[Effect], *types: str) -> list[Outcome]:
    return [e for e in effects if isinstance(e, Outcome) and (not types or e.type in types)]


def types(effects: Iterable[Effect]) -> list[str]:
    return [e.type for e in effects if isinstance(e, Outcome)]


def sends(effects: Iterable[Effect]) -> list[SendRequest]:
    return [e for e in effects if isinstance(e, SendRequest)]


def revokes(effects: Iterable[Effect]) -> list[Revoke]:
    return [e for e in effects if isinstance(e, Revoke)]


def wakes(effects: Iterable[Effect]) -> list[ScheduleWake]:
    return [e for e in effects if isinstance(e, ScheduleWake)]


class Harness:
    """Feeds inputs to one engine and keeps every user's state and all effects."""

    def __init__(self, *journeys: Journey, config: EngineConfig | None = None) -> None:
        self.engine = Engine(journeys, config)
        self.states: dict[str, UserState] = {}
        self.effects: list[Effect] = []
        self._seq = 0

    def state(self, user: str = "u") -> UserState:
        if user not in self.states:
            self.states[user] = self.engine.new_state(user)
        return self.states[user]

    def feed(self, inp: Input, now: int | None = None) -> list[Effect]:
        _, eff = self.engine.advance(self.state(inp.user_id), inp, inp.ts if now is None else now)
        self.effects.extend(eff)
        return eff

    def event(
        self,
        name: str,
        at: int,
        user: str = "u",
        props: dict[str, Any] | None = None,
        profile: dict[str, Any] | None = None,
        event_id: str | None = None,
        now: int | None = None,
    ) -> list[Effect]:
        self._seq += 1
        eid = event_id if event_id is not None else f"e{self._seq}"
        return self.feed(UserEvent(eid, user, name, at, props or {}, profile), now)

    def enter(
        self,
        at: int = T0,
        user: str = "u",
        name: str = "go",
        props: dict[str, Any] | None = None,
        **profile: Any,
    ) -> list[Effect]:
        """The entry event, with a phone number unless the profile says otherwise."""
        prof = {"phone": PHONE, **profile}
        return self.event(name, at, user, props, prof)

    def receipt(
        self, status: ReceiptStatus, at: int, message_id: str, user: str = "u"
    ) -> list[Effect]:
        return self.feed(Receipt(user, at, status, message_id))

    def inbound(
        self,
        at: int,
        user: str = "u",
        *,
        text: str | None = None,
        postback: str | None = None,
        keyword: Keyword | None = None,
        message_id: str | None = None,
    ) -> list[Effect]:
        return self.feed(Inbound(user, at, postback, text, message_id, keyword))

    def wake(self, at: int, user: str = "u") -> list[Effect]:
        return self.feed(Wake(user, at))

    def run_until(self, at: int, user: str = "u") -> list[Effect]:
        """Fire the user's timers, one wake-up at a time, up to ``at``."""
        out: list[Effect] = []
        st = self.state(user)
        while st.wake_at is not None and st.wake_at <= at:
            out.extend(self.wake(st.wake_at, user))
        return out

    def outcomes(self, *kinds: str) -> list[Outcome]:
        return outcomes(self.effects, *kinds)

    def sends(self) -> list[SendRequest]:
        return sends(self.effects)


def when(o: Outcome | SendRequest) -> str:
    return format_ts(o.ts)


def test_harness_runs_a_minimal_journey() -> None:
    h = Harness(
        journey(
            """
id: j
version: 1
entry: {event: go}
start: s
nodes:
  s: {type: send, channel: sms, text: hi, next: done}
  done: {type: exit}
"""
        )
    )
    eff = h.enter()
    assert types(eff) == [
        "journey_entered",
        "node_entered",
        "message_sent",
        "node_entered",
        "journey_exited",
    ]
    assert [s.to for s in sends(eff)] == [PHONE]
    assert when(sends(eff)[0]) == "2026-01-05T12:00:00Z"
