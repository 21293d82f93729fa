"""How fast compiled conditions evaluate (a script, not a test).

Run: ``.venv/bin/python benchmarks/bench_expressions.py [seconds]``

Evaluates one typical condition over ~1000 varied scopes for about two seconds and
prints evaluations per second (goal: more than 1,000,000/s), next to Python's own
``eval`` of a precompiled code object on the same scopes for reference. The scopes
are built from a fixed seed so runs are comparable.
"""

from __future__ import annotations

import random
import sys
import time
from collections.abc import Callable, Mapping
from typing import Any

from engine.journey.expressions import compile_expression

SOURCE = "event.total > 20 and user.tier in ['gold','silver'] or event.country == 'US'"
# The same condition in plain Python, for the reference measurement.
PY_SOURCE = (
    "event.get('total') > 20 and user.get('tier') in ['gold','silver'] "
    "or event.get('country') == 'US'"
)


def make_scopes(count: int) -> list[dict[str, Any]]:
    rng = random.Random(1234)
    scopes: list[dict[str, Any]] = []
    for _ in range(count):
        event: dict[str, Any] = {"country": rng.choice(["US", "FR", "DE", "BR"])}
        if rng.random() < 0.9:  # some events lack the property
            event["total"] = rng.choice([rng.randint(0, 100), rng.random() * 100])
        user = {"tier": rng.choice(["gold", "silver", "bronze", "none"])}
        scopes.append({"event": event, "user": user, "entry": {}, "journey": {}})
    return scopes


def measure(
    test: Callable[[Mapping[str, Any]], object], scopes: list[dict[str, Any]], seconds: float
) -> float:
    """Evaluations per second of ``test`` over ``scopes`` for about ``seconds``."""
    evaluations = 0
    start = time.perf_counter()
    deadline = start + seconds
    while time.perf_counter() < deadline:
        for scope in scopes:
            test(scope)
        evaluations += len(scopes)
    return evaluations / (time.perf_counter() - start)


def main() -> None:
    seconds = float(sys.argv[1]) if len(sys.argv) > 1 else 2.0
    scopes = make_scopes(1000)
    expression = compile_expression(SOURCE)
    matches = sum(expression.test(s) for s in scopes)

    ours = measure(expression.test, scopes, seconds)

    # Python's eval raises TypeError on a missing total (None > 20); give it data
    # where the property is always present so the reference does not crash.
    code = compile(PY_SOURCE, "<bench>", "eval")
    py_scopes = [{**s, "event": {"total": 0, **s["event"]}} for s in scopes]

    def py_test(scope: Mapping[str, Any]) -> bool:
        return bool(eval(code, {"__builtins__": {}}, scope))  # reference only

    reference = measure(py_test, py_scopes, seconds)

    print(f"expression: {SOURCE}")
    print(f"scopes: {len(scopes)} ({matches} match)")
    print(f"compiled closures (Expression.test): {ours:,.0f} evaluations/s")
    print(f"python eval of a code object:        {reference:,.0f} evaluations/s")
    print(
        f"ratio: {ours / reference:.2f}x; goal > 1,000,000/s: {'met' if ours > 1e6 else 'MISSED'}"
    )


if __name__ == "__main__":
    main()
