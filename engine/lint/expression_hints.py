"""Did-you-mean for conditions written in another language's syntax.

Authors often come from JavaScript, SQL or spreadsheets: ``user.tier = 'gold'``,
``a === b``, ``a <> b``, ``a AND b``. The expression parser only sees "invalid syntax";
:func:`expression_hint` looks for these shapes (outside string literals) and says what
to write instead. ``&&``, ``||`` and ``!`` need no hint: the language accepts them.
"""

from __future__ import annotations

import re
from typing import Final

# Longest first: `===` must not be read as `==` then `=`.
_OPERATORS: Final = (
    ("===", "=="),
    ("!==", "!="),
    ("<>", "!="),
    ("=>", ">="),
    ("=<", "<="),
)
_SAFE: Final = ("==", "!=", "<=", ">=")
_WORD = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")
_KEYWORDS: Final = {"and", "or", "not"}


def _outside_strings(source: str) -> list[tuple[int, str]]:
    """The runs of ``source`` outside '...' and "..." literals, with their offsets."""
    runs: list[tuple[int, str]] = []
    i, start, n = 0, 0, len(source)
    while i < n:
        ch = source[i]
        if ch in "'\"":
            runs.append((start, source[start:i]))
            j = i + 1
            while j < n and source[j] != ch:
                j += 2 if source[j] == "\\" else 1
            i = start = j + 1
        else:
            i += 1
    runs.append((start, source[start:]))
    return [(at, text) for at, text in runs if text]


def expression_hint(source: str) -> str | None:
    """What to write instead of the first foreign operator in ``source``, or None."""
    found: list[tuple[int, str]] = []
    for at, text in _outside_strings(source):
        i = 0
        while i < len(text):
            for wrong, right in _OPERATORS:
                if text.startswith(wrong, i):
                    found.append((at + i, f"use {right} instead of {wrong}"))
                    i += len(wrong)
                    break
            else:
                if text.startswith(_SAFE, i):
                    i += 2
                elif text[i] == "=":
                    found.append((at + i, "use == to compare (= alone is not an operator)"))
                    i += 1
                elif m := _WORD.match(text, i):
                    word = m.group()
                    before = text[:i].rstrip()
                    if (word.lower() in _KEYWORDS and word != word.lower()
                            and not before.endswith(".")):
                        found.append((at + i, f"write {word.lower()} in lower case "
                                              "(and / or / not)"))
                    i = m.end()
                else:
                    i += 1
    if not found:
        return None
    at, hint = min(found)
    return f"{hint} (column {at + 1})"
