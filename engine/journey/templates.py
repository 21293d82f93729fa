"""Liquid templates for message text, sandboxed for journey authors.

Templates are parsed once, when a journey is loaded, and rendered per user with the
scope roots ``event``, ``entry``, ``user`` and ``journey``. The environment is
locked down because templates come from journey files, not from engineers:

* unknown variables render as nothing, so ``{{ user.first_name | default: 'there' }}``
  is the way to write a fallback;
* there is no template loader: ``include`` and ``render`` are removed, so using them
  is a parse error rather than a file-system lookup;
* loops, local variables and output are bounded; output longer than
  :data:`MAX_OUTPUT_CHARS` is a :class:`TemplateError`;
* unknown filters are refused at load time, not when the first user is rendered;
* the ``date`` filter does not read the clock (``'now'`` is refused; pass the time in
  the scope) and reads epoch seconds as UTC, so rendering is deterministic.
"""

from __future__ import annotations

import datetime as dt
import re
from collections.abc import Callable, Mapping
from functools import lru_cache
from typing import Any, ClassVar, Final

import liquid
from liquid.exceptions import FilterArgumentError, LiquidError, OutputStreamLimitError
from liquid.filter import with_environment

from engine.errors import TemplateError

MAX_OUTPUT_CHARS: Final = 20_000


class _SandboxEnvironment(liquid.Environment):
    loop_iteration_limit: ClassVar[int | None] = 10_000
    # Liquid counts UTF-8 bytes; a character is at most 4, and the exact character
    # limit is checked after rendering. This bound stops runaway output early.
    output_stream_limit: ClassVar[int | None] = 4 * MAX_OUTPUT_CHARS
    # Bounds `{% assign s = s | append: s %}` in a loop, which doubles each time.
    local_namespace_limit: ClassVar[int | None] = 200_000
    context_depth_limit: ClassVar[int] = 10


_ENV: Final = _SandboxEnvironment(tolerance=liquid.Mode.STRICT, strict_filters=True)
for _tag in ("include", "render"):
    del _ENV.tags[_tag]

_liquid_date: Final[Callable[..., Any]] = _ENV.filters["date"]


def _date_input(value: object) -> object:
    """What liquid's ``date`` filter may see: never 'now', epoch seconds as UTC."""
    if isinstance(value, str) and value.strip().lower() in ("now", "today"):
        raise FilterArgumentError(
            "date: 'now' is not available in journey templates; put the time in the scope",
            token=None,
        )
    if (isinstance(value, int | float) and not isinstance(value, bool)) or (
        isinstance(value, str) and value.isdigit()
    ):
        try:
            return dt.datetime.fromtimestamp(float(value), tz=dt.UTC)
        except (OverflowError, OSError, ValueError) as exc:
            raise FilterArgumentError(f"date: bad timestamp {value!r}", token=None) from exc
    if isinstance(value, str):
        # Liquid falls back to dateutil, which fills missing fields from today's date;
        # accept ISO-8601 only and print anything else unchanged, as Liquid does.
        try:
            return dt.datetime.fromisoformat(value)
        except ValueError:
            return value
    return value


@with_environment
def _deterministic_date(value: object, fmt: object, *, environment: liquid.Environment) -> Any:
    converted = _date_input(value)
    if isinstance(converted, str):
        return converted
    return _liquid_date(converted, fmt, environment=environment)


_ENV.add_filter("date", _deterministic_date)


class Template:
    """A parsed template. Immutable and safe to share between threads."""

    __slots__ = ("_bound", "_fast", "is_static", "source", "variables")

    def __init__(self, source: str, bound: liquid.BoundTemplate) -> None:
        self.source = source
        self._bound = bound
        # No markup at all: the text is sent as written, so linters can measure it.
        self.is_static: bool = "{{" not in source and "{%" not in source
        # Root names the template reads from the scope (event, user, …).
        self.variables: frozenset[str] = frozenset(bound.global_variables(include_partials=False))
        # Most message templates are text with a few ``{{ user.name | default: 'x' }}``:
        # those render without liquid's machinery, about 10x faster (the hot path of sends).
        self._fast = _simple_parts(source)

    def render(self, scope: Mapping[str, Any]) -> str:
        """Render with ``scope``; raises TemplateError on any rendering failure."""
        if self.is_static:
            text = self.source
        elif self._fast is not None and (fast := _render_simple(self._fast, scope)) is not None:
            text = fast
        else:
            try:
                text = self._bound.render(scope)
            except OutputStreamLimitError:
                text = None
            except LiquidError as exc:
                raise _translate(exc, self.source, "cannot render") from exc
            except Exception as exc:  # a filter bug must not escape as a non-engine error
                raise TemplateError(f"cannot render: {exc!r}", source=self.source) from exc
        if text is None or len(text) > MAX_OUTPUT_CHARS:
            raise TemplateError(
                f"rendered text is longer than {MAX_OUTPUT_CHARS} characters", source=self.source
            )
        return text

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Template) and other.source == self.source

    def __hash__(self) -> int:
        return hash(self.source)

    def __repr__(self) -> str:
        return f"Template({self.source!r})"


_SIMPLE_OUTPUT = re.compile(
    r"\{\{ *((?:event|entry|user|journey)(?:\.[A-Za-z_][A-Za-z0-9_]*)+) *"
    r"(?:\| *default: *'([^'{}]*)' *)?\}\}"
)
_Part = str | tuple[tuple[str, ...], str | None]


def _simple_parts(source: str) -> tuple[_Part, ...] | None:
    """Text and simple outputs, or None when the template needs full Liquid."""
    parts: list[_Part] = []
    pos = 0
    for m in _SIMPLE_OUTPUT.finditer(source):
        parts.append(source[pos : m.start()])
        parts.append((tuple(m.group(1).split(".")), m.group(2)))
        pos = m.end()
    parts.append(source[pos:])
    if any(isinstance(p, str) and ("{{" in p or "{%" in p) for p in parts):
        return None
    return tuple(p for p in parts if p != "")


def _render_simple(parts: tuple[_Part, ...], scope: Mapping[str, Any]) -> str | None:
    """Render, or None when a value is of a kind only Liquid knows how to print."""
    out: list[str] = []
    for part in parts:
        if isinstance(part, str):
            out.append(part)
            continue
        path, default = part
        value: Any = scope
        for key in path:
            value = value.get(key) if isinstance(value, Mapping) else None
        if default is not None and (value is None or value is False or value == ""):
            value = default
        if value is None:
            continue
        if isinstance(value, str):
            out.append(value)
        elif isinstance(value, int) and not isinstance(value, bool):
            out.append(str(value))
        else:
            return None  # floats, booleans, lists...: let Liquid format them
    return "".join(out)


@lru_cache(maxsize=4096)
def compile_template(source: str) -> Template:
    """Parse ``source``; raises TemplateError naming the problem and where it is."""
    try:
        bound = _ENV.from_string(source)
    except LiquidError as exc:
        raise _translate(exc, source, "cannot parse") from exc
    analysis = bound.analyze(include_partials=False)
    for name, spans in analysis.filters.items():
        if name not in _ENV.filters:
            offset = spans[0].index if spans else None
            raise TemplateError(
                f"unknown filter {name!r}{_where(source, offset)}", source=source, offset=offset
            )
    return Template(source, bound)


def _translate(exc: LiquidError, source: str, what: str) -> TemplateError:
    token = exc.token
    offset = token.start_index if token is not None and token.start_index >= 0 else None
    return TemplateError(
        f"{what}: {exc.message}{_where(source, offset)}", source=source, offset=offset
    )


def _where(source: str, offset: int | None) -> str:
    """`` (line 2, column 5)`` for an offset into ``source`` (columns from 1)."""
    if offset is None or offset >= len(source):
        return ""
    line = source.count("\n", 0, offset) + 1
    column = offset - (source.rfind("\n", 0, offset) + 1) + 1
    return f" (line {line}, column {column})"
