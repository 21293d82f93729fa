"""A small, safe expression language for journey conditions.

Conditions (``entry.when``, branch cases, ``wait_for`` paths, ``goal.when``) are
written by journey authors, so they are parsed with :mod:`ast`, checked against an
allow-list and compiled into nested closures. Nothing is ever handed to ``eval``.

What is accepted:

* literals: ints, floats, strings ('…' or "…"), ``True``/``False``/``None`` (also
  ``true``/``false``/``null``), lists and tuples;
* ``== != < <= > >=`` (chainable), ``in``/``not in``, ``and``/``or``/``not`` (also
  ``&&``/``||``/``!``), ``+ - * / // %``, unary ``-``/``+``, ``**`` with a number
  literal exponent of at most 100, ``a if c else b`` and parentheses;
* the roots ``event``, ``entry``, ``user``, ``journey``, read with dots and with
  literal subscripts: ``event.items[0]``, ``user['first name']``;
* the functions in :data:`ALLOWED_FUNCTIONS`.

Evaluation is total, so a condition on data that is absent or of the wrong type is
simply false instead of failing the journey:

* a missing key, a dot on something that is not a dict, or an index out of range
  gives ``None``;
* an ordering comparison or ``in`` that Python would refuse (``None > 3``, ``'a' < 2``,
  ``1 in None``) gives ``False``; ``==``/``!=`` follow Python, so ``None == None``;
* arithmetic and functions that fail (``1 / 0``, ``None + 1``, ``int('x')``) give
  ``None``, which is falsy and compares false to numbers;
* results that would be too big give ``None`` before anything large is built: a string
  or list made by ``*``, ``+`` or ``str()`` longer than :data:`MAX_SEQUENCE_LENGTH`
  characters or items (``'a' * 10**9``; ``[[0] * 1000] * 100`` counts the 100,100 items
  it would repeat, so nesting cannot multiply the bound), an ``int ** int`` of more than
  :data:`MAX_POWER_BITS` bits (``(9**100)**100``), and printf-style ``str % x``.

So evaluation is bounded by the source: there are no loops, no names to bind, no
method calls and no attribute reads (``a.b`` is a dict lookup), and every value it
builds is capped.
"""

from __future__ import annotations

import ast
import operator
import warnings
from collections.abc import Callable, Mapping
from functools import lru_cache
from typing import Any, Final

from engine.errors import ExpressionError

Scope = Mapping[str, Any]
_Fn = Callable[[Scope], Any]

ALLOWED_ROOTS: Final[frozenset[str]] = frozenset({"event", "entry", "user", "journey"})

MAX_SOURCE_LENGTH: Final = 2000
MAX_DEPTH: Final = 32
MAX_EXPONENT: Final = 100
# A string or list built by `*`, `+` or str() beyond this many characters or items
# gives None. For `*` and str() nested lists count every item they would repeat or
# print, so `[[[0] * 1000] * 1000] * 1000` cannot stand for 10**9 items.
MAX_SEQUENCE_LENGTH: Final = 10_000
# `int ** int` beyond this many bits gives None: stacked powers grow 100x per level.
MAX_POWER_BITS: Final = 10_000
MAX_ROUND_DIGITS: Final = 20

_SEQUENCES: Final = (str, list, tuple)
_CONTAINERS: Final = (str, list, tuple, dict)
_SCALARS: Final = (int, float, str, bool, type(None))
_ARITH_ERRORS: Final = (TypeError, ValueError, ArithmeticError)
_COMPARE_ERRORS: Final = (TypeError, ValueError)


# --- whitelisted functions: every one returns None (or False) instead of raising ---


def _is_number(x: object) -> bool:
    return isinstance(x, int | float)


def _len(x: object) -> int | None:
    return len(x) if isinstance(x, _CONTAINERS) else None


def _lower(x: object) -> str | None:
    return x.lower() if isinstance(x, str) else None


def _upper(x: object) -> str | None:
    return x.upper() if isinstance(x, str) else None


def _abs(x: Any) -> Any:
    return abs(x) if _is_number(x) else None


def _min(*xs: Any) -> Any:
    try:
        return min(xs[0]) if len(xs) == 1 else min(xs)
    except (TypeError, ValueError):
        return None


def _max(*xs: Any) -> Any:
    try:
        return max(xs[0]) if len(xs) == 1 else max(xs)
    except (TypeError, ValueError):
        return None


def _round(x: Any, ndigits: Any = None) -> Any:
    if not _is_number(x):
        return None
    # A huge negative ndigits on an int computes 10**-ndigits: bound it.
    if ndigits is not None and (type(ndigits) is not int or abs(ndigits) > MAX_ROUND_DIGITS):
        return None
    try:
        return round(x, ndigits)
    except (OverflowError, ValueError):
        return None


def _int(x: Any) -> int | None:
    try:
        return int(x)
    except (TypeError, ValueError, OverflowError):
        return None


def _float(x: Any) -> float | None:
    try:
        return float(x)
    except (TypeError, ValueError, OverflowError):
        return None


def _str(x: object) -> str | None:
    # A missing value stays missing rather than becoming the text 'None'.
    if x is None:
        return None
    # Printing a list walks every item it holds, shared ones included: bound that first.
    if isinstance(x, list | tuple | dict) and _weight(x, MAX_SEQUENCE_LENGTH) > MAX_SEQUENCE_LENGTH:
        return None
    try:
        text = str(x)
    except ValueError:  # ints too long to print
        return None
    return text if len(text) <= MAX_SEQUENCE_LENGTH or isinstance(x, str) else None


def _bool(x: object) -> bool:
    return bool(x)


def _contains(container: Any, item: Any) -> bool:
    try:
        return isinstance(container, _CONTAINERS) and item in container
    except TypeError:
        return False


def _startswith(s: object, prefix: object) -> bool:
    return isinstance(s, str) and isinstance(prefix, str) and s.startswith(prefix)


def _endswith(s: object, suffix: object) -> bool:
    return isinstance(s, str) and isinstance(suffix, str) and s.endswith(suffix)


def _exists(x: object) -> bool:
    return x is not None


# name -> (function, min arity, max arity)
_FUNCTIONS: Final[dict[str, tuple[Callable[..., Any], int, int]]] = {
    "len": (_len, 1, 1),
    "lower": (_lower, 1, 1),
    "upper": (_upper, 1, 1),
    "abs": (_abs, 1, 1),
    "min": (_min, 1, 64),
    "max": (_max, 1, 64),
    "round": (_round, 1, 2),
    "int": (_int, 1, 1),
    "float": (_float, 1, 1),
    "str": (_str, 1, 1),
    "bool": (_bool, 1, 1),
    "contains": (_contains, 2, 2),
    "startswith": (_startswith, 2, 2),
    "endswith": (_endswith, 2, 2),
    "exists": (_exists, 1, 1),
}

ALLOWED_FUNCTIONS: Final[frozenset[str]] = frozenset(_FUNCTIONS)


# --- guarded operators ---


def _weight(value: object, limit: int) -> int:
    """Characters and items in ``value``, nested ones included; stops past ``limit``.

    A list repeated by ``*`` holds the same inner list many times: this counts each time,
    which is what comparing or printing it costs.
    """
    total = 0
    stack = [value]
    while stack:
        v = stack.pop()
        if isinstance(v, str):
            total += len(v)
        elif isinstance(v, list | tuple):
            total += len(v)
            stack.extend(x for x in v if isinstance(x, str | list | tuple | dict))
        elif isinstance(v, dict):
            total += len(v)
            stack.extend(v.values())
        if total > limit:
            return limit + 1
    return total


def _repeat(seq: Any, times: int) -> Any:
    if times <= 0:
        return seq * times  # empty
    if isinstance(seq, str):
        size = len(seq) * times
    else:
        size = _weight(seq, MAX_SEQUENCE_LENGTH // times + 1) * times
    return seq * times if size <= MAX_SEQUENCE_LENGTH else None


def _mul(a: Any, b: Any) -> Any:
    if isinstance(a, _SEQUENCES) and isinstance(b, int):
        return _repeat(a, b)
    if isinstance(b, _SEQUENCES) and isinstance(a, int):
        return _repeat(b, a)
    return a * b


def _add(a: Any, b: Any) -> Any:
    result = a + b
    # Each operand is bounded, so the result is at most twice as long: check after.
    if isinstance(result, str | list) and len(result) > MAX_SEQUENCE_LENGTH:
        return None
    return result


def _mod(a: Any, b: Any) -> Any:
    # `'%0999999999d' % 1` would build a gigabyte: no printf formatting.
    return None if isinstance(a, str) else a % b


def _pow(a: Any, b: Any) -> Any:
    if type(a) is int and type(b) is int and b > 0 and a.bit_length() * b > MAX_POWER_BITS:
        return None
    result = a**b
    return None if isinstance(result, complex) else result  # (-8) ** 0.5


def _in(a: Any, b: Any) -> bool:
    return a in b


def _not_in(a: Any, b: Any) -> bool:
    return a not in b


_BINOPS: Final[dict[type[ast.operator], Callable[[Any, Any], Any]]] = {
    ast.Add: _add,
    ast.Sub: operator.sub,
    ast.Mult: _mul,
    ast.Div: operator.truediv,
    ast.FloorDiv: operator.floordiv,
    ast.Mod: _mod,
    ast.Pow: _pow,
}

_COMPARISONS: Final[dict[type[ast.cmpop], Callable[[Any, Any], Any]]] = {
    ast.Eq: operator.eq,
    ast.NotEq: operator.ne,
    ast.Lt: operator.lt,
    ast.LtE: operator.le,
    ast.Gt: operator.gt,
    ast.GtE: operator.ge,
    ast.In: _in,
    ast.NotIn: _not_in,
}


# Callees whose own refusal says more than "only named functions can be called".
_CALLEE_REFUSALS: Final = (
    ast.Lambda,
    ast.ListComp,
    ast.SetComp,
    ast.DictComp,
    ast.GeneratorExp,
    ast.JoinedStr,
    ast.NamedExpr,
)

_REFUSED_BINOPS: Final[dict[type[ast.operator], str]] = {
    ast.BitAnd: "&",
    ast.BitOr: "|",
    ast.BitXor: "^",
    ast.LShift: "<<",
    ast.RShift: ">>",
    ast.MatMult: "@",
}


def _get(value: Any, key: str | int) -> Any:
    """``value.key`` / ``value[key]``: a dict key or a sequence index, else None."""
    if isinstance(value, Mapping):
        return value.get(key)
    if type(key) is int and isinstance(value, _SEQUENCES):
        try:
            return value[key]
        except IndexError:
            return None
    return None


# --- public API ---


class Expression:
    """A compiled condition. Immutable and safe to share between threads."""

    __slots__ = ("_fn", "roots", "source")

    def __init__(self, source: str, roots: frozenset[str], fn: _Fn) -> None:
        self.source = source
        self.roots = roots
        self._fn = fn

    def evaluate(self, scope: Scope) -> Any:
        """The expression's value. Raises ExpressionError only if the scope is unusable."""
        try:
            return self._fn(scope)
        except Exception as exc:  # evaluation is total by design; this is a bug or bad scope
            raise ExpressionError(f"evaluation failed: {exc!r}", source=self.source) from exc

    def test(self, scope: Scope) -> bool:
        """The expression's truthiness; never raises (a failure is False)."""
        try:
            return bool(self._fn(scope))
        except Exception:  # a condition that cannot be evaluated is not met
            return False

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Expression) and other.source == self.source

    def __hash__(self) -> int:
        return hash(self.source)

    def __repr__(self) -> str:
        return f"Expression({self.source!r})"


@lru_cache(maxsize=4096)
def compile_expression(source: str) -> Expression:
    """Parse, check and compile ``source``; raises ExpressionError saying what is wrong."""
    if not isinstance(source, str):
        raise ExpressionError("an expression must be a string", source=repr(source))
    if len(source) > MAX_SOURCE_LENGTH:
        raise ExpressionError(
            f"expression is longer than {MAX_SOURCE_LENGTH} characters", source=source
        )
    text, origin = _translate(source)
    if not text.strip():
        raise ExpressionError("expression is empty", source=source)
    try:
        # The parser warns about sloppy input ('\d', `1and`); make that an error so the
        # outcome doesn't depend on the process's warning filters. (catch_warnings is
        # process-wide, which is fine for journey loading.)
        with warnings.catch_warnings():
            warnings.simplefilter("error")
            tree = ast.parse(text, mode="eval")
    except SyntaxError as exc:
        # exc.offset is 1-based and in characters; 0 or None when the input just stops.
        offset = origin[min(exc.offset - 1, len(origin) - 1)] if exc.offset else None
        message = exc.msg if offset is not None else f"{exc.msg} (is the expression incomplete?)"
        raise ExpressionError(f"syntax error: {message}", source=source, offset=offset) from None
    except (ValueError, MemoryError, RecursionError) as exc:
        raise ExpressionError(f"cannot parse: {exc}", source=source) from None
    compiler = _Compiler(source, text, origin)
    fn = compiler.compile(tree.body, 1).fn
    return Expression(source, frozenset(compiler.roots), fn)


# --- alias translation ---

_WORD_ALIASES: Final = {"true": "True", "false": "False", "null": "None"}


def _translate(source: str) -> tuple[str, list[int]]:
    """Rewrite the aliases into Python outside string literals.

    Returns the text and, for each of its characters (plus one past the end), the
    offset in ``source`` it came from, so errors point at what the author wrote.
    Newlines become spaces (YAML block scalars) and leading blanks are dropped
    (``ast`` would see an indent). Bracket nesting is bounded here, before the
    parser sees it.
    """
    out: list[str] = []
    origin: list[int] = []

    def emit(text: str, at: int, *, same: bool = False) -> None:
        out.append(text)
        origin.extend(range(at, at + len(text)) if same else [at] * len(text))

    i, n, depth = 0, len(source), 0
    while i < n:
        ch = source[i]
        if ch in "'\"":
            end = _string_end(source, i)
            emit(source[i:end], i, same=True)
            i = end
        elif ch.isalpha() or ch == "_":
            j = i + 1
            while j < n and (source[j].isalnum() or source[j] == "_"):
                j += 1
            word = source[i:j]
            # `event.null` is a key named "null", not the alias.
            if word in _WORD_ALIASES and not source[:i].rstrip().endswith("."):
                word = _WORD_ALIASES[word]
            emit(word, i, same=True)
            i = j
        elif source.startswith("&&", i):
            emit(" and ", i)
            i += 2
        elif source.startswith("||", i):
            emit(" or ", i)
            i += 2
        elif ch == "!" and not source.startswith("!=", i):
            emit(" not ", i)
            i += 1
        else:
            if ch in "([{":
                depth += 1
                if depth > MAX_DEPTH:
                    raise ExpressionError(
                        f"expression is nested deeper than {MAX_DEPTH} levels",
                        source=source,
                        offset=i,
                    )
            elif ch in ")]}":
                depth -= 1
            emit(" " if ch in "\r\n" else ch, i)
            i += 1
    text = "".join(out)
    stripped = text.lstrip()
    cut = len(text) - len(stripped)
    return stripped, [*origin[cut:], n]


def _string_end(source: str, start: int) -> int:
    """Index just past the string literal opening at ``start`` (or where it breaks)."""
    quote = source[start]
    if source.startswith(quote * 3, start):
        raise ExpressionError(
            "triple-quoted strings are not supported", source=source, offset=start
        )
    i = start + 1
    while i < len(source):
        ch = source[i]
        if ch == "\\":
            i += 2
        elif ch == quote:
            return i + 1
        elif ch in "\r\n":
            return i  # unterminated: the parser reports it
        else:
            i += 1
    return len(source)


# --- compiler ---


class _Compiled:
    """A compiled node: its closure and, when known at compile time, its value."""

    __slots__ = ("const", "fn", "is_const")

    def __init__(self, fn: _Fn, *, is_const: bool = False, const: Any = None) -> None:
        self.fn = fn
        self.is_const = is_const
        self.const = const


def _constant(value: Any) -> _Compiled:
    return _Compiled(lambda _s: value, is_const=True, const=value)


def _literal_number(node: ast.expr) -> int | float | None:
    """The value of ``5``, ``-5``, ``2.5`` … or None if ``node`` is not such a literal."""
    sign = 1
    if isinstance(node, ast.UnaryOp) and isinstance(node.op, ast.USub | ast.UAdd):
        sign = -1 if isinstance(node.op, ast.USub) else 1
        node = node.operand
    if isinstance(node, ast.Constant):
        value = node.value
        if isinstance(value, int | float) and not isinstance(value, bool):
            return sign * value
    return None


class _Compiler:
    def __init__(self, source: str, text: str, origin: list[int]) -> None:
        self.source = source
        self.text = text
        self.origin = origin
        self.roots: set[str] = set()

    def fail(self, message: str, node: ast.AST, col: int | None = None) -> ExpressionError:
        if col is None:
            col = getattr(node, "col_offset", 0)
        if not self.text.isascii():  # ast columns count UTF-8 bytes
            col = len(self.text.encode()[:col].decode(errors="ignore"))
        return ExpressionError(
            message, source=self.source, offset=self.origin[min(col, len(self.origin) - 1)]
        )

    def compile(self, node: ast.expr, depth: int) -> _Compiled:
        if depth > MAX_DEPTH:
            raise self.fail(f"expression is nested deeper than {MAX_DEPTH} levels", node)
        compiled = self._compile(node, depth + 1)
        if compiled.is_const or not self._foldable(node):
            return compiled
        # Every closure is total, so running one without a scope is safe.
        value = compiled.fn({})
        return _constant(value) if isinstance(value, _SCALARS) else compiled

    def _foldable(self, node: ast.expr) -> bool:
        if isinstance(node, ast.Name | ast.Attribute | ast.Subscript | ast.List | ast.Tuple):
            return False
        return all(
            isinstance(child, ast.Constant | ast.operator | ast.cmpop | ast.boolop | ast.unaryop)
            or (isinstance(child, ast.expr) and not self._reads_scope(child))
            for child in ast.iter_child_nodes(node)
        )

    def _reads_scope(self, node: ast.expr) -> bool:
        return any(isinstance(n, ast.Name) and n.id in ALLOWED_ROOTS for n in ast.walk(node))

    def _compile(self, node: ast.expr, depth: int) -> _Compiled:
        match node:
            case ast.Constant(value=value):
                if type(value) not in _SCALARS:
                    raise self.fail(f"{type(value).__name__} literals are not allowed", node)
                return _constant(value)
            case ast.Name() | ast.Attribute() | ast.Subscript():
                return self._access(node, depth)
            case ast.List(elts=elts) | ast.Tuple(elts=elts):
                items = [self.compile(e, depth).fn for e in elts]
                return _Compiled(lambda s: [f(s) for f in items])
            case ast.BoolOp():
                return self._boolop(node, depth)
            case ast.UnaryOp():
                return self._unaryop(node, depth)
            case ast.BinOp():
                return self._binop(node, depth)
            case ast.Compare():
                return self._compare(node, depth)
            case ast.IfExp(test=test, body=body, orelse=orelse):
                t, b, o = (self.compile(x, depth).fn for x in (test, body, orelse))
                return _Compiled(lambda s: b(s) if t(s) else o(s))
            case ast.Call():
                return self._call(node, depth)
        raise self.fail(self._refusal(node), node)

    def _refusal(self, node: ast.expr) -> str:
        match node:
            case ast.Lambda():
                return "lambdas are not allowed"
            case ast.ListComp() | ast.SetComp() | ast.DictComp() | ast.GeneratorExp():
                return "comprehensions are not allowed"
            case ast.JoinedStr() | ast.FormattedValue():
                return "f-strings are not allowed"
            case ast.NamedExpr():
                return "assignment (':=') is not allowed"
            case ast.Starred():
                return "'*' unpacking is not allowed"
            case ast.Dict() | ast.Set():
                return "dict and set literals are not supported; use a list"
            case ast.Slice():
                return "slices are not supported; use a single index"
        return f"{type(node).__name__} is not allowed in a condition"

    # -- reading the scope --

    def _access(self, node: ast.expr, depth: int) -> _Compiled:
        """``root.a['b'][0]``: folded into one closure when it starts at a root."""
        keys: list[str | int] = []
        cur = node
        while True:
            if isinstance(cur, ast.Attribute):
                if cur.attr.startswith("_"):
                    # Point at the attribute, not at the start of what it is read from.
                    at = (cur.end_col_offset or 0) - len(cur.attr.encode())
                    raise self.fail(f"attribute {cur.attr!r} is not allowed", cur, at)
                keys.append(cur.attr)
                cur = cur.value
            elif isinstance(cur, ast.Subscript):
                keys.append(self._subscript_key(cur))
                cur = cur.value
            else:
                break
            depth += 1
            if depth > MAX_DEPTH:
                raise self.fail(f"expression is nested deeper than {MAX_DEPTH} levels", cur)
        keys.reverse()
        if isinstance(cur, ast.Name):
            return _Compiled(_path(self._root(cur), tuple(keys)))
        base = self.compile(cur, depth).fn
        return _Compiled(_chain(base, tuple(keys)))

    def _root(self, node: ast.Name) -> str:
        name = node.id
        if name in ALLOWED_ROOTS:
            self.roots.add(name)
            return name
        if name in _FUNCTIONS:
            raise self.fail(f"function {name!r} must be called, e.g. {name}(...)", node)
        roots = ", ".join(sorted(ALLOWED_ROOTS))
        raise self.fail(f"unknown name {name!r}; a condition can read only {roots}", node)

    def _subscript_key(self, node: ast.Subscript) -> str | int:
        key_node = node.slice
        number = _literal_number(key_node)
        if type(number) is int:
            return number
        if isinstance(key_node, ast.Constant) and type(key_node.value) is str:
            if key_node.value.startswith("_"):
                raise self.fail(f"key {key_node.value!r} is not allowed", key_node)
            return key_node.value
        if isinstance(key_node, ast.Slice):
            raise self.fail("slices are not supported; use a single index", key_node)
        raise self.fail("a subscript must be a literal string key or integer index", key_node)

    # -- operators --

    def _boolop(self, node: ast.BoolOp, depth: int) -> _Compiled:
        fns = [self.compile(v, depth).fn for v in node.values]
        if isinstance(node.op, ast.And):
            if len(fns) == 2:
                a, b = fns
                return _Compiled(lambda s: a(s) and b(s))
            return _Compiled(_all_of(fns))
        if len(fns) == 2:
            a, b = fns
            return _Compiled(lambda s: a(s) or b(s))
        return _Compiled(_any_of(fns))

    def _unaryop(self, node: ast.UnaryOp, depth: int) -> _Compiled:
        f = self.compile(node.operand, depth).fn
        match node.op:
            case ast.Not():
                return _Compiled(lambda s: not f(s))
            case ast.USub():
                return _Compiled(_guarded1(operator.neg, f))
            case ast.UAdd():
                return _Compiled(_guarded1(operator.pos, f))
        raise self.fail("operator '~' is not allowed", node)

    def _binop(self, node: ast.BinOp, depth: int) -> _Compiled:
        op = _BINOPS.get(type(node.op))
        if op is None:
            symbol = _REFUSED_BINOPS.get(type(node.op), type(node.op).__name__)
            hint = f"; did you mean '{symbol}{symbol}'?" if symbol in ("&", "|") else ""
            raise self.fail(f"operator '{symbol}' is not allowed{hint}", node)
        left = self.compile(node.left, depth)
        right = self.compile(node.right, depth)
        if isinstance(node.op, ast.Pow):
            # A constant exponent (`2 ** 3 ** 2` folds to 9) bounds the work; one read
            # from the scope does not.
            exponent = right.const
            if (
                not right.is_const
                or not isinstance(exponent, int | float)
                or isinstance(exponent, bool)
                or abs(exponent) > MAX_EXPONENT
            ):
                raise self.fail(
                    f"'**' needs a number literal exponent of at most {MAX_EXPONENT}", node.right
                )
        a, b = left.fn, right.fn
        if right.is_const:
            c = right.const

            def run_const(s: Scope) -> Any:
                try:
                    return op(a(s), c)
                except _ARITH_ERRORS:
                    return None

            return _Compiled(run_const)

        def run(s: Scope) -> Any:
            try:
                return op(a(s), b(s))
            except _ARITH_ERRORS:
                return None

        return _Compiled(run)

    def _compare(self, node: ast.Compare, depth: int) -> _Compiled:
        ops: list[Callable[[Any, Any], Any]] = []
        for cmpop in node.ops:
            op = _COMPARISONS.get(type(cmpop))
            if op is None:
                raise self.fail("'is' is not allowed; use '==' or '!='", node)
            ops.append(op)
        left = self.compile(node.left, depth).fn
        if len(ops) == 1:
            return _Compiled(self._compare_pair(ops[0], left, node.comparators[0], depth))
        rights = [self.compile(c, depth).fn for c in node.comparators]
        return _Compiled(_chained(left, list(zip(ops, rights, strict=True))))

    def _compare_pair(
        self, op: Callable[[Any, Any], Any], left: _Fn, right_node: ast.expr, depth: int
    ) -> _Fn:
        if op in (_in, _not_in) and isinstance(right_node, ast.List | ast.Tuple):
            items = [self.compile(e, depth) for e in right_node.elts]
            if all(i.is_const for i in items):
                return _member_of([i.const for i in items], left, negate=op is _not_in)
        right = self.compile(right_node, depth)
        b = right.fn
        if right.is_const:
            c = right.const

            def run_const(s: Scope) -> Any:
                try:
                    return op(left(s), c)
                except _COMPARE_ERRORS:
                    return False

            return run_const

        def run(s: Scope) -> Any:
            try:
                return op(left(s), b(s))
            except _COMPARE_ERRORS:
                return False

        return run

    def _call(self, node: ast.Call, depth: int) -> _Compiled:
        func = node.func
        if isinstance(func, ast.Attribute):
            raise self.fail(f"method calls are not allowed ('.{func.attr}()')", node)
        allowed = ", ".join(sorted(_FUNCTIONS))
        if not isinstance(func, ast.Name):
            # `(lambda: ...)()`, `f(x)(y)`: say what the callee is, not that it is a call.
            what = self._refusal(func) if isinstance(func, _CALLEE_REFUSALS) else None
            raise self.fail(what or f"only named functions can be called: {allowed}", func)
        if func.id not in _FUNCTIONS:
            raise self.fail(f"function {func.id!r} is not allowed; allowed: {allowed}", node)
        if node.keywords:
            raise self.fail(f"{func.id}() takes no keyword arguments", node)
        fn, low, high = _FUNCTIONS[func.id]
        if not low <= len(node.args) <= high:
            count = str(low) if low == high else f"{low} to {high}"
            plural = "" if high == 1 else "s"
            raise self.fail(f"{func.id}() takes {count} argument{plural}", node)
        args = [self.compile(a, depth).fn for a in node.args]
        if len(args) == 1:
            (a,) = args
            return _Compiled(lambda s: fn(a(s)))
        if len(args) == 2:
            a, b = args
            return _Compiled(lambda s: fn(a(s), b(s)))
        return _Compiled(lambda s: fn(*[f(s) for f in args]))


# --- closure factories (kept outside the compiler so closures capture only what they use) ---


def _path(root: str, keys: tuple[str | int, ...]) -> _Fn:
    if not keys:
        return lambda s: s.get(root)
    if len(keys) == 1:
        (k,) = keys

        def one(s: Scope) -> Any:
            v = s.get(root)
            return v.get(k) if type(v) is dict else _get(v, k)

        return one

    def many(s: Scope) -> Any:
        v = s.get(root)
        for k in keys:
            v = v.get(k) if type(v) is dict else _get(v, k)
        return v

    return many


def _chain(base: _Fn, keys: tuple[str | int, ...]) -> _Fn:
    def run(s: Scope) -> Any:
        v = base(s)
        for k in keys:
            v = _get(v, k)
        return v

    return run


def _all_of(fns: list[_Fn]) -> _Fn:
    def run(s: Scope) -> Any:
        v: Any = True
        for f in fns:
            v = f(s)
            if not v:
                return v
        return v

    return run


def _any_of(fns: list[_Fn]) -> _Fn:
    def run(s: Scope) -> Any:
        v: Any = False
        for f in fns:
            v = f(s)
            if v:
                return v
        return v

    return run


def _guarded1(op: Callable[[Any], Any], f: _Fn) -> _Fn:
    def run(s: Scope) -> Any:
        try:
            return op(f(s))
        except _ARITH_ERRORS:
            return None

    return run


def _chained(left: _Fn, pairs: list[tuple[Callable[[Any, Any], Any], _Fn]]) -> _Fn:
    def run(s: Scope) -> bool:
        a = left(s)
        for op, f in pairs:
            b = f(s)
            try:
                if not op(a, b):
                    return False
            except _COMPARE_ERRORS:
                return False
            a = b
        return True

    return run


def _member_of(items: list[Any], left: _Fn, *, negate: bool) -> _Fn:
    """``x in [literals]`` as a set lookup, falling back to the list for unhashable x."""
    as_set = frozenset(items)

    def run(s: Scope) -> bool:
        v = left(s)
        try:
            found = v in as_set
        except TypeError:  # a list or dict from the scope: compare item by item
            found = v in items
        return found != negate

    return run
