"""Lint rules of scheduled audience entry (``entry: {schedule, audience}``).

The model already refuses the shapes that can't work (both or neither of ``event`` and
``schedule``, ``on`` without ``every: week``, ``day`` without ``every: month``, an unknown
zone, ``until`` before ``start``, a date that doesn't exist). Here: the audience is a
condition that parses and reads the user's profile only (there is no event at an
occurrence), and what a reader might not expect.
"""

from __future__ import annotations

import ast
from collections.abc import Callable

from engine.errors import ExpressionError
from engine.journey.expressions import compile_expression
from engine.journey.loader import Loc
from engine.journey.model import Journey
from engine.lint.variables import _python

Add = Callable[[Loc, str], None]
_NOT_AT_AN_OCCURRENCE = ("event", "entry")


def schedule_rules(journey: Journey, add: Add, warn: Add) -> None:
    entry = journey.entry
    if entry.schedule is None or entry.audience is None:
        return
    loc: Loc = ("entry", "audience")
    source = entry.audience
    try:
        compile_expression(source)
    except ExpressionError as exc:
        at = f" at column {exc.offset + 1}" if exc.offset is not None else ""
        add(loc, f"entry.audience: condition doesn't parse{at}: {exc.message} (in {source!r})")
        return
    for root in sorted(_roots(source) & set(_NOT_AT_AN_OCCURRENCE)):
        add(
            loc,
            f"entry.audience reads {root}.*, but a scheduled entry has no event: an audience "
            "is a condition over the user's profile (user.*)",
        )
    schedule = entry.schedule
    if schedule.every is not None and schedule.start is None:
        warn(
            ("entry", "schedule"),
            "a recurring schedule without `start` catches up: deployed on a worker whose "
            "users were last seen weeks ago, it decides every occurrence since each one's "
            "last input (they may enter several times at once); give start: the first date",
        )
    if schedule.every == "month" and (schedule.day or 0) > 28:
        warn(
            ("entry", "schedule", "day"),
            f"day: {schedule.day} runs on the last day of the months that have fewer days",
        )
    if entry.reentry == "always":
        warn(
            ("entry", "reentry"),
            "reentry: always with a schedule starts a new run at every occurrence even while "
            "the last one is in flight; after_exit waits for it to end",
        )


def _roots(source: str) -> set[str]:
    """The root names the condition reads (``user`` in ``user.tier == 'gold'``)."""
    try:
        tree = ast.parse(_python(source), mode="eval")
    except SyntaxError:
        return set()
    return {n.id for n in ast.walk(tree) if isinstance(n, ast.Name)}
