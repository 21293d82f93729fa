"""Support for the core property tests: random journeys (DAGs whose waits all end), random
scripts of inputs, and a driver that feeds them to :meth:`Engine.advance` and records
every step.

A script is abstract ("a delivered receipt for the 3rd message this user got, 10 minutes
later"), so the same script means the same thing on every run; the driver turns it into
concrete inputs from what the engine has sent so far.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any
from zoneinfo import ZoneInfo

import orjson
from hypothesis import strategies as st

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
from engine.core.inputs import RECEIPT_STATUSES
from engine.core.keywords import classify_keyword
from engine.core.localtime import zone
from engine.durations import parse_ts_ms
from engine.journey.model import Journey, SendNode, successors

SEC = 1000


def examples(n: int) -> int:
    """``n`` hypothesis examples, times ``PROP_SCALE`` (default 1) for a deeper run:
    ``PROP_SCALE=20 .venv/bin/python -m pytest tests/property``."""
    return n * max(1, int(os.environ.get("PROP_SCALE", "1")))


MIN = 60 * SEC
HOUR = 60 * MIN
DAY = 24 * HOUR

# Around the 2026 DST changes of the zones below, and one quiet day.
BASES = [
    parse_ts_ms(t)
    for t in (
        "2026-03-07T20:00:00Z",  # US spring forward 2026-03-08
        "2026-03-28T20:00:00Z",  # EU spring forward 2026-03-29
        "2026-04-04T10:00:00Z",  # Lord Howe falls back 30 min 2026-04-05
        "2026-10-03T10:00:00Z",  # Lord Howe springs forward 2026-10-04
        "2026-10-24T20:00:00Z",  # EU fall back 2026-10-25
        "2026-10-31T20:00:00Z",  # US fall back 2026-11-01
        "2026-01-05T12:00:00Z",
    )
]
ZONES = [
    "America/New_York",
    "Europe/London",
    "Australia/Lord_Howe",
    "Asia/Kolkata",
    "UTC",
    None,  # no timezone: the journey's default
]
PHONE = "+14155550123"
EVENTS = ["go", "go2", "ping", "cancel", "buy", "nobody"]
DTS = [0, 1, SEC, 30 * SEC, 5 * MIN, 10 * MIN + 1, 61 * MIN, 3 * HOUR, 7 * HOUR, DAY]
WEEKDAYS = ["mon", "tue", "wed", "thu", "fri", "sat", "sun"]
HHMM = st.builds(
    lambda h, m: f"{h:02d}:{m:02d}", st.integers(0, 23), st.sampled_from([0, 15, 30, 45, 59])
)


# ----------------------------------------------------------------------------- journeys

NODE_KINDS = [
    *("sms", "rcs", "rcs", "wait", "until", "prop"),
    *("wait_for", "wait_for", "branch", "split", "exit"),
]


# Realistic windows mostly (hypothesis favours small numbers, which would make most
# windows start at midnight), any window now and then.
QUIET_FROM = st.one_of(st.sampled_from(["21:00", "20:00", "22:30", "17:45", "12:00"]), HHMM)
QUIET_TO = st.one_of(st.sampled_from(["08:00", "07:00", "01:30", "06:59", "23:59"]), HHMM)
ALL_DAYS = list(WEEKDAYS)


@st.composite
def quiet_hours(draw: st.DrawFn, action: str | None = None) -> dict[str, Any]:
    start = draw(QUIET_FROM)
    end = draw(QUIET_TO.filter(lambda e: e != start))
    days = draw(
        st.one_of(
            st.just(ALL_DAYS),
            st.lists(st.sampled_from(WEEKDAYS), min_size=1, max_size=7, unique=True),
        )
    )
    return {
        "from": start,
        "to": end,
        "action": action or draw(st.sampled_from(["defer", "skip"])),
        "days": days,
    }


@st.composite
def journeys(
    draw: st.DrawFn,
    jid: str = "j",
    entry_event: str = "go",
    *,
    settings: dict[str, Any] | None = None,
    max_nodes: int = 7,
) -> Journey:
    """A random journey whose graph is a DAG ending in ``end`` and whose every wait has an
    end (durations, local times, properties, wait_for timeouts): every run finishes."""
    n = draw(st.integers(1, max_nodes))
    ids = [f"n{i}" for i in range(n)] + ["end"]
    nodes: dict[str, Any] = {}
    sends_before: list[str] = []
    for i in range(n):
        later = st.sampled_from(ids[i + 1 :])
        kind = draw(st.sampled_from(NODE_KINDS))
        node: dict[str, Any]
        nid = ids[i]
        if kind == "sms":
            node = {"type": "send", "channel": "sms", "text": f"{nid} {{{{ event.x }}}}"}
        elif kind == "rcs":
            node = {
                "type": "send",
                "channel": "rcs",
                "suggestions": [
                    {"reply": {"text": "A", "postback": "a"}},
                    {"reply": {"text": "B", "postback": "b"}},
                ],
            }
            if draw(st.booleans()):
                node["text"] = f"{nid} {{{{ entry.x }}}}"
            else:
                node["rich_card"] = {"title": f"{nid} card", "description": "{{ user.tier }}"}
            fb = draw(st.sampled_from([None, "1m", "10m", "1h"]))
            if fb is not None:
                node["fallback"] = {"after": fb}
                if draw(st.booleans()):
                    node["fallback"]["sms"] = f"{nid} sms"
        elif kind == "wait":
            node = {"type": "wait", "duration": draw(st.sampled_from(["30s", "10m", "1h", "1d"]))}
        elif kind == "until":
            node = {
                "type": "wait",
                "until": {
                    "time": draw(HHMM),
                    "days": draw(
                        st.lists(st.sampled_from(WEEKDAYS), min_size=1, max_size=7, unique=True)
                    ),
                },
            }
        elif kind == "prop":
            node = {
                "type": "wait",
                "until_property": "user.renew",
                "offset": draw(st.sampled_from(["-1d", "-1h", "0s", "2h"])),
            }
        elif kind == "wait_for":
            paths: list[dict[str, Any]] = []
            for _ in range(draw(st.integers(1, 3))):
                pk = draw(st.sampled_from(["event", "event_when", "reply", "click", "read"]))
                p: dict[str, Any]
                if pk == "event":
                    p = {"event": "ping"}
                elif pk == "event_when":
                    p = {"event": "ping", "when": "event.x > 5"}
                elif pk == "reply":
                    p = {"reply": draw(st.sampled_from(["a", "*", "hello"]))}
                elif pk == "click":
                    p = {"click": draw(st.sampled_from(["a", "b", "*"]))}
                else:
                    if not sends_before:
                        continue
                    p = {"read": draw(st.sampled_from(sends_before))}
                if pk in ("reply", "click") and sends_before and draw(st.booleans()):
                    p["of"] = draw(st.sampled_from(sends_before))
                p["next"] = draw(later)
                paths.append(p)
            if not paths:
                paths = [{"event": "ping", "next": draw(later)}]
            node = {
                "type": "wait_for",
                "paths": paths,
                "timeout": draw(st.sampled_from(["1m", "30m", "1d"])),
            }
            if draw(st.booleans()):
                node["on_timeout"] = draw(later)
        elif kind == "branch":
            node = {
                "type": "branch",
                "cases": [{"when": "event.x > 5", "next": draw(later)}],
                "default": draw(later),
            }
        elif kind == "split":
            k = draw(st.integers(2, 3))
            node = {
                "type": "split",
                "variants": [
                    {"name": f"v{v}", "weight": draw(st.integers(0, 5)) + 1, "next": draw(later)}
                    for v in range(k)
                ],
            }
        else:
            node = {"type": "exit", "reason": f"out_{nid}"}
        if node["type"] in ("send", "wait"):
            node["next"] = draw(later)
        if node["type"] == "send":
            node["marketing"] = draw(st.booleans())
            sends_before.append(nid)
        nodes[nid] = node
    nodes["end"] = {"type": "exit"}
    entry: dict[str, Any] = {
        "event": entry_event,
        "reentry": draw(st.sampled_from(["never", "after_exit", "always"])),
    }
    if draw(st.booleans()):
        entry["cooldown"] = draw(st.sampled_from(["1m", "1h"]))
    data: dict[str, Any] = {
        "id": jid,
        "version": 1,
        "entry": entry,
        "start": "n0",
        "nodes": nodes,
        "settings": dict(settings or {}),
    }
    if draw(st.booleans()):
        data["exit_on"] = ["cancel"]
    if draw(st.booleans()):
        data["goal"] = {"event": "buy", "within": "1d", "exit": draw(st.booleans())}
    data["settings"].setdefault("default_timezone", draw(st.sampled_from(["UTC", "Asia/Tokyo"])))
    return Journey.model_validate(data)


# ----------------------------------------------------------------------------- scripts


@st.composite
def profiles(draw: st.DrawFn, *, phone: bool | None = None) -> dict[str, Any]:
    p: dict[str, Any] = {"x": draw(st.integers(0, 10))}
    if phone is None:
        phone = draw(st.integers(0, 9)) > 0
    if phone:
        p["phone"] = PHONE
    tz = draw(st.sampled_from(ZONES))
    if tz is not None:
        p["timezone"] = tz
    if draw(st.booleans()):
        p["rcs_capable"] = False
    if draw(st.booleans()):
        p["renew"] = draw(st.sampled_from(["2026-03-09T10:00:00Z", "2026-11-02", "bad", 0]))
    if draw(st.booleans()):
        p["tier"] = "gold"
    return p


DT = st.sampled_from(DTS)
OFFSETS = [h * HOUR for h in (0, 3, 7, 11, 13, 17, 21, 29, 35)]
MINUTES = st.integers(0, 59).map(lambda m: m * MIN)
USER = st.integers(0, 2)
ACTION = st.one_of(
    st.tuples(
        st.just("event"), USER, st.sampled_from(EVENTS), DT, st.integers(0, 10), st.booleans()
    ),
    st.tuples(st.just("receipt"), USER, st.sampled_from(RECEIPT_STATUSES), st.integers(0, 9), DT),
    st.tuples(
        st.just("inbound"),
        USER,
        st.sampled_from(["a", "b", "zz", "hello", "STOP", "START", "HELP"]),
        DT,
    ),
    st.tuples(st.just("timer"), USER),
    st.tuples(st.just("wake"), USER, DT),
)


@dataclass
class Script:
    base: int
    users: list[dict[str, Any]]
    actions: list[tuple[Any, ...]]


@st.composite
def scripts(
    draw: st.DrawFn,
    *,
    entry_events: tuple[str, ...] = ("go",),
    max_actions: int = 30,
    action: st.SearchStrategy[tuple[Any, ...]] = ACTION,
    phone: bool | None = None,
) -> Script:
    base = draw(st.sampled_from(BASES)) + draw(st.sampled_from(OFFSETS)) + draw(MINUTES)
    users = draw(st.lists(profiles(phone=phone), min_size=1, max_size=3))
    # Every user enters first, then anything goes.
    first: list[tuple[Any, ...]] = [
        ("event", i, draw(st.sampled_from(entry_events)), 0, 0, False) for i in range(len(users))
    ]
    more = draw(st.lists(action, min_size=min(4, max_actions), max_size=max_actions))
    return Script(base, users, first + more)


# ----------------------------------------------------------------------------- driver


@dataclass
class StepRecord:
    index: int
    inp: Input
    now: int
    effects: list[Effect]


@dataclass
class World:
    journeys: list[Journey]
    config: EngineConfig | None = None
    roundtrip: bool = False  # serialize every state before each step
    on_step: Callable[[World, StepRecord], None] | None = None  # checks, after every step
    # Fire due timers in a step of their own before each receipt (as a punctual timer
    # service would): the core does the same inside one step, this only splits the record.
    punctual: bool = False
    engine: Engine = field(init=False)
    states: dict[str, UserState] = field(default_factory=dict)
    steps: list[StepRecord] = field(default_factory=list)
    sent: dict[str, list[SendRequest]] = field(default_factory=dict)
    now: int = 0
    _events: int = 0

    def __post_init__(self) -> None:
        self.engine = Engine(self.journeys, self.config)

    def state(self, user: str) -> UserState:
        if user not in self.states:
            self.states[user] = self.engine.new_state(user)
        elif self.roundtrip:
            wire = orjson.loads(orjson.dumps(self.states[user].to_wire()))
            self.states[user] = UserState.from_wire(wire)
        return self.states[user]

    def feed(self, inp: Input, now: int) -> list[Effect]:
        state, effects = self.engine.advance(self.state(inp.user_id), inp, now)
        self.states[inp.user_id] = state
        self.steps.append(StepRecord(len(self.steps), inp, now, effects))
        for e in effects:
            if isinstance(e, SendRequest):
                self.sent.setdefault(e.user_id, []).append(e)
        if self.on_step is not None:
            self.on_step(self, self.steps[-1])
        return effects

    def play(self, script: Script) -> None:
        self.now = script.base
        names = [f"u{i}" for i in range(len(script.users))]
        for act in script.actions:
            kind, ui = act[0], act[1] % len(names)
            user = names[ui]
            if kind == "event":
                _, _, name, dt, x, late = act
                self.now += dt
                self._events += 1
                ts = self.now - HOUR if late else self.now
                props = {"x": x}
                # the same event id now and then: a producer retry
                eid = f"ev{self._events // 2 if x == 7 else self._events}"
                self.feed(UserEvent(eid, user, name, ts, props, script.users[ui]), self.now)
            elif kind == "receipt":
                _, _, status, k, dt = act
                mine = self.sent.get(user, [])
                if not mine:
                    continue
                self.now += dt
                msg = mine[k % len(mine)]
                if self.punctual:
                    self.feed(Wake(user, self.now), self.now)
                self.feed(Receipt(user, self.now, status, msg.message_id), self.now)
            elif kind == "inbound":
                _, _, text, dt = act
                self.now += dt
                if text in ("a", "b", "zz"):
                    inp = Inbound(user, self.now, postback=text)
                else:
                    inp = Inbound(user, self.now, text=text, keyword=classify_keyword(text))
                self.feed(inp, self.now)
            elif kind == "timer":
                at = self.state(user).wake_at
                if at is not None:
                    self.now = max(self.now, at)
                    self.feed(Wake(user, at), self.now)
            else:
                _, _, dt = act
                self.now += dt
                self.feed(Wake(user, self.now), self.now)

    def drain(self, limit: int = 2000) -> None:
        """Fire every user's timers, in time order, until none is left."""
        for _ in range(limit):
            due = [(s.wake_at, u) for u, s in self.states.items() if s.wake_at is not None]
            if not due:
                return
            at, user = min(due)
            self.now = max(self.now, at)
            self.feed(Wake(user, at), self.now)
        raise AssertionError(f"timers still pending after {limit} wake-ups")

    # -------------------------------------------------------------- views

    def effects(self) -> list[Effect]:
        return [e for s in self.steps for e in s.effects]

    def outcomes(self, *types: str) -> list[Outcome]:
        return [
            e for e in self.effects() if isinstance(e, Outcome) and (not types or e.type in types)
        ]

    def journey_of(self, jid: str, version: int) -> Journey:
        return self.engine.versions[jid][version]

    def wire(self) -> bytes:
        """Every effect, serialized: what must be byte-identical across runs."""
        out: list[Any] = []
        for s in self.steps:
            for e in s.effects:
                if isinstance(e, Outcome | SendRequest):
                    out.append(e.to_wire())
                elif isinstance(e, Revoke):
                    out.append(["revoke", e.message_id, e.user_id, e.ts])
                elif isinstance(e, ScheduleWake):
                    out.append(["wake", e.user_id, e.at, e.token])
        return orjson.dumps(out)


# ----------------------------------------------------------------------------- checks


def local_in_window(ts: int, tz: ZoneInfo, qh: dict[str, Any] | Any) -> bool:
    """Is the wall clock at ``ts`` inside the quiet window (independent of the core)?"""
    if not isinstance(qh, dict):
        qh = {"from": qh.from_, "to": qh.to, "days": list(qh.days)}
    local = datetime.fromtimestamp(ts / 1000, UTC).astimezone(tz)
    minute = local.hour * 60 + local.minute
    h1, m1 = map(int, qh["from"].split(":"))
    h2, m2 = map(int, qh["to"].split(":"))
    start, end = h1 * 60 + m1, h2 * 60 + m2
    days = {WEEKDAYS.index(d) for d in qh["days"]}
    wd = local.weekday()
    if end <= start:
        return (minute >= start and wd in days) or (minute < end and (wd - 1) % 7 in days)
    return start <= minute < end and wd in days


def assert_no_send_in_quiet_hours(w: World, script: Script) -> int:
    """Every marketing send (fallback SMS included) of a journey with quiet hours went out
    outside the window, in the user's local time. Returns how many sends were checked."""
    checked = 0
    for user, reqs in w.sent.items():
        profile = script.users[int(user[1:])]
        for req in reqs:
            if req.journey_id is None:
                continue  # HELP answers are not marketing
            journey = w.journey_of(req.journey_id, req.journey_version or 0)
            qh = journey.settings.quiet_hours
            if qh is None or not is_marketing(journey, req.node_id):
                continue
            tz = zone(profile.get("timezone"), journey.settings.default_timezone)
            assert not local_in_window(req.ts, tz, qh), (req.node_id, req.ts, req.purpose)
            checked += 1
    return checked


def is_marketing(journey: Journey, node_id: str | None) -> bool:
    node = journey.nodes.get(node_id or "")
    return isinstance(node, SendNode) and node.marketing


def edges(journey: Journey) -> dict[str, set[str]]:
    return {nid: {t for _, t in successors(node)} for nid, node in journey.nodes.items()}
