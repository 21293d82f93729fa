"""The author docs stay true to the code.

* Every complete journey in ``docs/journeys.md`` (a fenced ``yaml`` block whose first line
  is ``id:``) passes ``journeys validate``.
* Every other ``yaml`` block there is a fragment: top-level fields, or the fields of a send
  node. Put into a small journey, it must pass too.
* Every field and every choice of the journey model is named in ``docs/journeys.md``, and
  every RCS limit name the gateway can report is in ``docs/channels.md``.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import pytest
import yaml

from engine.channels.rcs import LIMITS
from engine.cli import main
from engine.journey.model import Journey, SendNode

DOCS = Path(__file__).resolve().parents[2] / "docs"
JOURNEYS_MD = (DOCS / "journeys.md").read_text(encoding="utf-8")
CHANNELS_MD = (DOCS / "channels.md").read_text(encoding="utf-8")

YAML_BLOCKS = re.findall(r"^```yaml\n(.*?)^```", JOURNEYS_MD, re.S | re.M)
COMPLETE = [b for b in YAML_BLOCKS if b.startswith("id:")]
FRAGMENTS = [b for b in YAML_BLOCKS if not b.startswith("id:")]

# What a fragment is put into: the smallest journey with an rcs send.
BASE: dict[str, Any] = {
    "id": "fragment",
    "version": 1,
    "entry": {"event": "signed_up"},
    "start": "hello",
    "nodes": {
        "hello": {"type": "send", "channel": "rcs", "text": "Hi", "next": "done"},
        "done": {"type": "exit"},
    },
}


def _validate(text: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = tmp_path / "journey.yaml"
    path.write_text(text, encoding="utf-8")
    code = main(["validate", str(path)])
    out = capsys.readouterr().out
    assert code == 0, f"journeys validate found problems:\n{out}\nin:\n{text}"


def test_the_doc_has_examples() -> None:
    # A guard for the markers: if the fences change, the tests below would check nothing.
    assert len(COMPLETE) >= 10
    assert FRAGMENTS


@pytest.mark.parametrize("block", COMPLETE, ids=[b.split("\n", 1)[0][4:] for b in COMPLETE])
def test_complete_journey_validates(
    block: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    _validate(block, tmp_path, capsys)


def test_complete_journey_ids_are_unique() -> None:
    ids = [b.split("\n", 1)[0] for b in COMPLETE]
    assert len(ids) == len(set(ids))


@pytest.mark.parametrize("block", FRAGMENTS)
def test_fragment_fits_a_journey(
    block: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    fragment = yaml.safe_load(block)
    assert isinstance(fragment, dict), block
    journey = yaml.safe_load(yaml.safe_dump(BASE))  # a deep copy
    if set(fragment) <= set(Journey.model_fields):
        journey.update(fragment)
    elif set(fragment) <= set(SendNode.model_fields):
        journey["nodes"]["hello"].update(fragment)
    else:
        pytest.fail(f"neither top-level nor send-node fields: {sorted(fragment)}")
    _validate(yaml.safe_dump(journey, sort_keys=False), tmp_path, capsys)


def _schema_names(schema: Any, fields: set[str], choices: set[str]) -> None:
    if isinstance(schema, dict):
        fields.update(schema.get("properties", {}))
        choices.update(str(v) for v in schema.get("enum", ()))
        if "const" in schema:
            choices.add(str(schema["const"]))
        for value in schema.values():
            _schema_names(value, fields, choices)
    elif isinstance(schema, list):
        for value in schema:
            _schema_names(value, fields, choices)


def test_every_field_and_choice_is_documented() -> None:
    fields: set[str] = set()
    choices: set[str] = set()
    _schema_names(Journey.model_json_schema(by_alias=True), fields, choices)
    # `name` or a dotted path ending in it: `quiet_hours.action`, `until.days`.
    names = fields | choices
    missing = sorted(n for n in names if not re.search(rf"[`.]{re.escape(n)}`", JOURNEYS_MD))
    assert not missing, f"not described in docs/journeys.md: {missing}"


def test_every_rcs_limit_name_is_in_channels_md() -> None:
    missing = [name for name in (*LIMITS, "sms.segments") if f"`{name}`" not in CHANNELS_MD]
    assert not missing, f"not described in docs/channels.md: {missing}"
