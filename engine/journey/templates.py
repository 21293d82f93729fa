"""Liquid templates for message text, sandboxed for journey authors.

Templates are parsed once, when a journey is loaded, and rendered per user with the
scope roots ``event``, ``entry``, ``user`` and ``journey``. The environment is
locked down because templates come from journey files, not from engineers:

* unknown variables render as nothing, so ``{{ user.first_name | default: 'there' }}``
  is the way to write a fallback;
* there is no template loader: ``include`` and ``render`` are removed, so using them
  is a parse error rather than a file-system lookup;
* unknown filters are refused at load time, not when the first user is rendered;
* the ``date`` filter does not read the clock (``'now'`` is refused; pass the time in
  the scope) and reads epoch seconds as UTC, so rendering is deterministic.

Time and memory are bounded, at load time and per render (every bound is a
:class:`TemplateError`, which the core reports as ``message_failed`` reason
``template``):

* a template is at most :data:`MAX_TEMPLATE_CHARS` long, every ``{{`` / ``{%`` must be
  closed and markup holds at most :data:`MAX_MARKUP_PARENS` ``(``: Liquid's lexer is
  quadratic on those, so they are refused before it runs;
* output is at most :data:`MAX_OUTPUT_CHARS` characters;
* loops run at most :data:`MAX_LOOP_ITERATIONS` iterations, nested loops multiplied and
  every loop of the render added up, and never reach past that item (``offset:`` and
  ``reversed`` walk the items they skip);
* a render takes at most :data:`MAX_RENDER_STEPS` steps (a tag, an output, a loop
  iteration, a filter) and handles at most :data:`MAX_RENDER_DATA` characters or
  items (every value read from the scope or made by a filter counts its length);
  inside :func:`shared_budget` (a send node) those bounds and the loop total are for
  all the renders together, and the rendered texts count as data;
* a filter may not make a string or list longer than :data:`MAX_VALUE_LENGTH`, and may
  not take a range longer than that: ``join`` and ``replace`` are checked before they
  build anything, since their result can be the square of their input.
"""

from __future__ import annotations

import datetime as dt
import re
from collections.abc import Callable, Iterable, Mapping
from contextvars import ContextVar
from functools import lru_cache
from typing import Any, ClassVar, Final

import liquid
from liquid import RenderContext, soft_str
from liquid.exceptions import (
    FilterArgumentError,
    LiquidError,
    LoopIterationLimitError,
    OutputStreamLimitError,
    ResourceLimitError,
)
from liquid.filter import sequence_filter, with_context, with_environment
from liquid.token import Token
from liquid.undefined import UNDEFINED, Undefined

from engine.errors import TemplateError

MAX_TEMPLATE_CHARS: Final = 20_000
MAX_MARKUP_PARENS: Final = 256
MAX_OUTPUT_CHARS: Final = 20_000
MAX_LOOP_ITERATIONS: Final = 10_000
MAX_VALUE_LENGTH: Final = 100_000
MAX_RENDER_STEPS: Final = 50_000
MAX_RENDER_DATA: Final = 1_000_000


class _Meter:
    """The work done by one render, or by all the renders inside one shared_budget()."""

    __slots__ = ("data", "iterations", "steps")

    def __init__(self) -> None:
        self.steps = 0
        self.data = 0
        self.iterations = 0

    def step(self) -> None:
        self.steps += 1
        if self.steps > MAX_RENDER_STEPS:
            raise ResourceLimitError(
                f"render step limit reached: more than {MAX_RENDER_STEPS} tags, outputs, "
                "loop iterations and filters; loop over fewer items",
                token=None,
            )

    def handle(self, size: int) -> None:
        self.data += size
        if self.data > MAX_RENDER_DATA:
            raise ResourceLimitError(
                f"render data limit reached: more than {MAX_RENDER_DATA} characters or "
                "items read or made; work on smaller values, or fewer times",
                token=None,
            )


# Set by shared_budget(): the renders inside draw on one meter.
_SHARED_METER: ContextVar[_Meter | None] = ContextVar("template_meter", default=None)


def shared_budget() -> _SharedBudget:
    """Make the renders inside share one budget of steps, data and loop iterations.

    A send node has up to hundreds of templates (a carousel's cards, their chips...):
    each within the limits is not enough, so render_send renders them all inside one
    budget. The rendered texts count as data too, which bounds the whole message.
    """
    return _SharedBudget()


class _SharedBudget:
    """:func:`shared_budget`'s context manager: a class, not a ``@contextmanager``
    generator, because it runs for every send and a generator's machinery cost more
    than rendering a short message."""

    __slots__ = ("_token",)

    def __enter__(self) -> None:
        self._token = _SHARED_METER.set(_Meter())

    def __exit__(self, *exc: object) -> None:
        _SHARED_METER.reset(self._token)


def _size(value: object) -> int:
    """What handling ``value`` costs: its length, or 1. Ranges are lazy: 1."""
    if isinstance(value, str | list | tuple | dict):
        return max(len(value), 1)
    return 1


def _range_length(value: range) -> int:
    try:
        return len(value)
    except OverflowError:  # longer than sys.maxsize
        return MAX_VALUE_LENGTH + 1


class _MeteredContext(RenderContext):
    """A render context that meters its work (see the module docstring).

    The hooks are RenderContext's own methods: ``get`` (every variable read),
    ``filter`` (every filter call), ``raise_for_loop_limit`` (every loop start),
    ``stopindex`` (every for loop, before it skips or reverses items) and
    ``disabled_tags``, which ``Node.render`` reads once per node rendered. They are
    Liquid internals: tests/sandbox/corpus.yaml has cases that only each of them stops,
    so an upgrade of python-liquid that bypasses one fails the tests.
    """

    __slots__ = ("_disabled", "meter")
    meter: _Meter

    def __init__(self, template: liquid.BoundTemplate, **kwargs: Any) -> None:
        parent = kwargs.get("parent_context")
        if isinstance(parent, _MeteredContext):
            self.meter = parent.meter
        else:
            self.meter = _SHARED_METER.get() or _Meter()
        super().__init__(template, **kwargs)

    @property
    def disabled_tags(self) -> list[str]:
        self.meter.step()
        return self._disabled

    @disabled_tags.setter
    def disabled_tags(self, value: list[str]) -> None:
        self._disabled = value

    def get(
        self, path: list[object], *, token: Token | None, default: object = UNDEFINED
    ) -> object:
        value = super().get(path, token=token, default=default)
        self.meter.handle(_size(value))
        return value

    def filter(self, name: str, token: Token | None) -> Callable[..., object]:
        return _metered(name, super().filter(name, token), self.meter, token)

    def raise_for_loop_limit(self, length: int = 1) -> None:
        super().raise_for_loop_limit(length)
        self.meter.iterations += length
        if self.meter.iterations > MAX_LOOP_ITERATIONS:
            raise LoopIterationLimitError(
                f"loop iteration limit reached: more than {MAX_LOOP_ITERATIONS} in total",
                token=None,
            )

    def stopindex(self, key: str, index: int | None = None) -> int:
        # Called with where a for loop stops before it skips `offset` items or copies
        # them to reverse them: a loop over (1..10**9) with offset: 10**9 - 2 walks it all.
        if index is not None and index > MAX_LOOP_ITERATIONS:
            raise LoopIterationLimitError(
                f"loop iteration limit reached: a loop may not go past item "
                f"{MAX_LOOP_ITERATIONS} (offset plus limit)",
                token=None,
            )
        return super().stopindex(key, index)


def _metered(
    name: str, func: Callable[..., object], meter: _Meter, token: Token | None
) -> Callable[..., object]:
    predict = _PREDICTED_LENGTH.get(name)

    def too_long(what: str) -> ResourceLimitError:
        return ResourceLimitError(
            f"value length limit reached: {name} {what} more than {MAX_VALUE_LENGTH} "
            "characters or items",
            token=token,
        )

    def run(left: object, *args: object, **kwargs: object) -> object:
        meter.step()
        for value in (left, *args, *kwargs.values()):
            if isinstance(value, range) and _range_length(value) > MAX_VALUE_LENGTH:
                raise too_long("takes a range of")
            meter.handle(_size(value))
        if predict is not None and predict(left, args, kwargs) > MAX_VALUE_LENGTH:
            raise too_long("would make")
        result = func(left, *args, **kwargs)
        size = _size(result)
        if size > MAX_VALUE_LENGTH:
            raise too_long("made")
        meter.handle(size)
        return result

    return run


# --- filters whose result can be the square of their input: predicted before they run ---


def _text(value: object) -> str:
    return "" if value is None or isinstance(value, Undefined) else soft_str(value)


def _leaves(value: object) -> Iterable[object]:
    """The items ``join`` sees: nested lists are flattened (any depth, to be safe)."""
    if isinstance(value, range):  # no longer than MAX_VALUE_LENGTH: checked before
        yield from value
        return
    if not isinstance(value, list | tuple):
        yield value
        return
    stack: list[Any] = [iter(value)]
    while stack:
        for item in stack[-1]:
            if isinstance(item, list | tuple):
                stack.append(iter(item))
                break
            yield item
        else:
            stack.pop()


def _join_length(left: object, args: tuple[object, ...], kwargs: dict[str, object]) -> int:
    separator = args[0] if args else kwargs.get("separator", " ")
    sep = len(_text(separator))
    total = 0
    for item in _leaves(left):
        total += sep + len(item if isinstance(item, str) else _text(item))
        if total > MAX_VALUE_LENGTH:
            break
    return total


def _replace_length(left: object, args: tuple[object, ...], kwargs: dict[str, object]) -> int:
    text = _text(left)
    old = _text(args[0]) if args else ""
    new = _text(args[1]) if len(args) > 1 else _text(kwargs.get("sub", ""))
    count = len(text) + 1 if old == "" else text.count(old)
    return len(text) + count * max(len(new) - len(old), 0)


def _split_length(left: object, args: tuple[object, ...], kwargs: dict[str, object]) -> int:
    text = _text(left)
    sep = args[0] if args else kwargs.get("sep")
    if sep is None or isinstance(sep, Undefined) or _text(sep) == "":
        return len(text)
    return text.count(_text(sep)) + 1


_PREDICTED_LENGTH: Final[
    dict[str, Callable[[object, tuple[object, ...], dict[str, object]], int]]
] = {"join": _join_length, "replace": _replace_length, "split": _split_length}


class _MeteredTemplate(liquid.BoundTemplate):
    context_class = _MeteredContext


class _SandboxEnvironment(liquid.Environment):
    template_class = _MeteredTemplate
    loop_iteration_limit: ClassVar[int | None] = MAX_LOOP_ITERATIONS
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

_MISSING: Final = object()


def _uniq(sequence: list[Any], key: object = None, *, context: RenderContext) -> list[Any]:
    """Liquid's ``uniq`` in linear time (Liquid's is quadratic: ``list.index`` per item).

    Unhashable items (dicts) are compared one by one, as Liquid does; that work is
    metered.
    """
    meter = context.meter if isinstance(context, _MeteredContext) else _Meter()
    seen: set[Any] = set()
    seen_unhashable: list[Any] = []
    result: list[Any] = []
    for obj in sequence:
        item = obj
        if key is not None:
            try:
                item = obj[key]
            except KeyError:
                item = _MISSING
            except TypeError as err:
                raise FilterArgumentError(
                    f"can't read property '{key}' of {obj}", token=None
                ) from err
        try:
            if item in seen:
                continue
            seen.add(item)
        except TypeError:
            meter.handle(len(seen_unhashable))
            if item in seen_unhashable:
                continue
            seen_unhashable.append(item)
        result.append(obj)
    return result


_ENV.add_filter("uniq", with_context(sequence_filter(_uniq)))


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
        meter = _SHARED_METER.get()
        if meter is not None:
            try:
                meter.handle(len(text))
            except ResourceLimitError as exc:
                raise _translate(exc, self.source, "cannot render") from exc
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
    if len(source) > MAX_TEMPLATE_CHARS:
        raise TemplateError(
            f"template is longer than {MAX_TEMPLATE_CHARS} characters",
            source=source,
        )
    _refuse_costly_markup(source)
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


_RAW_BLOCKS: Final = tuple(
    (name, re.compile(rf"\{{%-?\s*{name}\s*-?%\}}"), re.compile(rf"\{{%-?\s*end{name}\s*-?%\}}"))
    for name in ("raw", "doc")
)
_OPENER: Final = re.compile(r"\{\{|\{%")


def _refuse_costly_markup(source: str) -> None:
    """Refuse markup that would make Liquid's parser slow, before it runs; linear.

    Liquid's lexer retries its patterns at every unclosed opener and scans to the end
    each time (10,000 ``{{`` take minutes), so every ``{{``, ``{%``, ``{% raw %}`` and
    ``{% doc %}`` must be closed. Its expression lexer looks ahead for ``..`` at every
    ``(``, so parentheses inside markup are capped at :data:`MAX_MARKUP_PARENS`.
    """
    for opener, closer in (("{{", "}}"), ("{%", "%}")):
        last_close = source.rfind(closer)
        at = source.find(opener, last_close + 2 if last_close >= 0 else 0)
        if at >= 0:
            raise TemplateError(
                f"cannot parse: '{opener}' is never closed with '{closer}'{_where(source, at)}",
                source=source,
                offset=at,
            )
    for name, opening, closing in _RAW_BLOCKS:
        last_end = max((m.start() for m in closing.finditer(source)), default=-1)
        unclosed = opening.search(source, last_end + 1)
        if unclosed is not None:
            at = unclosed.start()
            raise TemplateError(
                f"cannot parse: '{{% {name} %}}' is never closed with '{{% end{name} %}}'"
                f"{_where(source, at)}",
                source=source,
                offset=at,
            )
    pos, parens = 0, 0
    while (markup := _OPENER.search(source, pos)) is not None:
        closer = "}}" if markup.group() == "{{" else "%}"
        close_at = source.find(closer, markup.end())  # found: checked above
        parens += source.count("(", markup.end(), close_at)
        if parens > MAX_MARKUP_PARENS:
            at = markup.start()
            raise TemplateError(
                f"cannot parse: more than {MAX_MARKUP_PARENS} '(' inside {{{{ }}}} and "
                f"{{% %}}{_where(source, at)}",
                source=source,
                offset=at,
            )
        pos = close_at + 2


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
