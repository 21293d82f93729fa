"""Every escape attempt of corpus.yaml is refused at load time or bounded at run time.

The work each case does is measured, not timed: the number of Python and C function
calls made (``sys.setprofile``) and the peak memory allocated (``tracemalloc``). Both
bounds are generous, but a case that got through (a billion-item list, a loop of
millions of iterations, a quadratic filter) overshoots them by orders of magnitude.
The suite-wide pytest timeout stays as the guard against a case that spins inside one
C call.
"""

from __future__ import annotations

import math
import sys
import tracemalloc
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import yaml

from engine.errors import ExpressionError, TemplateError
from engine.journey.expressions import MAX_SEQUENCE_LENGTH, compile_expression
from engine.journey.templates import MAX_OUTPUT_CHARS, compile_template
from engine.lint.linter import lint_paths

CORPUS_FILE = Path(__file__).with_name("corpus.yaml")
CORPUS: list[dict[str, Any]] = yaml.safe_load(CORPUS_FILE.read_text(encoding="utf-8"))

# The most a case may do. The largest work a bounded case does is a render that reaches
# the step limit (50,000 steps): about 2 million calls. Cases that got through before
# the limits took tens of millions, or gigabytes.
MAX_CALLS = 5_000_000
MAX_PEAK_BYTES = 64 * 1024 * 1024

BIG = 100_000
SCOPE: dict[str, Any] = {
    "event": {
        "name": "Ann",
        "big": "x" * BIG,
        "n": 10**9,
        "list": list(range(1000)),
        "items": [{"sku": str(i), "price": i} for i in range(100)],
        "dicts": [{"k": i} for i in range(2000)],
        "amp": "&" * 1000,
        "newlines": "\n" * 20_000,
        "euros": "€" * 20_000,
        "emoji": "😀" * (MAX_OUTPUT_CHARS + 1),
        "spaces": " " * BIG,
        "digits": "9" * 5000,
        "html_comments": "<!--" * 25_000,
        "html_tags": "<a" * 50_000,
        "html_bangs": "<!" * 50_000,
        "html_pis": "<?" * 50_000,
        "html_attrs": "<a " + "b " * 50_000 + ">",
        "html_quotes": "<a b='" + "x" * BIG,
        "html_scripts": "<script>" + "<" * 50_000,
    },
    "entry": {"order_id": "o-1"},
    "user": {"first_name": "Ann", "tier": "gold"},
    "journey": {"id": "j"},
}
# What a condition may return: built values are capped; scope values pass through, and
# lower()/upper() copy one at most three times its length (one character to three).
MAX_RESULT_WEIGHT = max(MAX_SEQUENCE_LENGTH, 3 * BIG)


def source(entry: dict[str, Any]) -> str:
    text = entry["text"]
    if isinstance(text, str):
        return text
    return str(text["prefix"]) + str(text["repeat"]) * int(text["times"]) + str(text["suffix"])


def case_id(entry: dict[str, Any]) -> str:
    return f"{entry['where']}-{entry['kind']}-{CORPUS.index(entry)}"


@dataclass
class Work:
    calls: int
    peak_bytes: int


def measured(fn: Callable[[], Any]) -> tuple[Any, BaseException | None, Work]:
    """Run ``fn``; its result or exception and the work it took."""
    calls = 0

    def count(_frame: object, event: str, _arg: object) -> None:
        nonlocal calls
        if event in ("call", "c_call"):
            calls += 1

    result: Any = None
    error: BaseException | None = None
    tracemalloc.start()
    sys.setprofile(count)
    try:
        result = fn()
    except Exception as exc:  # checked by the caller
        error = exc
    finally:
        sys.setprofile(None)
        _, peak = tracemalloc.get_traced_memory()
        tracemalloc.stop()
    return result, error, Work(calls, peak)


def weight(value: Any) -> int:
    """Characters and items in ``value``, nested ones included (shared ones each time)."""
    if isinstance(value, str):
        return len(value)
    if isinstance(value, list | tuple):
        return len(value) + sum(weight(v) for v in value if isinstance(v, str | list | dict))
    if isinstance(value, dict):
        return len(value) + sum(weight(v) for v in value.values())
    return 1


def compile_it(entry: dict[str, Any]) -> Any:
    if entry["where"] == "condition":
        return compile_expression(source(entry))
    return compile_template(source(entry))


def assert_bounded(work: Work) -> None:
    assert work.calls <= MAX_CALLS, f"{work.calls} calls"
    assert work.peak_bytes <= MAX_PEAK_BYTES, f"{work.peak_bytes} bytes at the peak"


def test_the_corpus_is_large_and_well_formed() -> None:
    assert len(CORPUS) >= 200
    sources = [(e["where"], source(e)) for e in CORPUS]
    assert len(set(sources)) == len(sources), "an attempt is listed twice"
    for entry in CORPUS:
        assert entry["where"] in ("condition", "template"), entry
        assert entry["expect"] in ("refused", "bounded"), entry
        assert entry["kind"] and entry["why"], entry
        assert set(entry) <= {
            "kind",
            "where",
            "text",
            "why",
            "expect",
            "match",
            "value",
            "output",
            "error",
        }, entry
    kinds = {(e["where"], e["kind"]) for e in CORPUS}
    assert len(kinds) >= 25
    assert sum(e["expect"] == "refused" for e in CORPUS) >= 100
    assert sum(e["expect"] == "bounded" for e in CORPUS) >= 100


@pytest.mark.parametrize("entry", CORPUS, ids=case_id)
def test_escape_attempt(entry: dict[str, Any]) -> None:
    compile_expression.cache_clear()
    compile_template.cache_clear()
    compiled, error, work = measured(lambda: compile_it(entry))
    assert_bounded(work)
    if entry["expect"] == "refused":
        expected = ExpressionError if entry["where"] == "condition" else TemplateError
        assert isinstance(error, expected), f"not refused: {error!r}"
        assert entry.get("match", "") in error.message
        return
    assert error is None, f"refused, but the corpus says it compiles: {error!r}"
    if entry["where"] == "condition":
        check_condition(entry, compiled)
    else:
        check_template(entry, compiled)


def check_condition(entry: dict[str, Any], expression: Any) -> None:
    value, error, work = measured(lambda: expression.evaluate(SCOPE))
    assert_bounded(work)
    assert error is None, f"evaluation failed: {error!r}"
    assert weight(value) <= MAX_RESULT_WEIGHT
    if "value" in entry:
        expected = entry["value"]
        if isinstance(expected, float) and math.isinf(expected):
            assert value == expected
        else:
            assert value == expected and type(value) is type(expected), value
    assert isinstance(expression.test(SCOPE), bool)


def check_template(entry: dict[str, Any], template: Any) -> None:
    text, error, work = measured(lambda: template.render(SCOPE))
    assert_bounded(work)
    if "error" in entry:
        assert isinstance(error, TemplateError), f"rendered: {str(text)[:200]!r}"
        assert entry["error"] in error.message
        return
    assert error is None, f"render failed: {error!r}"
    assert isinstance(text, str) and len(text) <= MAX_OUTPUT_CHARS
    if "output" in entry:
        assert text == entry["output"]


# --- the linter reports every refused attempt on its line, never as an internal error ---

REFUSED = [e for e in CORPUS if e["expect"] == "refused"]


def journey_file(entry: dict[str, Any]) -> tuple[str, int]:
    """A journey holding the attempt, and the line it is on."""
    quoted = yaml.safe_dump(source(entry), default_style='"', width=sys.maxsize).strip()
    when = quoted if entry["where"] == "condition" else '"true"'
    text = quoted if entry["where"] == "template" else '"Hi"'
    lines = [
        "id: t",
        "version: 1",
        "entry:",
        "  event: signed_up",
        f"  when: {when}",
        "start: hello",
        "nodes:",
        "  hello:",
        "    type: send",
        "    channel: sms",
        f"    text: {text}",
        "    next: done",
        "  done: {type: exit}",
    ]
    return "\n".join(lines) + "\n", 5 if entry["where"] == "condition" else 11


@pytest.mark.parametrize("entry", REFUSED, ids=case_id)
def test_the_linter_reports_the_line(entry: dict[str, Any], tmp_path: Path) -> None:
    compile_expression.cache_clear()
    compile_template.cache_clear()
    text, line = journey_file(entry)
    path = tmp_path / "j.yaml"
    path.write_text(text, encoding="utf-8", errors="surrogatepass")
    problems, error, work = measured(lambda: lint_paths([path]))
    assert error is None, f"the linter raised {error!r}"
    assert_bounded(work)
    assert problems, "the linter found nothing"
    assert not any("internal" in p.message for p in problems), problems
    on_line = [p for p in problems if p.line == line]
    assert on_line, f"nothing reported on line {line}: {problems}"
    assert any(entry.get("match", "") in p.message for p in on_line), on_line
