"""Rules for a split that picks its winner (``winner:`` on a ``split``).

* ``min_users`` is at least 1 and ``after`` is a positive duration;
* ``metric: conversion`` counts the journey's goal: the journey needs one;
* ``metric: click`` / ``read`` counts taps on / reads of a message sent after the split:
  every variant must lead to an RCS send (only RCS reports reads and taps), or that variant
  could never score and the comparison would mean nothing.
"""

from __future__ import annotations

from collections.abc import Callable

import networkx as nx

from engine.journey.loader import Loc
from engine.journey.model import Journey, SendNode, SplitNode

Add = Callable[[Loc, str], None]


def winner_problems(journey: Journey, graph: nx.DiGraph, add: Add) -> None:
    for nid, node in journey.nodes.items():
        if not isinstance(node, SplitNode) or node.winner is None:
            continue
        w, base = node.winner, ("nodes", nid, "winner")
        if w.min_users < 1:
            add(
                (*base, "min_users"),
                f"winner.min_users is {w.min_users}: every variant needs "
                "at least 1 user before a decision (a few hundred make a sound one)",
            )
        if w.after_ms <= 0:
            add(
                (*base, "after"),
                f"winner.after is {w.after!r}: give a positive duration "
                "(e.g. 3d), the time the experiment runs before it may decide",
            )
        if w.metric == "conversion":
            if journey.goal is None:
                add(
                    (*base, "metric"),
                    "winner metric conversion counts the journey's goal, and "
                    "the journey has none: add a goal, or pick click or read",
                )
            continue
        for i, v in enumerate(node.variants):
            if v.next not in graph:
                continue  # a broken target is reported elsewhere
            after = {v.next} | set(nx.descendants(graph, v.next))
            if not any(_is_rcs_send(journey, n) for n in after):
                add(
                    (*base, "metric"),
                    f"winner metric {w.metric} counts {w.metric}s of an RCS "
                    f"message sent after the split, and variant '{v.name}' (variants[{i}]) "
                    "leads to no rcs send: pick conversion, or send over rcs in every variant",
                )


def _is_rcs_send(journey: Journey, node_id: str) -> bool:
    node = journey.nodes.get(node_id)
    return isinstance(node, SendNode) and node.channel == "rcs"
