"""Fuzzing the two sandboxes: whatever the source, only the engine's own error comes out.

Conditions: compiling any string raises nothing but ExpressionError; evaluating what
compiles raises nothing, returns plain data of bounded size, leaves the scope as it was
and triggers no audit event (no import, exec, compile, open, frame or code access...).
Templates: compiling raises nothing but TemplateError; rendering raises nothing but
TemplateError and stays within the output bound.
"""

from __future__ import annotations

import copy
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from engine.errors import ExpressionError, TemplateError
from engine.journey.expressions import MAX_SEQUENCE_LENGTH, compile_expression
from engine.journey.templates import MAX_OUTPUT_CHARS, compile_template

SCOPE: dict[str, Any] = {
    "event": {
        "name": "Ann",
        "n": 10**9,
        "f": 2.5,
        "big": "x" * 20_000,
        "list": list(range(100)),
        "items": [{"sku": "a", "price": 3}, {"sku": "b", "price": None}],
        "flag": True,
        "nothing": None,
        "nested": {"a": {"b": [1, [2, [3]]]}},
    },
    "entry": {"order_id": "o-1"},
    "user": {"first_name": "Ann", "tier": "gold"},
    "journey": {"id": "j"},
}
PRISTINE = copy.deepcopy(SCOPE)
LARGEST_SCOPE_VALUE = 20_000

_audit_events: list[str] | None = None


def _audit(event: str, _args: tuple[object, ...]) -> None:
    if _audit_events is not None:
        _audit_events.append(event)


_hooked = False


@contextmanager
def audit_watch() -> Iterator[list[str]]:
    # The hook is process-wide and can't be removed: installed only when a sandbox test
    # first watches (not at import, which is collection time for the whole run), so the
    # tests before it don't pay a Python call per audited event.
    global _audit_events, _hooked
    if not _hooked:
        sys.addaudithook(_audit)
        _hooked = True
    _audit_events = events = []
    try:
        yield events
    finally:
        _audit_events = None


def plain(value: Any) -> bool:
    """JSON-like data only: never a function, type, module, frame or code object."""
    if value is None or type(value) in (bool, int, float, str):
        return True
    if type(value) is list:
        return all(plain(v) for v in value)
    if type(value) is dict:
        return all(type(k) is str and plain(v) for k, v in value.items())
    return False


def weight(value: Any) -> int:
    if isinstance(value, str):
        return len(value)
    if isinstance(value, list):
        return len(value) + sum(weight(v) for v in value)
    if isinstance(value, dict):
        return len(value) + sum(weight(v) for v in value.values())
    return 1


# Pieces of conditions, escape attempts included, glued together at random.
EXPRESSION_TOKENS = st.sampled_from(
    [
        *"()[]{}'\".,:;+-*/%<>=!&|^~@ \t\n\\0123456789",
        "event",
        "user",
        "entry",
        "journey",
        "x",
        "name",
        "n",
        "big",
        "list",
        "items",
        "nested",
        "a",
        "b",
        "and",
        "or",
        "not",
        "in",
        "is",
        "if",
        "else",
        "lambda",
        "for",
        "&&",
        "||",
        "**",
        "//",
        "==",
        ":=",
        "true",
        "false",
        "null",
        "None",
        "True",
        "len",
        "lower",
        "upper",
        "str",
        "int",
        "float",
        "round",
        "min",
        "max",
        "abs",
        "contains",
        "startswith",
        "exists",
        "getattr",
        "eval",
        "__import__",
        "open",
        "__class__",
        "__globals__",
        "__subclasses__",
        "mro",
        "format",
        "_x",
        "10**9",
        "'a'",
        "'%s'",
        "'{0.__class__}'",
        "f'",
        "b'",
        "r'",
        "'\\x5f'",
        "'\\u005f'",
        "'\\N{LOW LINE}'",
        "1e308",
        "-1",
        "0x10",
        "1j",
        "...",
        "é",
        "\ufe33",
        "\uff45",
        "\u200b",
        "\u202e",
        "\x00",
        "\ud800",
    ]
)
EXPRESSIONS = st.one_of(
    st.lists(EXPRESSION_TOKENS, max_size=40).map("".join),
    st.text(max_size=200),
    st.text(st.characters(codec=None), max_size=100),  # surrogates included
)


@settings(
    max_examples=1500,
    deadline=None,
    database=None,
    # A fixed sequence in CI: one clean-clone run hung inside this test on a random draw
    # we could not reproduce (PROP_SCALE-style deep runs: drop derandomize locally).
    derandomize=True,
    suppress_health_check=[HealthCheck.too_slow],
)
@given(source=EXPRESSIONS)
def test_conditions_raise_only_expression_errors_and_never_escape(source: str) -> None:
    try:
        expression = compile_expression(source)
    except ExpressionError as error:
        assert error.offset is None or 0 <= error.offset <= len(source)
        str(error)  # the message prints, whatever the source holds
        return
    with audit_watch() as events:
        value = expression.evaluate(SCOPE)
        truth = expression.test(SCOPE)
    assert events == [], f"evaluation raised audit events {events}"
    assert truth in (True, False)
    assert plain(value), f"{type(value).__name__} escaped"
    assert weight(value) <= max(MAX_SEQUENCE_LENGTH, 3 * LARGEST_SCOPE_VALUE)
    assert SCOPE == PRISTINE


LIQUID_TOKENS = st.sampled_from(
    [
        "{{",
        "}}",
        "{%",
        "%}",
        "{{-",
        "-}}",
        "{%-",
        "-%}",
        " ",
        "\n",
        "|",
        ":",
        ",",
        ".",
        "(",
        ")",
        "[",
        "]",
        "..",
        "'",
        '"',
        "=",
        "==",
        "<",
        ">",
        "!=",
        "contains",
        "and",
        "or",
        "for",
        "endfor",
        "in",
        "if",
        "endif",
        "else",
        "elsif",
        "unless",
        "endunless",
        "case",
        "when",
        "endcase",
        "assign",
        "capture",
        "endcapture",
        "cycle",
        "tablerow",
        "endtablerow",
        "increment",
        "raw",
        "endraw",
        "comment",
        "endcomment",
        "liquid",
        "echo",
        "break",
        "continue",
        "include",
        "render",
        "limit",
        "offset",
        "reversed",
        "event",
        "user",
        "x",
        "i",
        "big",
        "list",
        "items",
        "name",
        "__class__",
        "size",
        "first",
        "join",
        "split",
        "append",
        "replace",
        "uniq",
        "sort",
        "map",
        "times",
        "plus",
        "date",
        "escape",
        "url_encode",
        "base64_encode",
        "strip_html",
        "default",
        "truncate",
        "1",
        "0",
        "-1",
        "1000000000",
        "'a'",
        "''",
        "'%Y'",
        "nil",
        "true",
        "empty",
        "text",
    ]
)
TEMPLATES = st.one_of(
    st.lists(LIQUID_TOKENS, max_size=60).map("".join),
    st.text(max_size=200),
)


@settings(
    max_examples=1500,
    deadline=None,
    database=None,
    # A fixed sequence in CI: one clean-clone run hung inside this test on a random draw
    # we could not reproduce (PROP_SCALE-style deep runs: drop derandomize locally).
    derandomize=True,
    suppress_health_check=[HealthCheck.too_slow],
)
@given(source=TEMPLATES)
def test_templates_raise_only_template_errors(source: str) -> None:
    try:
        template = compile_template(source)
    except TemplateError as error:
        str(error)
        return
    try:
        text = template.render(SCOPE)
    except TemplateError as error:
        str(error)
        return
    assert isinstance(text, str) and len(text) <= MAX_OUTPUT_CHARS
    assert SCOPE == PRISTINE


def test_the_audit_watch_sees_what_an_escape_would_do() -> None:
    with audit_watch() as events:
        compile("1", "<fuzz>", "eval")
        sys._getframe()
    assert "compile" in events and "sys._getframe" in events
