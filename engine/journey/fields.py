"""The keys a journey file takes at a place, for "did you mean" on a misspelt one.

:func:`fields_at` follows a pydantic error location (``("nodes", "hello", "send",
"fallback")``: the node's type tag included) through the models of
:mod:`engine.journey.model` and lists the keys of the mapping found there, as written in
a file (aliases, e.g. ``from`` for quiet hours).
"""

from __future__ import annotations

import difflib
import types
import typing
from typing import Any, Literal, Union

from pydantic import BaseModel

from engine.journey.model import Journey


def _members(t: Any) -> list[Any]:
    """``t`` without Annotated, Optional and unions of one model: the types it may be."""
    while typing.get_origin(t) is typing.Annotated:
        t = typing.get_args(t)[0]
    if typing.get_origin(t) in (Union, types.UnionType):
        out: list[Any] = []
        for m in typing.get_args(t):
            if m is not type(None):
                out += _members(m)
        return out
    return [t]


def _tag(model: type[BaseModel]) -> object:
    field = model.model_fields.get("type")
    if field is None or typing.get_origin(field.annotation) is not Literal:
        return None
    return typing.get_args(field.annotation)[0]


def _step(t: Any, part: str | int) -> Any:
    """The type under ``part`` of ``t`` (a key, an index, or the type tag that picks a
    node model), or None when ``part`` leads nowhere."""
    members = _members(t)
    models = [m for m in members if isinstance(m, type) and issubclass(m, BaseModel)]
    if len(models) > 1:
        tagged = [m for m in models if _tag(m) == part]
        return tagged[0] if tagged else None
    for m in members:
        origin = typing.get_origin(m)
        if isinstance(m, type) and issubclass(m, BaseModel):
            for name, field in m.model_fields.items():
                if part in (name, field.alias):
                    return field.annotation
            return None
        if origin is list and isinstance(part, int):
            return typing.get_args(m)[0]
        if origin is dict:
            return typing.get_args(m)[1]
    return None


def fields_at(loc: tuple[str | int, ...]) -> list[str]:
    """The keys of the mapping at ``loc`` (a pydantic location), or [] if it isn't one."""
    t: Any = Journey
    for part in loc:
        t = _step(t, part)
        if t is None:
            return []
    models = [m for m in _members(t) if isinstance(m, type) and issubclass(m, BaseModel)]
    if len(models) != 1:
        return []
    return [f.alias or name for name, f in models[0].model_fields.items()]


def did_you_mean(name: str, loc: tuple[str | int, ...]) -> str:
    """``: did you mean 'next'?`` for the unknown key ``name`` of the mapping at ``loc``,
    else the keys it takes; empty when they are not known."""
    known = fields_at(loc)
    close = difflib.get_close_matches(name, known, n=1, cutoff=0.6)
    if close:
        return f": did you mean '{close[0]}'?"
    if known:
        return f": the fields here are {', '.join(known)}"
    return ""
