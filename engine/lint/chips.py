"""Taps that go nowhere: chips no ``wait_for`` answers, and answers no message offers.

A tap on a chip takes a ``wait_for`` path only while the user waits in that node, and only
if the path answers the message the chip is on: the send named in ``of``, or, without
``of``, the latest send of the run. So a send's reply chips need a ``wait_for`` after the
send with a path that answers that send and listens to the chip's postback; and a path
that listens to a postback needs a chip with it on the message it answers.

The graph gives both: the ``wait_for`` nodes after a send are its descendants, and a send
can be the latest one in a ``wait_for`` when some way leads from the send to it without
passing another send. Only ``reply`` chips are checked: the other kinds (open a link,
dial, show a map, add to the calendar, share a location) do something on the phone even
when no path listens. Postbacks with template markup are left alone.
"""

from __future__ import annotations

import difflib
from collections import defaultdict
from collections.abc import Callable

import networkx as nx

from engine.journey.loader import Loc
from engine.journey.model import Journey, SendNode, Suggestion, WaitForNode, WaitPath
from engine.lint.rcs import IsStatic, message_suggestions

Report = Callable[[Loc, str], None]


def latest_sends(journey: Journey, graph: nx.DiGraph) -> dict[str, set[str]]:
    """For each ``wait_for``: the sends that can be the latest send of a run waiting there."""
    sends = {n for n, node in journey.nodes.items() if isinstance(node, SendNode)}
    out: dict[str, set[str]] = defaultdict(set)
    for s in sends:
        without_others = graph.subgraph(n for n in graph if n == s or n not in sends)
        for n in nx.descendants(without_others, s):
            if isinstance(journey.nodes[n], WaitForNode):
                out[n].add(s)
    return out


def _listens(p: WaitPath, postback: str) -> bool:
    if p.kind == "click":
        return p.click in ("*", postback)
    if p.kind == "reply":
        value = str(p.reply)
        return value == "*" or value.strip().lower() == postback.strip().lower()
    return False


def _answers(p: WaitPath, send: str, wait: str, latest: dict[str, set[str]]) -> bool:
    return p.of_node == send if p.of_node is not None else send in latest.get(wait, set())


def _offered(sends: set[str] | list[str], journey: Journey) -> dict[str, set[str]] | None:
    """postback -> the sends (of ``sends``) with a chip that sends it back; None when a
    postback is templated (it can't be known before rendering)."""
    out: dict[str, set[str]] = defaultdict(set)
    for sid in sends:
        node = journey.nodes[sid]
        assert isinstance(node, SendNode)
        for _, s in message_suggestions(sid, node):
            if "{{" in s.postback or "{%" in s.postback:
                return None
            out[s.postback].add(sid)
    return out


def _reply_chips(sid: str, node: SendNode, is_static: IsStatic) -> list[tuple[Loc, Suggestion]]:
    return [(loc, s) for loc, s in message_suggestions(sid, node)
            if s.kind == "reply" and is_static(s.postback)]


def unanswered_chips(journey: Journey, graph: nx.DiGraph, is_static: IsStatic,
                     report: Report) -> None:
    """Reply chips whose tap no ``wait_for`` after their send listens to."""
    latest = latest_sends(journey, graph)
    for sid, node in journey.nodes.items():
        if not isinstance(node, SendNode) or sid not in graph:
            continue
        chips = _reply_chips(sid, node, is_static)
        if not chips:
            continue
        after = sorted((n for n in nx.descendants(graph, sid)
                        if isinstance(journey.nodes[n], WaitForNode)),
                       key=list(journey.nodes).index)
        if not after:
            names = ", ".join(repr(s.action.text) for _, s in chips)
            report((*chips[0][0], "reply"), f"no wait_for comes after this send, so a tap on "
                   f"its reply chips ({names}) does nothing: add a wait_for after it with a "
                   f"path per chip ({{reply: {chips[0][1].postback}, next: ...}}), or use "
                   "open_url chips")
            continue
        for loc, chip in chips:
            pb = chip.postback
            if any(_listens(p, pb) and _answers(p, sid, w, latest)
                   for w in after for p in _wait(journey, w).paths):
                continue
            where_to = _closest(journey, graph, sid, after)
            report((*loc, "reply", "postback" if chip.action.postback else "text"),
                   f"chip {chip.action.text!r} (postback {pb!r}): no wait_for after this send "
                   f"listens to it, so a tap does nothing: add {{reply: {pb}, of: {sid}, "
                   f"next: ...}} to '{where_to}'{_listening_elsewhere(journey, sid, after)}")


def _wait(journey: Journey, nid: str) -> WaitForNode:
    node = journey.nodes[nid]
    assert isinstance(node, WaitForNode)
    return node


def _closest(journey: Journey, graph: nx.DiGraph, sid: str, waits: list[str]) -> str:
    lengths = nx.single_source_shortest_path_length(graph, sid)
    return min(waits, key=lambda w: (lengths.get(w, 1 << 30), list(journey.nodes).index(w)))


def _listening_elsewhere(journey: Journey, sid: str, waits: list[str]) -> str:
    """`` (its paths answer 'remind')`` when the wait_for nodes after it answer other sends."""
    others = sorted({p.of_node for w in waits for p in _wait(journey, w).paths
                     if p.of_node is not None and p.of_node != sid and p.kind != "read"})
    if not others:
        return ""
    return f" (the paths after it answer {', '.join(repr(o) for o in others)})"


def unoffered_answers(journey: Journey, graph: nx.DiGraph, report: Report) -> None:
    """``reply`` / ``click`` paths listening to a postback the message they answer lacks.

    A ``click`` whose postback no send before it offers at all is an error reported by the
    linter's ``wait_for`` rule; here: a chip that is on an earlier message while the path
    answers the latest one, and a ``reply`` value no chip of the answered message has
    (only typed text then takes the path).
    """
    latest = latest_sends(journey, graph)
    for wid, node in journey.nodes.items():
        if not isinstance(node, WaitForNode) or wid not in graph:
            continue
        before = [n for n in nx.ancestors(graph, wid)
                  if isinstance(journey.nodes[n], SendNode)]
        for i, p in enumerate(node.paths):
            if p.kind not in ("reply", "click") or (p.kind == "click" and p.of is not None):
                continue  # a click on a named send is checked by the linter's wait_for rule
            value = str(getattr(p, p.kind))
            if value == "*":
                continue
            if p.of is not None:
                if not isinstance(journey.nodes.get(p.of), SendNode):
                    continue  # reported by the target rule
                answered = {p.of}
            else:
                answered = latest.get(wid, set())
            offered = _offered(sorted(answered), journey)
            everywhere = _offered(sorted(before), journey)
            if offered is None or everywhere is None or not answered:
                continue
            if any(_listens(p, pb) for pb in offered):
                continue
            if p.kind == "reply" and not all(_chips(journey, s) for s in answered):
                continue  # a message without chips is answered by typed text
            loc: Loc = ("nodes", wid, "paths", i, p.kind)
            holders = sorted({s for pb, ss in everywhere.items() if _listens(p, pb) for s in ss})
            if holders:
                shown = " or ".join(f"'{s}'" for s in sorted(answered))
                which = (f"send '{p.of}'" if p.of is not None
                         else f"the latest send ({shown})")
                report(loc, f"{p.kind} {value!r} answers {which}, which has no chip with that "
                       f"postback; the chip is on '{holders[0]}': write of: {holders[0]}")
            elif p.kind == "reply":
                shown = ", ".join(f"'{s}'" for s in sorted(answered))
                close = difflib.get_close_matches(value, sorted(offered), n=1, cutoff=0.6)
                fix = (f"did you mean {close[0]!r}?" if close else
                       f"use one of {', '.join(repr(pb) for pb in sorted(offered))}")
                report(loc, f"reply {value!r}: no chip of {shown} has that postback, so only "
                       f"typed text {value!r} takes this path: {fix}")


def _chips(journey: Journey, sid: str) -> bool:
    node = journey.nodes[sid]
    return isinstance(node, SendNode) and bool(message_suggestions(sid, node))
