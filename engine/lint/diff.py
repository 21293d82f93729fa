"""What changed between two versions of a journey: nodes added, removed, renamed and
changed, and the journey's own fields. Pure: two models in, a list of changes out.

Every change has a category, so that a reviewer sees at a glance what kind of edit it is:

* ``content``: what a user reads or what a condition tests (send text, cards, chips,
  fallback SMS, channel, marketing, branch and path conditions, an exit's reason);
* ``edges``: where users go next (``next``, ``default``, ``on_timeout``, cases, split
  variants and their weights, ``wait_for`` paths, the journey's ``start``);
* ``timing``: when things happen (waits, timeouts, ``fallback.after``, ``ttl``, and the
  journey's quiet hours, frequency cap and send rate);
* ``type``: the node became another kind of node; ``label``: ``name``/``description``;
* journey fields: ``entry``, ``exit_on``, ``goal``, ``settings``, ``journey`` (others).

Fields are compared as the model reads them (defaults filled in), so writing a default
out is not a change; a field this module doesn't know is compared too (as ``content``, or
``journey`` at the top), so a new field of the model never goes unseen. ``migrate`` is
not compared here: :mod:`engine.lint.migration` checks it.

A node that disappeared while another appeared is reported as *renamed* when the new
version's ``migrate`` maps one onto the other, when the two are the same but for their
id (and label), or when the new one took the old one's place: the same edge of a node
present in both versions (or ``start``) pointed at the old one and now at the new one.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any, Literal

from engine.journey.model import Journey, WaitPath, successors

NodeStatus = Literal["added", "removed", "changed", "renamed"]
RenameEvidence = Literal["migrate", "same content", "took its place"]

NODE_TIMING = frozenset({"duration", "until", "until_property", "offset", "timeout", "ttl"})
NODE_EDGES = frozenset({"next", "default", "on_timeout"})
LABELS = frozenset({"name", "description"})
JOURNEY_TIMING = ("settings.quiet_hours", "settings.frequency_cap", "settings.send_rate")
JOURNEY_CATEGORIES = {"entry": "entry", "exit_on": "exit_on", "goal": "goal",
                      "settings": "settings", "start": "edges"}
NOT_COMPARED = frozenset({"id", "version", "nodes", "migrate"})


@dataclass(frozen=True)
class Change:
    """One field that differs. ``old``/``new`` are JSON values; None: not set."""

    category: str
    field: str
    old: Any
    new: Any

    def to_json(self) -> dict[str, Any]:
        return {"category": self.category, "field": self.field, "old": self.old, "new": self.new}


@dataclass(frozen=True)
class NodeChange:
    """A node added, removed, changed, or renamed (``node`` is then the old id)."""

    node: str
    status: NodeStatus
    old_type: str | None
    new_type: str | None
    changes: tuple[Change, ...] = ()
    renamed_to: str | None = None
    evidence: RenameEvidence | None = None

    @property
    def categories(self) -> list[str]:
        return sorted({c.category for c in self.changes})

    @property
    def meaning_changed(self) -> bool:
        """Changed in more than its label."""
        return any(c.category != "label" for c in self.changes)

    def to_json(self) -> dict[str, Any]:
        out: dict[str, Any] = {
            "node": self.node,
            "status": self.status,
            "old_type": self.old_type,
            "new_type": self.new_type,
        }
        if self.renamed_to is not None:
            out["renamed_to"] = self.renamed_to
            out["evidence"] = self.evidence
        out["changes"] = [c.to_json() for c in self.changes]
        return out


@dataclass(frozen=True)
class JourneyChanges:
    """Everything that differs between two versions of one journey (either may be None:
    the journey was added or removed)."""

    journey_id: str
    old_version: int | None
    new_version: int | None
    journey: tuple[Change, ...] = ()
    nodes: tuple[NodeChange, ...] = ()

    @property
    def changed(self) -> bool:
        return bool(self.journey or self.nodes) or self.old_version is None or (
            self.new_version is None
        )

    def node(self, node_id: str) -> NodeChange | None:
        """The change of an old node (removed, renamed, changed), or of an added one."""
        return next((n for n in self.nodes if n.node == node_id), None)

    @property
    def renames(self) -> dict[str, str]:
        return {n.node: n.renamed_to for n in self.nodes if n.renamed_to is not None}


# --------------------------------------------------------------------------- comparing


def compare(old: Journey | None, new: Journey | None) -> JourneyChanges:
    """The changes from ``old`` to ``new`` (two versions of one journey, or the same one)."""
    if old is None and new is None:
        raise ValueError("compare needs at least one journey")
    jid = (new or old).id  # type: ignore[union-attr]
    if old is None or new is None:
        return JourneyChanges(
            jid, None if old is None else old.version, None if new is None else new.version
        )
    journey = tuple(_journey_changes(old, new))
    return JourneyChanges(jid, old.version, new.version, journey, tuple(_node_changes(old, new)))


def _journey_changes(old: Journey, new: Journey) -> Iterable[Change]:
    a = old.model_dump(mode="json", by_alias=True, exclude=set(NOT_COMPARED))
    b = new.model_dump(mode="json", by_alias=True, exclude=set(NOT_COMPARED))
    for path, x, y in _diff_values("", a, b):
        yield Change(_journey_category(path), path, x, y)


def _journey_category(path: str) -> str:
    if any(path == t or path.startswith(t + ".") for t in JOURNEY_TIMING):
        return "timing"
    head = path.split(".", 1)[0]
    if head in LABELS:
        return "label"
    return JOURNEY_CATEGORIES.get(head, "journey")


def _node_changes(old: Journey, new: Journey) -> Iterable[NodeChange]:
    removed = [n for n in old.nodes if n not in new.nodes]
    added = [n for n in new.nodes if n not in old.nodes]
    renames = _renames(old, new, removed, added)
    renamed_to = {r: a for r, (a, _why) in renames.items()}
    for nid, node in old.nodes.items():
        if nid in new.nodes:
            changes = [c for c in node_diff(node, new.nodes[nid]) if not _follows(c, renamed_to)]
            if changes:
                yield NodeChange(nid, "changed", node.type, new.nodes[nid].type, tuple(changes))
        elif nid in renames:
            target, why = renames[nid]
            changes = node_diff(node, new.nodes[target])
            yield NodeChange(
                nid, "renamed", node.type, new.nodes[target].type, tuple(changes), target, why
            )
        else:
            yield NodeChange(nid, "removed", node.type, None)
    taken = set(renamed_to.values())
    for nid in added:
        if nid not in taken:
            yield NodeChange(nid, "added", None, new.nodes[nid].type)


def _follows(change: Change, renamed_to: dict[str, str]) -> bool:
    """An edge that only follows its target's new name is not a change of its own."""
    return (
        change.category == "edges"
        and isinstance(change.old, str)
        and renamed_to.get(change.old) == change.new
    )


def _renames(
    old: Journey, new: Journey, removed: list[str], added: list[str]
) -> dict[str, tuple[str, RenameEvidence]]:
    """Removed node -> (the added node it probably became, why we think so)."""
    found: dict[str, tuple[str, RenameEvidence]] = {}
    free = set(added)

    def take(r: str, a: str, why: RenameEvidence) -> None:
        if r not in found and a in free and old.nodes[r].type == new.nodes[a].type:
            found[r] = (a, why)
            free.discard(a)

    mapping = next((m.nodes for m in new.migrate if m.from_version == old.version), {})
    for r in removed:
        if mapping.get(r) in free:
            take(r, mapping[r], "migrate")
    for r in removed:
        for a in sorted(free):
            if _without_labels(old.nodes[r]) == _without_labels(new.nodes[a]):
                take(r, a, "same content")
                break
    removed_set = set(removed)
    if old.start in removed_set and new.start in free:
        take(old.start, new.start, "took its place")
    for nid in old.nodes:
        if nid not in new.nodes:
            continue
        before, after = successors(old.nodes[nid]), successors(new.nodes[nid])
        if len(before) != len(after):
            continue
        for (label_a, r), (label_b, a) in zip(before, after, strict=True):
            if label_a == label_b and r in removed_set and a in free:
                take(r, a, "took its place")
    return found


def _without_labels(node: Any) -> dict[str, Any]:
    dumped: dict[str, Any] = node.model_dump(mode="json", by_alias=True, exclude=set(LABELS))
    return dumped


# --------------------------------------------------------------------------- one node


def node_diff(old: Any, new: Any) -> list[Change]:
    """The changes from one node to another (any two nodes: a renamed one, or a node that
    became another type)."""
    a = old.model_dump(mode="json", by_alias=True)
    b = new.model_dump(mode="json", by_alias=True)
    out: list[Change] = []
    if a.get("type") != b.get("type"):
        out.append(Change("type", "type", a.get("type"), b.get("type")))
    a.pop("type", None)
    b.pop("type", None)
    keyed = (("paths", _path_key, _path_field), ("variants", _variant_key, _variant_field),
             ("cases", None, _case_field))
    for name, key, category in keyed:
        xs, ys = a.pop(name, None), b.pop(name, None)
        if xs != ys:
            out.extend(_list_changes(name, xs or [], ys or [], key, category))
    for path, x, y in _diff_values("", a, b):
        out.append(Change(_node_category(path), path, x, y))
    return out


def _node_category(path: str) -> str:
    head = path.split(".", 1)[0]
    if head in NODE_TIMING or path == "fallback.after":
        return "timing"
    if head in NODE_EDGES:
        return "edges"
    if head in LABELS:
        return "label"
    return "content"


def _path_key(p: dict[str, Any]) -> str:
    path = WaitPath.model_validate(p)
    value = getattr(path, path.kind)
    of = f" of {path.of}" if path.of is not None else ""
    return f"{path.kind} {value}{of}"


def _path_field(leaf: str) -> str:
    return "content" if leaf == "when" else "edges"


def _variant_key(v: dict[str, Any]) -> str:
    return str(v.get("name"))


def _variant_field(leaf: str) -> str:
    return "edges" if leaf in ("weight", "next") else "content"


def _case_field(leaf: str) -> str:
    return "content" if leaf == "when" else "edges"


def _list_changes(
    name: str,
    xs: list[dict[str, Any]],
    ys: list[dict[str, Any]],
    key: Any,
    category: Any,
) -> list[Change]:
    """Paths and variants matched by what they are (a reply, a variant's name), cases by
    position (their order is their meaning: the first that holds wins)."""
    out: list[Change] = []
    a = _keyed(xs, key)
    b = _keyed(ys, key)
    for k in dict.fromkeys([*a, *b]):
        x, y = a.get(k), b.get(k)
        where = f"{name}[{k}]"
        if x is None or y is None:
            out.append(Change("edges", where, _brief(x), _brief(y)))
            continue
        for path, vx, vy in _diff_values("", x, y):
            out.append(Change(category(path.split(".", 1)[0]), f"{where}.{path}", vx, vy))
    common_a = [k for k in a if k in b]
    common_b = [k for k in b if k in a]
    if key is not None and common_a != common_b:
        # The first matching path wins: their order is part of the meaning.
        out.append(Change("edges", f"{name} order", common_a, common_b))
    return out


def _keyed(items: list[dict[str, Any]], key: Any) -> dict[str, dict[str, Any]]:
    out: dict[str, dict[str, Any]] = {}
    for i, item in enumerate(items):
        k = str(i + 1) if key is None else key(item)
        n, unique = 2, k
        while unique in out:  # two paths on one event, with different conditions
            unique, n = f"{k} #{n}", n + 1
        out[unique] = item
    return out


def _brief(item: dict[str, Any] | None) -> dict[str, Any] | None:
    """A path, variant or case without its empty fields."""
    return None if item is None else {k: v for k, v in item.items() if v is not None}


def _diff_values(path: str, a: Any, b: Any) -> list[tuple[str, Any, Any]]:
    """(dotted path, old, new) of every leaf that differs; lists are leaves; a part that is
    there on one side only is one change, not one per field."""
    if a == b:
        return []
    if isinstance(a, dict) and isinstance(b, dict):
        out: list[tuple[str, Any, Any]] = []
        for k in dict.fromkeys([*a, *b]):
            out.extend(_diff_values(f"{path}.{k}" if path else str(k), a.get(k), b.get(k)))
        return out
    return [(path, a, b)]

