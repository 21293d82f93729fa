"""The linter on profiles: update_profile nodes, max_entries, profile_events in the settings
file; the simulator and `journeys simulate` on refused profile updates."""

from __future__ import annotations

from pathlib import Path

import pytest

from engine import cli
from engine.core.inputs import UserEvent
from engine.journey.loader import load_text
from engine.lint.deployment import engine_config, lint_settings
from engine.lint.linter import lint_loaded, lint_paths
from engine.sim.simulator import Simulator

NODE = """\
id: j
version: 1
entry: {{event: go{entry}}}
start: up
nodes:
  up:
    type: update_profile
{body}
    next: done
  done: {{type: exit}}
"""


def problems(body: str, entry: str = "") -> list[str]:
    loaded, found = load_text(NODE.format(body=body, entry=entry), "j.yaml")
    return [p.message for p in found + lint_loaded([loaded])]


def test_a_valid_node_has_no_problem() -> None:
    assert problems("    set: {tier: \"'gold'\", offer: entry.offer_id}\n    unset: [trial]") == []


def test_a_bare_word_is_a_name_and_the_problem_says_to_quote_it() -> None:
    (msg,) = problems("    set: {tier: gold}")
    assert msg.startswith("set.tier: expression doesn't parse: unknown name 'gold'")
    assert "write \"'gold'\"" in msg


def test_an_expression_with_a_foreign_operator_gets_its_hint() -> None:
    (msg,) = problems('    set: {vip: "user.total = 3"}')
    assert "use == to compare" in msg


def test_an_attribute_both_set_and_unset_is_a_problem() -> None:
    (msg,) = problems("    set: {tier: \"'gold'\"}\n    unset: [tier]")
    assert msg == "'tier' is both set and unset: set wins; remove it from unset"


def test_a_long_or_empty_attribute_name_is_a_problem() -> None:
    found = problems(f"    set: {{{'k' * 65}: \"1\"}}\n    unset: ['']")
    assert any("is 65 characters" in m for m in found)
    assert any("an attribute name is empty" in m for m in found)


def test_a_node_needs_set_or_unset() -> None:
    (msg,) = problems("    name: nothing")
    assert "needs set, unset or both" in msg


def test_an_unknown_key_gets_a_did_you_mean() -> None:
    (msg,) = problems("    sett: {tier: \"'gold'\"}")
    assert "unknown field 'sett': did you mean 'set'?" in msg


def test_the_next_node_must_exist() -> None:
    loaded, _ = load_text(
        NODE.format(body="    unset: [a]", entry="").replace("next: done", "next: dne"), "j.yaml"
    )
    assert any(
        "next 'dne' names no node: did you mean 'done'?" in p.message for p in lint_loaded([loaded])
    )


def test_max_entries_with_reentry_never_is_a_problem() -> None:
    (msg,) = problems("    unset: [a]", ", reentry: never, max_entries: 3")
    assert msg.startswith("max_entries 3 has no effect with reentry: never")
    assert problems("    unset: [a]", ", reentry: never, max_entries: 1") == []


def settings_dir(tmp_path: Path, settings: str, entry: str = "go") -> Path:
    d = tmp_path / "journeys"
    d.mkdir()
    (d / "j.yaml").write_text(
        NODE.format(body="    unset: [a]", entry="").replace("event: go", f"event: {entry}")
    )
    (d / "_settings.yaml").write_text(settings)
    return d


def test_profile_events_are_read_into_the_engine_config(tmp_path: Path) -> None:
    d = settings_dir(tmp_path, "profile_events: [identify, profile_updated]\n")
    assert engine_config([d]).profile_events == frozenset({"identify", "profile_updated"})
    assert lint_paths([d], warnings=True) == []


def test_the_default_profile_event(tmp_path: Path) -> None:
    d = settings_dir(tmp_path, "")
    assert engine_config([d]).profile_events == frozenset({"profile_updated"})


def test_bad_profile_event_names_are_problems(tmp_path: Path) -> None:
    d = settings_dir(tmp_path, "profile_events: [identify, '', identify]\n")
    found = [p.message for p in lint_settings([d])]
    assert "profile event 'identify' is listed twice" in found
    assert any(m.startswith("an empty profile event name") for m in found)


def test_a_journey_entering_on_a_profile_event_gets_a_warning(tmp_path: Path) -> None:
    d = settings_dir(tmp_path, "profile_events: [identify]\n", entry="identify")
    (w,) = lint_paths([d], warnings=True)
    assert w.is_warning
    assert "entry event 'identify' is a profile event" in w.message
    assert lint_paths([d]) == []  # a warning only: the journey still loads


def test_a_misspelt_settings_key_gets_a_did_you_mean(tmp_path: Path) -> None:
    d = settings_dir(tmp_path, "profile_event: [identify]\n")
    (p,) = lint_settings([d])
    assert "unknown field 'profile_event': did you mean 'profile_events'?" in p.message


def test_the_simulator_reports_a_refused_event_and_keeps_the_state() -> None:
    loaded, _ = load_text(NODE.format(body="    set: {seen: \"'yes'\"}", entry=""), "j.yaml")
    assert loaded.journey is not None
    inputs = [
        UserEvent("e1", "u", "profile_updated", 1_000, {"a": 1}),
        UserEvent("e2", "u", "go", 2_000, {}, {"phone": "+14155550100", "big": "x" * 3000}),
        UserEvent("e3", "u", "profile_updated", 3_000, {"b": 2}),
    ]
    result = Simulator([loaded.journey]).run(inputs)
    (r,) = result.refused
    assert (r.user_id, r.ts, r.reason) == ("u", 2_000, "profile_limit")
    assert "event go (e2)" in str(r)
    assert result.states["u"].attrs == {"a": 1, "b": 2}
    assert "e2" not in result.states["u"].seen  # as on Kafka: the input never happened
    assert [o.type for o in result.outcomes] == ["profile_updated", "profile_updated"]


def test_journeys_simulate_lists_a_refused_event_and_exits_1(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    d = settings_dir(tmp_path, "")
    events = tmp_path / "events.jsonl"
    events.write_text(
        '{"event_id":"e1","user_id":"u","name":"profile_updated","ts":"2026-01-01T00:00:00Z",'
        '"properties":{"bio":"' + "x" * 3000 + '"}}\n'
    )
    code = cli.main(["simulate", "--journeys", str(d), "--events", str(events), "--quiet"])
    err = capsys.readouterr().err
    assert code == 1
    assert (
        "rejected: event profile_updated (e1) for u at 2026-01-01T00:00:00Z: profile_limit" in err
    )
    args = ["simulate", "--journeys", str(d), "--events", str(events), "--quiet"]
    assert cli.main([*args, "--allow-rejects"]) == 0


FLOW = """\
id: flow
version: 1
entry: {{event: go{when}}}
start: up
nodes:
  up:
    type: update_profile
    set: {{plan: {value}}}
    unset: [gone]
    next: hello
  hello:
    type: send
    channel: sms
    text: "Plan {{{{ user.plan }}}}, {{{{ user.gone }}}}"
    next: done
  done: {{type: exit}}
"""


def variable_warnings(value: str, when: str = "") -> list[str]:
    loaded, found = load_text(FLOW.format(value=value, when=when), "j.yaml")
    assert found == []
    return [p.message for p in lint_loaded([loaded], warnings=True) if p.is_warning]


@pytest.mark.parametrize(
    ("value", "when", "plan_warned"),
    [
        ("\"'gold'\"", "", False),  # a literal
        ("entry.plan", ', when: "exists(event.plan)"', False),  # required on entry
        ("entry.plan", "", True),  # may be missing, and null removes
        ('"null"', "", True),
        ('"user.total + 1"', "", True),
    ],
)
def test_an_update_profile_node_guarantees_what_it_surely_sets(
    value: str, when: str, plan_warned: bool
) -> None:
    found = variable_warnings(value, when)
    assert any("{{ user.plan }} prints nothing" in m for m in found) == plan_warned, found
    assert any("{{ user.gone }} prints nothing" in m for m in found)  # unset: never present


def test_explain_simulates_with_the_settings_and_notes_a_refused_event(
    capsys: pytest.CaptureFixture[str],
) -> None:
    golden = Path(__file__).resolve().parents[1] / "golden" / "profile-limits"
    args = ["explain", "--journeys", str(golden / "journeys"), "--events"]
    assert cli.main([*args, str(golden / "events.jsonl"), "u-pl-02"]) == 0
    out = capsys.readouterr().out
    assert "profile updated by event identify: first_name, phone" in out  # identify: settings
    assert "note: refused: event identify (e-pl-02-id2) for u-pl-02" in out
    assert "profile_limit" in out
