"""Linter rules for profiles: ``update_profile`` nodes and ``entry.max_entries``.

* every ``set`` value is an expression that parses (a bare word like ``gold`` is a name,
  not text: the problem says to write ``"'gold'"``);
* attribute names fit the profile's limits (:mod:`engine.core.profile`): non-empty, at
  most :data:`~engine.core.profile.MAX_KEY_CHARS` characters, at most
  :data:`~engine.core.profile.MAX_KEYS` of them in one node;
* an attribute both set and unset in one node is a problem (``set`` would win);
* ``max_entries`` above 1 with ``reentry: never`` has no effect (never allows one entry);
* a warning for a journey that names a profile event (``settings.profile_events``) as its
  entry, goal, ``exit_on`` or ``wait_for`` event: a profile event only updates the profile,
  so that part of the journey never happens.
"""

from __future__ import annotations

import dataclasses
import re
from collections.abc import Callable, Iterable

from engine.core.profile import MAX_KEY_CHARS, MAX_KEYS
from engine.errors import ExpressionError, Problem
from engine.journey.expressions import compile_expression
from engine.journey.loader import LoadedJourney, Loc
from engine.journey.model import Journey, UpdateProfileNode, WaitForNode
from engine.lint.expression_hints import expression_hint

Report = Callable[[Loc, str], None]

_BARE_WORD = re.compile(r"^[A-Za-z_][A-Za-z0-9_ ]*$")


def profile_rules(j: Journey, add: Report) -> None:
    for nid, node in j.nodes.items():
        if isinstance(node, UpdateProfileNode):
            _update_profile(("nodes", nid), node, add)
    entry = j.entry
    if entry.max_entries is not None and entry.max_entries > 1 and entry.reentry == "never":
        add(
            ("entry", "max_entries"),
            f"max_entries {entry.max_entries} has no effect with "
            "reentry: never (one entry per user); remove one of them",
        )


def _update_profile(base: Loc, node: UpdateProfileNode, add: Report) -> None:
    if len(node.set_) > MAX_KEYS:
        add(
            (*base, "set"),
            f"set has {len(node.set_)} attributes; a profile holds at most {MAX_KEYS}",
        )
    for key, source in node.set_.items():
        loc: Loc = (*base, "set", key)
        _name(loc, key, add)
        try:
            compile_expression(source)
        except ExpressionError as exc:
            add(
                loc,
                f"set.{key}: expression doesn't parse: {exc.message} (in {source!r})"
                + _hint(source),
            )
    for i, key in enumerate(node.unset):
        loc = (*base, "unset", i)
        _name(loc, key, add)
        if key in node.set_:
            add(loc, f"'{key}' is both set and unset: set wins; remove it from unset")


def _name(loc: Loc, key: str, add: Report) -> None:
    if not key.strip():
        add(loc, "an attribute name is empty: name the profile attribute (e.g. tier)")
    elif len(key) > MAX_KEY_CHARS:
        add(
            loc,
            f"attribute name '{key[:40]}...' is {len(key)} characters; a profile "
            f"attribute name has at most {MAX_KEY_CHARS}",
        )


def _hint(source: str) -> str:
    if _BARE_WORD.match(source.strip()) and "." not in source:
        text = source.strip()
        return f": for the text {text} write \"'{text}'\" (quotes inside the YAML string)"
    hint = expression_hint(source)
    return f": {hint}" if hint else ""


def profile_event_warnings(
    loaded: Iterable[LoadedJourney], profile_events: Iterable[str]
) -> list[Problem]:
    """Warnings for journeys that wait for a profile event: it never enters, converts,
    exits or moves anyone."""
    names = frozenset(profile_events)
    out: list[Problem] = []
    for item in loaded:
        j = item.journey
        if j is None:
            continue
        uses: list[tuple[Loc, str, str]] = []
        if j.entry.event is not None:  # a scheduled entry has no event
            uses.append((("entry", "event"), j.entry.event, "entry"))
        uses += [(("exit_on", i), e, "exit_on") for i, e in enumerate(j.exit_on)]
        if j.goal is not None:
            uses.append((("goal", "event"), j.goal.event, "goal"))
        for nid, node in j.nodes.items():
            if isinstance(node, WaitForNode):
                uses += [
                    (("nodes", nid, "paths", i, "event"), p.event, "wait_for path")
                    for i, p in enumerate(node.paths)
                    if p.event
                ]
        for loc, event, what in uses:
            if event in names:
                problem = item.problem(
                    loc,
                    f"{what} event '{event}' is a profile event "
                    "(settings.profile_events): it only updates the "
                    "profile, so this never happens; use another event, "
                    "or remove it from profile_events",
                )
                out.append(dataclasses.replace(problem, severity="warning"))
    return out
