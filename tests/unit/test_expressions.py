"""The condition language: semantics, refusals and robustness."""

from __future__ import annotations

import time
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from engine.errors import ExpressionError, JourneyError
from engine.journey.expressions import (
    ALLOWED_FUNCTIONS,
    ALLOWED_ROOTS,
    MAX_DEPTH,
    MAX_SOURCE_LENGTH,
    Expression,
    compile_expression,
)

SCOPE: dict[str, Any] = {
    "event": {
        "total": 30,
        "price": 2.5,
        "order_id": "o-1",
        "country": "US",
        "items": [{"sku": "a"}, {"sku": "b"}, {"sku": "c"}],
        "tags": ["new", "promo"],
        "flag": False,
        "nothing": None,
        "true": "key named true",
    },
    "entry": {"order_id": "o-1"},
    "user": {"tier": "gold", "vip": False, "age": 20, "first name": "Ann", "name": "Ann"},
    "journey": {"id": "welcome"},
}


def ev(source: str, scope: dict[str, Any] | None = None) -> Any:
    return compile_expression(source).evaluate(SCOPE if scope is None else scope)


def refused(source: str) -> ExpressionError:
    with pytest.raises(ExpressionError) as info:
        compile_expression(source)
    return info.value


# --- the examples journeys use ---


@pytest.mark.parametrize(
    ("source", "expected"),
    [
        ("event.total > 0", True),
        ("event.order_id == entry.order_id", True),
        ("user.tier in ['gold', 'platinum'] and not user.vip", True),
        ("len(event.items) >= 2 or event.total * 1.2 > 100", True),
        ("lower(event.country) == 'us'", True),
        ("event.total > 0 && user.age >= 18", True),
        ("event.total > 100 || !user.vip", True),
    ],
)
def test_journey_examples(source: str, expected: bool) -> None:
    assert compile_expression(source).test(SCOPE) is expected


# --- operators ---


@pytest.mark.parametrize(
    ("source", "expected"),
    [
        ("1 + 2", 3),
        ("5 - 7", -2),
        ("3 * 4", 12),
        ("7 / 2", 3.5),
        ("7 // 2", 3),
        ("7 % 3", 1),
        ("2 ** 10", 1024),
        ("2 ** -1", 0.5),
        ("-event.total", -30),
        ("+event.price", 2.5),
        ("'ab' + 'cd'", "abcd"),
        ("'ab' * 3", "ababab"),
        ("[1] + [2]", [1, 2]),
        ("1 == 1.0", True),
        ("1 != 2", True),
        ("1 < 2", True),
        ("2 <= 2", True),
        ("3 > 2", True),
        ("2 >= 3", False),
        ("1 < event.total < 100", True),
        ("1 < event.total < 10", False),
        ("'new' in event.tags", True),
        ("'old' not in event.tags", True),
        ("'S' in event.country", True),
        ("'big' if event.total > 10 else 'small'", "big"),
        ("'big' if event.total > 100 else 'small'", "small"),
        ("[event.total, 1]", [30, 1]),
        ("(1, 2)", [1, 2]),
    ],
)
def test_operators(source: str, expected: Any) -> None:
    assert ev(source) == expected


@pytest.mark.parametrize(
    ("source", "expected"),
    [
        ("1 + 2 * 3", 7),
        ("(1 + 2) * 3", 9),
        ("-2 ** 2", -4),
        ("2 ** 3 ** 2", 512),
        ("not False or True", True),
        ("not (False or True)", False),
        ("True or False and False", True),
        ("1 + 1 == 2 and 'a' < 'b'", True),
        ("! true || true", True),
        ("!(true || true)", False),
    ],
)
def test_precedence(source: str, expected: Any) -> None:
    assert ev(source) == expected


def test_boolean_operators_return_operands_like_python() -> None:
    assert ev("event.missing or 'fallback'") == "fallback"
    assert ev("event.total and event.country") == "US"
    assert ev("0 or '' or None") is None
    assert ev("1 and 2 and 3") == 3
    assert ev("1 and 0 and 3") == 0


# --- aliases ---


def test_aliases() -> None:
    assert ev("true") is True
    assert ev("false") is False
    assert ev("null") is None
    assert ev("event.nothing == null") is True
    assert ev("true && !false") is True
    assert ev("false || null") is None
    assert ev("1 != 2") is True  # '!=' is not '!'
    assert ev("!!event.total") is True


def test_aliases_are_not_translated_inside_strings_or_after_a_dot() -> None:
    assert ev("'a && b || !c true' == 'a && b || !c true'") is True
    assert ev('"null"') == "null"
    assert ev("event.true") == "key named true"


def test_newlines_from_yaml_block_scalars() -> None:
    assert ev("event.total > 0\n  and user.age >= 18\n") is True
    assert ev("  \t event.total") == 30


# --- reading the scope ---


def test_access() -> None:
    assert ev("event.items[0].sku") == "a"
    assert ev("event.items[-1]['sku']") == "c"
    assert ev("user['first name']") == "Ann"
    assert ev("event") is SCOPE["event"]
    assert ev("(event.items)[1].sku") == "b"
    assert ev("[event.items][0][2].sku") == "c"
    assert ev("'abc'[1]") == "b"


@pytest.mark.parametrize(
    "source",
    [
        "event.missing",
        "event.missing.deeper.still",
        "event.items[10]",
        "event.items[-10]",
        "event.items.sku",  # a dot on a list
        "event.country.upper",  # a dot on a string
        "event.total[0]",
        "event.items['0']",
        "user.name[99]",
        "journey.id.x",
    ],
)
def test_absent_values_are_none(source: str) -> None:
    expression = compile_expression(source)
    assert expression.evaluate(SCOPE) is None
    assert expression.test(SCOPE) is False


def test_missing_roots_are_none() -> None:
    assert ev("event.total", {}) is None
    assert ev("user", {"event": {}}) is None
    assert compile_expression("event.total > 0").test({}) is False


def test_roots_are_reported() -> None:
    assert compile_expression("1 + 1").roots == frozenset()
    assert compile_expression("event.a == entry.b").roots == {"event", "entry"}
    assert compile_expression("len(user.x) > 0 or journey.y").roots == {"user", "journey"}
    assert frozenset({"event", "entry", "user", "journey"}) == ALLOWED_ROOTS


# --- total semantics: mismatches are false, failures are None ---


@pytest.mark.parametrize(
    "source",
    [
        "event.missing > 3",
        "event.missing < 3",
        "None >= 0",
        "'a' < 2",
        "[1] < 'a'",
        "event.items > 1",
        "1 in event.missing",
        "1 not in event.missing",  # no container: neither in nor not in
        "1 in 'abc'",
        "event.missing < 1 < 2",
    ],
)
def test_mismatched_comparisons_are_false(source: str) -> None:
    assert ev(source) is False


def test_equality_follows_python() -> None:
    assert ev("event.missing == None") is True
    assert ev("event.missing == event.other_missing") is True  # use exists() to guard
    assert ev("event.missing != 3") is True
    assert ev("not (event.missing > 3)") is True
    assert ev("'1' == 1") is False


@pytest.mark.parametrize(
    "source",
    [
        "1 / 0",
        "1 // 0",
        "1 % 0",
        "event.missing + 1",
        "event.missing * 1.2",
        "'a' - 'b'",
        "-'a'",
        "'a' + 1",
        "0 ** -1",
        "(-8) ** 0.5",  # complex
        "1e308 ** 2",  # float overflow
    ],
)
def test_failed_arithmetic_is_none(source: str) -> None:
    expression = compile_expression(source)
    assert expression.evaluate(SCOPE) is None
    assert expression.test(SCOPE) is False


def test_failure_inside_or_does_not_hide_other_branch() -> None:
    assert ev("event.missing * 1.2 > 100 or event.total > 10") is True


def test_membership_in_literal_lists() -> None:
    assert ev("event.total in [10, 20, 30]") is True
    assert ev("event.total not in [10, 20, 30]") is False
    assert ev("event.missing in [None]") is True
    assert ev("event.items in [1, 2]") is False  # unhashable value
    assert ev("event.tags in [['new', 'promo']]") is True
    assert ev("1 in [True]") is True  # same as Python lists
    assert ev("user.tier in ('gold', 'silver')") is True


# --- functions ---


@pytest.mark.parametrize(
    ("source", "expected"),
    [
        ("len(event.items)", 3),
        ("len('abc')", 3),
        ("len(user)", 5),
        ("len(event.total)", None),
        ("len(event.missing)", None),
        ("lower('AbC')", "abc"),
        ("upper(event.country)", "US"),
        ("lower(event.total)", None),
        ("abs(-3)", 3),
        ("abs('x')", None),
        ("min(3, 1, 2)", 1),
        ("max(event.tags)", "promo"),
        ("min([])", None),
        ("max(1, 'a')", None),
        ("round(2.567, 2)", 2.57),
        ("round(2.5)", 2),
        ("round('x')", None),
        ("round(5, -10**9)", None),  # would compute 10**(10**9)
        ("int('42')", 42),
        ("int(3.9)", 3),
        ("int('x')", None),
        ("int(event.missing)", None),
        ("float('2.5')", 2.5),
        ("float('x')", None),
        ("str(42)", "42"),
        ("str(event.missing)", None),
        ("bool(event.tags)", True),
        ("bool('')", False),
        ("contains(event.tags, 'new')", True),
        ("contains(event.country, 'S')", True),
        ("contains(event.missing, 'x')", False),
        ("contains('abc', 1)", False),
        ("startswith(event.order_id, 'o-')", True),
        ("startswith(event.total, '3')", False),
        ("endswith(journey.id, 'come')", True),
        ("endswith(journey.id, 1)", False),
        ("exists(event.total)", True),
        ("exists(event.flag)", True),
        ("exists(event.nothing)", False),
        ("exists(event.missing.deeper)", False),
    ],
)
def test_functions(source: str, expected: Any) -> None:
    assert ev(source) == expected


def test_function_whitelist() -> None:
    assert {"len", "lower", "upper", "contains", "exists", "round"} <= ALLOWED_FUNCTIONS
    assert not {"getattr", "eval", "open", "__import__", "days_since"} & ALLOWED_FUNCTIONS


@pytest.mark.parametrize(
    ("source", "message"),
    [
        ("len()", "len() takes 1 argument"),
        ("len(1, 2)", "len() takes 1 argument"),
        ("contains('a')", "contains() takes 2 arguments"),
        ("min()", "min() takes 1 to 64 arguments"),
        ("round(1, ndigits=2)", "no keyword arguments"),
        ("len", "must be called"),
    ],
)
def test_function_misuse_is_refused(source: str, message: str) -> None:
    assert message in refused(source).message


# --- escape attempts and other refusals ---


@pytest.mark.parametrize(
    ("source", "message"),
    [
        ("__import__('os')", "function '__import__' is not allowed"),
        ("event.__class__", "attribute '__class__' is not allowed"),
        ("event._x", "attribute '_x' is not allowed"),
        ("event['__class__']", "key '__class__' is not allowed"),
        ("().__class__.__bases__", "is not allowed"),
        ("open('x')", "function 'open' is not allowed"),
        ("lambda: 1", "lambdas are not allowed"),
        ("[x for x in event]", "comprehensions are not allowed"),
        ("(x for x in event)", "comprehensions are not allowed"),
        ("{x: 1 for x in event}", "comprehensions are not allowed"),
        ("event.items.pop()", "method calls are not allowed"),
        ("lower(event.country).strip()", "method calls are not allowed"),
        ("getattr(event, 'x')", "function 'getattr' is not allowed"),
        ("eval('1')", "function 'eval' is not allowed"),
        ("(lambda: 1)()", "lambdas are not allowed"),
        ("9**9**9", "'**' needs a number literal exponent of at most 100"),
        ("2**1000", "'**' needs a number literal exponent of at most 100"),
        ("2**event.n", "'**' needs a number literal exponent"),
        ("f'{event.x}'", "f-strings are not allowed"),
        ("(y := 1)", "assignment (':=') is not allowed"),
        ("[*event.items]", "unpacking is not allowed"),
        ("len(*event.items)", "unpacking is not allowed"),
        ("{1: 2}", "dict and set literals"),
        ("{1, 2}", "dict and set literals"),
        ("event.items[1:2]", "slices are not supported"),
        ("event[event.key]", "literal string key or integer index"),
        ("event.items[True]", "literal string key or integer index"),
        ("foo", "unknown name 'foo'"),
        ("now", "unknown name 'now'"),
        ("__builtins__", "unknown name"),
        ("event.x is None", "'is' is not allowed"),
        ("event.a & event.b", "did you mean '&&'"),
        ("1 << 1000", "operator '<<' is not allowed"),
        ("~1", "operator '~' is not allowed"),
        ("b'x'", "bytes literals are not allowed"),
        ("1j", "complex literals are not allowed"),
        ("...", "ellipsis literals are not allowed"),
        ("'''x'''", "triple-quoted strings are not supported"),
        ("event.x = 1", "syntax error"),
        ("event.total >", "syntax error"),
        ("1and 2", "invalid decimal literal"),
        ("event.path == 'C:\\d'", "invalid escape sequence"),
        ("'unterminated", "syntax error"),
        ("", "expression is empty"),
        ("   ", "expression is empty"),
    ],
)
def test_refused_at_compile_time(source: str, message: str) -> None:
    error = refused(source)
    assert message in error.message
    assert error.source == source
    assert isinstance(error, JourneyError)


def test_error_offsets_point_at_the_problem() -> None:
    assert refused("event.total > 0 and event.__class__").offset == 26
    assert refused("event.total > 0 and foo").offset == 20
    assert refused("2 ** 1000").offset == 5
    assert refused("é + = 1").offset == 4  # characters, not UTF-8 bytes
    assert refused("'é' == 1 and éé._x").offset == 16
    assert refused("true && bogus").offset == 8  # offsets survive alias translation
    assert "at column 9" in str(refused("true && bogus"))


def test_nesting_is_bounded() -> None:
    ok = "(" * (MAX_DEPTH - 2) + "event.total" + ")" * (MAX_DEPTH - 2)
    assert ev(ok) == 30
    assert "nested deeper" in refused("(" * 200 + "1" + ")" * 200).message
    assert "nested deeper" in refused("[" * 40 + "1" + "]" * 40).message
    assert "nested deeper" in refused("-" * 500 + "1").message
    assert "nested deeper" in refused("not " * 100 + "true").message
    assert "nested deeper" in refused("event" + ".a" * 40).message
    assert "nested deeper" in refused("+".join(["1"] * 40)).message


def test_source_length_is_bounded() -> None:
    source = "event.total > 0 and " * 100 + "true"
    assert len(source) > MAX_SOURCE_LENGTH
    assert "longer than" in refused(source).message


@pytest.mark.parametrize(
    "source",
    [
        "'a' * 10**9",
        "10**9 * 'a'",
        "[1] * 10**9",
        "'a' * 10**4 * 10**4",
        "(9**100)**100",
        "((9**100)**100)**100",
        "'%0999999999d' % 1",
        "event.country * 10**9",
    ],
)
def test_huge_results_are_none_and_cheap(source: str) -> None:
    start = time.perf_counter()
    expression = compile_expression(source)
    assert expression.evaluate(SCOPE) is None
    assert time.perf_counter() - start < 1.0


def test_small_repetition_still_works() -> None:
    assert ev("'ab' * 5000") == "ab" * 5000
    assert ev("len(event.tags * 3)") == 6


# --- the Expression object and the cache ---


def test_expression_object() -> None:
    expression = compile_expression("event.total > 0")
    assert isinstance(expression, Expression)
    assert expression.source == "event.total > 0"
    assert compile_expression("event.total > 0") is expression  # cached per source
    assert expression == Expression("event.total > 0", frozenset(), lambda _s: None)
    assert hash(expression) == hash("event.total > 0")
    assert repr(expression) == "Expression('event.total > 0')"


def test_unusable_scope() -> None:
    expression = compile_expression("event.total > 0")
    with pytest.raises(ExpressionError, match="evaluation failed"):
        expression.evaluate(None)  # type: ignore[arg-type]
    assert expression.test(None) is False  # type: ignore[arg-type]
    assert expression.test({"event": 5}) is False


def test_constant_subexpressions_are_folded_without_changing_results() -> None:
    assert ev("10**2 + 1 == 101") is True
    assert ev("event.total > 10**1") is True
    assert ev("lower('ABC') == 'abc' and event.total") == 30


# --- properties ---

_ARITH = ["+", "-", "*", "//", "%", "/"]
_ints = st.integers(min_value=-(10**12), max_value=10**12)


@settings(deadline=None, database=None)
@given(a=_ints, b=_ints, op=st.sampled_from(_ARITH))
def test_arithmetic_agrees_with_python(a: int, b: int, op: str) -> None:
    try:
        expected = eval(f"({a}) {op} ({b})")  # trusted: two ints and an operator
    except ZeroDivisionError:
        expected = None
    scope = {"event": {"a": a, "b": b}}
    assert compile_expression(f"event.a {op} event.b").evaluate(scope) == expected
    assert compile_expression(f"({a}) {op} ({b})").evaluate({}) == expected


@settings(deadline=None, database=None)
@given(a=_ints, b=_ints, op=st.sampled_from(["<", "<=", ">", ">=", "==", "!="]))
def test_comparisons_agree_with_python(a: int, b: int, op: str) -> None:
    expected = eval(f"({a}) {op} ({b})")  # trusted: two ints and an operator
    scope = {"event": {"a": a}, "user": {"b": b}}
    assert compile_expression(f"event.a {op} user.b").test(scope) is expected


_json = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=5),
    lambda children: (
        st.lists(children, max_size=4)
        | st.dictionaries(st.sampled_from(["a", "b", "items", "total"]), children, max_size=4)
    ),
    max_leaves=12,
)
_scopes = st.dictionaries(st.sampled_from(sorted(ALLOWED_ROOTS)), _json, max_size=4)

_CONDITIONS = [
    "event.total > 20 and user.tier in ['gold', 'silver'] or event.country == 'US'",
    "len(event.items) >= 2 or event.total * 1.2 > 100",
    "event.a.b[0] + user.a - entry.b * 2 / journey.total // 3 % 2 ** 2 > -1",
    "lower(event.a) == upper(user.b) or contains(event.items, user.a)",
    "min(event.items) < max(event.items) and abs(event.total) >= round(event.b, 2)",
    "int(event.a) + float(user.b) == len(str(entry.items))",
    "startswith(event.a, 'x') or endswith(user.b, 'y') or exists(journey.a)",
    "event.a < event.b < event.total and event.items[0].a not in event.b",
    "event.a * event.b == event.items * 2",
    "event.a if event.b else event.items[-1]['total']",
    "bool(event) and !user.a || event.total in [1, 'a', null, true]",
]


@settings(deadline=None, database=None)
@given(scope=_scopes, source=st.sampled_from(_CONDITIONS))
def test_conditions_never_raise_on_json_scopes(scope: dict[str, Any], source: str) -> None:
    expression = compile_expression(source)
    assert expression.test(scope) in (True, False)
    expression.evaluate(scope)  # total: no ExpressionError for JSON data


_EXPRESSION_CHARS = st.sampled_from(
    [
        *"()[]'\".,+-*/%<>=!&|~_ 0123456789",
        "event",
        "user",
        "x",
        "and",
        "or",
        "not",
        "in",
        "len",
        "**",
        "&&",
        "||",
        "true",
        "null",
        "if",
        "else",
        "lambda",
        ":",
        "__class__",
        "é",
    ]
)


@settings(deadline=None, database=None)
@given(parts=st.lists(_EXPRESSION_CHARS, max_size=30))
def test_compiler_only_raises_expression_error(parts: list[str]) -> None:
    source = "".join(parts)
    try:
        expression = compile_expression(source)
    except ExpressionError as error:
        assert error.offset is None or 0 <= error.offset <= len(source)
        return
    assert expression.test({"event": {"a": 1}, "user": None}) in (True, False)
