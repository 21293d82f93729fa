"""The engine's table value (engine/core/wire.py): compact, and the plain JSON written
before still read."""

from __future__ import annotations

import orjson
import pytest

from engine.core import wire
from engine.core.state import Instance, UserState
from engine.errors import InputError


def waiting_user() -> UserState:
    state = UserState("user-0001", clock=1_790_000_000_000, seen=["e-1"])
    run = Instance("b3907d5e05563d4f5f00", "welcome", 1, "pause", 1_790_000_000_000, {}, {}, 1)
    run.wake_at = 1_790_003_600_000
    state.instances[run.id] = run
    state.wake_at = run.wake_at
    return state


def test_the_record_is_compact_and_comes_back() -> None:
    state = waiting_user()
    raw = wire.state_record(3, state)
    plain = orjson.dumps({"p": 3, "s": state.to_wire()})
    assert raw[:1] == wire.STATE_COMPACT
    assert len(raw) < 0.6 * len(plain)
    assert wire.state_json(raw) == plain
    partition, back = wire.state_from_record(raw)
    assert partition == 3 and back.to_wire() == state.to_wire()
    assert wire.state_wake_at(raw) == (3, state.wake_at)
    assert wire.state_wire(raw) == state.to_wire()


def test_the_plain_json_record_of_before_is_still_read() -> None:
    state = waiting_user()
    plain = orjson.dumps({"p": 2, "s": state.to_wire()})
    assert wire.state_from_record(plain)[1].to_wire() == state.to_wire()
    assert wire.parse_state_record(plain) == (2, state.to_wire())
    assert wire.state_wake_at(plain) == (2, state.wake_at)
    assert wire.state_wire(plain) == state.to_wire()
    # and written again, it becomes compact with the same content
    assert wire.state_json(wire.state_record(2, wire.state_from_record(plain)[1])) == plain


def test_the_same_state_encodes_to_the_same_bytes() -> None:
    # The runtime writes a state only when its bytes changed.
    assert wire.state_record(1, waiting_user()) == wire.state_record(1, waiting_user())


@pytest.mark.parametrize("raw", [wire.STATE_COMPACT + b"\xff\xfe garbage", wire.STATE_COMPACT])
def test_a_damaged_compact_record_is_an_input_error(raw: bytes) -> None:
    with pytest.raises(InputError):
        wire.state_from_record(raw)


def test_a_large_incompressible_state_round_trips() -> None:
    state = waiting_user()
    state.attrs = {f"k{i}": f"{i * 2_654_435_761 % 2**32:08x}" * 3 for i in range(5_000)}
    raw = wire.state_record(0, state)
    assert wire.state_from_record(raw)[1].to_wire() == state.to_wire()
