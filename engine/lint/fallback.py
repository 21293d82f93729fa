"""RCS sends that reach some users as nothing: no ``fallback`` for phones without RCS.

Without ``fallback``, a user whose phone can't take RCS gets ``message_failed`` (reason
``not_capable``) and no message at all. A send only reached right after the user tapped a
chip (a ``click`` path) or read a message (a ``read`` path: SMS has no read receipts) goes
to a phone that just used RCS, so it is left alone. So is a send with ``ttl``: ``ttl`` only
applies without a fallback, so it says the send is meant for RCS only.
"""

from __future__ import annotations

from collections.abc import Callable

import networkx as nx

from engine.journey.loader import Loc
from engine.journey.model import Journey, SendNode, WaitForNode, successors

Report = Callable[[Loc, str], None]


def _reached_without_rcs_proof(journey: Journey) -> set[str]:
    """Nodes reachable from the start along edges other than click and read paths."""
    g = nx.DiGraph()
    g.add_nodes_from(journey.nodes)
    for nid, node in journey.nodes.items():
        if isinstance(node, WaitForNode):
            targets = [p.next for p in node.paths if p.kind not in ("click", "read")]
            targets += [node.on_timeout] if node.on_timeout is not None else []
        else:
            targets = [t for _, t in successors(node)]
        g.add_edges_from((nid, t) for t in targets if t in journey.nodes)
    if journey.start not in g:
        return set()
    return {journey.start} | set(nx.descendants(g, journey.start))


def rcs_without_fallback(journey: Journey, report: Report) -> None:
    reached = _reached_without_rcs_proof(journey)
    for nid, node in journey.nodes.items():
        if isinstance(node, SendNode) and node.channel == "rcs" and node.fallback is None:
            if nid not in reached or node.ttl is not None:
                continue
            report(("nodes", nid, "channel"), "rcs send without fallback: users whose phone "
                   "can't take RCS get nothing (message_failed, reason not_capable): add "
                   "fallback: {sms: \"...\"} (fallback: {} derives the text from the "
                   "message), or set ttl if the send is meant for RCS only")
