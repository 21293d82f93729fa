"""``journeys diff OLD NEW``: pair the journeys of two files or directories, compare each
pair (:mod:`engine.lint.diff`), check what the change does to runs in flight
(:mod:`engine.lint.migration`) and, given user states, count them and say what happens
to each (:mod:`engine.lint.inflight`). The result is one JSON-able report;
:mod:`engine.lint.diff_text` prints it for people.

Pairs: two files are one pair (whatever their ids). Otherwise journeys pair by id, the
newest version of OLD with the newest of NEW; a file on one side limits the diff to its
journey. What the engine runs after the change (*deployed*): NEW when it is a directory
(old versions not in it are gone); when NEW is a file, OLD's versions with NEW's file
added next to them.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from engine.core.catalog import Catalog
from engine.errors import ConfigError, InvalidJourney
from engine.journey.loader import LoadedJourney, iter_journeys, load_paths
from engine.journey.model import Journey
from engine.lint.diff import JourneyChanges, compare
from engine.lint.inflight import InFlight, message_fate, run_fate
from engine.lint.linter import lint_loaded
from engine.lint.migration import LEVELS, Finding, check_migration

# Flags about one waiting node that a state with nobody there turns into notes.
NOBODY_THERE_IS_A_NOTE = frozenset({"unmapped_removed", "unmapped_renamed"})


@dataclass(frozen=True)
class Side:
    """The journeys of OLD or NEW."""

    path: str
    is_dir: bool
    loaded: list[LoadedJourney]
    journeys: dict[str, dict[int, Journey]]

    def newest(self, jid: str) -> Journey | None:
        versions = self.journeys.get(jid)
        return versions[max(versions)] if versions else None


def load_side(path: str, role: str) -> Side:
    """The journeys of a file or directory; every file must pass the schema (a diff of a
    file that doesn't parse would be a guess)."""
    p = Path(path)
    if not p.exists():
        raise ConfigError(f"{role} {path}: no such file or directory")
    loaded, problems = load_paths([p])
    if problems:
        raise InvalidJourney(problems)
    journeys: dict[str, dict[int, Journey]] = {}
    for j in iter_journeys(loaded):
        journeys.setdefault(j.id, {})[j.version] = j
    if not journeys:
        raise ConfigError(f"{role} {path}: no journey file (.yaml, .yml, .json) in it")
    return Side(str(path), p.is_dir(), loaded, journeys)


def deployed(old: Side, new: Side) -> dict[str, dict[int, Journey]]:
    """Every version the engine runs after the change."""
    if new.is_dir:
        return new.journeys
    merged = {jid: dict(vs) for jid, vs in old.journeys.items()}
    for jid, vs in new.journeys.items():
        merged.setdefault(jid, {}).update(vs)
    return merged


def pairs(old: Side, new: Side) -> list[tuple[Journey | None, Journey | None]]:
    """(old, new) newest versions to compare, by journey id."""
    if not old.is_dir and not new.is_dir:
        return [(old.newest(next(iter(old.journeys))), new.newest(next(iter(new.journeys))))]
    if not old.is_dir:
        ids = set(old.journeys)
    elif not new.is_dir:
        ids = set(new.journeys)
    else:
        ids = set(old.journeys) | set(new.journeys)
    return [(old.newest(jid), new.newest(jid)) for jid in sorted(ids)]


def diff_report(old: Side, new: Side, inflight: InFlight | None = None) -> dict[str, Any]:
    """The whole report (its shape is documented in docs/journeys.md)."""
    after = deployed(old, new)
    catalog = Catalog.of(j for vs in after.values() for j in vs.values())
    journeys = [
        _journey(o, n, old, new, after, catalog, inflight) for o, n in pairs(old, new)
    ]
    compared = {j["id"] for j in journeys}
    report: dict[str, Any] = {
        "old": old.path,
        "new": new.path,
        "journeys": journeys,
        "new_problems": [str(p) for p in lint_loaded(new.loaded)],
    }
    if inflight is not None:
        report["state"] = {
            "source": inflight.source,
            "users": inflight.users,
            "runs": sum(inflight.runs.values()),
            "waiting_messages": sum(inflight.messages.values()),
            "journeys_not_compared": sorted(inflight.journeys() - compared),
        }
    report["summary"] = _summary(journeys, report["new_problems"])
    return report


def _journey(
    o: Journey | None,
    n: Journey | None,
    old: Side,
    new: Side,
    after: dict[str, dict[int, Journey]],
    catalog: Catalog,
    inflight: InFlight | None,
) -> dict[str, Any]:
    same_id = o is None or n is None or o.id == n.id
    changes = compare(o, n)
    jid = (o or n).id if same_id else f"{o.id} -> {n.id}"  # type: ignore[union-attr]
    findings = _findings(o, n, changes, old, new, after, same_id)
    out: dict[str, Any] = {
        "id": jid,
        "old_version": changes.old_version,
        "new_version": changes.new_version,
        "status": _status(changes),
        "changes": [c.to_json() for c in changes.journey],
        "nodes": [nc.to_json() for nc in changes.nodes],
        "migrate": [
            {"from_version": m.from_version, "nodes": dict(m.nodes)}
            for m in (n.migrate if n is not None else ())
        ],
    }
    found = [f.to_json() for f in findings]
    if inflight is not None and o is not None:
        rows = _in_flight(o, changes, catalog, inflight)
        out["in_flight"] = rows
        found = _with_counts(found, rows)
    out["findings"] = sorted(found, key=lambda f: LEVELS.index(f["level"]))
    return out


def _status(changes: JourneyChanges) -> str:
    if changes.old_version is None:
        return "added"
    if changes.new_version is None:
        return "removed"
    return "changed" if changes.changed else "unchanged"


def _findings(
    o: Journey | None,
    n: Journey | None,
    changes: JourneyChanges,
    old: Side,
    new: Side,
    after: dict[str, dict[int, Journey]],
    same_id: bool,
) -> list[Finding]:
    if o is None:
        return []
    if n is None:
        return [Finding("error", "journey_removed", f"journey '{o.id}' is not in NEW: every "
                        "run still in it is stranded (its inputs go to the dead letters); keep "
                        "its files until the last run has ended", o.version)]
    if not same_id:
        return [Finding("warning", "ids_differ", f"the files hold two journeys ('{o.id}' and "
                        f"'{n.id}'): a new id is a new journey, whose migrate can't move the "
                        f"runs of '{o.id}'")]
    versions = {**old.journeys.get(o.id, {}), **new.journeys.get(o.id, {})}
    kept = o.version in after.get(o.id, {})
    return check_migration(o, n, changes, old_kept=kept, versions=versions)


def _in_flight(
    o: Journey, changes: JourneyChanges, catalog: Catalog, inflight: InFlight
) -> list[dict[str, Any]]:
    """One row per (version, node) of the journey that holds runs or waiting messages."""
    rows = []
    for place in inflight.places(o.id):
        _jid, version, node = place
        runs, messages = inflight.runs[place], inflight.messages[place]
        nc = changes.node(node) if version == o.version else None
        row: dict[str, Any] = {
            "version": version,
            "node": node,
            "runs": runs,
            "waiting_messages": messages,
            "change": nc.status if nc is not None else None,
        }
        if runs:
            row.update(run_fate(place, catalog).to_json())
        if messages:
            row["messages_fate"] = message_fate(place, catalog).to_json()
        rows.append(row)
    return rows


def _with_counts(found: list[dict[str, Any]], rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Findings about a node get its counts; a flag about a node nobody waits in becomes a
    note; runs or messages that would be stranded are an error of their own."""
    at = {(r["version"], r["node"]): r for r in rows}
    out = []
    for f in found:
        row = at.get((f["version"], f["node"]))
        if f["node"] is not None:
            f = {**f, "runs": row["runs"] if row else 0}
            if f["code"] in NOBODY_THERE_IS_A_NOTE and not f["runs"]:
                f["level"] = "note"
                f["message"] += (" (no run waits here in the states read; runs that get "
                                 "here before the change is deployed would)")
        out.append(f)
    for r in rows:
        stranded_runs = r["runs"] if r.get("fate") == "stranded" else 0
        mf = r.get("messages_fate")
        stranded_msgs = r["waiting_messages"] if mf and mf["fate"] == "stranded" else 0
        if stranded_runs or stranded_msgs:
            why = r["why"] if stranded_runs else mf["why"]  # type: ignore[index]
            what = _plural(stranded_runs, "run") if stranded_runs else ""
            if stranded_msgs:
                what += (" and " if what else "") + _plural(stranded_msgs, "waiting message")
            out.append({"level": "error", "code": "stranded", "version": r["version"],
                        "node": r["node"], "runs": stranded_runs, "waiting_messages": stranded_msgs,
                        "message": f"{what} stranded: {why}"})
    return out


def _plural(n: int, word: str) -> str:
    return f"{n} {word}" + ("" if n == 1 else "s")


def _summary(journeys: Iterable[dict[str, Any]], new_problems: list[str]) -> dict[str, Any]:
    journeys = list(journeys)
    out: dict[str, Any] = {
        s: sum(1 for j in journeys if j["status"] == s)
        for s in ("changed", "added", "removed", "unchanged")
    }
    for level in LEVELS:
        out[f"{level}s"] = sum(1 for j in journeys for f in j["findings"] if f["level"] == level)
    out["new_problems"] = len(new_problems)
    # A flag (error or warning) or a NEW that doesn't load: exit code 1.
    out["flagged"] = bool(out["errors"] or out["warnings"] or new_problems)
    return out
