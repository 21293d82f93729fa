"""Template variables that can be missing when a send renders, and print nothing then.

Liquid prints a missing value as nothing, so ``Hi {{ user.first_name }},`` becomes
``Hi ,`` for a user without a first name. :func:`missing_variables` finds every
``{{ user.x }}``, ``{{ event.x }}`` and ``{{ entry.x }}`` output of a send that can be
missing there. The rule (docs/journeys.md, "What the linter checks"):

* ``user.*`` (profile attributes) can be missing: users differ in what their profile
  holds. ``user.phone`` can't: a send only goes to a user with a phone number;
* ``event.*`` / ``entry.*`` (event properties) are the contract of the system that sends
  the event, which the linter can't see: a property counts as possibly missing only when
  the journey itself says so somewhere, by giving it a ``default``, testing it in an
  ``{% if %}``, or checking ``exists(...)`` on it in a condition. (Warning on every
  property would bury the warnings that matter; require a property in ``entry.when`` to
  have the engine enforce the contract.)
* ``journey.id`` and ``journey.version`` are set by the engine; any other ``journey.*``
  never is;
* an output is fine with a ``default`` filter, or when the template tests the value in
  an ``if`` / ``elsif`` / ``unless`` / ``case`` tag;
* a value is guaranteed at a send when a condition requires it on *every* way from the
  start to the send: ``entry.when`` (for the entry event: ``event.x`` there is
  ``entry.x`` too), a branch case leading there, or the ``when`` of a ``wait_for`` event
  path (for that new event). "Requires" means: ``exists(x)``, ``x`` alone, ``x``
  compared with a literal other than ``None`` (``==``, ``<``, ``in``...), ``x`` in an
  ordering comparison, ``contains(x, ..)`` / ``startswith(x, ..)`` / ``endswith(x, ..)``;
  joined with ``and`` (each side) or ``or`` (both sides).

The "every way" part is a data-flow analysis over the journey's edges: what is
guaranteed when a node is entered is what every edge into it guarantees.
"""

from __future__ import annotations

import ast
import re
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Final

from engine.journey.loader import Loc
from engine.journey.model import BranchNode, Journey, SendNode, WaitForNode, successors
from engine.lint.rcs import send_fields, where

Report = Callable[[Loc, str], None]

ROOTS: Final = ("user", "event", "entry")
ALWAYS_SET: Final = frozenset({"user.phone", "journey.id", "journey.version"})

_PATH = r"(?:user|event|entry|journey)(?:\.[A-Za-z_][A-Za-z0-9_]*)+"
_OUTPUT = re.compile(r"\{\{-?\s*(" + _PATH + r")\s*((?:\|[^}]*)?)-?\}\}")
_CONDITION_TAG = re.compile(r"\{%-?\s*(?:if|elsif|unless|case|when)\b(.*?)-?%\}", re.S)
_DEFAULT_FILTER = re.compile(r"\|\s*default\b")
_WORDS = {"true": "True", "false": "False", "null": "None"}


# --------------------------------------------------------------------------- conditions


def _python(source: str) -> str:
    """The condition with the expression language's aliases (``&&``, ``!``, ``true``...)
    written in Python, outside string literals; the result is only read, never run."""
    out: list[str] = []
    i, n = 0, len(source)
    while i < n:
        ch = source[i]
        if ch in "'\"":
            j = i + 1
            while j < n and source[j] != ch:
                j += 2 if source[j] == "\\" else 1
            out.append(source[i:j + 1])
            i = j + 1
        elif ch.isalpha() or ch == "_":
            j = i
            while j < n and (source[j].isalnum() or source[j] == "_"):
                j += 1
            word = source[i:j]
            dotted = "".join(out).rstrip().endswith(".")
            out.append(word if dotted else _WORDS.get(word, word))
            i = j
        elif source.startswith(("&&", "||"), i):
            out.append(" and " if ch == "&" else " or ")
            i += 2
        elif ch == "!" and not source.startswith("!=", i):
            out.append(" not ")
            i += 1
        else:
            out.append(" " if ch in "\r\n" else ch)
            i += 1
    return "".join(out).strip()


def _path_of(node: ast.expr) -> str | None:
    """``user.first_name`` / ``user['first_name']`` -> ``"user.first_name"``."""
    keys: list[str] = []
    while True:
        if isinstance(node, ast.Attribute):
            keys.append(node.attr)
            node = node.value
        elif (isinstance(node, ast.Subscript) and isinstance(node.slice, ast.Constant)
              and isinstance(node.slice.value, str) and node.slice.value.isidentifier()):
            keys.append(node.slice.value)
            node = node.value
        else:
            break
    if isinstance(node, ast.Name) and node.id in (*ROOTS, "journey") and keys:
        return ".".join([node.id, *reversed(keys)])
    return None


def _not_none_literal(node: ast.expr) -> bool:
    if isinstance(node, ast.Constant):
        return node.value is not None
    if isinstance(node, ast.List | ast.Tuple):
        return all(_not_none_literal(e) for e in node.elts)
    return False


_ORDERING = (ast.Lt, ast.LtE, ast.Gt, ast.GtE)
_CHECKS = frozenset({"exists", "contains", "startswith", "endswith"})


def _required(node: ast.expr) -> set[str]:
    if isinstance(node, ast.BoolOp):
        parts = [_required(v) for v in node.values]
        if isinstance(node.op, ast.And):
            return set().union(*parts)
        return set.intersection(*parts)
    if isinstance(node, ast.Compare):
        out: set[str] = set()
        operands = [node.left, *node.comparators]
        for op, left, right in zip(node.ops, operands, operands[1:], strict=False):
            for this, other in ((left, right), (right, left)):
                path = _path_of(this)
                if path is None:
                    continue
                # None is never ordered, equal to a literal, in a list without None, or
                # a container: each of these is false for a missing value.
                if (isinstance(op, _ORDERING)
                        or (isinstance(op, ast.Eq) and _not_none_literal(other))
                        or (isinstance(op, ast.In)
                            and (this is right or _not_none_literal(other)))):
                    out.add(path)
        return out
    if (isinstance(node, ast.Call) and isinstance(node.func, ast.Name)
            and node.func.id in _CHECKS and node.args):
        path = _path_of(node.args[0])
        return {path} if path is not None else set()
    path = _path_of(node)
    return {path} if path is not None else set()


def required_paths(condition: str | None) -> frozenset[str]:
    """The dotted paths (and their prefixes) that are present whenever ``condition`` holds."""
    if not condition:
        return frozenset()
    try:
        tree = ast.parse(_python(condition), mode="eval")
    except (SyntaxError, ValueError, RecursionError, MemoryError):
        return frozenset()  # reported by the expression rule
    out: set[str] = set()
    for path in _required(tree.body):
        parts = path.split(".")
        out |= {".".join(parts[:i]) for i in range(2, len(parts) + 1)}
    return frozenset(out)


# --------------------------------------------------------------------------- data flow


@dataclass(frozen=True)
class _Edge:
    target: str
    condition: str | None = None
    new_event: bool = False  # a wait_for event path: `event` is the new event from here


def _edges(journey: Journey, node_id: str) -> Iterator[_Edge]:
    node = journey.nodes[node_id]
    if isinstance(node, WaitForNode):
        for p in node.paths:
            yield _Edge(p.next, p.when, new_event=p.kind == "event")
        if node.on_timeout is not None:
            yield _Edge(node.on_timeout)
    elif isinstance(node, BranchNode):
        yield from (_Edge(c.next, c.when) for c in node.cases)
        yield _Edge(node.default)
    else:
        yield from (_Edge(target) for _, target in successors(node))


def guaranteed(journey: Journey) -> dict[str, frozenset[str]]:
    """For each node reachable from the start: the paths present whenever it is entered."""
    entry = required_paths(journey.entry.when)
    start_set = entry | {"entry." + p.split(".", 1)[1] for p in entry if p.startswith("event.")}
    known: dict[str, frozenset[str]] = {}
    if journey.start not in journey.nodes:
        return known
    known[journey.start] = start_set
    todo = [journey.start]
    while todo:
        nid = todo.pop()
        here = known[nid]
        for edge in _edges(journey, nid):
            if edge.target not in journey.nodes:
                continue
            out = here
            if edge.new_event:
                out = frozenset(p for p in out if not p.startswith("event."))
            out |= required_paths(edge.condition)
            if edge.target == journey.start:
                out &= start_set
            old = known.get(edge.target)
            new = out if old is None else old & out
            if new != old:
                known[edge.target] = new
                todo.append(edge.target)
    return known


# --------------------------------------------------------------------------- templates


def unchecked_outputs(source: str) -> list[tuple[str, str]]:
    """Paths printed by ``{{ path ... }}`` with no ``default`` filter and not tested in a
    condition tag of the same template, in order, each once; with the text around the
    first such output as it reads when the value is missing."""
    tested = " ".join(m.group(1) for m in _CONDITION_TAG.finditer(source))
    out: dict[str, str] = {}
    for m in _OUTPUT.finditer(source):
        path, filters = m.group(1), m.group(2)
        if _DEFAULT_FILTER.search(filters) or path in out:
            continue
        if re.search(r"(?<![\w.])" + re.escape(path) + r"(?![\w])", tested):
            continue
        out[path] = _blanked(source, m.start(), m.end())
    return list(out.items())


def _blanked(source: str, start: int, end: int, room: int = 24) -> str:
    """The text around ``source[start:end]``, with that part left out."""
    before, after = source[max(start - room, 0):start], source[end:end + room]
    return (("..." if start > room else "") + before + after
            + ("..." if end + room < len(source) else ""))


def _exists_checks(condition: str | None) -> set[str]:
    """Paths a condition passes to ``exists(...)``, anywhere in it."""
    if not condition:
        return set()
    try:
        tree = ast.parse(_python(condition), mode="eval")
    except (SyntaxError, ValueError, RecursionError, MemoryError):
        return set()
    return {path for node in ast.walk(tree)
            if isinstance(node, ast.Call) and isinstance(node.func, ast.Name)
            and node.func.id == "exists" and node.args
            and (path := _path_of(node.args[0])) is not None}


def said_optional(journey: Journey) -> frozenset[str]:
    """Paths the journey treats as possibly missing somewhere: given a ``default``,
    tested in a template's condition tag, or checked with ``exists()``."""
    out: set[str] = set()
    conditions = [journey.entry.when, journey.goal.when if journey.goal else None]
    for nid, node in journey.nodes.items():
        if isinstance(node, BranchNode):
            conditions += [c.when for c in node.cases]
        elif isinstance(node, WaitForNode):
            conditions += [p.when for p in node.paths]
        elif isinstance(node, SendNode):
            for field in send_fields(nid, node):
                out |= {m.group(1) for m in _OUTPUT.finditer(field.value)
                        if _DEFAULT_FILTER.search(m.group(2))}
                for tag in _CONDITION_TAG.finditer(field.value):
                    out |= set(re.findall(_PATH, tag.group(1)))
    for condition in conditions:
        out |= _exists_checks(condition)
    entry = _exists_checks(journey.entry.when)
    out |= {"entry." + p.split(".", 1)[1] for p in entry if p.startswith("event.")}
    return frozenset(out)


def _advice(path: str, blanked: str) -> str:
    root, rest = path.split(".", 1)
    fix = f"write {{{{ {path} | default: '...' }}}}"
    reads = f"(it reads \"{blanked}\")"
    if root == "user":
        return (f"{{{{ {path} }}}} prints nothing for a user without '{rest}' {reads}: {fix}, "
                f"or test exists({path}) in a branch before this send")
    where_in = ("in entry.when" if root == "entry"
                else "where the event comes in (entry.when, or the when of its wait_for path)")
    return (f"{{{{ {path} }}}} can be missing (this journey gives it a default or tests it "
            f"elsewhere) and prints nothing then {reads}: {fix}, or require "
            f"exists(event.{rest}) {where_in}")


def missing_variables(journey: Journey, report: Report) -> None:
    """Report every template output of a send that can be missing when it renders."""
    known = guaranteed(journey)
    optional = said_optional(journey)
    for nid, node in journey.nodes.items():
        if not isinstance(node, SendNode) or nid not in known:
            continue
        present = known[nid] | ALWAYS_SET
        for field in send_fields(nid, node):
            if "{{" not in field.value:
                continue
            for path, blanked in unchecked_outputs(field.value):
                if path in present:
                    continue
                if path.startswith("journey."):
                    report(field.loc, f"{where(field.loc)}: {{{{ {path} }}}} is never set: "
                           "journey has only id and version")
                elif path.startswith("user.") or path in optional:
                    report(field.loc, f"{where(field.loc)}: {_advice(path, blanked)}")
