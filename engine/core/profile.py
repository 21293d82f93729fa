"""The user's profile (``state.attrs``, read as ``user.*``): the one way to change it.

Everything that changes a profile goes through :func:`apply_profile_update`: the
``profile`` of an event, a profile event (``settings.profile_events``), the
``update_profile`` node, a webhook's ``save``. It keeps the profile inside fixed limits,
because the profile lives in the user's state, which is read and written for every input
of that user and must stay a small record:

* at most :data:`MAX_KEYS` attributes;
* a key is a non-empty string of at most :data:`MAX_KEY_CHARS` characters;
* a value is JSON of at most :data:`MAX_VALUE_BYTES` bytes (compact UTF-8);
* the whole profile is JSON of at most :data:`MAX_PROFILE_BYTES` bytes.

**Past a limit the whole update is refused** (:class:`~engine.errors.ProfileLimitError`,
reason ``profile_limit``) and the profile stays as it was: nothing is truncated, so a
profile never holds half of an update. An adapter dead-letters the input that carried
it (Kafka) or reports it rejected (the simulator); the ``update_profile`` node reports a
``profile_update_refused`` outcome and goes on. An update that only removes attributes
is always accepted, so a profile written before these limits can still shrink.

A ``null`` value removes the attribute (as ``unset`` does): a profile holds no nulls, and
``user.x`` reads null either way.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

import orjson

from engine.errors import ProfileLimitError

MAX_KEYS = 200
MAX_KEY_CHARS = 64
MAX_VALUE_BYTES = 2 * 1024
MAX_PROFILE_BYTES = 32 * 1024


def apply_profile_update(
    attrs: dict[str, Any],
    set_: Mapping[str, Any] | None = None,
    unset: Iterable[str] = (),
) -> list[str]:
    """Remove the ``unset`` keys, then set the ``set_`` ones (a ``None`` value removes its
    key), in place. Returns the keys whose value changed, sorted (empty: nothing changed).
    Raises ProfileLimitError, with ``attrs`` untouched, when the result breaks a limit."""
    set_ = set_ or {}
    new = dict(attrs)
    for key in unset:
        new.pop(key, None)
    for key, value in set_.items():
        _check_key(key)
        if value is None:
            new.pop(key, None)
            continue
        size = len(_json(key, value))
        if size > MAX_VALUE_BYTES:
            raise ProfileLimitError(
                "value_size",
                f"the value of {key!r} is {size} bytes of JSON; a profile value holds at most "
                f"{MAX_VALUE_BYTES}: store an id or a summary instead",
            )
        new[key] = value
    if any(v is not None for v in set_.values()):  # an update that only removes always fits
        if len(new) > MAX_KEYS:
            raise ProfileLimitError(
                "keys",
                f"the update would give the profile {len(new)} attributes; it holds at most "
                f"{MAX_KEYS}: unset attributes no journey reads",
            )
        total = len(_json("profile", new))
        if total > MAX_PROFILE_BYTES:
            raise ProfileLimitError(
                "profile_size",
                f"the update would make the profile {total} bytes of JSON; it holds at most "
                f"{MAX_PROFILE_BYTES}: unset attributes or store smaller values",
            )
    changed = sorted(k for k in attrs.keys() | new.keys() if _differs(attrs, new, k))
    if changed:
        attrs.clear()
        attrs.update(new)
    return changed


def _differs(old: Mapping[str, Any], new: Mapping[str, Any], key: str) -> bool:
    """Changed as JSON: ``True`` and ``1``, ``[1]`` and ``[True]`` are equal in Python but
    not for the readers of the profile; two dicts in another key order are the same."""
    if key not in old or key not in new:
        return True
    a, b = old[key], new[key]
    return a is not b and _canonical(a) != _canonical(b)


def _canonical(value: Any) -> bytes:
    try:
        return orjson.dumps(value, option=orjson.OPT_SORT_KEYS)
    except TypeError:  # a value stored before the limits: compare it as Python does
        return repr(value).encode()


def _check_key(key: Any) -> None:
    if not isinstance(key, str) or not key:
        raise ProfileLimitError("key", f"{key!r} is not a profile attribute name: use a word")
    if len(key) > MAX_KEY_CHARS:
        raise ProfileLimitError(
            "key_length",
            f"the attribute name {key[:80]!r} is {len(key)} characters; at most {MAX_KEY_CHARS}",
        )


def _json(key: str, value: Any) -> bytes:
    try:
        return orjson.dumps(value)
    except TypeError as exc:  # orjson.JSONEncodeError: not JSON (a set, a non-str dict key)
        raise ProfileLimitError("value_type", f"the value of {key!r} is not JSON: {exc}") from exc
