"""``journeys diff``: every kind of change between two versions of a journey, the checks
of ``migrate`` against the nodes a run can wait in, and what happens to the runs in
flight (engine/lint/diff.py, migration.py, inflight.py, diff_report.py).

The journeys are small and written here; each test edits one thing of a base journey.
"""

from __future__ import annotations

import copy
from collections.abc import Callable
from pathlib import Path
from typing import Any

import orjson
import pytest
import yaml

from engine import cli
from engine.core.catalog import Catalog
from engine.core.state import Instance, Message, UserState
from engine.core.wire import state_line, state_record, state_wire
from engine.errors import InputError
from engine.journey.model import Journey
from engine.lint.diff import Change, JourneyChanges, compare
from engine.lint.inflight import count, message_fate, run_fate
from engine.lint.migration import Finding, check_migration, waits_in

BASE = yaml.safe_load(
    """
id: onboard
version: 1
entry: {event: signed_up}
exit_on: [deleted]
goal: {event: purchased, within: 7d}
settings: {default_timezone: UTC}
start: hello
nodes:
  hello:
    type: send
    channel: rcs
    marketing: false
    text: "Hi"
    suggestions:
      - reply: {text: "Yes", postback: "yes"}
    fallback: {sms: "Hi. Reply YES", after: 10m}
    next: pause
  pause: {type: wait, duration: 1d, next: ask}
  ask:
    type: wait_for
    paths:
      - {reply: "yes", of: hello, next: pick}
      - {event: clicked, next: done}
    timeout: 2d
    on_timeout: route
  route:
    type: branch
    cases:
      - {when: "user.plan == 'pro'", next: done}
    default: pick
  pick:
    type: split
    variants:
      - {name: a, weight: 50, next: done}
      - {name: b, weight: 50, next: done}
  done: {type: exit}
"""
)

Edit = Callable[[dict[str, Any]], None]


def journey(edit: Edit | None = None, version: int = 1) -> Journey:
    d = copy.deepcopy(BASE)
    d["version"] = version
    if edit is not None:
        edit(d)
    return Journey.model_validate(d)


def changes_of(edit: Edit, version: int = 2) -> JourneyChanges:
    return compare(journey(), journey(edit, version))


def one(edit: Edit) -> Change:
    """The one change an edit makes (to a node, or to the journey)."""
    c = changes_of(edit)
    found = list(c.journey) + [x for n in c.nodes for x in n.changes]
    assert len(found) == 1, found
    return found[0]


def findings(edit: Edit, *, old_kept: bool = True, old_edit: Edit | None = None) -> list[Finding]:
    old, new = journey(old_edit), journey(edit, 2)
    return check_migration(
        old, new, compare(old, new), old_kept=old_kept, versions={1: old, 2: new}
    )


def codes(found: list[Finding]) -> dict[tuple[str, str | None], str]:
    return {(f.code, f.node): f.level for f in found}


def nodes(d: dict[str, Any]) -> dict[str, Any]:
    n: dict[str, Any] = d["nodes"]
    return n


# --------------------------------------------------------------------------- no change


def test_the_same_journey_has_no_change_and_a_default_written_out_is_none() -> None:
    assert not compare(journey(), journey()).changed

    def spell_out_defaults(d: dict[str, Any]) -> None:
        d["entry"]["reentry"] = "after_exit"  # the default
        nodes(d)["pause"]["name"] = None

    assert not compare(journey(), journey(spell_out_defaults)).changed


# --------------------------------------------------------------------------- nodes


def test_added_and_removed_nodes() -> None:
    def edit(d: dict[str, Any]) -> None:
        nodes(d)["pause"]["next"] = "ask"
        nodes(d)["nudge"] = {"type": "send", "channel": "sms", "marketing": False,
                             "text": "Still there?", "next": "done"}
        nodes(d)["route"]["default"] = "nudge"
        del nodes(d)["pick"]
        nodes(d)["ask"]["paths"][0]["next"] = "done"

    c = changes_of(edit)
    status = {n.node: (n.status, n.old_type, n.new_type) for n in c.nodes}
    assert status["nudge"] == ("added", None, "send")
    assert status["pick"] == ("removed", "split", None)


@pytest.mark.parametrize(
    ("edit", "category", "field", "old", "new"),
    [
        (lambda d: nodes(d)["hello"].update(text="Hello"), "content", "text", "Hi", "Hello"),
        (lambda d: nodes(d)["hello"]["fallback"].update(sms="Hello. Reply YES"), "content",
         "fallback.sms", "Hi. Reply YES", "Hello. Reply YES"),
        (lambda d: nodes(d)["hello"].update(marketing=True), "content", "marketing", False,
         True),
        (lambda d: nodes(d)["route"]["cases"][0].update(when="user.plan == 'max'"), "content",
         "cases[1].when", "user.plan == 'pro'", "user.plan == 'max'"),
        (lambda d: nodes(d)["ask"]["paths"][1].update(when="event.ok == true"), "content",
         "paths[event clicked].when", None, "event.ok == true"),
        (lambda d: nodes(d)["done"].update(reason="finished"), "content", "reason",
         "completed", "finished"),
        (lambda d: nodes(d)["pause"].update(name="One day"), "label", "name", None, "One day"),
    ],
)
def test_content_changes(edit: Edit, category: str, field: str, old: Any, new: Any) -> None:
    assert one(edit) == Change(category, field, old, new)


def test_chips_and_cards_are_content() -> None:
    chips = one(lambda d: nodes(d)["hello"]["suggestions"].append(
        {"reply": {"text": "No", "postback": "no"}}))
    assert (chips.category, chips.field) == ("content", "suggestions")
    assert len(chips.new) == 2

    def card(d: dict[str, Any]) -> None:
        del nodes(d)["hello"]["text"]
        nodes(d)["hello"]["rich_card"] = {"title": "Hi"}

    c = changes_of(card)
    assert {(x.category, x.field) for x in c.nodes[0].changes} == {
        ("content", "text"), ("content", "rich_card")}


@pytest.mark.parametrize(
    ("edit", "field", "old", "new"),
    [
        (lambda d: nodes(d)["pause"].update(next="route"), "next", "ask", "route"),
        (lambda d: nodes(d)["route"].update(default="done"), "default", "pick", "done"),
        (lambda d: nodes(d)["ask"].update(on_timeout="done"), "on_timeout", "route", "done"),
        (lambda d: nodes(d)["route"]["cases"][0].update(next="pick"), "cases[1].next", "done",
         "pick"),
        (lambda d: nodes(d)["pick"]["variants"][0].update(weight=80), "variants[a].weight", 50,
         80),
        (lambda d: nodes(d)["pick"]["variants"][1].update(next="route"), "variants[b].next",
         "done", "route"),
        (lambda d: nodes(d)["ask"]["paths"][0].update(next="route"), "paths[reply yes of "
         "hello].next", "pick", "route"),
        (lambda d: d.update(start="pause"), "start", "hello", "pause"),
    ],
)
def test_edge_changes(edit: Edit, field: str, old: Any, new: Any) -> None:
    assert one(edit) == Change("edges", field, old, new)


def test_paths_added_removed_and_reordered() -> None:
    added = one(lambda d: nodes(d)["ask"]["paths"].append({"read": "hello", "next": "done"}))
    assert added == Change("edges", "paths[read hello]", None, {"read": "hello", "next": "done"})
    removed = one(lambda d: nodes(d)["ask"]["paths"].pop(1))
    assert removed == Change("edges", "paths[event clicked]", {"event": "clicked", "next": "done"},
                             None)
    order = one(lambda d: nodes(d)["ask"]["paths"].reverse())
    assert order.field == "paths order"
    assert order.new == ["event clicked", "reply yes of hello"]


def test_a_split_variant_added() -> None:
    c = one(lambda d: nodes(d)["pick"]["variants"].append({"name": "c", "weight": 10,
                                                            "next": "done"}))
    assert (c.category, c.field, c.old) == ("edges", "variants[c]", None)


@pytest.mark.parametrize(
    ("edit", "field", "old", "new"),
    [
        (lambda d: nodes(d)["pause"].update(duration="2d"), "duration", "1d", "2d"),
        (lambda d: nodes(d)["ask"].update(timeout="3d"), "timeout", "2d", "3d"),
        (lambda d: nodes(d)["hello"]["fallback"].update(after="30m"), "fallback.after", "10m",
         "30m"),
        (lambda d: nodes(d)["hello"].update(ttl="1h"), "ttl", None, "1h"),
        (lambda d: d["settings"].update(frequency_cap={"max": 2, "per": "1d"}),
         "settings.frequency_cap", None, {"max": 2, "per": "1d"}),
        (lambda d: d["settings"].update(send_rate={"max": 5, "per": "1s"}), "settings.send_rate",
         None, {"max": 5, "per": "1s"}),
    ],
)
def test_timing_changes(edit: Edit, field: str, old: Any, new: Any) -> None:
    assert one(edit) == Change("timing", field, old, new)


def test_quiet_hours_are_timing() -> None:
    def quiet(d: dict[str, Any]) -> None:
        d["settings"]["quiet_hours"] = {"from": "21:00", "to": "08:00"}

    c = one(quiet)
    assert (c.category, c.field) == ("timing", "settings.quiet_hours")
    old = journey(quiet)
    later = journey(lambda d: (quiet(d), d["settings"]["quiet_hours"].update(to="09:00")), 2)
    (ch,) = compare(old, later).journey
    assert ch == Change("timing", "settings.quiet_hours.to", "08:00", "09:00")


@pytest.mark.parametrize(
    ("edit", "category", "field"),
    [
        (lambda d: d["entry"].update(when="user.country == 'FR'"), "entry", "entry.when"),
        (lambda d: d["entry"].update(reentry="never"), "entry", "entry.reentry"),
        (lambda d: d["entry"].update(cooldown="1d"), "entry", "entry.cooldown"),
        (lambda d: d.update(exit_on=["deleted", "churned"]), "exit_on", "exit_on"),
        (lambda d: d["goal"].update(within="14d"), "goal", "goal.within"),
        (lambda d: d.update(goal=None), "goal", "goal"),
        (lambda d: d["settings"].update(help_text="Help!"), "settings", "settings.help_text"),
        (lambda d: d["settings"].update(default_timezone="Europe/Paris"), "settings",
         "settings.default_timezone"),
        (lambda d: d.update(name="Onboarding"), "label", "name"),
    ],
)
def test_journey_level_changes(edit: Edit, category: str, field: str) -> None:
    c = one(edit)
    assert (c.category, c.field) == (category, field)


def test_a_node_that_became_another_type() -> None:
    def edit(d: dict[str, Any]) -> None:
        nodes(d)["pause"] = {"type": "wait_for", "paths": [{"event": "clicked", "next": "ask"}],
                             "timeout": "1d", "on_timeout": "ask"}

    (nc,) = changes_of(edit).nodes
    assert (nc.node, nc.status, nc.old_type, nc.new_type) == ("pause", "changed", "wait",
                                                              "wait_for")
    assert Change("type", "type", "wait", "wait_for") in nc.changes


# --------------------------------------------------------------------------- renames


def _rename(old_id: str, new_id: str, tweak: Edit | None = None) -> Edit:
    def edit(d: dict[str, Any]) -> None:
        n = nodes(d)
        n[new_id] = n.pop(old_id)
        for node in n.values():
            for key in ("next", "default", "on_timeout"):
                if node.get(key) == old_id:
                    node[key] = new_id
            for item in (*node.get("paths", ()), *node.get("cases", ()), *node.get("variants", ())):
                if item.get("next") == old_id:
                    item["next"] = new_id
        if tweak is not None:
            tweak(d)

    return edit


def test_a_rename_with_the_same_content() -> None:
    c = changes_of(_rename("pause", "pause_a_day"))
    assert [(n.node, n.status, n.renamed_to, n.evidence, n.changes) for n in c.nodes] == [
        ("pause", "renamed", "pause_a_day", "same content", ())
    ]  # and the edge to it is no change of its own


def test_a_rename_that_took_its_place_and_changed() -> None:
    c = changes_of(_rename("pause", "pause2", lambda d: nodes(d)["pause2"].update(duration="2d")))
    (nc,) = c.nodes
    assert (nc.status, nc.renamed_to, nc.evidence) == ("renamed", "pause2", "took its place")
    assert nc.changes == (Change("timing", "duration", "1d", "2d"),)


def test_a_rename_named_by_migrate() -> None:
    def edit(d: dict[str, Any]) -> None:
        _rename("ask", "question", lambda d: nodes(d)["question"].update(timeout="5d"))(d)
        nodes(d)["pause"]["next"] = "route"  # no longer in its place
        nodes(d)["route"]["default"] = "question"
        d["migrate"] = [{"from_version": 1, "nodes": {"ask": "question"}}]

    c = changes_of(edit)
    assert c.renames == {"ask": "question"}
    assert c.node("ask") is not None and c.node("ask").evidence == "migrate"  # type: ignore[union-attr]


# --------------------------------------------------------------------------- migrate


def test_where_a_run_can_wait() -> None:
    j = journey()
    assert [n for n in j.nodes if waits_in(j, n)] == ["pause", "ask"]
    marketing = journey(lambda d: (nodes(d)["hello"].update(marketing=True),
                                   d["settings"].update(quiet_hours={"from": "21:00",
                                                                     "to": "08:00"})))
    assert waits_in(marketing, "hello") == "deferred send"
    skipping = journey(lambda d: (nodes(d)["hello"].update(marketing=True),
                                  d["settings"].update(quiet_hours={"from": "21:00", "to": "08:00",
                                                                    "action": "skip"})))
    assert waits_in(skipping, "hello") is None


def _drop_pause(d: dict[str, Any]) -> None:
    del nodes(d)["pause"]
    nodes(d)["hello"]["next"] = "ask"


def test_an_unmapped_removed_waiting_node_is_flagged() -> None:
    found = findings(_drop_pause)
    assert codes(found) == {("unmapped_removed", "pause"): "warning"}
    (f,) = found
    assert "stay on version 1" in f.message and f.version == 1


def test_a_removed_node_nobody_waits_in_is_not_flagged() -> None:
    def edit(d: dict[str, Any]) -> None:
        del nodes(d)["route"]
        nodes(d)["ask"]["on_timeout"] = "pick"

    # only the note on ask, whose timeout now leads elsewhere
    assert codes(findings(edit)) == {("changed_same_id", "ask"): "note"}


def test_a_mapped_removed_node_is_not_flagged() -> None:
    def edit(d: dict[str, Any]) -> None:
        _drop_pause(d)
        d["migrate"] = [{"from_version": 1, "nodes": {"pause": "ask"}}]

    assert "unmapped_removed" not in {f.code for f in findings(edit)}


def test_an_unmapped_rename_is_flagged_with_the_mapping_to_add() -> None:
    (f,) = findings(_rename("pause", "pause_a_day"))
    assert (f.code, f.level, f.node) == ("unmapped_renamed", "warning", "pause")
    assert "`pause: pause_a_day`" in f.message


def test_mapping_to_a_missing_node_is_an_error() -> None:
    # built without the linter, which refuses it too
    old = journey()
    new = journey(lambda d: d.update(migrate=[{"from_version": 1, "nodes": {"pause": "gone",
                                                                            "nope": "ask"}}]), 2)
    found = codes(check_migration(old, new, compare(old, new), old_kept=True, versions={}))
    assert found[("mapping_to_missing", "pause")] == "error"
    assert found[("mapping_from_missing", "nope")] == "error"


@pytest.mark.parametrize("target", ["route", "pick", "done", "hello"])
def test_mapping_to_a_node_that_doesnt_wait_is_flagged(target: str) -> None:
    found = codes(findings(lambda d: d.update(migrate=[{"from_version": 1,
                                                        "nodes": {"pause": target}}])))
    assert found == {("mapping_not_waiting", "pause"): "warning"}


def test_a_wait_for_mapped_to_a_wait_loses_its_paths() -> None:
    found = codes(findings(lambda d: d.update(migrate=[{"from_version": 1,
                                                        "nodes": {"ask": "pause"}}])))
    assert found[("mapping_loses_paths", "ask")] == "warning"
    assert found[("mapped_timer_kept", "ask")] == "note"


def test_a_moved_run_that_cant_answer_the_new_path() -> None:
    def edit(d: dict[str, Any]) -> None:
        _rename("hello", "greet")(d)
        nodes(d)["ask"]["paths"][0]["of"] = "greet"
        d["migrate"] = [{"from_version": 1, "nodes": {"ask": "ask"}}]

    found = codes(findings(edit))
    assert found[("mapping_unanswerable", "ask")] == "warning"
    ok = codes(findings(lambda d: (edit(d), d["migrate"][0]["nodes"].update(hello="greet"))))
    assert ("mapping_unanswerable", "ask") not in ok


def test_a_mapping_from_a_branch_never_applies() -> None:
    found = codes(findings(lambda d: d.update(migrate=[{"from_version": 1,
                                                        "nodes": {"route": "route"}}])))
    assert found == {("mapping_never_applies", "route"): "note"}


def test_a_waiting_node_changed_under_the_same_id_gets_a_note() -> None:
    unmapped = findings(lambda d: nodes(d)["pause"].update(duration="3d"))
    assert codes(unmapped) == {("changed_same_id", "pause"): "note"}
    assert "stay on version 1" in unmapped[0].message
    timing = codes(findings(lambda d: (nodes(d)["pause"].update(duration="3d"),
                                       d.update(migrate=[{"from_version": 1,
                                                          "nodes": {"pause": "pause"}}]))))
    assert timing == {("mapped_timer_kept", "pause"): "note"}
    edges = findings(lambda d: (nodes(d)["ask"].update(on_timeout="done"),
                                d.update(migrate=[{"from_version": 1, "nodes": {"ask": "ask"}}])))
    assert codes(edges) == {("changed_same_id", "ask"): "note"}
    assert "runs moved here by `ask: ask` meet the new node" in edges[0].message


def test_a_removed_send_with_a_fallback_keeps_its_pending_fallbacks_on_the_old_version() -> None:
    found = codes(findings(_rename("hello", "greet", lambda d: nodes(d)["greet"].update(
        text="Hello"))))
    assert found == {("fallbacks_stay", "hello"): "note"}


def test_dropping_the_old_version_strands_its_runs() -> None:
    found = codes(findings(lambda d: nodes(d)["done"].update(reason="x"), old_kept=False))
    assert found == {("old_version_dropped", None): "error"}


def test_a_version_edited_in_place() -> None:
    old, new = journey(), journey(_drop_pause)
    found = codes(check_migration(old, new, compare(old, new), old_kept=True, versions={}))
    assert found == {("in_place_edit", None): "error", ("stranded_in_place", "pause"): "error"}
    same = journey()
    assert check_migration(old, same, compare(old, same), old_kept=True, versions={}) == []


def test_a_newest_version_older_than_the_old_one() -> None:
    old, new = journey(version=3), journey(version=2)
    found = check_migration(old, new, compare(old, new), old_kept=True, versions={})
    assert [f.code for f in found] == ["version_went_back"]


def test_a_migration_the_new_version_no_longer_lists() -> None:
    v2 = journey(lambda d: d.update(migrate=[{"from_version": 1, "nodes": {"pause": "pause"}}]), 2)
    v3 = journey(version=3)
    found = check_migration(v2, v3, compare(v2, v3), old_kept=True, versions={})
    assert codes(found) == {("migration_dropped", None): "note"}


# --------------------------------------------------------------------------- in flight


def _state(user: str, *runs: tuple[str, int, str], waiting: tuple[str, int, str] | None = None
           ) -> UserState:
    s = UserState(user)
    for i, (jid, v, node) in enumerate(runs):
        s.instances[f"i{i}"] = Instance(f"i{i}", jid, v, node, 0, {}, {}, wake_at=5)
    if waiting is not None:
        jid, v, node = waiting
        s.messages["m"] = Message("m", "i0", jid, v, node, "rcs", 0, timer_at=9)
        s.messages["m2"] = Message("m2", "i0", jid, v, node, "rcs", 0)  # no timer: not counted
    return s


def test_runs_and_waiting_messages_are_counted_per_node() -> None:
    states = [
        _state("u1", ("onboard", 1, "pause")),
        _state("u2", ("onboard", 1, "pause"), ("other", 3, "x"), waiting=("onboard", 1, "hello")),
        UserState("u3"),
    ]
    found = count((s.to_wire() for s in states), "test")
    assert found.users == 3
    assert found.runs == {("onboard", 1, "pause"): 2, ("other", 3, "x"): 1}
    assert found.messages == {("onboard", 1, "hello"): 1}
    assert found.places("onboard") == [("onboard", 1, "hello"), ("onboard", 1, "pause")]


def test_fates() -> None:
    v1 = journey()
    v2 = journey(lambda d: (_drop_pause(d), d.update(migrate=[{"from_version": 1,
                                                               "nodes": {"ask": "ask"}}])), 2)
    both = Catalog.of([v1, v2])
    assert run_fate(("onboard", 1, "pause"), both).kind == "stay"
    moved = run_fate(("onboard", 1, "ask"), both)
    assert (moved.kind, moved.to_version, moved.to_node) == ("move", 2, "ask")
    assert run_fate(("onboard", 2, "ask"), both).why == "the newest version"
    only_new = Catalog.of([v2])
    assert run_fate(("onboard", 1, "ask"), only_new).why == "version 1's file is gone"
    assert run_fate(("gone", 1, "ask"), only_new).kind == "stranded"
    assert message_fate(("onboard", 1, "hello"), both).kind == "stay"
    assert message_fate(("onboard", 1, "hello"), only_new).kind == "stranded"
    in_place = Catalog.of([journey(_drop_pause)])
    assert "edited in place" in run_fate(("onboard", 1, "pause"), in_place).why


def test_a_state_line_and_a_table_value_read_the_same() -> None:
    s = _state("u1", ("onboard", 1, "pause"))
    assert state_wire(state_line(s)) == s.to_wire() == state_wire(state_record(3, s))
    with pytest.raises(InputError):
        state_wire(b'{"p": 1}')


# --------------------------------------------------------------------------- the command


def _write(path: Path, j: Journey) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(yaml.safe_dump(j.model_dump(mode="json", by_alias=True, exclude_none=True)))
    return path


SIGNUPS = "".join(
    orjson.dumps({"event_id": f"e{i}", "user_id": f"u{i}", "name": "signed_up",
                  "ts": f"2026-03-02T10:0{i}:00Z",
                  "profile": {"phone": f"+1415555010{i}", "rcs_capable": True}}).decode() + "\n"
    for i in range(5)
) + orjson.dumps({"type": "receipt", "user_id": "u0", "ts": "2026-03-02T10:00:01Z",
                  "node": "hello", "status": "delivered"}).decode() + "\n"


def run_cli(capsys: pytest.CaptureFixture[str], *argv: str | Path) -> tuple[int, str, str]:
    code = cli.main([str(a) for a in argv])
    out, err = capsys.readouterr()
    assert "Traceback" not in err
    return code, out, err


def test_diff_flags_an_unmapped_removed_node_that_has_waiting_users(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """Simulate a log so that users wait in ``pause``, write their states, remove ``pause``
    in the new version without a mapping: flagged, with the count."""
    old_dir, new_dir = tmp_path / "old", tmp_path / "new"
    _write(old_dir / "onboard.yaml", journey())
    _write(new_dir / "onboard.yaml", journey())
    _write(new_dir / "onboard-v2.yaml", journey(_drop_pause, 2))
    events = tmp_path / "events.jsonl"
    events.write_text(SIGNUPS)
    states = tmp_path / "states.jsonl"
    code, _out, _err = run_cli(capsys, "simulate", "--journeys", old_dir, "--events", events,
                               "--until", "2026-03-02T12:00:00Z", "--quiet",
                               "--states-out", states)
    assert code == cli.EXIT_OK
    assert len(states.read_text().splitlines()) == 5

    code, out, _err = run_cli(capsys, "diff", old_dir, new_dir, "--state", states, "--json")
    assert code == cli.EXIT_PROBLEMS
    report = orjson.loads(out)
    (j,) = report["journeys"]
    assert report["state"]["users"] == 5 and report["state"]["runs"] == 5
    (flag,) = [f for f in j["findings"] if f["code"] == "unmapped_removed"]
    assert (flag["level"], flag["node"], flag["runs"]) == ("warning", "pause", 5)
    (row,) = [r for r in j["in_flight"] if r["node"] == "pause"]
    assert (row["runs"], row["change"], row["fate"], row["to_version"]) == (5, "removed",
                                                                           "stay", 1)

    code, text, _err = run_cli(capsys, "diff", old_dir, new_dir, "--state", states)
    assert code == cli.EXIT_PROBLEMS
    assert "warning  v1 pause (5 runs there): wait removed with no migrate mapping" in text
    assert "stay on version 1 (no migrate mapping in version 2)" in text

    # NEW without version 1: the same runs are stranded
    (new_dir / "onboard.yaml").unlink()
    code, out, _err = run_cli(capsys, "diff", old_dir, new_dir, "--state", states, "--json")
    (j,) = orjson.loads(out)["journeys"]
    stranded = [f for f in j["findings"] if f["code"] == "stranded"]
    assert [(f["node"], f["runs"]) for f in stranded] == [("pause", 5)]
    assert "version 1's file is gone" in stranded[0]["message"]


def test_a_flag_about_a_node_nobody_waits_in_becomes_a_note(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    old, new = _write(tmp_path / "v1.yaml", journey()), _write(tmp_path / "v2.yaml",
                                                                journey(_drop_pause, 2))
    states = tmp_path / "states.jsonl"
    states.write_bytes(state_line(_state("u1", ("onboard", 1, "ask"))) + b"\n")
    code, out, _err = run_cli(capsys, "diff", old, new, "--state", states, "--json")
    assert code == cli.EXIT_OK
    (j,) = orjson.loads(out)["journeys"]
    (f,) = j["findings"]
    assert (f["code"], f["level"], f["runs"]) == ("unmapped_removed", "note", 0)
    code, out, _err = run_cli(capsys, "diff", old, new)
    assert code == cli.EXIT_PROBLEMS  # without states, anyone could be waiting there


def test_diff_of_directories_pairs_journeys_by_id(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    other = journey(lambda d: d.update(id="other"))
    _write(tmp_path / "old" / "onboard.yaml", journey())
    _write(tmp_path / "old" / "other.yaml", other)
    _write(tmp_path / "new" / "onboard.yaml", journey())
    _write(tmp_path / "new" / "onboard-v2.yaml", journey(lambda d: nodes(d)["hello"].update(
        text="Hello"), 2))
    _write(tmp_path / "new" / "third.yaml", journey(lambda d: d.update(id="third")))
    code, out, _err = run_cli(capsys, "diff", tmp_path / "old", tmp_path / "new", "--json")
    report = orjson.loads(out)
    assert [(j["id"], j["status"]) for j in report["journeys"]] == [
        ("onboard", "changed"), ("other", "removed"), ("third", "added")]
    assert report["summary"]["errors"] == 1  # other's runs are stranded
    assert code == cli.EXIT_PROBLEMS
    code, text, _err = run_cli(capsys, "diff", tmp_path / "old", tmp_path / "new")
    assert "== onboard: version 1 -> 2" in text
    assert '      content   text: "Hi" -> "Hello"' in text
    assert "== other: removed (was version 1)" in text
    assert text.rstrip().endswith("3 journey(s): 1 changed, 1 added, 1 removed; 1 error(s), "
                                  "0 warning(s), 0 note(s)")


def test_diff_of_unchanged_files_exits_0(tmp_path: Path, capsys: pytest.CaptureFixture[str]
                                         ) -> None:
    a = _write(tmp_path / "a.yaml", journey())
    code, out, _err = run_cli(capsys, "diff", a, a)
    assert code == cli.EXIT_OK
    assert "unchanged: onboard" in out


@pytest.mark.parametrize(
    ("argv", "says"),
    [
        (["nope.yaml", "a.yaml"], "OLD nope.yaml: no such file or directory"),
        (["a.yaml", "a.yaml", "--state", "nope.jsonl"], "--state nope.jsonl: no such file"),
        (["a.yaml", "a.yaml", "--state", "bad.jsonl"], "bad.jsonl:1: not a user state"),
        (["a.yaml", "broken.yaml"], "broken.yaml:"),
    ],
)
def test_diff_usage_errors(
    argv: list[str], says: str, tmp_path: Path, capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.chdir(tmp_path)
    _write(tmp_path / "a.yaml", journey())
    (tmp_path / "broken.yaml").write_text("id: x\nversion: one\n")
    (tmp_path / "bad.jsonl").write_text('{"not": "a state"}\n')
    code, out, err = run_cli(capsys, "diff", *argv)
    assert code == cli.EXIT_USAGE
    assert says in out + err


def test_diff_state_kafka_says_what_it_reads_and_stops_without_a_broker(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("JOURNEYS_BOOTSTRAP", raising=False)
    monkeypatch.delenv("JOURNEYS_APP_ID", raising=False)
    a = _write(tmp_path / "a.yaml", journey())
    code, out, err = run_cli(capsys, "diff", a, a, "--state", "kafka", "--bootstrap",
                             "127.0.0.1:1", "--app-id", "my-engine")
    assert code == cli.EXIT_USAGE
    assert out == ""
    lines = err.splitlines()
    assert lines[0] == "reading my-engine-user-states-changelog from 127.0.0.1:1"
    assert lines[-1].startswith("journeys: can't reach Kafka")
