"""Properties of profiles (engine.core.profile): whatever the updates, and through whichever
door (a profile event, an event's own profile, an update_profile node), a profile never
breaks its limits, an accepted update does exactly what it says, and a refused one
changes nothing."""

from __future__ import annotations

from typing import Any

import orjson
import yaml
from hypothesis import given, settings
from hypothesis import strategies as st
from prop_world import examples

from engine.core import Engine, Outcome, UserEvent
from engine.core.profile import (
    MAX_KEY_CHARS,
    MAX_KEYS,
    MAX_PROFILE_BYTES,
    MAX_VALUE_BYTES,
    apply_profile_update,
)
from engine.errors import ProfileLimitError
from engine.journey.model import Journey

# Mostly short keys from a small pool (so updates collide), sometimes long ones; values
# from tiny to past the value limit.
keys = st.one_of(
    st.sampled_from([f"k{i}" for i in range(40)]),
    st.text(min_size=0, max_size=MAX_KEY_CHARS + 8),
)
scalars = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(-(2**53), 2**53),
    st.text(max_size=40),
    st.integers(0, MAX_VALUE_BYTES + 200).map(lambda n: "x" * n),
)
values = st.one_of(
    scalars,
    st.lists(scalars, max_size=4),
    st.dictionaries(st.text(max_size=8), scalars, max_size=3),
)
updates = st.tuples(
    st.dictionaries(keys, values, max_size=30),
    st.lists(keys, max_size=5),
)


def within_limits(attrs: dict[str, Any]) -> None:
    assert len(attrs) <= MAX_KEYS
    assert len(orjson.dumps(attrs)) <= MAX_PROFILE_BYTES
    for k, v in attrs.items():
        assert isinstance(k, str) and 0 < len(k) <= MAX_KEY_CHARS
        assert v is not None
        assert len(orjson.dumps(v)) <= MAX_VALUE_BYTES


@settings(max_examples=examples(300), deadline=None)
@given(st.lists(updates, max_size=40))
def test_a_profile_never_breaks_its_limits(steps: list[tuple[dict[str, Any], list[str]]]) -> None:
    attrs: dict[str, Any] = {}
    for set_, unset in steps:
        before = dict(attrs)
        try:
            changed = apply_profile_update(attrs, set_, unset)
        except ProfileLimitError:
            assert attrs == before  # refused whole
            continue
        within_limits(attrs)
        expected = {k: v for k, v in before.items() if k not in unset}
        expected.update(set_)
        assert attrs == {k: v for k, v in expected.items() if v is not None}
        assert changed == sorted(
            k
            for k in before.keys() | attrs.keys()
            if k not in before or k not in attrs or canonical(before[k]) != canonical(attrs[k])
        )


def canonical(value: Any) -> bytes:
    return orjson.dumps(value, option=orjson.OPT_SORT_KEYS)


@settings(max_examples=examples(300), deadline=None)
@given(st.lists(st.integers(0, MAX_VALUE_BYTES), min_size=1, max_size=80))
def test_many_big_values_fill_the_profile_up_to_32kb_and_no_further(sizes: list[int]) -> None:
    attrs: dict[str, Any] = {}
    for i, n in enumerate(sizes):
        try:
            apply_profile_update(attrs, {f"key{i}": "v" * max(n - 2, 0)})
        except ProfileLimitError as exc:
            assert exc.limit in ("profile_size", "keys")
        within_limits(attrs)


NODE_JOURNEY = Journey.model_validate(
    yaml.safe_load(
        """
id: up
version: 1
entry: {event: go, reentry: always}
start: up
nodes:
  up:
    type: update_profile
    set: {a: event.a, b: event.b, c: "user.a"}
    unset: [d]
    next: done
  done: {type: exit}
"""
    )
)


@settings(max_examples=examples(150), deadline=None)
@given(
    st.lists(st.tuples(st.sampled_from(["go", "profile_updated", "other"]), updates), max_size=25)
)
def test_through_the_engine_the_profile_stays_bounded(
    steps: list[tuple[str, tuple[dict[str, Any], list[str]]]],
) -> None:
    engine = Engine([NODE_JOURNEY])
    state = engine.new_state("u")
    for i, (name, (props, _)) in enumerate(steps):
        ev = UserEvent(
            f"e{i}", "u", name, 1_000 * (i + 1), props, props if name == "other" else None
        )
        before = dict(state.attrs)
        try:
            _, effects = engine.advance(state, ev, ev.ts)
        except ProfileLimitError:
            # The worker dead-letters the input and keeps the state it had; here the
            # profile must not have changed before the refusal.
            assert state.attrs == before
            continue
        within_limits(state.attrs)
        for o in effects:
            if isinstance(o, Outcome) and o.type == "profile_updated":
                assert o.attributes["keys"]  # only when something changed
