"""The deployment's settings file (journeys/_settings.yaml): model, loader, linter, and the
commands that read it with the journeys."""

from __future__ import annotations

from pathlib import Path

import orjson
import pytest

from engine import cli
from engine.errors import InvalidJourney
from engine.journey.deployment import load_settings_file, settings_files
from engine.journey.loader import expand_paths
from engine.lint.deployment import engine_config, lint_settings, load_deployment
from engine.lint.linter import lint_paths, load_journeys

JOURNEY = """\
id: promo
version: 1
entry: {event: go}
goal: {event: buy, within: 7d}
start: hello
nodes:
  hello: {type: send, channel: sms, text: "20% off", next: receipt}
  receipt: {type: send, channel: sms, marketing: false, text: "Your code: X1", next: done}
  done: {type: exit}
"""


def folder(tmp_path: Path, settings: str | None) -> Path:
    d = tmp_path / "journeys"
    d.mkdir(parents=True, exist_ok=True)
    (d / "promo.yaml").write_text(JOURNEY)
    if settings is not None:
        (d / "_settings.yaml").write_text(settings)
    return d


def messages(problems: list[object]) -> list[str]:
    return [str(p) for p in problems]


def test_the_settings_file_is_read_and_never_taken_for_a_journey(tmp_path: Path) -> None:
    d = folder(tmp_path, "global_control:\n  share: 5%\n  salt: '2026'\n")
    assert [f.name for f in expand_paths([d])] == ["promo.yaml"]
    assert [f.name for f in expand_paths([d / "_settings.yaml"])] == []
    assert settings_files([d, d / "_settings.yaml"]) == [d / "_settings.yaml"]
    settings = load_deployment([d])
    assert settings.global_control is not None
    assert settings.global_control.fraction == 0.05 and settings.global_control.salt == "2026"
    assert engine_config([d]).global_control == settings.global_control
    assert [j.id for j in load_journeys([d])] == ["promo"]
    assert lint_paths([d], warnings=True) == []


def test_no_settings_file_means_no_global_control(tmp_path: Path) -> None:
    d = folder(tmp_path, None)
    assert load_deployment([d]).global_control is None
    assert engine_config([d]).global_control is None
    assert load_deployment([d / "promo.yaml"]).global_control is None
    empty = folder(tmp_path, "# nothing yet\n")
    assert load_deployment([empty]).global_control is None


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("global_control: {share: 0%}\n",
         "_settings.yaml:1: settings: global_control share 0% holds nobody out: give a share "
         "above 0% (e.g. 5%), or remove global_control"),
        ("global_control:\n  share: 60%\n",
         "_settings.yaml:2: settings: global_control share 60% is more than 50%: most users "
         "would get no marketing message; give at most 50%"),
        ("global_control: {share: 5}\n",
         "_settings.yaml:1: settings: global_control.share: 5 is not a percentage: write it "
         "like 10% (or 2.5%)"),
        ("global_contrl: {share: 5%}\n",
         "_settings.yaml:1: settings: unknown field 'global_contrl': did you mean "
         "'global_control'?"),
        ("global_control: {share: 5%, sault: x}\n",
         "_settings.yaml:1: settings: unknown field 'sault': did you mean 'salt'?"),
        ("- 5%\n", "_settings.yaml:1: settings: the settings file is a mapping, like "
                   "global_control: {share: 5%, salt: '2026'}"),
        ("global_control: {share: 5%\n", "_settings.yaml:2: settings: not valid YAML/JSON"),
    ],
)  # fmt: skip
def test_problems_of_the_settings_file(tmp_path: Path, text: str, expected: str) -> None:
    d = folder(tmp_path, text)
    found = messages(lint_paths([d]))
    assert len(found) == 1
    assert found[0].removeprefix(str(d) + "/").startswith(expected)
    with pytest.raises(InvalidJourney):
        load_deployment([d])
    with pytest.raises(InvalidJourney):  # a bad settings file stops the journeys loading
        load_journeys([d])


def test_a_large_control_group_is_a_warning(tmp_path: Path) -> None:
    d = folder(tmp_path, "global_control: {share: 15%}\n")
    (w,) = lint_paths([d], warnings=True)
    assert w.is_warning and "global_control share 15%: these users get no marketing" in str(w)
    assert lint_paths([d]) == []
    assert load_deployment([d]).global_control is not None


def test_two_settings_files_given_together_are_a_problem(tmp_path: Path) -> None:
    a = folder(tmp_path / "a", "global_control: {share: 5%}\n")
    b = folder(tmp_path / "b", "global_control: {share: 2%}\n")
    (p,) = lint_settings([a, b])
    assert "a second settings file" in p.message and p.file == str(b / "_settings.yaml")


def test_validate_checks_the_settings_file(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    d = folder(tmp_path, "global_control: {share: 70%}\n")
    assert cli.main(["validate", str(d)]) == 1
    out = capsys.readouterr().out
    assert "_settings.yaml:1: settings: global_control share 70% is more than 50%" in out
    assert cli.main(["validate", str(d / "_settings.yaml")]) == 1
    assert "more than 50%" in capsys.readouterr().out
    (d / "_settings.yaml").write_text("global_control: {share: 5%}\n")
    assert cli.main(["validate", str(d)]) == 0


def test_simulate_holds_the_control_group_out_of_marketing_sends(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    d = folder(tmp_path, "global_control: {share: 50%, salt: s}\n")
    events = tmp_path / "events.jsonl"
    lines = [
        {"event_id": f"e{i}", "user_id": f"u{i}", "name": "go", "ts": "2026-01-05T12:00:00Z",
         "profile": {"phone": "+14155550123"}}
        for i in range(20)
    ]  # fmt: skip
    events.write_bytes(b"".join(orjson.dumps(x) + b"\n" for x in lines))
    assert cli.main(["simulate", "--journeys", str(d), "--events", str(events), "--quiet"]) == 0
    outcomes = [orjson.loads(x) for x in capsys.readouterr().out.splitlines()]
    control = {o["user_id"] for o in outcomes
               if o["type"] == "journey_entered" and o["attributes"].get("global_control")}
    assert 3 <= len(control) <= 17  # about half of 20
    for o in outcomes:
        if o["type"] == "message_sent" and o["user_id"] in control:
            assert o["node_id"] == "receipt"  # utility only
        if o["type"] == "message_suppressed":
            assert o["user_id"] in control and o["node_id"] == "hello"
            assert o["attributes"] == {"reason": "global_control"}
    suppressed = {o["user_id"] for o in outcomes if o["type"] == "message_suppressed"}
    assert suppressed == control


def test_the_loaded_file_keeps_its_lines(tmp_path: Path) -> None:
    path = tmp_path / "_settings.yaml"
    path.write_text("# deployment\n\nglobal_control:\n  share: 5%\n")
    loaded, problems = load_settings_file(path)
    assert problems == [] and loaded.settings is not None
    assert loaded.source_map.line_of(("global_control", "share")) == 4
