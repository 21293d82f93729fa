"""A faster ``__init__`` for the core's frozen, slotted dataclasses (the hot path's records).

A frozen dataclass's generated ``__init__`` sets each field through
``object.__setattr__(self, name, value)``: about 130 ns a field, 1.4 µs for an
:class:`~engine.core.effects.Outcome`, made several times per step. Writing the slots
through their own descriptors (``Cls.field.__set__``) does the same thing in half the
time. :func:`fast_init` swaps the generated ``__init__`` for one that does that, with the
same signature (names, order, defaults, default factories, keyword-only fields) and the
same ``__post_init__`` call: everything else of the dataclass (frozen, eq, hash, repr,
``replace``, ``match``) is untouched. It needs ``slots=True`` (the descriptors).
"""

from __future__ import annotations

import dataclasses
from typing import Any, TypeVar

T = TypeVar("T")

_NO_FACTORY = object()  # the sentinel default of a field with a default factory


def fast_init(cls: type[T]) -> type[T]:
    """Replace ``cls.__init__`` (a frozen, slotted dataclass) by a descriptor-based one."""
    params = dataclasses.fields(cls)  # type: ignore[arg-type]
    if not params or "__slots__" not in cls.__dict__:
        raise TypeError(f"fast_init wants a slotted dataclass with fields, not {cls.__name__}")
    namespace: dict[str, Any] = {"_NO_FACTORY": _NO_FACTORY}
    positional: list[str] = []
    keyword: list[str] = []
    body: list[str] = []
    for f in params:
        if not f.init:
            raise TypeError(f"fast_init: {cls.__name__}.{f.name} is an init=False field")
        namespace[f"_set_{f.name}"] = getattr(cls, f.name).__set__
        value = f.name
        if f.default is not dataclasses.MISSING:
            namespace[f"_default_{f.name}"] = f.default
            param = f"{f.name}=_default_{f.name}"
        elif f.default_factory is not dataclasses.MISSING:
            namespace[f"_factory_{f.name}"] = f.default_factory
            param = f"{f.name}=_NO_FACTORY"
            value = f"_factory_{f.name}() if {f.name} is _NO_FACTORY else {f.name}"
        else:
            param = f.name
        (keyword if f.kw_only else positional).append(param)
        body.append(f"    _set_{f.name}(self, {value})")
    if hasattr(cls, "__post_init__"):
        body.append("    self.__post_init__()")
    signature = ", ".join(["self", *positional, *(["*", *keyword] if keyword else [])])
    source = f"def __init__({signature}) -> None:\n" + "\n".join(body) + "\n"
    exec(source, namespace)  # generated from the dataclass's own field names only
    init = namespace["__init__"]
    init.__qualname__ = f"{cls.__qualname__}.__init__"
    init.__doc__ = cls.__init__.__doc__
    cls.__init__ = init  # type: ignore[method-assign]
    return cls
