"""Users in flight: where the runs in a set of user states are, and what a set of journey
versions would do with them.

The states are the engine's own (:meth:`engine.core.state.UserState.to_wire`), read from
the worker's table changelog or from a file ``journeys simulate --states-out`` wrote
(:mod:`engine.stats.state_source`). A run sits in one node of one version; a message
waiting for a timer (the RCS fallback window, a revoke grace, a fallback SMS deferred by
quiet hours) belongs to the send node of its version.

What happens to them is decided the way the core decides it (:mod:`engine.core.migrate`):

* **move**: the newest version's ``migrate`` maps the run's (version, node) to a node of
  the newest version; the run moves at its next step;
* **stay**: no mapping, and the run's version is still loaded: it finishes there;
* **stranded**: the run's version (or journey) is no longer loaded, its node is gone from
  it (a version edited in place), or the mapping names a node the newest version doesn't
  have. The engine can't handle such a run: its inputs go to the dead letters. A message
  waiting for a timer is stranded when its version is gone (messages never migrate).
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from typing import Any, Literal

from engine.core.catalog import Catalog
from engine.core.migrate import migration_for
from engine.core.state import Instance, UserState

Place = tuple[str, int, str]  # journey id, version, node id
FateKind = Literal["stay", "move", "stranded"]


@dataclass
class InFlight:
    """Runs and waiting messages per (journey, version, node), from ``users`` states."""

    source: str
    users: int = 0
    runs: Counter[Place] = field(default_factory=Counter)
    messages: Counter[Place] = field(default_factory=Counter)

    def add(self, places: tuple[list[Place], list[Place]]) -> None:
        self.users += 1
        self.runs.update(places[0])
        self.messages.update(places[1])

    def places(self, journey_id: str) -> list[Place]:
        """The (journey, version, node) of ``journey_id`` that hold a run or a message."""
        return sorted({p for p in (*self.runs, *self.messages) if p[0] == journey_id})

    def journeys(self) -> set[str]:
        return {p[0] for p in (*self.runs, *self.messages)}


def places(wire: dict[str, Any]) -> tuple[list[Place], list[Place]]:
    """(runs, waiting messages) of one state's wire form."""
    state = UserState.from_wire(wire)
    runs = [(i.journey_id, i.version, i.node) for i in state.instances.values()]
    messages = [
        (m.journey_id, m.version, m.node) for m in state.messages.values() if m.timer_at is not None
    ]
    return runs, messages


def count(wires: Any, source: str) -> InFlight:
    """An :class:`InFlight` of an iterable of state wire forms."""
    found = InFlight(source)
    for wire in wires:
        found.add(places(wire))
    return found


@dataclass(frozen=True)
class Fate:
    kind: FateKind
    why: str
    to_version: int | None = None
    to_node: str | None = None

    def to_json(self) -> dict[str, Any]:
        return {
            "fate": self.kind,
            "to_version": self.to_version,
            "to_node": self.to_node,
            "why": self.why,
        }

    def __str__(self) -> str:
        if self.kind == "move":
            return f"move to version {self.to_version} '{self.to_node}' ({self.why})"
        return f"{self.kind}: {self.why}" if self.kind == "stranded" else f"stay ({self.why})"


def run_fate(place: Place, catalog: Catalog) -> Fate:
    """What the engine, loaded with ``catalog``, does with a run waiting at ``place``."""
    jid, version, node = place
    gone = _version_gone(place, catalog)
    if gone is not None:
        return gone
    inst = Instance("", jid, version, node, 0, {}, {})
    target = migration_for(catalog, inst)
    if target is not None:
        to_version, to_node = target
        if to_node not in catalog.versions[jid][to_version].nodes:
            return Fate("stranded", f"migrate maps it to '{to_node}', which version "
                        f"{to_version} doesn't have")
        return Fate("move", "migrate", to_version, to_node)
    if node not in catalog.versions[jid][version].nodes:
        return Fate("stranded", f"version {version} has no node '{node}' any more (edited "
                    "in place)")
    newest = catalog.latest[jid].version
    why = "the newest version" if newest == version else f"no migrate mapping in version {newest}"
    return Fate("stay", why, version, node)


def message_fate(place: Place, catalog: Catalog) -> Fate:
    """A message waiting for its timer stays with its version: there, or stranded."""
    gone = _version_gone(place, catalog)
    if gone is not None:
        return gone
    return Fate("stay", "messages never migrate", place[1], place[2])


def _version_gone(place: Place, catalog: Catalog) -> Fate | None:
    jid, version, _node = place
    versions = catalog.versions.get(jid)
    if not versions:
        return Fate("stranded", f"journey '{jid}' is no longer loaded")
    if version not in versions:
        return Fate("stranded", f"version {version}'s file is gone")
    return None
