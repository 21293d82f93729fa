"""The benchmark suite's runner and output (engine/bench), without a broker: figure modules
are fakes handed to the runner's importer."""

from __future__ import annotations

import json
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest

from engine.bench.command import EXIT_OK, EXIT_PROBLEMS, exit_code
from engine.bench.options import BenchOptions
from engine.bench.profile import area_of, summarize
from engine.bench.runner import FAILED, KEYS, NOT_BUILT, OK, Report, parse_only, run_suite
from engine.bench.table import format_table, format_value, rows, to_json
from engine.cli import main as cli_main


def _module(name: str, **attrs: Any) -> ModuleType:
    m = ModuleType(name)
    for k, v in attrs.items():
        setattr(m, k, v)
    return m


class FakeImporter:
    """engine.bench.<module> -> a fake; a name it lacks is not built."""

    def __init__(self, modules: dict[str, ModuleType]) -> None:
        self.modules = modules
        self.imported: list[str] = []

    def __call__(self, name: str) -> ModuleType:
        self.imported.append(name)
        short = name.rsplit(".", 1)[1]
        if short not in self.modules:
            raise ModuleNotFoundError(f"No module named {name!r}", name=name)
        return self.modules[short]


R1_FIGURES = {
    "figures": [
        {"figure": "R1 passthrough", "value": 28000.0, "unit": "records/s"},
        {
            "figure": "R1 worker / passthrough",
            "value": 0.31,
            "unit": "ratio",
            "target": ">= 0.30",
            "met": True,
        },
        {
            "figure": "R1 worker + gateway / passthrough",
            "value": 0.1,
            "unit": "ratio",
            "target": ">= 0.20",
            "met": False,
        },
    ]
}


def _opts(tmp_path: Path) -> BenchOptions:
    return BenchOptions(users=10, waiting_users=20, quick=True, workdir=tmp_path)


def test_only_keeps_the_suites_order_and_names_the_keys_it_takes() -> None:
    assert parse_only(None) == list(KEYS)
    assert parse_only("r3, R1") == ["r1", "r3"]
    with pytest.raises(ValueError, match=r"r9: use r1,r2,r3,r4,r5"):
        parse_only("r1,r9")


def test_a_missing_module_is_not_built_and_a_failing_one_does_not_stop_the_others(
    tmp_path: Path,
) -> None:
    seen: list[BenchOptions] = []

    def r1_run(opts: BenchOptions) -> dict[str, Any]:
        seen.append(opts)
        (opts.workdir / "log").write_text("x")  # its own directory
        return R1_FIGURES

    def boom(opts: BenchOptions) -> dict[str, Any]:
        raise RuntimeError("broker went away")

    def bails(opts: BenchOptions) -> dict[str, Any]:
        raise SystemExit(3)

    importer = FakeImporter(
        {
            "r1": _module("r1", run=r1_run),
            "timers": _module("timers", run=boom),
            "memory": _module("memory", run=bails),
            "restore": _module("restore", run=lambda opts: {"restore_s": 42.5, "users": 7}),
        }
    )
    done: list[str] = []
    report = run_suite(
        _opts(tmp_path), KEYS, importer=importer, on_done=lambda o: done.append(o.key)
    )

    by_key = {o.key: o for o in report.outcomes}
    assert [o.key for o in report.outcomes] == list(KEYS) == done
    assert by_key["r1"].status == OK and by_key["r1"].result == R1_FIGURES
    assert by_key["r2"].status == NOT_BUILT and "core_steps" in (by_key["r2"].error or "")
    assert by_key["r3"].status == FAILED and by_key["r3"].error == "RuntimeError: broker went away"
    assert by_key["r4"].status == FAILED and "SystemExit" in (by_key["r4"].error or "")
    assert by_key["r5"].status == OK
    assert seen[0].workdir == tmp_path / "r1" and (tmp_path / "r1" / "log").exists()
    assert exit_code(report, check=False) == EXIT_PROBLEMS


def test_a_module_that_imports_something_missing_has_failed_not_missing(tmp_path: Path) -> None:
    def importer(name: str) -> ModuleType:
        raise ModuleNotFoundError("No module named 'rocksdict'", name="rocksdict")

    (out,) = run_suite(_opts(tmp_path), ["r4"], importer=importer).outcomes
    assert out.status == FAILED and "rocksdict" in (out.error or "")


def test_measure_gets_the_options_its_parameters_name(tmp_path: Path) -> None:
    got: dict[str, Any] = {}

    def measure(users: int, quick: bool = False) -> dict[str, Any]:
        got.update(users=users, quick=quick)
        return {"steps_per_s": 35000.0}

    async def coroutine_run(opts: BenchOptions) -> dict[str, Any]:
        return {"p99_ms": 12}

    importer = FakeImporter(
        {
            "core_steps": _module("core_steps", measure=measure),
            "timers": _module("timers", run=coroutine_run),
            "memory": _module("memory", run=lambda opts: [1, 2]),
            "restore": _module("restore"),
        }
    )
    report = run_suite(_opts(tmp_path), ["r2", "r3", "r4", "r5"], importer=importer)
    r2, r3, r4, r5 = report.outcomes
    assert got == {"users": 10, "quick": True}
    assert (r2.status, r2.result) == (OK, {"steps_per_s": 35000.0})
    assert (r3.status, r3.result) == (OK, {"p99_ms": 12})
    assert r4.status == FAILED and r4.error == "returned list, not a dict"
    assert r5.status == NOT_BUILT and "neither run" in (r5.error or "")


def test_table_rows_say_value_target_and_met(tmp_path: Path) -> None:
    importer = FakeImporter(
        {
            "r1": _module("r1", run=lambda opts: R1_FIGURES),
            "restore": _module("restore", run=lambda opts: {"restore_s": 42.5, "ok": True}),
        }
    )
    report = run_suite(_opts(tmp_path), ["r1", "r2", "r5"], importer=importer)
    table = rows(report.outcomes)
    cells = [(r.figure, r.value, r.target, r.met) for r in table]
    assert cells == [
        ("R1 passthrough", "28,000 records/s", "", ""),
        ("R1 worker / passthrough", "0.31 ratio", ">= 0.30", "yes"),
        ("R1 worker + gateway / passthrough", "0.1 ratio", ">= 0.20", "NO"),
        ("R2 core steps/s against the serialization floor", "not built", "", "-"),
        ("R5 restore_s", "42.5", "", ""),  # no "figures": its numbers, booleans left out
    ]
    text = format_table(report)
    lines = text.splitlines()
    assert lines[0].split() == ["figure", "value", "target", "met?"]
    assert set(lines[1]) == {"-"}
    assert "R1 worker / passthrough" in lines[3] and lines[3].endswith("yes")
    assert lines[4].endswith("NO")
    # the columns line up: every value ends in the same column
    ends = {
        line.index(unit) + len(unit)
        for line, unit in zip(lines[2:5], ["records/s", "ratio", "ratio"], strict=True)
    }
    assert len(ends) == 1
    assert "load average" in text and "r2: engine.bench.core_steps is not in this build" in text
    assert exit_code(report, check=False) == EXIT_PROBLEMS  # r2 not built


def test_check_fails_on_a_missed_target_only(tmp_path: Path) -> None:
    met = {"figures": [{"figure": "x", "value": 1, "target": ">= 1", "met": True}]}
    missed = {"figures": [{"figure": "x", "value": 0, "target": ">= 1", "met": False}]}
    for result, with_check in ((met, EXIT_OK), (missed, EXIT_PROBLEMS)):
        importer = FakeImporter({"r1": _module("r1", run=lambda opts, r=result: r)})
        report = run_suite(_opts(tmp_path), ["r1"], importer=importer)
        assert exit_code(report, check=False) == EXIT_OK
        assert exit_code(report, check=True) == with_check


def test_values_read_well() -> None:
    assert format_value(1234567) == "1,234,567"
    assert format_value(28123.7, "records/s") == "28,124 records/s"
    assert format_value(0.04612, "ratio") == "0.0461 ratio"
    assert format_value(None, "ms") == "-"
    assert format_value(True) == "yes"
    assert format_value("n/a") == "n/a"


def test_json_has_options_machine_and_every_result(tmp_path: Path) -> None:
    importer = FakeImporter({"r1": _module("r1", run=lambda opts: R1_FIGURES)})
    report = run_suite(_opts(tmp_path), ["r1", "r3"], importer=importer)
    doc = json.loads(to_json(report))
    assert set(doc) == {"started", "options", "machine", "results"}
    assert doc["options"]["users"] == 10 and "workdir" not in doc["options"]
    assert {"cpus", "load_average", "load_average_after", "python"} <= set(doc["machine"])
    assert doc["results"]["r1"]["status"] == OK
    assert doc["results"]["r1"]["result"] == R1_FIGURES
    assert doc["results"]["r3"]["status"] == NOT_BUILT
    assert doc["results"]["r3"]["result"] is None


def test_an_empty_report_is_still_a_table() -> None:
    report = Report(started="2026-11-30T16:00:00Z", options={}, machine={"cpus": 2})
    assert format_table(report).splitlines()[0].split() == ["figure", "value", "target", "met?"]


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["bench", "--only", "r1,r9"], "unknown figure(s) r9"),
        (["bench", "--users", "0"], "--users: '0': give 1 or more"),
        (["bench", "--partitions", "four"], "'four' is not a whole number"),
    ],
)
def test_bad_flags_exit_2_with_one_message(
    argv: list[str], message: str, capsys: pytest.CaptureFixture[str]
) -> None:
    assert cli_main(argv) == 2
    err = capsys.readouterr().err
    assert message in err and "Traceback" not in err and "journeys bench --help" in err


def test_a_module_with_its_own_verdict_but_no_figures(tmp_path: Path) -> None:
    r2 = {"steps_per_s": 40000, "ratio": 0.21, "target": 0.25, "met": False}
    importer = FakeImporter({"core_steps": _module("core_steps", measure=lambda users: r2)})
    report = run_suite(_opts(tmp_path), ["r2"], importer=importer)
    cells = [(r.figure, r.value, r.target, r.met) for r in rows(report.outcomes)]
    assert cells == [
        ("R2 steps_per_s", "40,000", "", ""),
        ("R2 ratio", "0.21", "", ""),
        ("R2 target", "", "0.25", "NO"),
    ]
    assert exit_code(report, check=False) == EXIT_OK
    assert exit_code(report, check=True) == EXIT_PROBLEMS


def test_areas_of_a_profile() -> None:
    assert area_of("/x/site-packages/faust/streams.py", "_c_aiter") == "faust and mode"
    assert area_of("/repo/engine/core/ids.py", "_digest") == "engine core"
    assert area_of("/repo/engine/stream/worker/runtime.py", "handle") == "engine stream runtime"
    assert area_of("~", "<built-in method orjson.dumps>") == "JSON (orjson)"
    assert area_of("/usr/lib/python3.11/asyncio/base_events.py", "_run_once") == (
        "asyncio and sockets"
    )
    assert area_of("~", "<built-in method builtins.len>") == "other"


def test_a_profile_summed_up_by_area_with_builtins_charged_to_their_callers(
    tmp_path: Path,
) -> None:
    import cProfile
    import time

    def busy() -> int:
        return sum(len(str(i)) for i in range(20_000))

    profiler = cProfile.Profile(time.process_time)
    profiler.enable()
    busy()
    profiler.disable()
    path = tmp_path / "p.prof"
    profiler.dump_stats(str(path))

    summary = summarize(path, inputs=100, top=5)
    shares = {a["area"]: a["share"] for a in summary["by_area"]}
    assert abs(sum(shares.values()) - 1) < 0.01
    # this test file is "other"; len() and str() are charged to it, not left as built-ins
    assert max(shares, key=lambda a: shares[a]) == "other"
    assert summary["total_s"] > 0 and summary["us_per_input"] > 0
    assert len(summary["top_functions"]) == 5
    assert all(f["calls"] > 0 for f in summary["top_functions"])


def test_quick_sizes_unless_given_and_the_bootstrap_from_the_environment(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    import argparse

    from engine.bench.command import add_bench_arguments, options_from_args
    from engine.bench.options import QUICK

    parser = argparse.ArgumentParser()
    add_bench_arguments(parser)
    monkeypatch.setenv("JOURNEYS_BOOTSTRAP", "broker-a:9092")
    quick = options_from_args(parser.parse_args(["--quick", "--users", "1_000"]))
    assert (quick.users, quick.waiting_users, quick.quick) == (1000, QUICK["waiting_users"], True)
    assert quick.bootstrap == "broker-a:9092" and quick.workdir == Path(".")
    full = options_from_args(
        parser.parse_args(["--bootstrap", "b:1", "--workdir", str(tmp_path / "w"), "--profile"])
    )
    assert (full.users, full.waiting_users, full.quick) == (20_000, 1_000_000, False)
    assert full.bootstrap == "b:1" and full.profile and full.workdir.is_absolute()
    assert full.workdir.is_dir()
