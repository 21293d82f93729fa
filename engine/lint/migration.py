"""What a new version does to the users in flight on the old one: the ``migrate`` mapping
checked against the nodes a run can be waiting in.

A run sits in a ``wait``, a ``wait_for``, or a marketing ``send`` deferred by quiet hours
(when its version's quiet hours defer); an RCS send with a ``fallback`` leaves its message
waiting for the fallback timer after the run moved on. The core moves a waiting run only
through the newest version's ``migrate`` (:mod:`engine.core.migrate`): a run in a node the
mapping doesn't list stays on its version to the end, even when a node of the same id
exists in the new version. So:

* a waiting node removed or renamed with no mapping is *flagged* (its users stay on the
  old version, which must stay loaded until they leave);
* a mapping to a node that doesn't exist, or from one the old version doesn't have, is an
  error; a mapping to a node that doesn't wait (the user enters it when their old timer
  fires) or that loses the answers they could give is flagged;
* a node whose meaning changed under the same id gets a note that says whom it concerns.

Pure: journeys and their :class:`~engine.lint.diff.JourneyChanges` in, findings out.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Literal

from engine.journey.model import Journey, SendNode, WaitForNode, WaitNode
from engine.lint.diff import JourneyChanges, node_diff

Level = Literal["error", "warning", "note"]
LEVELS: tuple[Level, ...] = ("error", "warning", "note")


@dataclass(frozen=True)
class Finding:
    """``error``: users would be stranded, or the files contradict each other; ``warning``
    (a flag): users in flight don't get what the new version says; ``note``: good to know.
    ``version`` and ``node`` name the old version's node it is about, when it is about one."""

    level: Level
    code: str
    message: str
    version: int | None = None
    node: str | None = None

    def to_json(self) -> dict[str, Any]:
        return {
            "level": self.level,
            "code": self.code,
            "version": self.version,
            "node": self.node,
            "message": self.message,
        }


def waits_in(journey: Journey, node_id: str) -> str | None:
    """Why a run can be waiting in this node of ``journey`` (``wait``, ``wait_for``,
    ``deferred send``), or None when no run stays there."""
    node = journey.nodes.get(node_id)
    match node:
        case WaitNode():
            return "wait"
        case WaitForNode():
            return "wait_for"
        case SendNode() if node.marketing and _defers(journey):
            return "deferred send"
    return None


def holds_messages(journey: Journey, node_id: str) -> bool:
    """An RCS send with a fallback: its message waits for the fallback timer."""
    node = journey.nodes.get(node_id)
    return isinstance(node, SendNode) and node.channel == "rcs" and node.fallback is not None


def _defers(journey: Journey) -> bool:
    qh = journey.settings.quiet_hours
    return qh is not None and qh.action == "defer"


def check_migration(
    old: Journey,
    new: Journey,
    changes: JourneyChanges,
    *,
    old_kept: bool,
    versions: Mapping[int, Journey],
) -> list[Finding]:
    """Findings for the users in flight when ``new`` replaces ``old`` as the newest version.

    ``old_kept``: ``old``'s version stays loaded next to ``new``. ``versions``: every
    version of the journey known (to check ``migrate`` entries for older versions)."""
    if new.version == old.version:
        return _in_place(old, changes)
    out: list[Finding] = []
    vo, vn = old.version, new.version
    if new.version < old.version:
        out.append(Finding("error", "version_went_back", f"the new newest version ({vn}) is "
                           f"older than the old one ({vo}): new entries would go back to "
                           f"version {vn}; publish the change as version {vo + 1}"))
        return out
    if not old_kept:
        out.append(Finding("error", "old_version_dropped", f"version {vo} is not kept next to "
                           f"version {vn}: every run still on version {vo} is stranded (its "
                           "inputs go to the dead letters, even a run the mapping would move, "
                           "and so do its pending fallbacks): keep the file until the last run "
                           "has ended", vo))
    mapping = _mapping(new, vo)
    out.extend(_waiting_nodes(old, new, changes, mapping))
    out.extend(_mapped_nodes(old, new, changes, mapping))
    out.extend(_other_versions(old, new, versions))
    return out


def _mapping(new: Journey, from_version: int) -> dict[str, str]:
    return next((dict(m.nodes) for m in new.migrate if m.from_version == from_version), {})


def _in_place(old: Journey, changes: JourneyChanges) -> list[Finding]:
    if not changes.changed:
        return []
    v = old.version
    out = [Finding("error", "in_place_edit", f"version {v} was edited in place: runs in flight "
                   f"and replays see the new definition under the old number; publish the "
                   f"change as version {v + 1} (with migrate from_version {v} to move users)", v)]
    for nc in changes.nodes:
        if nc.status in ("removed", "renamed") and waits_in(old, nc.node):
            out.append(Finding("error", "stranded_in_place", f"removed from version {v} in "
                               f"place: runs waiting here are stranded (the engine can't find "
                               "their node)", v, nc.node))
    return out


def _waiting_nodes(
    old: Journey, new: Journey, changes: JourneyChanges, mapping: dict[str, str]
) -> list[Finding]:
    """Every node of ``old`` a run (or a message) can wait in that the new version changed."""
    out: list[Finding] = []
    vo, vn = old.version, new.version
    for nid in old.nodes:
        nc = changes.node(nid)
        kind = waits_in(old, nid)
        if nc is None:
            continue
        if holds_messages(old, nid) and nc.status in ("removed", "renamed"):
            out.append(Finding("note", "fallbacks_stay", f"RCS send with a fallback, "
                               f"{nc.status} in version {vn}: messages waiting for their "
                               f"fallback get it from version {vo} (messages never migrate)",
                               vo, nid))
        if nid in mapping:
            continue
        if kind is not None and nc.status == "renamed":
            out.append(Finding("warning", "unmapped_renamed", f"{kind} renamed to "
                               f"'{nc.renamed_to}' ({nc.evidence}) with no migrate mapping: "
                               f"runs waiting here stay on version {vo} until they leave it; to "
                               f"move them, add `{nid}: {nc.renamed_to}` to migrate from_version "
                               f"{vo}", vo, nid))
        elif kind is not None and nc.status == "removed":
            out.append(Finding("warning", "unmapped_removed", f"{kind} removed with no migrate "
                               f"mapping: runs waiting here stay on version {vo} until they "
                               f"leave it; to move them, map it to a node of version {vn} "
                               f"(migrate from_version {vo})", vo, nid))
        elif kind is not None and nc.status == "changed" and nc.meaning_changed:
            out.append(Finding("note", "changed_same_id", f"{kind} changed in version {vn} "
                               f"({', '.join(nc.categories)}); not mapped: runs waiting here "
                               f"stay on version {vo} and keep its behaviour, only new runs get "
                               f"the change (map `{nid}: {nid}` to move them)", vo, nid))
    return out


def _mapped_nodes(
    old: Journey, new: Journey, changes: JourneyChanges, mapping: dict[str, str]
) -> list[Finding]:
    out: list[Finding] = []
    vo, vn = old.version, new.version
    for nid, target in mapping.items():
        if nid not in old.nodes:
            out.append(Finding("error", "mapping_from_missing", f"migrate from_version {vo} maps "
                               f"'{nid}', which version {vo} doesn't have", vo, nid))
            continue
        if target not in new.nodes:
            out.append(Finding("error", "mapping_to_missing", f"migrate maps it to '{target}', "
                               f"which version {vn} doesn't have: runs waiting here would be "
                               "stranded (journeys validate refuses this too)", vo, nid))
            continue
        kind = waits_in(old, nid)
        if kind is None and not isinstance(old.nodes[nid], SendNode):
            out.append(Finding("note", "mapping_never_applies", f"no run waits in a "
                               f"{old.nodes[nid].type} node: the mapping `{nid}: {target}` never "
                               "applies", vo, nid))
            continue
        if kind is None:
            continue  # a send's mapping renames it for the `of` of paths: checked below
        out.extend(_target(old, new, nid, kind, target, mapping))
        nc = changes.node(nid)
        # (a change of timing alone: the note of _target says it)
        if target == nid and nc is not None and set(nc.categories) - {"label", "timing"}:
            out.append(Finding("note", "changed_same_id", f"changed in version {vn} "
                               f"({', '.join(nc.categories)}): runs moved here by `{nid}: "
                               f"{nid}` meet the new node", vo, nid))
    return out


def _target(
    old: Journey, new: Journey, nid: str, kind: str, target: str, mapping: dict[str, str]
) -> list[Finding]:
    """What a run waiting in ``nid`` meets in the node it is mapped to."""
    out: list[Finding] = []
    vo = old.version
    node = new.nodes[target]
    at = f"when the timer it has in '{nid}' fires"
    if node.type in ("branch", "split", "exit"):
        what = {"branch": "its conditions pick their way", "split": "it picks their variant",
                "exit": "they leave the journey"}[node.type]
        out.append(Finding("warning", "mapping_not_waiting", f"mapped to '{target}', a "
                           f"{node.type}: no run waits there; moved runs enter it {at} ({what})",
                           vo, nid))
    elif node.type == "send" and kind != "deferred send":
        out.append(Finding("warning", "mapping_not_waiting", f"mapped to '{target}', a send: "
                           f"no run waits there; moved runs are sent its message {at}", vo, nid))
    if kind == "wait_for" and node.type != "wait_for":
        out.append(Finding("warning", "mapping_loses_paths", f"a wait_for mapped to '{target}', "
                           f"a {node.type}: answers and events no longer move the runs waiting "
                           f"here, only their timeout does", vo, nid))
    timing = sorted({c.field for c in node_diff(old.nodes[nid], node) if c.category == "timing"})
    if timing and node.type in ("wait", "wait_for"):
        out.append(Finding("note", "mapped_timer_kept", f"runs moved to '{target}' keep the "
                           f"timer they got in '{nid}'; the new timing ({', '.join(timing)}) "
                           "applies to runs that arrive there later", vo, nid))
    if isinstance(node, WaitForNode):
        sends = {mapping.get(s, s) for s, n in old.nodes.items() if isinstance(n, SendNode)}
        for p in node.paths:
            of = p.of_node
            if p.kind != "event" and of is not None and of not in sends:
                label = f"{p.kind} {getattr(p, p.kind)}"
                out.append(Finding("warning", "mapping_unanswerable", f"mapped to '{target}', "
                                   f"whose path '{label}' answers '{of}': runs moved from "
                                   f"version {vo} have no message from '{of}', so they can't "
                                   f"take it; map the send of version {vo} that it replaces "
                                   f"onto '{of}' too", vo, nid))
    return out


def _other_versions(old: Journey, new: Journey, versions: Mapping[int, Journey]) -> list[Finding]:
    """``migrate`` entries for versions before ``old``, and the ones the new version drops."""
    out: list[Finding] = []
    for m in new.migrate:
        if m.from_version == old.version:
            continue
        src = versions.get(m.from_version)
        if src is None:
            continue
        for nid, target in m.nodes.items():
            if nid not in src.nodes:
                out.append(Finding("error", "mapping_from_missing", f"migrate from_version "
                                   f"{m.from_version} maps '{nid}', which version "
                                   f"{m.from_version} doesn't have", m.from_version, nid))
            elif target not in new.nodes:
                out.append(Finding("error", "mapping_to_missing", f"migrate maps it to "
                                   f"'{target}', which version {new.version} doesn't have",
                                   m.from_version, nid))
    listed = {m.from_version for m in new.migrate}
    for m in old.migrate:
        if m.from_version not in listed:
            out.append(Finding("note", "migration_dropped", f"version {old.version} moved runs "
                               f"of version {m.from_version} (migrate); version {new.version} "
                               f"doesn't list it, so they now stay on version "
                               f"{m.from_version} (only the newest version's migrate counts)",
                               m.from_version))
    return out
