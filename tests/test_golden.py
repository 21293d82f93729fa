"""Golden replay tests: recorded event logs replayed through the journeys, outcomes compared
byte for byte with a reviewed expected output (like Temporal's replayer tests).

Each directory ``tests/golden/<name>/`` with an ``expected.jsonl`` is a scenario:

- journeys: ``<name>/journeys/`` if it exists, else the example journeys in ``journeys/``;
- events: ``<name>/events.jsonl`` if it exists, else ``journeys/events/<name>.jsonl``;
- an optional ``<name>/scenario.json`` overrides either: ``{"journeys": [dirs or files],
  "events": "file"}``, paths relative to the scenario directory.

``expected.jsonl`` holds the outcomes exactly as ``journeys simulate --quiet`` prints them.

Regenerate after an intended behaviour change, then review the diff before committing::

    .venv/bin/python -m tests.test_golden --update            # every scenario
    .venv/bin/python -m tests.test_golden --update reentry    # some of them
    UPDATE_GOLDEN=1 .venv/bin/python -m pytest tests/test_golden.py

To read an expected file as a per-user timeline: ``python -m tests.test_golden --show NAME``.
"""

from __future__ import annotations

import difflib
import os
import subprocess
import sys
from collections import defaultdict
from dataclasses import dataclass
from pathlib import Path

import orjson
import pytest

from engine.cli import main as cli_main
from engine.lint.deployment import engine_config
from engine.lint.linter import lint_paths, load_journeys
from engine.sim.simulator import Simulator, read_events

ROOT = Path(__file__).resolve().parent.parent
GOLDEN = ROOT / "tests" / "golden"
EXAMPLES = ROOT / "journeys"
EXAMPLE_EVENTS = EXAMPLES / "events"
UPDATE = os.environ.get("UPDATE_GOLDEN", "") not in ("", "0")


@dataclass(frozen=True)
class Scenario:
    name: str
    dir: Path
    journeys: tuple[Path, ...]
    events: Path

    @property
    def expected(self) -> Path:
        return self.dir / "expected.jsonl"


def load_scenario(directory: Path) -> Scenario:
    name = directory.name
    own = directory / "journeys"
    journeys: list[Path] = [own if own.is_dir() else EXAMPLES]
    events = directory / "events.jsonl"
    if not events.exists():
        events = EXAMPLE_EVENTS / f"{name}.jsonl"
    spec_file = directory / "scenario.json"
    if spec_file.exists():
        spec = orjson.loads(spec_file.read_bytes())
        if "journeys" in spec:
            journeys = [(directory / p).resolve() for p in spec["journeys"]]
        if "events" in spec:
            events = (directory / spec["events"]).resolve()
    return Scenario(name, directory, tuple(journeys), events)


def all_scenarios() -> list[Scenario]:
    return [load_scenario(d) for d in sorted(GOLDEN.iterdir()) if d.is_dir()]


SCENARIOS = all_scenarios()


def replay(s: Scenario) -> bytes:
    """The scenario's outcomes, one JSON object per line, as ``journeys simulate`` prints them."""
    inputs, bad = read_events(s.events)
    assert not bad, f"{s.events}: unreadable lines: " + "; ".join(map(str, bad))
    config = engine_config(list(s.journeys))  # a scenario's journeys/_settings.yaml
    result = Simulator(load_journeys(list(s.journeys)), config).run(inputs)
    return b"".join(orjson.dumps(o.to_wire()) + b"\n" for o in result.outcomes)


def readable_diff(
    expected: bytes, actual: bytes, name: str, labels: tuple[str, str] | None = None
) -> str:
    fromfile, tofile = labels or (f"{name}/expected.jsonl", f"{name} (replayed now)")
    diff = difflib.unified_diff(
        expected.decode().splitlines(),
        actual.decode().splitlines(),
        fromfile=fromfile,
        tofile=tofile,
        lineterm="",
        n=2,
    )
    lines = list(diff)
    shown = lines[:200]
    more = f"\n... {len(lines) - 200} more diff lines" if len(lines) > 200 else ""
    return "\n".join(shown) + more


def update(s: Scenario) -> bool:
    """Write the scenario's expected output; True when it changed."""
    actual = replay(s)
    old = s.expected.read_bytes() if s.expected.exists() else None
    if old != actual:
        s.expected.write_bytes(actual)
        return True
    return False


# --------------------------------------------------------------------------- golden replays


@pytest.mark.parametrize("scenario", SCENARIOS, ids=[s.name for s in SCENARIOS])
def test_golden_replay(scenario: Scenario) -> None:
    if UPDATE:
        update(scenario)
    assert scenario.expected.exists(), (
        f"{scenario.expected} is missing: run `python -m tests.test_golden --update "
        f"{scenario.name}`, then review it"
    )
    expected = scenario.expected.read_bytes()
    actual = replay(scenario)
    if actual != expected:
        pytest.fail(
            f"golden scenario {scenario.name!r} replays differently.\n"
            + readable_diff(expected, actual, scenario.name)
            + "\nIf the change is intended: python -m tests.test_golden --update "
            + scenario.name
            + " and review the diff before committing.",
            pytrace=False,
        )


# Two hash seeds: 0 turns string hashing's randomisation off, 12345 is another fixed seed.
HASH_SEEDS = ("0", "12345")


def replay_in_a_process(hash_seed: str) -> tuple[int, dict[str, str]]:
    """Every scenario replayed by a fresh interpreter with this PYTHONHASHSEED, and the
    interpreter's hash of a string (to show that the seed was applied)."""
    path = os.pathsep.join(p for p in (str(ROOT), os.environ.get("PYTHONPATH", "")) if p)
    env = {**os.environ, "PYTHONHASHSEED": hash_seed, "PYTHONPATH": path}
    done = subprocess.run(
        [sys.executable, "-m", "tests.test_golden", "--replay-all"],
        cwd=ROOT, env=env, capture_output=True, timeout=120, check=False,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr.decode()
    result = orjson.loads(done.stdout)
    return result["hash_of_a_string"], result["replays"]


def test_replay_is_the_same_whatever_the_hash_seed() -> None:
    """Two interpreters with different string hashes (so a set of strings iterates in a
    different order in each) replay every scenario to the same bytes, the expected ones:
    no outcome depends on such an order."""
    (hash_1, first), (hash_2, second) = (replay_in_a_process(seed) for seed in HASH_SEEDS)
    assert hash_1 != hash_2, "the two processes hashed alike: PYTHONHASHSEED was not applied"
    assert list(first) == list(second) == [s.name for s in SCENARIOS]
    # Also compared with the expected files: test_golden_replay replays in this process.
    for s in SCENARIOS:
        one, two = first[s.name].encode(), second[s.name].encode()
        label_1, label_2 = (f"{s.name} with PYTHONHASHSEED={seed}" for seed in HASH_SEEDS)
        assert one == two, readable_diff(one, two, s.name, (label_1, label_2))
        if s.expected.exists() and not UPDATE:
            expected = s.expected.read_bytes()
            labels = (f"{s.name}/expected.jsonl", label_1)
            assert one == expected, readable_diff(expected, one, s.name, labels)


def test_cli_simulate_prints_the_golden_output(capsys: pytest.CaptureFixture[str]) -> None:
    s = load_scenario(GOLDEN / "order-updates")
    code = cli_main(["simulate", "--journeys", str(EXAMPLES), "--events", str(s.events), "--quiet"])
    out, err = capsys.readouterr()
    assert code == 0, err
    assert err == ""
    expected = s.expected.read_text()
    assert out == expected, readable_diff(expected.encode(), out.encode(), s.name)


# --------------------------------------------------------------------------- coverage


def test_every_example_journey_has_a_golden_scenario() -> None:
    journeys = load_journeys([EXAMPLES])
    assert len(journeys) >= 4
    for j in journeys:
        assert (EXAMPLE_EVENTS / f"{j.id}.jsonl").exists(), f"no sample events for {j.id}"
        assert (GOLDEN / j.id / "expected.jsonl").exists(), f"no golden scenario for {j.id}"
    for events in EXAMPLE_EVENTS.glob("*.jsonl"):
        assert (GOLDEN / events.stem).is_dir(), f"{events} is not replayed by any scenario"


def test_example_journeys_validate() -> None:
    # `journeys validate journeys/` reads the files directly inside the directory only,
    # so journeys/events/ is not taken for a journey.
    assert [str(p) for p in lint_paths([EXAMPLES])] == []
    for s in SCENARIOS:
        assert [str(p) for p in lint_paths(list(s.journeys))] == [], s.name


# --------------------------------------------------------------------------- invariants


def _outcomes(s: Scenario) -> list[dict[str, object]]:
    return [orjson.loads(line) for line in s.expected.read_bytes().splitlines()]


@pytest.mark.parametrize("scenario", SCENARIOS, ids=[s.name for s in SCENARIOS])
def test_golden_invariants(scenario: Scenario) -> None:
    """What every expected file must satisfy, whatever the journey: a reviewer's checklist."""
    if not scenario.expected.exists():
        pytest.skip("no expected output yet")
    outcomes = _outcomes(scenario)
    assert outcomes, "a scenario with no outcomes tests nothing"
    ids = [o["outcome_id"] for o in outcomes]
    assert len(ids) == len(set(ids)), "outcome ids must be unique (consumers dedupe on them)"
    times = [o["ts"] for o in outcomes]
    assert times == sorted(times), "outcomes are printed in time order"
    delivered = {o["message_id"] for o in outcomes if o["type"] == "message_delivered"}
    sent_ids = [o["message_id"] for o in outcomes if o["type"] == "message_sent"]
    assert len(sent_ids) == len(set(sent_ids)), "a message id is sent at most once"
    held_out = {o["instance_id"] for o in outcomes
                if o["type"] == "journey_entered" and o["attributes"].get("holdout")}  # type: ignore[union-attr]
    for o in outcomes:
        attrs = o["attributes"]
        assert isinstance(attrs, dict)
        assert not (o["type"] == "message_sent" and o["instance_id"] in held_out), (
            f"{o['user_id']}: a message sent to a run in its journey's holdout"
        )
        if o["type"] == "message_sent" and attrs.get("fallback_of"):
            assert attrs["fallback_of"] not in delivered, (
                f"{o['user_id']}: SMS fallback for an RCS message that was delivered"
            )


def _variants(s: Scenario) -> dict[str, list[tuple[int, str]]]:
    out: dict[str, list[tuple[int, str]]] = defaultdict(list)
    for o in _outcomes(s):
        attrs = o["attributes"]
        if o["type"] == "node_entered" and isinstance(attrs, dict) and "variant" in attrs:
            out[str(o["user_id"])].append((int(str(o["journey_version"])), str(attrs["variant"])))
    return out


def test_split_is_stable_across_reentries_and_versions() -> None:
    v1 = _variants(load_scenario(GOLDEN / "split-stability"))
    v2 = _variants(load_scenario(GOLDEN / "split-stability-v2"))
    assert set(v1) == set(v2) and len(v1) == 40
    assert {ver for runs in v1.values() for ver, _ in runs} == {1}
    assert {ver for runs in v2.values() for ver, _ in runs} == {2}
    for user, runs in v1.items():
        names = {name for _, name in runs + v2[user]}
        assert len(names) == 1, f"{user} changed variant: {runs} vs {v2[user]}"
    counts: dict[str, int] = defaultdict(int)
    for runs in v1.values():
        counts[runs[0][1]] += 1
    # 40 users, weights 50/30/20: every variant gets users, none gets them all.
    assert set(counts) == {"control", "discount", "free_shipping"}
    assert all(3 <= n <= 30 for n in counts.values()), counts


# --------------------------------------------------------------------------- regeneration


def show(s: Scenario) -> str:
    """An expected file as a per-user timeline, for reviewing it (ids left out)."""
    by_user: dict[str, list[str]] = defaultdict(list)
    for o in _outcomes(s):
        where = (
            f"{o['journey_id']}@{o['journey_version']}:{o['node_id']}" if o["journey_id"] else "-"
        )
        chan = f" [{o['channel']}]" if o["channel"] else ""
        attrs = o["attributes"]
        extra = " ".join(f"{k}={v}" for k, v in attrs.items()) if isinstance(attrs, dict) else ""
        by_user[str(o["user_id"])].append(
            f"  {o['ts']}  {o['type']:<18} {where}{chan} {extra}".rstrip()
        )
    return "\n".join(f"== {u}\n" + "\n".join(lines) for u, lines in sorted(by_user.items()))


def _main(argv: list[str]) -> int:
    if argv == ["--replay-all"]:  # for test_replay_is_the_same_whatever_the_hash_seed
        replays = {s.name: replay(s).decode() for s in SCENARIOS}
        probe = hash("journey")  # differs between hash seeds
        sys.stdout.buffer.write(orjson.dumps({"hash_of_a_string": probe, "replays": replays}))
        return 0
    if argv[:1] == ["--show"] and len(argv) == 2:
        print(show(load_scenario(GOLDEN / argv[1])))
        return 0
    if not argv or argv[0] != "--update":
        print(__doc__)
        print("usage: python -m tests.test_golden --update [scenario ...]")
        print("       python -m tests.test_golden --show scenario")
        return 2
    wanted = set(argv[1:])
    unknown = wanted - {s.name for s in SCENARIOS}
    if unknown:
        print(f"unknown scenario(s): {', '.join(sorted(unknown))}", file=sys.stderr)
        return 2
    for s in SCENARIOS:
        if wanted and s.name not in wanted:
            continue
        changed = update(s)
        print(f"{'updated  ' if changed else 'unchanged'} {s.expected.relative_to(ROOT)}")
    print("Review the changes (git diff tests/golden) before committing.")
    return 0


if __name__ == "__main__":
    sys.exit(_main(sys.argv[1:]))
