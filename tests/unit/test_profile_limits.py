"""engine.core.profile: the one function that changes a profile, and its limits."""

from __future__ import annotations

from typing import Any

import orjson
import pytest

from engine.core.profile import (
    MAX_KEY_CHARS,
    MAX_KEYS,
    MAX_PROFILE_BYTES,
    MAX_VALUE_BYTES,
    apply_profile_update,
)
from engine.errors import InputError, ProfileLimitError


def test_sets_and_returns_the_changed_keys_sorted() -> None:
    attrs: dict[str, Any] = {"tier": "silver", "city": "Lyon"}
    changed = apply_profile_update(attrs, {"tier": "gold", "city": "Lyon", "age": 31})
    assert changed == ["age", "tier"]
    assert attrs == {"tier": "gold", "city": "Lyon", "age": 31}


def test_unset_removes_and_reports_only_keys_that_were_there() -> None:
    attrs: dict[str, Any] = {"tier": "gold", "city": "Lyon"}
    assert apply_profile_update(attrs, unset=["tier", "never_there"]) == ["tier"]
    assert attrs == {"city": "Lyon"}


def test_null_removes_the_attribute() -> None:
    attrs: dict[str, Any] = {"tier": "gold"}
    assert apply_profile_update(attrs, {"tier": None, "other": None}) == ["tier"]
    assert attrs == {}


def test_set_wins_over_unset_of_the_same_key() -> None:
    attrs: dict[str, Any] = {"tier": "gold"}
    assert apply_profile_update(attrs, {"tier": "gold"}, ["tier"]) == []
    assert attrs == {"tier": "gold"}


def test_nothing_changes_returns_empty() -> None:
    attrs: dict[str, Any] = {"n": 1}
    assert apply_profile_update(attrs, {"n": 1}) == []
    assert apply_profile_update(attrs) == []


def test_a_value_of_another_json_type_is_a_change() -> None:
    attrs: dict[str, Any] = {"flag": 1}
    assert apply_profile_update(attrs, {"flag": True}) == ["flag"]
    assert attrs["flag"] is True


def test_key_order_is_kept_new_keys_last() -> None:
    attrs: dict[str, Any] = {"a": 1, "b": 2, "c": 3}
    apply_profile_update(attrs, {"b": 20, "d": 4}, ["a"])
    assert list(attrs) == ["b", "c", "d"]


def test_too_long_a_key_is_refused_whole() -> None:
    attrs: dict[str, Any] = {"a": 1}
    with pytest.raises(ProfileLimitError) as info:
        apply_profile_update(attrs, {"ok": 2, "k" * (MAX_KEY_CHARS + 1): 3})
    assert info.value.limit == "key_length"
    assert info.value.reason == "profile_limit"
    assert attrs == {"a": 1}


def test_a_key_of_exactly_the_limit_fits() -> None:
    attrs: dict[str, Any] = {}
    assert apply_profile_update(attrs, {"k" * MAX_KEY_CHARS: 1}) == ["k" * MAX_KEY_CHARS]


@pytest.mark.parametrize("key", ["", 3, None])
def test_a_key_that_is_not_a_word_is_refused(key: Any) -> None:
    with pytest.raises(ProfileLimitError) as info:
        apply_profile_update({}, {key: 1})
    assert info.value.limit == "key"


def test_a_value_over_2kb_of_json_is_refused() -> None:
    attrs: dict[str, Any] = {}
    fits = "x" * (MAX_VALUE_BYTES - 2)  # the two quotes count
    assert apply_profile_update(attrs, {"note": fits}) == ["note"]
    with pytest.raises(ProfileLimitError) as info:
        apply_profile_update(attrs, {"note": fits + "x"})
    assert info.value.limit == "value_size"
    assert attrs == {"note": fits}


def test_a_value_that_is_not_json_is_refused() -> None:
    with pytest.raises(ProfileLimitError) as info:
        apply_profile_update({}, {"tags": {1, 2}})
    assert info.value.limit == "value_type"


def test_more_than_max_keys_is_refused_and_the_profile_unchanged() -> None:
    attrs: dict[str, Any] = {f"k{i}": i for i in range(MAX_KEYS)}
    before = dict(attrs)
    assert apply_profile_update(attrs, {"k0": -1}) == ["k0"]  # replacing fits
    before["k0"] = -1
    with pytest.raises(ProfileLimitError) as info:
        apply_profile_update(attrs, {"one_more": 1})
    assert info.value.limit == "keys"
    assert attrs == before
    # removing one makes room for one
    assert apply_profile_update(attrs, {"one_more": 1}, ["k1"]) == ["k1", "one_more"]


def test_the_whole_profile_is_at_most_32kb() -> None:
    attrs: dict[str, Any] = {}
    value = "v" * 2000
    i = 0
    with pytest.raises(ProfileLimitError) as info:
        while True:
            apply_profile_update(attrs, {f"k{i}": value})
            i += 1
    assert info.value.limit == "profile_size"
    assert len(orjson.dumps(attrs)) <= MAX_PROFILE_BYTES
    assert i == 16  # 16 values of ~2 KB fit in 32 KB, the 17th does not


def test_an_update_that_only_removes_is_accepted_even_over_the_limits() -> None:
    attrs: dict[str, Any] = {f"k{i}": i for i in range(MAX_KEYS + 50)}  # written before limits
    assert apply_profile_update(attrs, unset=["k0"]) == ["k0"]
    assert apply_profile_update(attrs, {"k1": None}) == ["k1"]
    with pytest.raises(ProfileLimitError):
        apply_profile_update(attrs, {"k2": 0})


def test_the_error_is_an_input_error_that_says_what_to_do() -> None:
    with pytest.raises(InputError) as info:
        apply_profile_update({}, {"k": "x" * 5000})
    assert "at most 2048" in str(info.value)
    assert str(info.value).startswith("profile_limit: ")
