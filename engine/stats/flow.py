"""The order to list a journey's nodes in: the order users go through them.

From the journey file when there is one (its start, then along ``next``, ``cases``,
``variants``, ``paths`` and ``on_timeout``); otherwise from the paths the runs took
(``node_entered`` one after the other, from the entry); nodes neither explains come last,
in the order they were first seen.

Flow order is a topological order of the graph without its loops (the edges a depth-first
walk from the start finds going back up), ties broken by breadth-first distance from the
start (in the order the file, or the runs, list the edges), ends (exits) last: a branch's
nodes come before the node where its paths meet again, a reminder loop does not pull the
node it returns to below itself, and exits come after the steps that lead to them.
"""

from __future__ import annotations

import heapq
from collections import Counter, deque
from collections.abc import Callable, Iterable, Mapping, Sequence

from engine.journey.diagram import ENTRY_ID
from engine.journey.model import Journey, successors


def _ranks(start: str, targets: Callable[[str], list[str]]) -> dict[str, int]:
    """Breadth-first discovery order from ``start``: every reachable node."""
    rank = {start: 0}
    queue = deque([start])
    while queue:
        for t in targets(queue.popleft()):
            if t not in rank:
                rank[t] = len(rank)
                queue.append(t)
    return rank


def _back_edges(start: str, targets: Callable[[str], list[str]]) -> set[tuple[str, str]]:
    """The edges a depth-first walk from ``start`` finds going back to a node on its path:
    without them the graph has no loop."""
    back: set[tuple[str, str]] = set()
    on_path, visited = {start}, {start}
    stack = [(start, iter(targets(start)))]
    while stack:
        node, todo = stack[-1]
        t = next(todo, None)
        if t is None:
            on_path.discard(node)
            stack.pop()
        elif t in on_path:
            back.add((node, t))
        elif t not in visited:
            visited.add(t)
            on_path.add(t)
            stack.append((t, iter(targets(t))))
    return back


def flow_order(start: str, next_of: Callable[[str], Sequence[str]]) -> list[str]:
    """Every node reachable from ``start``, ``start`` first, in flow order."""
    cache: dict[str, list[str]] = {}

    def targets(node: str) -> list[str]:
        if node not in cache:
            cache[node] = list(dict.fromkeys(next_of(node)))
        return cache[node]

    rank, back = _ranks(start, targets), _back_edges(start, targets)

    def key(node: str) -> tuple[bool, int, str]:
        return not targets(node), rank[node], node

    waiting = Counter(t for n in rank for t in targets(n) if (n, t) not in back)
    ready = [key(start)]
    order: list[str] = []
    while ready:  # Kahn's topological sort, the smallest key first
        node = heapq.heappop(ready)[2]
        order.append(node)
        for t in targets(node):
            if (node, t) not in back:
                waiting[t] -= 1
                if waiting[t] == 0:
                    heapq.heappush(ready, key(t))
    return order


def journey_order(journey: Journey) -> list[str]:
    """The journey's nodes in flow order; nodes no path reaches last, in file order."""

    def next_of(node: str) -> list[str]:
        found = journey.nodes.get(node)
        return [t for _, t in successors(found)] if found is not None else []

    reached = [n for n in flow_order(journey.start, next_of) if n in journey.nodes]
    return list(dict.fromkeys([*reached, *journey.nodes]))


def observed_order(edges: Iterable[tuple[str, str]]) -> list[str]:
    """Nodes in the flow order of the paths runs took (``(from, to)`` pairs, the entry as
    :data:`~engine.journey.diagram.ENTRY_ID`), in the order the pairs were first seen."""
    graph: dict[str, list[str]] = {}
    for source, target in edges:
        graph.setdefault(source, []).append(target)
    return [n for n in flow_order(ENTRY_ID, lambda n: graph.get(n, [])) if n != ENTRY_ID]


def node_order(
    seen: Iterable[str],
    journey: Journey | None = None,
    edges: Mapping[tuple[str, str], int] | Iterable[tuple[str, str]] = (),
) -> list[str]:
    """The nodes to list: the journey's (all of them, in flow order) when it is known, then
    those ``seen`` in outcomes in the flow order of the runs' ``edges``, then the rest of
    ``seen`` in the order given (first seen)."""
    seen = [n for n in seen if n]
    known = set(seen)
    first = journey_order(journey) if journey is not None else []
    runs = [n for n in observed_order(edges) if n in known]
    return list(dict.fromkeys([*first, *runs, *seen]))
