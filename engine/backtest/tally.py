"""The counts of a backtest: per journey version, what ``journeys stats`` counts from the
outcomes (:class:`~engine.stats.aggregate.JourneyStats`), plus the SMS segments of every
SMS the gateway took (the cost driver).

A :class:`Tally` is made per batch of users and merged: users are independent, so the
counts of disjoint sets of users add up (:meth:`JourneyStats.merge`) to those of all of
them, whichever way they were split. Users reached are counted within a batch
(:meth:`JourneyStats.fold_reach`): a send and its deliveries are one user's, so they are
always in the same batch.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from typing import Any

from engine.channels.prepare import Prepared, prepare
from engine.core.effects import SendRequest
from engine.journey.model import Journey
from engine.sim.simulator import SimResult
from engine.stats.aggregate import Aggregator, JourneyStats

Version = tuple[str, int]
SEGMENTS = "sms_segments"


@dataclass
class Tally:
    versions: dict[Version, JourneyStats] = field(default_factory=dict)
    segments: dict[Version, Counter[str]] = field(default_factory=dict)  # node -> segments
    other_segments: int = 0  # SMS outside any journey (HELP answers)

    def merge(self, other: Tally) -> None:
        for key, js in other.versions.items():
            mine = self.versions.get(key)
            if mine is None:
                mine = self.versions[key] = JourneyStats(*key)
            mine.merge(js)
        for key, by_node in other.segments.items():
            self.segments.setdefault(key, Counter()).update(by_node)
        self.other_segments += other.other_segments

    def _aggregator(self) -> Aggregator:
        agg = Aggregator()
        for key in sorted(self.versions):
            js = self.versions[key]
            # Edges sorted: the order outcomes came in depends on how the users were split.
            js.edges = Counter(dict(sorted(js.edges.items())))
            agg.journeys[key] = js
        return agg

    def report(self, journeys: Iterable[Journey]) -> list[dict[str, Any]]:
        """What ``journeys stats --json`` prints for these outcomes, with ``sms_segments``
        per node and per journey version."""
        out = self._aggregator().to_json(journeys)
        for j in out:
            by_node = self.segments.get((j["journey_id"], j["version"]), Counter())
            for node, row in j["nodes"].items():
                row[SEGMENTS] = by_node.get(node, 0)
            j[SEGMENTS] = sum(by_node.values())
        return out

    def global_control(self, journeys: Iterable[Journey]) -> dict[str, Any] | None:
        """The lift over the global control group, as ``journeys stats`` shows it."""
        return self._aggregator().global_control(journeys)


def tally(result: SimResult) -> Tally:
    """The counts of one simulator run (whole users)."""
    agg = Aggregator()
    agg.add_all(o.to_wire() for o in result.outcomes)
    out = Tally()
    for key, js in agg.journeys.items():
        js.fold_reach()
        js.at = {}  # only needed while adding: a run's users are all in this batch
        out.versions[key] = js
    for req, segments in sms_segments(result.sends):
        if req.journey_id is None or req.journey_version is None:
            out.other_segments += segments
            continue
        key = (req.journey_id, req.journey_version)
        out.segments.setdefault(key, Counter())[req.node_id or ""] += segments
    return out


def sms_segments(sends: Iterable[SendRequest]) -> Iterator[tuple[SendRequest, int]]:
    """Each SMS the gateway takes, with its segments (engine.channels.sms, through the
    gateway's own :func:`~engine.channels.prepare.prepare`: a fallback SMS derived from its
    card counts the derived text). SMS it refuses (a bad number, too long) cost nothing."""
    originals: dict[str, dict[str, Any]] = {}
    seen: set[str] = set()
    for req in sends:
        if req.message_id in seen:
            continue
        seen.add(req.message_id)
        if req.channel == "rcs":
            originals[req.message_id] = req.content
            continue
        prepared = prepare(req, originals)
        if isinstance(prepared, Prepared):
            yield req, prepared.segments
