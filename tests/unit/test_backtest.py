"""``journeys backtest`` over a file: the tables of ``journeys simulate`` + ``journeys stats``
for the same events, whatever the number of jobs, partitions or batches; the SMS segments;
a baseline side by side; progress; and the errors of the command line.

The topic side (offsets by time, on the real broker) is tested in
tests/integration/test_backtest_topic.py.
"""

from __future__ import annotations

import io
import json
from collections import Counter
from dataclasses import fields
from pathlib import Path
from typing import Any

import orjson
import pytest
from aiokafka.partitioner import DefaultPartitioner

from engine import cli
from engine.backtest import job as job_module
from engine.backtest.compare import compare
from engine.backtest.job import Job, Rejected, batches, needs_every_user, run_job
from engine.backtest.partitions import UNROUTABLE, partition_of, split_lines
from engine.backtest.progress import ProgressLine
from engine.backtest.report import rejected_lines
from engine.backtest.run import FileSource, merge, plan_jobs
from engine.backtest.sample import write_copies
from engine.backtest.table import format_comparison, format_run
from engine.backtest.window import check_window, parse_instant
from engine.channels.prepare import Prepared, prepare
from engine.core.wire import decode_line
from engine.errors import ConfigError
from engine.lint.deployment import engine_config
from engine.lint.linter import load_journeys
from engine.sim.simulator import Simulator, read_events
from engine.stats.aggregate import Aggregator, JourneyStats
from engine.stream.common.settings import ENV_VARS

ROOT = Path(__file__).resolve().parents[2]
DAY_MS = 86_400_000


def independent_examples(out: Path) -> tuple[Path, list[Path]]:
    """The example journeys whose users don't depend on each other (no split that picks
    its winner), with their events: what a backtest can split by partition and batch."""
    out.mkdir()
    kept = []
    for f in sorted((ROOT / "journeys").iterdir()):
        if f.suffix in (".yaml", ".yml") and not needs_every_user(load_journeys([f])):
            (out / f.name).write_text(f.read_text())
            events = ROOT / "journeys" / "events" / f"{f.stem}.jsonl"
            if events.exists():
                kept.append(events)
    return out, kept


ALL_EXAMPLES = ROOT / "journeys"


@pytest.fixture(autouse=True)
def _no_journeys_env(monkeypatch: pytest.MonkeyPatch) -> None:
    for var in (*ENV_VARS, "JOURNEYS_DEBUG"):
        monkeypatch.delenv(var, raising=False)


@pytest.fixture(scope="module")
def examples(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, list[Path]]:
    return independent_examples(tmp_path_factory.mktemp("examples") / "journeys")


@pytest.fixture(scope="module")
def journeys(examples: tuple[Path, list[Path]]) -> Path:
    return examples[0]


@pytest.fixture(scope="module")
def history(tmp_path_factory: pytest.TempPathFactory, examples: tuple[Path, list[Path]]) -> Path:
    """Three copies of the example events: every journey, feature and reason in them."""
    path = tmp_path_factory.mktemp("history") / "events.jsonl"
    write_copies(examples[1], 3, path)
    return path


def stats_of_simulate(journeys: Path, events: Path) -> tuple[list[dict[str, Any]], Any]:
    """What `journeys simulate` then `journeys stats --json` print for these events."""
    loaded = load_journeys([journeys])
    inputs, bad = read_events(events)
    assert not bad
    sim = Simulator(loaded, engine_config([journeys]))
    result = sim.run(inputs)
    agg = Aggregator()
    agg.add_all(orjson.loads(orjson.dumps(o.to_wire())) for o in result.outcomes)
    return agg.to_json(loaded), (sim, result)


def without_segments(report: list[dict[str, Any]]) -> list[dict[str, Any]]:
    out = json.loads(json.dumps(report))
    for j in out:
        del j["sms_segments"]
        for row in j["nodes"].values():
            del row["sms_segments"]
    return out


def sorted_edges(report: list[dict[str, Any]]) -> list[dict[str, Any]]:
    for j in report:
        j["edges"].sort(key=lambda e: (e["source"], e["target"]))
    return report


def backtest_json(capsys: pytest.CaptureFixture[str], *argv: str | Path) -> dict[str, Any]:
    code = cli.main(["backtest", *(str(a) for a in argv), "--json"])
    out, err = capsys.readouterr()
    assert code == cli.EXIT_OK, err
    assert "Traceback" not in err
    data: dict[str, Any] = json.loads(out)
    return data


# --------------------------------------------------------------------------- partitions


def test_partition_of_is_kafkas_default_partitioner() -> None:
    partitioner = DefaultPartitioner()
    for n in (1, 3, 8, 12):
        parts = list(range(n))
        for i in range(300):
            user = f"user-{i}" if i % 3 else f"ü-{i}-{'x' * (i % 7)}"
            assert partition_of(user, n) == partitioner(user.encode(), parts, parts)


def test_split_lines_keeps_a_users_lines_together_in_file_order() -> None:
    lines = [
        (1, b'{"user_id": "a", "n": 1}'),
        (2, b'{"user_id": "b", "n": 2}'),
        (3, b"not json"),
        (4, b'{"user_id": "a", "n": 3}'),
        (5, b'{"name": "no user"}'),
    ]
    by_part = split_lines(lines, 4)
    assert [no for no, _ in by_part[partition_of("a", 4)] if no in (1, 4)] == [1, 4]
    assert {3, 5} <= {no for no, _ in by_part[UNROUTABLE]}
    assert sorted(no for part in by_part.values() for no, _ in part) == [1, 2, 3, 4, 5]


def test_batches_hold_whole_users_in_their_order(examples: tuple[Path, list[Path]]) -> None:
    inputs, _ = read_events(examples[1][0])
    got = list(batches(inputs, 5))
    assert sum(len(b) for b in got) == len(inputs)
    owner: dict[str, int] = {}
    for i, b in enumerate(got):
        for inp in b:
            assert owner.setdefault(inp.user_id, i) == i  # a user never spans two batches
    for user in owner:
        assert [i for i in inputs if i.user_id == user] == [
            i for b in got for i in b if i.user_id == user
        ]


# --------------------------------------------------------------------------- window


def test_since_and_until_take_durations_back_from_now_or_iso_times() -> None:
    now = 1_800_000_000_000
    assert parse_instant("30d", now) == now - 30 * DAY_MS
    assert parse_instant("1h30m", now) == now - 5_400_000
    assert parse_instant("now", now) == now
    assert parse_instant("2026-11-01T00:00:00Z", now) == 1_793_491_200_000
    with pytest.raises(ConfigError, match="--until 'yesterday': give a duration"):
        parse_instant("yesterday", now, "--until")
    with pytest.raises(ConfigError, match="not after --since"):
        check_window(now, now - 1)
    check_window(now, None)


# --------------------------------------------------------------------------- the tables


def test_a_backtest_of_a_file_is_simulate_then_stats(
    history: Path,
    capsys: pytest.CaptureFixture[str],
    journeys: Path,
    examples: tuple[Path, list[Path]],
) -> None:
    expected, (_sim, result) = stats_of_simulate(journeys, history)
    got = backtest_json(capsys, "--journeys", journeys, "--events", history)
    assert sorted_edges(without_segments(got["journeys"])) == sorted_edges(expected)
    assert got["inputs"] == len(read_events(history)[0])
    assert got["users"] == len({i.user_id for i in read_events(history)[0]})
    assert got["rejected"] == 0
    assert {j["journey_id"] for j in got["journeys"]} == {p.stem for p in examples[1]}
    # Segments, counted another way: every send request prepared as the gateway does.
    want: Counter[tuple[str | None, str | None]] = Counter()
    originals: dict[str, dict[str, Any]] = {}
    for req in result.sends:
        if req.channel == "rcs":
            originals[req.message_id] = req.content
        prepared = prepare(req, originals)
        if isinstance(prepared, Prepared) and prepared.channel == "sms":
            want[(req.journey_id, req.node_id)] += prepared.segments
    have = Counter(
        {
            (j["journey_id"], node): row["sms_segments"]
            for j in got["journeys"]
            for node, row in j["nodes"].items()
            if row["sms_segments"]
        }
    )
    outside = want.pop((None, None))  # HELP answers: no journey's
    assert have == +want
    assert got["sms_segments_outside_journeys"] == outside > 0
    assert sum(have.values()) > 100
    for j in got["journeys"]:
        assert j["sms_segments"] == sum(r["sms_segments"] for r in j["nodes"].values())


def test_any_jobs_partitions_or_batches_give_the_same_tables(
    history: Path,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
    journeys: Path,
) -> None:
    one = backtest_json(capsys, "--journeys", journeys, "--events", history, "--jobs", "1")
    three = backtest_json(capsys, "--journeys", journeys, "--events", history, "--jobs", "3")
    assert three == one
    other = backtest_json(capsys, "--journeys", journeys, "--events", history, "--partitions", "3")
    assert other["journeys"] == one["journeys"]
    assert other["source"]["partitions"] == 3
    monkeypatch.setattr(job_module, "BATCH_INPUTS", 7)  # many small simulator runs
    small = backtest_json(capsys, "--journeys", journeys, "--events", history)
    assert small == one


def test_merge_order_does_not_change_the_counts(history: Path, journeys: Path) -> None:
    jobs = plan_jobs(FileSource(str(history), 5), str(journeys), None)
    assert len(jobs) == 5
    results = [run_job(j) for j in jobs]
    loaded = load_journeys([journeys])
    forward = merge(results, 5, baseline=False).candidate.report(loaded)
    backward = merge(results[::-1], 5, baseline=False).candidate.report(loaded)
    assert forward == backward


def test_a_split_that_picks_its_winner_replays_every_user_at_once(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """Its decision counts every user's outcomes: no partitions, no batches, and still the
    tables of simulate + stats (and --jobs changes nothing)."""
    history = tmp_path / "events.jsonl"
    write_copies(sorted((ALL_EXAMPLES / "events").glob("*.jsonl")), 2, history)
    assert needs_every_user(load_journeys([ALL_EXAMPLES]))
    jobs = plan_jobs(FileSource(str(history), 8), str(ALL_EXAMPLES), None)
    assert len(jobs) == 1 and jobs[0].whole and jobs[0].size == len(read_events(history)[0])
    expected, _ = stats_of_simulate(ALL_EXAMPLES, history)
    got = backtest_json(capsys, "--journeys", ALL_EXAMPLES, "--events", history, "--jobs", "2")
    assert sorted_edges(without_segments(got["journeys"])) == sorted_edges(expected)
    assert any(j["splits"] for j in got["journeys"] if j["journey_id"] == "welcome-offer")


def test_journey_stats_merge_knows_every_field() -> None:
    """JourneyStats.merge must merge every field: a new field fails here until it does
    (then add it to merge, and to this list)."""
    assert {f.name for f in fields(JourneyStats)} == {
        "journey_id", "version", "counts", "edges", "variants", "converted_instances",
        "acted", "first_entry", "after_decision", "decisions", "last_ts", "arms", "messages",
        "at",
    }  # fmt: skip


def test_the_table_is_the_stats_table_with_the_segments(
    history: Path, capsys: pytest.CaptureFixture[str], journeys: Path
) -> None:
    code = cli.main(["backtest", "--journeys", str(journeys), "--events", str(history)])
    out, err = capsys.readouterr()
    assert code == cli.EXIT_OK
    got = backtest_json(capsys, "--journeys", journeys, "--events", history)
    assert out == format_run(got["journeys"], got["global_control"])
    header = next(line for line in out.splitlines() if line.lstrip().startswith("node"))
    assert header.split()[-2:] == ["segs", "notes"]
    assert "order-updates v1: 57 entered, 12 converted (21.1%)" in out
    assert "suppressed:invalid_phone=3" in out
    assert "sms segs: segments of the SMS" in out
    assert "inputs of" in err and "partition(s), --jobs 1" in err


def test_rejected_lines_are_listed_and_fail_unless_allowed(
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    journeys: Path,
    examples: tuple[Path, list[Path]],
) -> None:
    events = tmp_path / "events.jsonl"
    good = examples[1][0].read_text()
    events.write_text('{"user_id": "u-1", "name": "x", "ts": "tomorrow"}\n' + good)
    code = cli.main(["backtest", "--journeys", str(journeys), "--events", str(events)])
    out, err = capsys.readouterr()
    assert code == cli.EXIT_PROBLEMS
    assert f"{events}:1: rejected: " in err
    assert "--allow-rejects" in err.splitlines()[-1]
    assert out.startswith("appointment-confirm v1:")
    allowed = ["backtest", "--journeys", str(journeys), "--events", str(events), "--allow-rejects"]
    assert cli.main(allowed) == cli.EXIT_OK


# --------------------------------------------------------------------------- baseline


def candidate_dir(tmp_path: Path, journeys: Path) -> Path:
    """order-updates v2: the apology SMS is gone (the run exits when nothing ships)."""
    out = tmp_path / "candidate"
    out.mkdir()
    for f in journeys.glob("*.yaml"):
        (out / f.name).write_text(f.read_text())
    path = out / "order-updates.yaml"
    text = path.read_text()
    assert "on_timeout: delay_apology" in text and "version: 1" in text
    text = text.replace("version: 1", "version: 2", 1).replace(
        "on_timeout: delay_apology", "on_timeout: delayed"
    )
    start = text.index("  delay_apology:")
    end = text.index("\n  ", text.index("next:", start)) + 1
    path.write_text(text[:start] + text[end:])
    assert load_journeys([out])  # still a valid journey
    return out


def test_a_baseline_side_by_side_with_the_differences(
    history: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str], journeys: Path
) -> None:
    cand = candidate_dir(tmp_path, journeys)
    got = backtest_json(
        capsys, "--journeys", cand, "--baseline", journeys, "--events", history, "--jobs", "2"
    )
    alone = backtest_json(capsys, "--journeys", journeys, "--events", history)
    assert got["baseline"] == alone["journeys"]
    diffs = {d["journey_id"]: d for d in got["differences"]}
    orders = diffs["order-updates"]
    assert (orders["baseline_version"], orders["candidate_version"]) == (1, 2)
    apology = orders["nodes"]["delay_apology"]
    assert apology["in"] == "baseline"
    assert apology["figures"]["entered"] == {"baseline": 12, "candidate": 0, "difference": -12}
    segments = orders["figures"]["sms_segments"]
    assert segments["difference"] < 0
    assert segments["candidate"] - segments["baseline"] == segments["difference"]
    same = diffs["winback-inactive"]["figures"]
    assert all(f["difference"] in (0, None) for f in same.values())
    table = format_comparison(got["differences"])
    code = cli.main(
        ["backtest", "--journeys", str(cand), "--baseline", str(journeys), "--events", str(history)]
    )
    out, _ = capsys.readouterr()
    assert code == cli.EXIT_OK
    assert out == table
    assert "order-updates: baseline v1, candidate v2" in out
    assert "delay_apology (only in baseline)" in out
    block = out[out.index("order-updates: baseline") :].splitlines()
    seg_line = next(line for line in block if line.lstrip().startswith("SMS segments"))
    assert seg_line.split()[-1] == f"{segments['difference']:+,}"
    row = next(line for line in block if line.lstrip().startswith("delay_apology"))
    assert "12→0 (-12)" in row
    assert row.endswith("suppressed:invalid_phone=3→0 (-3)")


def test_compare_pairs_journeys_by_id_and_keeps_one_sided_ones() -> None:
    row = {"entered": 2, "sent": {"sms": 2}, "fallback_rate": None, "sms_segments": 4,
           "suppressed": {"quiet_hours": 1}}  # fmt: skip
    report = {"journey_id": "a", "version": 1, "entered": 2, "converted": 1,
              "conversion_rate": 0.5, "sends": 2, "reached": 2, "fallback": 0,
              "fallback_rate": None, "sms_segments": 4, "suppressed": 1, "deferred": 0,
              "opted_out": 0, "nodes": {"hi": row}}  # fmt: skip
    only_new = {**report, "journey_id": "b"}
    [a, b] = compare([report], [{**report, "version": 2}, only_new])
    assert a["figures"]["entered"] == {"baseline": 2, "candidate": 2, "difference": 0}
    assert a["nodes"]["hi"]["figures"]["suppressed:quiet_hours"]["difference"] == 0
    assert b["baseline_version"] is None
    assert b["figures"]["conversion_rate"] == {
        "baseline": None,
        "candidate": 0.5,
        "difference": None,
    }
    assert b["nodes"]["hi"]["in"] == "candidate"


# --------------------------------------------------------------------------- progress


class Clock:
    def __init__(self) -> None:
        self.t = 0.0

    def __call__(self) -> float:
        return self.t


class Terminal(io.StringIO):
    def isatty(self) -> bool:
        return True


def test_progress_is_quiet_on_short_runs_and_plain_lines_off_a_terminal() -> None:
    clock, out = Clock(), io.StringIO()
    p = ProgressLine(out, 100, clock=clock)
    p.add(10)
    clock.t = 1.5
    p.add(10)
    assert out.getvalue() == ""  # short so far
    clock.t = 2.5
    p.add(10)
    clock.t = 3.0
    p.partition_done(1, 4)  # within every_s of the last line: not shown
    clock.t = 12.6
    p.add(20)
    lines = out.getvalue().splitlines()
    assert lines == [
        "backtest: 30 of 100 records (30%), 12/s, 2 s",
        "backtest: 50 of 100 records (50%), partitions 1/4, 4/s, 13 s",
    ]
    p.finish()
    assert out.getvalue().count("\n") == 2


def test_progress_redraws_one_line_on_a_terminal_and_erases_it() -> None:
    clock, out = Clock(), Terminal()
    p = ProgressLine(out, 0, clock=clock)
    clock.t = 3
    p.add(5)
    clock.t = 3.5
    p.add(5)
    text = out.getvalue()
    assert "\n" not in text
    assert text.count("\r\x1b[K") == 2
    assert text.endswith("backtest: 10 of 0 records, 3/s, 4 s")
    p.finish()
    assert out.getvalue().endswith("\r\x1b[K")


# --------------------------------------------------------------------------- errors


def run(capsys: pytest.CaptureFixture[str], *argv: str | Path) -> tuple[int, str, str]:
    code = cli.main([str(a) for a in argv])
    out, err = capsys.readouterr()
    assert "Traceback" not in out + err, err
    return code, out, err


def test_bad_arguments(
    history: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str], journeys: Path
) -> None:
    j, ev = journeys, history
    (tmp_path / "empty").mkdir()
    cases: list[tuple[list[str | Path], str]] = [
        (["--journeys", j], "one of the arguments --events --topic is required"),
        (["--journeys", j, "--events", ev, "--topic"], "not allowed with argument"),
        (["--journeys", j, "--topic"], "--topic needs --since"),
        (["--journeys", j, "--events", ev, "--since", "30d"], "with --events every line"),
        (["--journeys", j, "--topic", "--since", "last week"], "--since 'last week'"),
        (["--journeys", j, "--topic", "--since", "1d", "--until", "2d"], "not after --since"),
        (["--journeys", j, "--events", ev, "--jobs", "0"], "--jobs 0"),
        (["--journeys", tmp_path / "empty", "--events", ev], "no journey file"),
        (["--journeys", j, "--baseline", tmp_path / "nope", "--events", ev], "no such file"),
        (["--journeys", j, "--events", ev, "--partitions", "0"], "partitions must be >= 1"),
    ]
    for argv, says in cases:
        code, out, err = run(capsys, "backtest", *argv)
        assert code == cli.EXIT_USAGE, (argv, err)
        assert says in out + err, (argv, out, err)


def test_without_a_broker_it_says_what_it_would_read(
    capsys: pytest.CaptureFixture[str], journeys: Path
) -> None:
    code, out, err = run(
        capsys, "backtest", "--journeys", journeys, "--topic", "--since", "1d",
        "--bootstrap", "127.0.0.1:1",
    )  # fmt: skip
    assert code == cli.EXIT_USAGE
    assert out == ""
    assert err.splitlines()[0] == "reading journey.user-events from 127.0.0.1:1"
    assert err.splitlines()[-1].startswith("journeys: can't reach Kafka")


def test_a_job_of_a_file_decodes_like_simulate(journeys: Path) -> None:
    lines = [(1, b'{"user_id": "u", "event_id": "e", "name": "x", "ts": "bad"}'), (2, b"{")]
    result = run_job(Job(0, str(journeys), lines=lines))
    assert result.inputs == 0
    assert [(r.position, r.reason) for r in result.rejected] == [
        (1, "bad_timestamp"),
        (2, "bad_json"),
    ]
    ok = (3, orjson.dumps({"user_id": "u", "name": "x", "ts": "2026-11-02T15:00:00Z",
                           "event_id": "e"}))  # fmt: skip
    assert decode_line(orjson.loads(ok[1])).user_id == "u"
    assert run_job(Job(0, str(journeys), lines=[ok])).users == 1


def test_rejected_records_of_a_topic_say_where_they_are() -> None:
    rejected = [Rejected(2, 100 + i, "bad_json", "") for i in range(23)]
    lines = rejected_lines(rejected, {"topic": "journey.user-events", "since": "x"})
    assert lines[0] == "journey.user-events[2]@100: rejected: bad_json"
    assert len(lines) == 21
    assert lines[-1] == "... and 3 more rejected"
