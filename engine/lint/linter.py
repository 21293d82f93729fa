"""The journey linter: every problem in every file at once, each with its line.

The model (:mod:`engine.journey.model`) checks the shape of one file; the loader reports
what the model refuses. This module adds the rules that need the whole graph (targets,
reachability, exits, loops without a wait), expressions and templates that don't parse,
channel limits checkable before rendering (:mod:`engine.lint.rcs`), and rules across
files (the same id and version twice). Problems print as ``file:line: node: message``.

Warnings (``file:line: node: warning: message``) are what probably loses or garbles
messages without being wrong as such: an RCS send without SMS fallback
(:mod:`engine.lint.fallback`), chips nobody answers (:mod:`engine.lint.chips`), costly
SMS texts (:mod:`engine.lint.sms_text`), template variables that can be missing
(:mod:`engine.lint.variables`), and a frequency cap other journeys' sends count against.
They never stop a journey from loading. Holdouts and ``best_time`` waits:
:mod:`engine.lint.measurement`; the deployment's settings file: :mod:`engine.lint.deployment`.
"""

from __future__ import annotations

import dataclasses
import difflib
import math
import os
from collections import defaultdict
from collections.abc import Callable, Iterable

import networkx as nx

from engine.errors import ExpressionError, InvalidJourney, Problem, TemplateError
from engine.journey.expressions import compile_expression
from engine.journey.loader import LoadedJourney, Loc, iter_journeys, load_paths
from engine.journey.model import (
    BranchNode,
    ExitNode,
    Journey,
    SendNode,
    SplitNode,
    UpdateProfileNode,
    WaitForNode,
    WaitNode,
    WebhookNode,
    successors,
)
from engine.journey.templates import Template, compile_template
from engine.lint.chips import unanswered_chips, unoffered_answers
from engine.lint.deployment import deployment_profile_events, lint_settings
from engine.lint.expression_hints import expression_hint
from engine.lint.fallback import rcs_without_fallback
from engine.lint.measurement import best_time_rules, holdout_rules
from engine.lint.profile import profile_event_warnings, profile_rules
from engine.lint.rcs import lint_send as _lint_send
from engine.lint.rcs import postback_problem, send_fields, where
from engine.lint.schedule import schedule_rules
from engine.lint.sms_text import sms_cost_warning
from engine.lint.template_roots import unknown_template_names
from engine.lint.variables import missing_variables
from engine.lint.webhook import webhook_problems
from engine.lint.winner import winner_problems

__all__ = ["journey_graph", "lint_loaded", "lint_paths", "load_journeys"]

WAITING_TYPES = frozenset({"wait", "wait_for"})


def journey_graph(journey: Journey) -> nx.DiGraph:
    """The journey as a DiGraph: nodes carry ``type`` and ``label``, edges ``label``.

    Edges to a node that doesn't exist are left out (the linter reports them). Two edges
    between the same nodes (a case and the default, say) become one with both labels.
    """
    g = nx.DiGraph(id=journey.id, version=journey.version, start=journey.start)
    for nid, node in journey.nodes.items():
        g.add_node(nid, type=node.type, label=journey.label(nid))
    for nid, node in journey.nodes.items():
        for label, target in successors(node):
            if target not in journey.nodes:
                continue
            if g.has_edge(nid, target):
                old = g.edges[nid, target]["label"]
                g.edges[nid, target]["label"] = " | ".join(x for x in (old, label) if x)
            else:
                g.add_edge(nid, target, label=label)
    return g


class _Lint:
    """The problems of one loaded journey, and what the rules share."""

    def __init__(self, loaded: LoadedJourney, journey: Journey) -> None:
        self.loaded = loaded
        self.j = journey
        self.problems: list[Problem] = []
        self.graph = journey_graph(journey)
        self._templates: dict[str, Template | TemplateError] = {}

    def add(self, loc: Loc, message: str) -> None:
        self.problems.append(self.loaded.problem(loc, message))

    def warn(self, loc: Loc, message: str) -> None:
        self.problems.append(_as_warning(self.loaded.problem(loc, message)))

    def template(self, source: str) -> Template | TemplateError:
        if source not in self._templates:
            try:
                self._templates[source] = compile_template(source)
            except TemplateError as exc:
                self._templates[source] = exc
        return self._templates[source]

    def is_static(self, source: str) -> bool:
        t = self.template(source)
        return not isinstance(t, TemplateError) and t.is_static

    def reachable(self) -> set[str]:
        if self.j.start not in self.graph:
            return set(self.j.nodes)
        return {self.j.start} | set(nx.descendants(self.graph, self.j.start))


def _as_warning(problem: Problem) -> Problem:
    return dataclasses.replace(problem, severity="warning")


def _hint(name: str, names: list[str]) -> str:
    close = difflib.get_close_matches(name, names, n=1, cutoff=0.6)
    if close:
        return f": did you mean '{close[0]}'?"
    shown = ", ".join(names[:8]) + (", ..." if len(names) > 8 else "")
    return f": use one of the nodes ({shown}) or add a node '{name}'"


# --------------------------------------------------------------------------- graph rules


def _rule_targets(c: _Lint) -> None:
    names = list(c.j.nodes)

    def check(loc: Loc, target: str, what: str | None = None) -> bool:
        if target in c.j.nodes:
            return True
        c.add(loc, f"{what or loc[-1]} '{target}' names no node{_hint(target, names)}")
        return False

    check(("start",), c.j.start)
    for nid, node in c.j.nodes.items():
        base: Loc = ("nodes", nid)
        match node:
            case SendNode() | WaitNode() | UpdateProfileNode():
                check((*base, "next"), node.next)
            case WaitForNode():
                for i, p in enumerate(node.paths):
                    check((*base, "paths", i, "next"), p.next)
                    for key in ("of", "read"):
                        ref = getattr(p, key)
                        if ref is not None and check((*base, "paths", i, key), ref):
                            target = c.j.nodes[ref]
                            if not isinstance(target, SendNode):
                                c.add((*base, "paths", i, key), f"{key} '{ref}' is a "
                                      f"{target.type} node: name the send whose message the "
                                      "user answers or reads")
                if node.on_timeout is not None:
                    check((*base, "on_timeout"), node.on_timeout)
            case BranchNode():
                for i, case in enumerate(node.cases):
                    check((*base, "cases", i, "next"), case.next)
                check((*base, "default"), node.default)
            case SplitNode():
                for i, v in enumerate(node.variants):
                    check((*base, "variants", i, "next"), v.next)
            case WebhookNode():
                check((*base, "next"), node.next)
                check((*base, "on_failure"), node.on_failure)
    for i, m in enumerate(c.j.migrate):
        for old, new in m.nodes.items():
            check(("migrate", i, "nodes", old),
                  new, f"migrate from version {m.from_version}: '{old}' ->")


def _rule_reachable(c: _Lint) -> None:
    reach = c.reachable()
    for nid in c.j.nodes:
        if nid not in reach:
            c.add(("nodes", nid), f"unreachable from start '{c.j.start}': point a next at "
                                  "it, or delete it")


def _rule_exits(c: _Lint) -> None:
    exits = {nid for nid, n in c.j.nodes.items() if isinstance(n, ExitNode)}
    if not exits:
        c.add(("nodes",), "the journey has no exit node: add one ({type: exit}) and lead every "
                          "path to it")
        return
    # A node with a broken target is reported by _rule_targets; don't pile on.
    ends = exits | {nid for nid, n in c.j.nodes.items()
                    if any(t not in c.j.nodes for _, t in successors(n))}
    finishing = set(ends)
    for e in ends:
        finishing |= nx.ancestors(c.graph, e)
    reach = c.reachable()
    for nid in c.j.nodes:
        if nid in reach and nid not in finishing:
            c.add(("nodes", nid), "no path from here to an exit node: users who get here never "
                                  "finish; lead one of its ways out to an exit")


def _rule_loops(c: _Lint) -> None:
    """Every loop must pass a wait or wait_for, or users go round it at once, forever."""
    order = {nid: i for i, nid in enumerate(c.j.nodes)}
    busy = c.graph.subgraph(
        [n for n, t in c.graph.nodes(data="type") if t not in WAITING_TYPES]
    )
    for scc in nx.strongly_connected_components(busy):
        first = min(scc, key=order.__getitem__)
        if len(scc) == 1 and not busy.has_edge(first, first):
            continue
        cycle = [u for u, _ in nx.find_cycle(busy.subgraph(scc), source=first)]
        shown = " -> ".join([*cycle, cycle[0]])
        others = sorted(scc - set(cycle), key=order.__getitem__)
        also = f" (also through {', '.join(others)})" if others else ""
        c.add(("nodes", first), f"loop with no wait or wait_for: {shown}{also}; put a wait or "
                                "wait_for on it, or users go round it instantly")


def _rule_wait_for(c: _Lint) -> None:
    for nid, node in c.j.nodes.items():
        if not isinstance(node, WaitForNode):
            continue
        base: Loc = ("nodes", nid)
        if node.timeout is None and node.on_timeout is None:
            c.add(base, "wait_for has no timeout: add timeout (e.g. 3d) and on_timeout, or users "
                        "who never act wait forever")
        elif node.timeout is None:
            c.add((*base, "on_timeout"), "on_timeout without timeout: add timeout (e.g. 3d)")
        elif node.on_timeout is None:
            c.add((*base, "timeout"), "timeout without on_timeout: add on_timeout naming the "
                                      "node to go to when the time is up")
        before = nx.ancestors(c.graph, nid) if nid in c.graph else set()
        sends_before = sorted(n for n in before if isinstance(c.j.nodes[n], SendNode))
        seen: dict[tuple[object, ...], int] = {}
        for i, p in enumerate(node.paths):
            ploc: Loc = (*base, "paths", i)
            key = (p.kind, getattr(p, p.kind), p.of, p.when)
            if key in seen:
                c.add(ploc, f"path {i} is the same as path {seen[key]}: it can never be taken; "
                            "remove it or change it")
            seen.setdefault(key, i)
            if p.kind == "event":
                continue
            ref = p.of_node
            if ref is None:
                if not sends_before:
                    c.add((*ploc, p.kind), f"{p.kind} path but no send comes before this "
                          "wait_for: name the send in 'of'")
                candidates = sends_before
            elif isinstance(c.j.nodes.get(ref), SendNode):
                if ref not in before:
                    c.add((*ploc, "of" if p.of is not None else "read"), f"send '{ref}' is not "
                          "on any path to this wait_for: the user has not been sent it here")
                candidates = [ref]
            else:
                continue  # reported by _rule_targets
            # A reply may be free text ("not interested"), so only taps must match a chip.
            if p.kind == "click" and p.click != "*":
                sends = [(n, c.j.nodes[n]) for n in candidates]
                problem = postback_problem(p.kind, getattr(p, p.kind), sends, ref, c.is_static)
                if problem:
                    c.add((*ploc, p.kind), problem)


# --------------------------------------------------------------------------- node rules


def _rule_nodes(c: _Lint) -> None:
    for nid, node in c.j.nodes.items():
        base: Loc = ("nodes", nid)
        match node:
            case SplitNode():
                names: dict[str, int] = {}
                for i, v in enumerate(node.variants):
                    if not (math.isfinite(v.weight) and v.weight > 0):
                        c.add((*base, "variants", i, "weight"), f"variant '{v.name}' has weight "
                              f"{v.weight:g}: a weight is a positive number (its share of users)")
                    if v.name in names:
                        c.add((*base, "variants", i, "name"), f"variant name '{v.name}' is used "
                              f"twice (also variant {names[v.name]}): give each a unique name")
                    names.setdefault(v.name, i)
            case BranchNode():
                whens: dict[str, int] = {}
                for i, case in enumerate(node.cases):
                    if case.when.strip() in whens:
                        c.add((*base, "cases", i, "when"), f"case {i} has the same condition as "
                              f"case {whens[case.when.strip()]}: it can never be taken")
                    whens.setdefault(case.when.strip(), i)
            case WaitNode() if node.until_time is not None and not node.until_time.days:
                c.add((*base, "until", "days"), "until.days is empty: the wait would never end; "
                      "list the days (or leave days out for every day)")
            case SendNode():
                if node.channel == "sms" and node.ttl is not None:
                    c.add((*base, "ttl"), "ttl applies to rcs sends only: remove it")
                _lint_send(nid, node, c.is_static, c.add)


def _rule_expressions(c: _Lint) -> None:
    found: list[tuple[Loc, str | None]] = [(("entry", "when"), c.j.entry.when)]
    if c.j.goal is not None:
        found.append((("goal", "when"), c.j.goal.when))
    for nid, node in c.j.nodes.items():
        base: Loc = ("nodes", nid)
        if isinstance(node, BranchNode):
            found += [((*base, "cases", i, "when"), k.when) for i, k in enumerate(node.cases)]
        elif isinstance(node, WaitForNode):
            found += [((*base, "paths", i, "when"), p.when) for i, p in enumerate(node.paths)]
    for loc, source in found:
        if source is None:
            continue
        try:
            compile_expression(source)
        except ExpressionError as exc:
            at = f" at column {exc.offset + 1}" if exc.offset is not None else ""
            hint = expression_hint(source)
            c.add(loc, f"{where(loc)}: condition doesn't parse{at}: {exc.message} "
                       f"(in {source!r})" + (f": {hint}" if hint else ""))


def _rule_templates(c: _Lint) -> None:
    for nid, node in c.j.nodes.items():
        if isinstance(node, SendNode):
            for f in send_fields(nid, node):
                t = c.template(f.value)
                if isinstance(t, TemplateError):
                    c.add(f.loc, f"{where(f.loc)}: {t.message}: fix the Liquid template")


def _rule_journey(c: _Lint) -> None:
    j = c.j
    start = j.nodes.get(j.start)
    if isinstance(start, ExitNode):
        c.add(("start",), f"start '{j.start}' is an exit node: users would leave at once; "
                          "start at the first step")
    for i, event in enumerate(j.exit_on):
        if event == j.entry.event:
            c.add(("exit_on", i), f"exit_on has the entry event '{event}': every user would "
                                  "exit as soon as they enter; remove it")
    if j.goal is not None and j.goal.event == j.entry.event:
        c.add(("goal", "event"), f"goal event '{j.goal.event}' is the entry event: every user "
                                 "would convert on entry; use the event that means success")
    if j.entry.reentry == "never" and j.entry.cooldown is not None:
        c.add(("entry", "cooldown"), "cooldown has no effect with reentry: never; remove one")
    qh = j.settings.quiet_hours
    if qh is not None and qh.from_ == qh.to:
        c.add(("settings", "quiet_hours", "from"), f"quiet hours from {qh.from_} to {qh.to} is "
              "an empty window: give two different times")
    if qh is not None and not qh.days:
        c.add(("settings", "quiet_hours", "days"), "quiet_hours.days is empty: list the days, "
              "or leave days out for every day")
    rate = j.settings.send_rate
    if rate is not None and rate.max < 1:
        c.add(("settings", "send_rate", "max"), f"send_rate.max is {rate.max}: the journey "
              "could never send; allow at least 1, or remove send_rate for no limit")
    if rate is not None and rate.per_ms <= 0:
        c.add(("settings", "send_rate", "per"), f"send_rate.per is {rate.per!r}: give a "
              "positive duration, like 1s or 1m")
    versions: dict[int, int] = {}
    for i, m in enumerate(j.migrate):
        if m.from_version >= j.version:
            c.add(("migrate", i, "from_version"), f"from_version {m.from_version} is not lower "
                  f"than this version ({j.version}): migrate from an older version")
        elif m.from_version in versions:
            c.add(("migrate", i, "from_version"), f"from_version {m.from_version} is migrated "
                  f"twice (also migrate[{versions[m.from_version]}]): merge them")
        versions.setdefault(m.from_version, i)


def _rule_profile(c: _Lint) -> None:
    profile_rules(c.j, c.add)


def _rule_winner(c: _Lint) -> None:
    winner_problems(c.j, c.graph, c.add)


def _rule_webhooks(c: _Lint) -> None:
    webhook_problems(c.j, c.template, c.add)


# --------------------------------------------------------------------------- warnings


def _warn_fallback(c: _Lint) -> None:
    rcs_without_fallback(c.j, c.warn)


def _warn_chips(c: _Lint) -> None:
    unanswered_chips(c.j, c.graph, c.is_static, c.warn)
    unoffered_answers(c.j, c.graph, c.warn)


def _warn_sms(c: _Lint) -> None:
    for nid, node in c.j.nodes.items():
        if not isinstance(node, SendNode):
            continue
        for f in send_fields(nid, node):
            if f.role != "sms" or isinstance(c.template(f.value), TemplateError):
                continue
            cost = sms_cost_warning(f.value) if f.value.strip() else None
            if cost is not None:
                c.warn(f.loc, f"{where(f.loc)} {cost}")


def _warn_variables(c: _Lint) -> None:
    missing_variables(c.j, c.warn)
    unknown_template_names(c.j, c.warn)


def _rule_measurement(c: _Lint) -> None:
    holdout_rules(c.j, c.add, c.warn)
    best_time_rules(c.j, c.add, c.warn)


def _rule_schedule(c: _Lint) -> None:
    schedule_rules(c.j, c.add, c.warn)  # scheduled audience entry (engine.lint.schedule)


RULES: tuple[Callable[[_Lint], None], ...] = (
    _rule_targets,
    _rule_reachable,
    _rule_exits,
    _rule_loops,
    _rule_wait_for,
    _rule_nodes,
    _rule_expressions,
    _rule_templates,
    _rule_journey,
    _rule_winner,
    _rule_profile,
    _rule_webhooks,
    _warn_fallback,
    _warn_chips,
    _warn_sms,
    _warn_variables,
    _rule_measurement,
    _rule_schedule,
)


# --------------------------------------------------------------------------- across files


def _lint_across(loaded: list[tuple[LoadedJourney, Journey]]) -> list[Problem]:
    problems: list[Problem] = []
    by_key: dict[tuple[str, int], list[LoadedJourney]] = defaultdict(list)
    for item, j in loaded:
        by_key[j.key].append(item)
    for (jid, version), items in by_key.items():
        for item in items:
            for other in items:
                if other is not item:
                    problems.append(item.problem(("id",), f"journey '{jid}' version {version} is "
                                    f"also defined in {other.path}: bump the version of one of "
                                    "them (published versions are immutable)"))
    problems.extend(_warn_shared_caps(loaded))
    for item, j in loaded:
        for i, m in enumerate(j.migrate):
            olds = by_key.get((j.id, m.from_version))
            if not olds or olds[0].journey is None:
                continue
            old_nodes = list(olds[0].journey.nodes)
            for old in m.nodes:
                if old not in old_nodes:
                    problems.append(item.problem(("migrate", i, "nodes", old), f"'{old}' names "
                                    f"no node of version {m.from_version}{_hint(old, old_nodes)}"))
    return problems


def _cap_text(j: Journey) -> str:
    cap = j.settings.frequency_cap
    return "no cap" if cap is None else f"{cap.max} per {cap.per}"


def _cap_key(j: Journey) -> tuple[int, int] | None:
    cap = j.settings.frequency_cap
    return None if cap is None else (cap.max, cap.per_ms)  # 1d and 24h are the same cap


def _warn_shared_caps(loaded: list[tuple[LoadedJourney, Journey]]) -> list[Problem]:
    """The frequency cap counts the marketing sends of every journey (docs/journeys.md,
    settings). Journeys that all give the same cap share one budget on purpose; a capped
    journey next to marketing journeys with another cap, or none, loses sends to them."""
    marketing = {j.id: j for _, j in loaded
                 if any(isinstance(n, SendNode) and n.marketing for n in j.nodes.values())}
    out: list[Problem] = []
    for item, j in loaded:
        cap = j.settings.frequency_cap
        if cap is None:
            continue
        others = [f"{o.id} ({_cap_text(o)})" for oid, o in sorted(marketing.items())
                  if oid != j.id and _cap_key(o) != _cap_key(j)]
        if not others:
            continue
        shown = ", ".join(others[:4]) + (f" and {len(others) - 4} more" if len(others) > 4
                                         else "")
        out.append(_as_warning(item.problem(("settings", "frequency_cap"), f"frequency_cap "
                   f"({_cap_text(j)}) counts the marketing sends of every journey, and {shown} "
                   f"send{'s' if len(others) == 1 else ''} marketing messages under another "
                   "cap: their sends use up this one, and sends here are then suppressed "
                   "(reason frequency_cap); give every marketing journey the same cap")))
    return out


# --------------------------------------------------------------------------- public API


def lint_loaded(loaded: list[LoadedJourney], *, warnings: bool = False) -> list[Problem]:
    """Every problem in every loaded journey (that passed the schema), sorted. Never raises.

    With ``warnings``, the warnings too (:attr:`Problem.severity` tells them apart).
    """
    problems: list[Problem] = []
    valid: list[tuple[LoadedJourney, Journey]] = []
    for item in loaded:
        if item.journey is None:
            continue
        valid.append((item, item.journey))
        c = _Lint(item, item.journey)
        for rule in RULES:
            try:
                rule(c)
            except Exception as exc:  # a linter bug must not hide the other problems
                c.add((), f"internal error in linter rule {rule.__name__}: {exc!r} (please "
                          "report it)")
        problems.extend(c.problems)
    try:
        problems.extend(_lint_across(valid))
    except Exception as exc:
        problems.append(Problem("<journeys>", 1, "journey", f"internal linter error: {exc!r}"))
    return sorted({p for p in problems if warnings or not p.is_warning})


def lint_paths(
    paths: Iterable[str | os.PathLike[str]], *, warnings: bool = False
) -> list[Problem]:
    """Load and lint files and directories: every problem, sorted (empty when all is well).

    With ``warnings``, the warnings too, in the same order (by file and line).
    """
    paths = list(paths)
    loaded, problems = load_paths(paths)
    settings = [p for p in lint_settings(paths) if warnings or not p.is_warning]
    if warnings:
        settings += profile_event_warnings(loaded, deployment_profile_events(paths))
    return sorted(set(problems) | set(lint_loaded(loaded, warnings=warnings)) | set(settings))


def load_journeys(paths: Iterable[str | os.PathLike[str]]) -> list[Journey]:
    """Every journey (all versions) in the files, or InvalidJourney with every problem.

    Warnings don't stop the loading: ``journeys validate`` shows them.
    """
    paths = list(paths)
    loaded, problems = load_paths(paths)
    problems = problems + lint_loaded(loaded)
    problems += [p for p in lint_settings(paths) if not p.is_warning]  # the settings file
    if problems:
        raise InvalidJourney(problems)
    return list(iter_journeys(loaded))
