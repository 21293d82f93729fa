"""``journeys backtest --topic`` on the real broker: the same tables as ``journeys simulate``
then ``journeys stats --file`` over the same events, for --jobs 1 and 3, and ``--since`` /
``--until`` pick the records by their time on the topic.

A generated event log (copies of the example events, users renamed) is produced in two
parts, a second apart, to a topic of this run (a prefix of its own; deleted at the end).
"""

from __future__ import annotations

import asyncio
import json
import time
from pathlib import Path
from typing import Any

import pytest

from engine import cli
from engine.backtest.job import needs_every_user
from engine.backtest.sample import write_copies
from engine.durations import format_ts
from engine.lint.linter import load_journeys
from engine.stream.common.settings import ENV_VARS
from engine.stream.devtools.harness import StreamEnv

ROOT = Path(__file__).resolve().parents[2]
PARTITIONS = 4


def independent_examples(out: Path) -> tuple[Path, list[Path]]:
    """The example journeys without a split that picks its winner (whose users depend on
    each other: a backtest replays those whole), and their events."""
    out.mkdir()
    events = []
    for f in sorted((ROOT / "journeys").glob("*.yaml")):
        if not needs_every_user(load_journeys([f])):
            (out / f.name).write_text(f.read_text())
            events += [e for e in [ROOT / "journeys" / "events" / f"{f.stem}.jsonl"] if e.exists()]
    return out, events


def main(capsys: pytest.CaptureFixture[str], *argv: str | Path) -> str:
    code = cli.main([str(a) for a in argv])
    out, err = capsys.readouterr()
    assert code == cli.EXIT_OK, err
    return out


def simulate_then_stats(
    capsys: pytest.CaptureFixture[str], journeys: Path, events: Path, tmp: Path
) -> list[dict[str, Any]]:
    """`journeys simulate` into a file, then `journeys stats --file --json` over it."""
    outcomes = tmp / f"{events.stem}.outcomes.jsonl"
    outcomes.write_text(
        main(capsys, "simulate", "--journeys", journeys, "--events", events, "--quiet")
    )
    report: list[dict[str, Any]] = json.loads(
        main(capsys, "stats", "--file", outcomes, "--journeys", journeys, "--json")
    )
    return report


def tables(report: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """The figures of a report, the backtest's SMS segments left out; edges sorted (the
    order runs took them in is not kept)."""
    out = json.loads(json.dumps(report))
    for j in out:
        j.pop("sms_segments", None)
        for row in j["nodes"].values():
            row.pop("sms_segments", None)
        j["edges"].sort(key=lambda e: (e["source"], e["target"]))
    return out


def backtest(capsys: pytest.CaptureFixture[str], *argv: str | Path) -> dict[str, Any]:
    data: dict[str, Any] = json.loads(main(capsys, "backtest", *argv, "--json"))
    return data


@pytest.mark.timeout(600)
def test_a_backtest_of_a_topic_is_simulate_then_stats_for_any_jobs(
    kafka_bootstrap: str,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    for var in ENV_VARS:
        monkeypatch.delenv(var, raising=False)
    journeys, events = independent_examples(tmp_path / "journeys")
    env = StreamEnv(kafka_bootstrap, tmp_path, journeys, partitions=PARTITIONS)
    for var in ("JOURNEYS_BOOTSTRAP", "JOURNEYS_TOPIC_PREFIX", "JOURNEYS_PARTITIONS"):
        monkeypatch.setenv(var, env.env()[var])
    early, late, both = tmp_path / "early.jsonl", tmp_path / "late.jsonl", tmp_path / "all.jsonl"
    n_early = write_copies(events, 4, early)
    n_late = write_copies(events, 2, late, first=4)
    both.write_bytes(early.read_bytes() + late.read_bytes())
    try:
        since = format_ts(int(time.time() * 1000) - 1000)
        main(capsys, "produce", early)
        time.sleep(1.5)  # the records of the two parts are apart on the topic's clock
        between = format_ts(int(time.time() * 1000))
        time.sleep(1.5)
        main(capsys, "produce", late)

        expected = simulate_then_stats(capsys, journeys, both, tmp_path)
        topic = ("--journeys", journeys, "--topic")
        one = backtest(capsys, *topic, "--since", since, "--jobs", "1")
        three = backtest(capsys, *topic, "--since", since, "--jobs", "3")
        assert one["source"]["topic"] == env.settings().topics.user_events
        assert one["inputs"] == n_early + n_late and one["rejected"] == 0
        assert tables(one["journeys"]) == tables(expected)
        assert three["journeys"] == one["journeys"]  # SMS segments too
        assert sum(j["sms_segments"] for j in one["journeys"]) > 50
        # The file, split by the same partitioner: the same, to the last figure.
        from_file = backtest(
            capsys, "--journeys", journeys, "--events", both, "--partitions", str(PARTITIONS)
        )
        assert from_file["journeys"] == one["journeys"]

        # --since / --until: offsets for times pick each part alone.
        first = backtest(capsys, *topic, "--since", since, "--until", between, "--jobs", "2")
        assert first["inputs"] == n_early
        want = simulate_then_stats(capsys, journeys, early, tmp_path)
        assert tables(first["journeys"]) == tables(want)
        second = backtest(capsys, *topic, "--since", between)
        assert second["inputs"] == n_late
        want = simulate_then_stats(capsys, journeys, late, tmp_path)
        assert tables(second["journeys"]) == tables(want)
        assert backtest(capsys, *topic, "--since", "now")["inputs"] == 0
    finally:
        asyncio.run(env.aclose())
