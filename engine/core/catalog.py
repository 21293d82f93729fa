"""Every loaded journey version, with the indexes the core looks things up in.

Built once from the journeys an engine is given; handlers reach it through the ``Step``
(:mod:`.context`), so no handler needs the engine itself.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field

from engine.core.config import DAY_MS
from engine.core.winner import SplitDecision, SplitKey
from engine.journey.model import Journey, WaitForNode


@dataclass(frozen=True)
class Catalog:
    versions: dict[str, dict[int, Journey]]  # journey id -> version -> journey
    latest: dict[str, Journey]  # journey id -> its newest version: new entries go there
    by_entry: dict[str, list[Journey]]  # entry event -> the newest versions it enters
    # Events no journey mentions touch nothing: not even the dedupe memory.
    known_events: frozenset[str]
    longest_cap_ms: int  # the longest frequency-cap window: how long sends are logged
    # Winners chosen by splits (engine.core.winner): the one part that grows at run time,
    # through Engine.apply_decision only.
    decisions: dict[SplitKey, SplitDecision] = field(default_factory=dict)
    # The newest versions with a scheduled entry (engine.core.audience), by id.
    scheduled: tuple[Journey, ...] = ()

    @classmethod
    def of(cls, journeys: Iterable[Journey]) -> Catalog:
        versions: dict[str, dict[int, Journey]] = {}
        for j in journeys:
            versions.setdefault(j.id, {})[j.version] = j
        latest = {jid: vs[max(vs)] for jid, vs in sorted(versions.items())}
        by_entry: dict[str, list[Journey]] = {}
        for j in latest.values():
            if j.entry.event is not None:
                by_entry.setdefault(j.entry.event, []).append(j)
        known: set[str] = set(by_entry)
        for vs in versions.values():
            for j in vs.values():
                known.update(j.exit_on)
                if j.goal is not None:
                    known.add(j.goal.event)
                for node in j.nodes.values():
                    if isinstance(node, WaitForNode):
                        known.update(p.event for p in node.paths if p.event)
        caps = [
            j.settings.frequency_cap.per_ms
            for vs in versions.values()
            for j in vs.values()
            if j.settings.frequency_cap is not None
        ]
        scheduled = tuple(j for j in latest.values() if j.entry.schedule is not None)
        return cls(
            versions,
            latest,
            by_entry,
            frozenset(known),
            max(caps, default=DAY_MS),
            scheduled=scheduled,
        )
