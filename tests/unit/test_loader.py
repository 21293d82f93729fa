"""Loading journey files: YAML/JSON errors and schema errors with their lines, directories."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from engine.errors import Problem
from engine.journey.loader import (
    SourceMap,
    expand_paths,
    iter_journeys,
    load_file,
    load_paths,
    load_text,
    node_of,
)

GOOD = """\
id: t
version: 1
entry: {event: signed_up}
start: hello
nodes:
  hello:
    type: send
    channel: sms
    text: "Hi"
    next: done
  done: {type: exit}
"""


def problems_of(text: str, path: str = "j.yaml") -> list[tuple[int, str, str]]:
    _, problems = load_text(text, path)
    return [(p.line, p.node, p.message) for p in problems]


def test_good_file_loads_with_a_line_for_every_key() -> None:
    loaded, problems = load_text(GOOD, "j.yaml")
    assert problems == [] and loaded is not None and loaded.journey is not None
    lines = loaded.source_map
    assert lines.line_of(("start",)) == 4
    assert lines.line_of(("nodes", "hello")) == 6
    assert lines.line_of(("nodes", "hello", "next")) == 10
    assert lines.line_of(("nodes", "done", "type")) == 11
    # a key the file doesn't have takes the line of its nearest parent
    assert lines.line_of(("nodes", "hello", "fallback", "after")) == 6
    assert lines.line_of(("nowhere",)) == 1
    p = loaded.problem(("nodes", "hello", "text"), "msg")
    assert p == Problem("j.yaml", 9, "hello", "msg")
    assert str(p) == "j.yaml:9: hello: msg"


def test_node_of() -> None:
    assert node_of(("nodes", "hello", "next")) == "hello"
    assert node_of(("nodes",)) == "journey"
    assert node_of(("settings", "quiet_hours")) == "journey"
    assert node_of(()) == "journey"


# --------------------------------------------------------------------------- YAML / JSON errors


def test_yaml_syntax_error_gives_one_problem_with_its_line() -> None:
    text = GOOD.replace('text: "Hi"', 'text: "Hi')
    (problem,) = problems_of(text)
    assert problem[1] == "journey" and problem[2].startswith("not valid YAML/JSON:")
    assert problem[0] >= 9


def test_yaml_bad_indentation_line() -> None:
    text = GOOD.replace("    next: done", "   next: done")
    assert problems_of(text) == [(10, "journey", "not valid YAML/JSON: expected <block end>, "
                                                 "but found '<block mapping start>'")]


def test_unclosed_flow_mapping() -> None:
    ((line, node, message),) = problems_of("id: t\nentry: {event: x\nstart: a\n")
    assert node == "journey" and "not valid YAML/JSON" in message and line in (2, 3, 4)


@pytest.mark.parametrize("text", ["", "# only a comment\n", "- a\n- b\n", "just text\n"])
def test_a_file_that_is_not_a_mapping(text: str) -> None:
    assert problems_of(text) == [
        (1, "journey", "a journey file is a mapping with id, version, entry, start, nodes")]


def test_duplicate_keys_are_problems_not_silently_dropped() -> None:
    text = GOOD.replace("  done: {type: exit}\n", "  hello: {type: exit}\n  done: {type: exit}\n")
    tail = "only the last one would count; rename or merge them"
    assert problems_of(text) == [(11, "hello", f"duplicate key 'hello': {tail}")]
    assert problems_of(GOOD.replace("start: hello", "start: hello\nstart: done")) == [
        (5, "journey", f"duplicate key 'start': {tail}")]


def test_yes_no_and_times_stay_text() -> None:
    """YAML 1.2 scalars: a chip labelled Yes, a node named no, 21:00 are strings."""
    text = """\
id: t
version: 1
entry: {event: signed_up}
goal: {event: bought, exit: false}
settings:
  quiet_hours: {from: 21:00, to: 08:00}
start: ask
nodes:
  ask:
    type: send
    channel: rcs
    text: Ok?
    marketing: no
    suggestions:
      - reply: {text: Yes, postback: yes}
      - reply: {text: Off, postback: off}
    next: no
  no: {type: wait, until: {time: 10:00}, next: on}
  on: {type: exit}
"""
    loaded, problems = load_text(text, "j.yaml")
    assert problems == [] and loaded is not None and loaded.journey is not None
    j = loaded.journey
    assert j.settings.quiet_hours is not None
    assert (j.settings.quiet_hours.from_, j.settings.quiet_hours.to) == ("21:00", "08:00")
    ask = j.nodes["ask"]
    assert ask.type == "send" and ask.marketing is False and ask.next == "no"
    chips = [(s.action.text, s.postback) for s in ask.suggestions]
    assert chips == [("Yes", "yes"), ("Off", "off")]
    assert j.goal is not None and j.goal.exit is False  # true/false are still booleans
    assert loaded.raw["version"] == 1


def test_recursive_alias_does_not_crash() -> None:
    problems = problems_of("id: &x [*x]\n")
    assert (1, "journey", "id: Input should be a valid string") in problems


def test_json_error_gives_its_line() -> None:
    assert problems_of('{\n  "id": "t",\n  "version": 1,\n}\n', "j.json") == [
        (4, "journey", "not valid JSON: Expecting property name enclosed in double quotes")]


def test_json_indented_with_tabs_and_escaped_emoji() -> None:
    data = json.loads(json.dumps({"id": "t", "version": 1, "entry": {"event": "signed_up"},
                                  "start": "hello", "nodes": {
                                      "hello": {"type": "send", "channel": "sms",
                                                "text": "Hi 😀", "next": "done"},
                                      "done": {"type": "exit"}}}))
    text = json.dumps(data, indent="\t")  # ensure_ascii: the emoji is "\ud83d\ude00"
    assert "\\ud83d\\ude00" in text
    loaded, problems = load_text(text, "j.json")
    assert problems == [] and loaded is not None and loaded.journey is not None
    assert loaded.journey.nodes["hello"].text == "Hi 😀"  # type: ignore[union-attr]
    assert loaded.source_map.line_of(("nodes", "hello", "text")) == 12


# --------------------------------------------------------------------------- schema errors


def test_schema_errors_are_all_reported_with_their_lines() -> None:
    text = """\
id: t
version: zero
entry: {event: signed_up}
start: hello
nodes:
  hello:
    type: send
    channel: sms
    text: "Hi"
    nxet: done
  wait:
    type: wait
    duration: 10 minutes
    next: done
  odd: {type: teleport}
  notype: {next: done}
  done: {type: exit}
"""
    assert problems_of(text) == [
        (2, "journey", "version: Input should be a valid integer, unable to parse string as an "
                       "integer"),
        (6, "hello", "missing required field 'next'"),
        (10, "hello", "unknown field 'nxet': did you mean 'next'?"),
        (13, "wait", "duration: '10 minutes' is not a duration: write a number and a unit, like "
                     "30s, 15m, 1h, 2d, 1w"),
        (15, "odd", "unknown node type 'teleport': use one of send, wait, wait_for, branch, "
                    "split, exit"),
        (16, "notype", "node has no 'type': use one of send, wait, wait_for, branch, split, exit"),
    ]


def test_missing_top_level_fields_point_at_line_one() -> None:
    assert problems_of("id: t\nversion: 1\n") == [
        (1, "journey", "missing required field 'entry'"),
        (1, "journey", "missing required field 'start'"),
        (1, "journey", "missing required field 'nodes'"),
    ]


def test_nested_schema_error_points_at_the_nested_key() -> None:
    text = GOOD.replace('    text: "Hi"\n', "").replace(
        "    channel: sms\n",
        "    channel: rcs\n    rich_card:\n      title: x\n      suggestions:\n"
        "        - reply: {text: Sure}\n        - dial: {text: Call}\n",
    )
    assert problems_of(text) == [
        (12, "hello", "missing required field 'postback'"),
        (13, "hello", "missing required field 'phone'"),
    ]


def test_schema_error_in_settings_names_the_path() -> None:
    text = GOOD.replace("start: hello", "settings:\n  quiet_hours: {from: '21:00', to: '8pm'}\n"
                                        "start: hello")
    assert problems_of(text) == [
        (5, "journey", "settings.quiet_hours.to: Value error, '8pm' is not a time of day: write "
                       "HH:MM on a 24-hour clock".replace("Value error, ", "")),
    ]


def test_a_file_the_schema_refused_is_kept_without_a_journey() -> None:
    loaded, problems = load_text("id: t\n", "j.yaml")
    assert problems and loaded is not None and loaded.journey is None
    assert loaded.raw == {"id": "t"}
    assert list(iter_journeys([loaded])) == []


# --------------------------------------------------------------------------- files and directories


def test_directory_expansion(tmp_path: Path) -> None:
    for name in ("b.yaml", "a.yml", "c.json", "notes.txt", "README.md"):
        (tmp_path / name).write_text(GOOD, encoding="utf-8")
    (tmp_path / "sub").mkdir()
    (tmp_path / "sub" / "d.yaml").write_text(GOOD, encoding="utf-8")
    assert [p.name for p in expand_paths([tmp_path])] == ["a.yml", "b.yaml", "c.json"]
    # a file named explicitly is read whatever its suffix; order is kept
    explicit = [tmp_path / "notes.txt", tmp_path / "sub"]
    assert [p.name for p in expand_paths(explicit)] == ["notes.txt", "d.yaml"]


def test_load_paths_collects_every_file_and_problem(tmp_path: Path) -> None:
    (tmp_path / "good.yaml").write_text(GOOD, encoding="utf-8")
    (tmp_path / "bad.yaml").write_text("id: [", encoding="utf-8")
    (tmp_path / "refused.yaml").write_text("id: t\n", encoding="utf-8")
    loaded, problems = load_paths([tmp_path, tmp_path / "missing.yaml"])
    assert [Path(item.path).name for item in loaded] == ["good.yaml", "refused.yaml"]
    assert [j.key for j in iter_journeys(loaded)] == [("t", 1)]
    files = sorted({Path(p.file).name for p in problems})
    assert files == ["bad.yaml", "missing.yaml", "refused.yaml"]
    missing = [p for p in problems if p.file.endswith("missing.yaml")]
    assert len(missing) == 1 and missing[0].message.startswith("can't read the file")


def test_non_utf8_file_is_a_problem(tmp_path: Path) -> None:
    path = tmp_path / "latin1.yaml"
    path.write_bytes("text: caf\xe9\n".encode("latin-1"))
    loaded, problems = load_file(path)
    assert loaded is None
    assert [(p.line, p.node) for p in problems] == [(1, "journey")]
    assert "can't read the file" in problems[0].message


def test_source_map_default() -> None:
    assert SourceMap().line_of(("a", "b")) == 1
    assert SourceMap({(): 3}).line_of(("a",)) == 3
