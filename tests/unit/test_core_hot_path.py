"""The core's hot-path shortcuts give exactly what the plain code gave.

Ids are hashed from one f-string instead of ``derive_id(*parts)``, frozen records get a
descriptor-based ``__init__``, ``format_ts`` remembers its last answer and
``next_timer`` is a loop: each must be invisible from outside (the golden files check
the ids end to end; these check the pieces, with values the goldens never have).
"""

from __future__ import annotations

import dataclasses
import uuid
from dataclasses import dataclass, field
from hashlib import blake2b
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from engine.core.context import Step
from engine.core.effects import Outcome, ScheduleWake, SendRequest
from engine.core.engine import Engine
from engine.core.fastinit import fast_init
from engine.core.ids import derive_id, derive_uuid, id_of_text, wake_token
from engine.core.inputs import Receipt, UserEvent
from engine.core.state import Instance, Message, UserState
from engine.durations import MAX_INSTANT_MS, MIN_INSTANT_MS, format_ts

part = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(),
    st.text(max_size=20),
    st.floats(allow_nan=False),
)


@given(st.lists(part, max_size=9))
def test_id_of_text_is_derive_id_of_the_parts(parts: list[Any]) -> None:
    text = "\x1f".join(f"{p}" for p in parts)
    assert id_of_text(text) == derive_id(*parts)


@given(st.text(max_size=30), st.one_of(st.none(), st.integers()))
def test_wake_token_is_the_derived_id(user_id: str, at: int | None) -> None:
    assert wake_token(user_id, at) == derive_id("wake", user_id, at)


@given(
    st.text(min_size=1, max_size=12),
    st.text(min_size=1, max_size=12),
    st.one_of(st.none(), st.text(max_size=8)),
    st.one_of(st.none(), st.integers(0, 9)),
    st.one_of(st.none(), st.text(max_size=8)),
    st.one_of(st.none(), st.text(max_size=8)),
    st.one_of(st.none(), st.text(max_size=8)),
    st.one_of(st.integers(), st.text(max_size=8)),
)
def test_outcome_ids_are_derived_from_the_same_parts(
    user_id: str,
    type_: str,
    journey_id: str | None,
    version: int | None,
    instance_id: str | None,
    node_id: str | None,
    message_id: str | None,
    key: object,
) -> None:
    engine = Engine([])
    step = Step(engine.catalog, engine.config, UserState(user_id), 1_000)
    step.outcome(
        type_,
        journey_id=journey_id,
        version=version,
        instance_id=instance_id,
        node_id=node_id,
        message_id=message_id,
        key=key,
    )
    (out,) = step.effects
    assert isinstance(out, Outcome)
    want = derive_id(
        "o", user_id, type_, journey_id, version, instance_id, node_id, message_id, key
    )
    assert out.outcome_id == want


def test_fast_init_keeps_defaults_factories_and_frozenness() -> None:
    a = Outcome("id", "t", 1, "u", None, None, None, None)
    b = Outcome("id", "t", 1, "u", None, None, None, None)
    assert a.attributes == {} and a.attributes is not b.attributes  # a factory per record
    assert a == b and a.channel is None and a.message_id is None
    with pytest.raises(dataclasses.FrozenInstanceError):
        a.type = "x"  # type: ignore[misc]
    c = Outcome(
        outcome_id="id", type="t", ts=1, user_id="u", journey_id="j", journey_version=2,
        instance_id="i", node_id="n", attributes={"k": 1},
    )  # fmt: skip
    assert (c.journey_version, c.attributes) == (2, {"k": 1})
    assert dataclasses.replace(c, ts=5).ts == 5
    assert hash(ScheduleWake("u", 3, "t")) == hash(ScheduleWake("u", 3, "t"))
    ev = UserEvent("e", "u", "n", 3)
    assert ev.properties == {} and ev.profile is None
    assert Receipt("u", 3, "read").message_id is None
    with pytest.raises(TypeError):
        Outcome("id", "t", 1)  # type: ignore[call-arg]
    with pytest.raises(TypeError):
        UserEvent("e", "u", "n", 3, bogus=1)  # type: ignore[call-arg]
    req = SendRequest("m", 1, "u", "+1", "sms", {}, None, None, None, None)
    assert (req.purpose, req.profile, req.send_rate) == ("journey", {}, None)


def test_fast_init_keeps_kw_only_fields_and_post_init() -> None:
    seen: list[int] = []

    @fast_init
    @dataclass(frozen=True, slots=True)
    class Rec:
        a: int
        b: list[int] = field(default_factory=list)
        c: str = field(default="c", kw_only=True)

        def __post_init__(self) -> None:
            seen.append(self.a)

    assert Rec(1) == Rec(1, [], c="c")
    assert Rec(2, c="z").c == "z"
    with pytest.raises(TypeError):
        Rec(1, [], "c")  # type: ignore[misc]
    assert seen == [1, 1, 2]


def test_fast_init_refuses_what_it_cannot_do() -> None:
    @dataclass(frozen=True)
    class NoSlots:
        a: int

    with pytest.raises(TypeError):
        fast_init(NoSlots)


@given(st.integers(MIN_INSTANT_MS, MAX_INSTANT_MS), st.integers(MIN_INSTANT_MS, MAX_INSTANT_MS))
def test_format_ts_remembers_only_what_it_was_asked(a: int, b: int) -> None:
    first, second, again = format_ts(a), format_ts(b), format_ts(a)
    assert first == again
    assert (first == second) == (a == b)
    with pytest.raises(ValueError):
        format_ts(MAX_INSTANT_MS + 1)


@given(
    st.lists(st.one_of(st.none(), st.integers(-5, 5)), max_size=4),
    st.lists(st.one_of(st.none(), st.integers(-5, 5)), max_size=4),
)
def test_next_timer_is_the_earliest_timer(
    waits: list[int | None], timers: list[int | None]
) -> None:
    state = UserState("u")
    for n, at in enumerate(waits):
        state.instances[f"i{n}"] = Instance(f"i{n}", "j", 1, "a", 0, {}, {}, wake_at=at)
    for n, at in enumerate(timers):
        state.messages[f"m{n}"] = Message(f"m{n}", "i", "j", 1, "a", "rcs", 0, timer_at=at)
    times = [t for t in (*waits, *timers) if t is not None]
    assert state.next_timer() == (min(times) if times else None)


def _uuid_as_it_was(*parts: object) -> str:
    b = bytearray(blake2b("\x1f".join(map(str, parts)).encode(), digest_size=16).digest())
    b[6] = (b[6] & 0x0F) | 0x80
    b[8] = (b[8] & 0x3F) | 0x80
    h = b.hex()
    return f"{h[:8]}-{h[8:12]}-{h[12:16]}-{h[16:20]}-{h[20:]}"


@given(st.lists(part, max_size=5))
def test_derive_uuid_sets_the_same_bits_as_before(parts: list[Any]) -> None:
    got = derive_uuid(*parts)
    assert got == _uuid_as_it_was(*parts)
    assert uuid.UUID(got).version == 8 and uuid.UUID(got).variant == uuid.RFC_4122
