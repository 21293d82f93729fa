"""The command line's rough edges: every subcommand, given bad arguments, ends with one
message and the documented exit code (docs/journeys.md, "Command line"), never a
traceback.

0 ok; 1 problems found; 2 usage or input errors; 70 internal error; 130 interrupted.
Most cases run in-process through ``engine.cli.main`` (fast); the services (``run``,
``gateway``, ``produce``) and the issue's own ``--until tomorrow`` run as subprocesses.
Kafka commands get an address nothing listens on (127.0.0.1:1): no broker is needed.
"""

from __future__ import annotations

import argparse
import io
import os
import subprocess
import sys
from collections.abc import Iterator
from importlib.metadata import version
from pathlib import Path

import pytest

from engine import cli
from engine.stream.common.settings import ENV_VARS

ROOT = Path(__file__).resolve().parents[2]
NO_BROKER = "127.0.0.1:1"  # port 1: refused at once

JOURNEY = """\
id: tiny
version: 1
entry: {event: signed_up}
start: hello
nodes:
  hello: {type: send, channel: sms, marketing: false, text: "Hi", next: done}
  done: {type: exit}
"""
EVENT = (
    '{"event_id": "e-1", "user_id": "u-1", "name": "signed_up", '
    '"ts": "2026-11-02T15:00:00Z", "profile": {"phone": "+14155550123"}}\n'
)


@pytest.fixture(autouse=True)
def _no_journeys_env(monkeypatch: pytest.MonkeyPatch) -> None:
    # The settings come from flags only: a JOURNEYS_* variable of the machine (CI sets
    # JOURNEYS_BOOTSTRAP) must not change what these tests see.
    for var in (*ENV_VARS, "JOURNEYS_DEBUG"):
        monkeypatch.delenv(var, raising=False)


@pytest.fixture()
def files(tmp_path: Path) -> Iterator[Path]:
    (tmp_path / "journeys").mkdir()
    (tmp_path / "journeys" / "tiny.yaml").write_text(JOURNEY)
    (tmp_path / "events.jsonl").write_text(EVENT)
    (tmp_path / "broken.yaml").write_text(JOURNEY.replace("next: done", "next: nowhere"))
    (tmp_path / "empty").mkdir()
    yield tmp_path


def run(capsys: pytest.CaptureFixture[str], *argv: str | Path) -> tuple[int, str, str]:
    code = cli.main([str(a) for a in argv])
    out, err = capsys.readouterr()
    assert "Traceback" not in out + err, err
    return code, out, err


def subcommands() -> list[str]:
    parser = cli.build_parser()
    (sub,) = (a for a in parser._actions if isinstance(a, argparse._SubParsersAction))
    return sorted(sub.choices)


# --------------------------------------------------------------------------- usage errors


@pytest.mark.parametrize("command", subcommands())
def test_an_unknown_flag_is_a_usage_error_of_that_subcommand(
    command: str, capsys: pytest.CaptureFixture[str]
) -> None:
    code, out, err = run(capsys, command, "--no-such-flag")
    assert code == cli.EXIT_USAGE
    assert out == ""
    assert f"journeys {command}: error:" in err
    assert f"see: journeys {command} --help" in err


@pytest.mark.parametrize("command", subcommands())
def test_every_subcommand_has_help(command: str, capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _err = run(capsys, command, "--help")
    assert code == cli.EXIT_OK
    assert out.startswith(f"usage: journeys {command}")


def test_every_option_says_its_default() -> None:
    """An option that takes a value says what happens without it: its default, appended
    by the formatter, or written in the help (``None`` defaults: the Kafka flags fall back
    to JOURNEYS_* variables, the others say what not giving them means)."""
    parser = cli.build_parser()
    (sub,) = (a for a in parser._actions if isinstance(a, argparse._SubParsersAction))
    silent = []
    for name, p in sub.choices.items():
        formatter = p._get_formatter()
        assert isinstance(formatter, cli._HelpFormatter)
        for action in p._actions:
            takes_value = action.option_strings and action.nargs != 0
            if not takes_value or action.required:
                continue
            text = formatter._get_help_string(action)
            if "default" not in text:
                silent.append(f"journeys {name} {action.option_strings[0]}")
    assert not silent, f"say the default in the help of: {silent}"


def test_no_subcommand(capsys: pytest.CaptureFixture[str]) -> None:
    code, _out, err = run(capsys)
    assert code == cli.EXIT_USAGE
    assert "required: COMMAND" in err


def test_version(capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _err = run(capsys, "--version")
    assert code == cli.EXIT_OK
    assert out == f"journeys {version('journey-engine')}\n"


def test_top_level_help_lists_the_exit_codes(capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _err = run(capsys, "--help")
    assert code == cli.EXIT_OK
    assert "exit codes: 0 ok; 1 problems found" in out
    assert "2 usage or input error" in out


# --------------------------------------------------------------------------- bad input


def test_bad_arguments_per_subcommand(files: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """(argv, what the command must say); every one exits 2."""
    j, ev = files / "journeys", files / "events.jsonl"
    cases: list[tuple[list[str | Path], str]] = [
        (["validate", files / "nope.yaml"], "no such file or directory"),
        (["schema", "--check"], "pass --wire DIR too"),
        (["schema", "--wire", files / "events.jsonl"], "events.jsonl"),
        (["graph", files / "nope.yaml"], "nope.yaml: no such file or directory"),
        (["graph", j], "is a directory"),
        (["graph", files / "broken.yaml"], "nowhere"),
        (["graph", j / "tiny.yaml", "--format", "png"], "invalid choice: 'png'"),
        # a missing --journeys and a missing --events: the same exit code
        (["simulate", "--journeys", files / "nope", "--events", ev], "no such file"),
        (["simulate", "--journeys", j, "--events", files / "nope.jsonl"], "no such file"),
        (["simulate", "--journeys", j, "--events", j], "is a directory"),
        (["simulate", "--journeys", j, "--events", ev, "--until", "tomorrow"], "ISO-8601"),
        (["simulate", "--journeys", files / "empty", "--events", ev], "no journey file"),
        (["simulate", "--journeys", files / "broken.yaml", "--events", ev], "nowhere"),
        (["simulate", "--events", ev], "required: --journeys"),
        (["sms-segments", "one", "two"], "unrecognized arguments: two"),
        (["stats", "--file", files / "nope.jsonl"], "nope.jsonl: no such file"),
        (["stats", "--file", j / "tiny.yaml"], "bad_json"),
        (["stats", "serve", "--port", "99999"], "not a TCP port"),
        (["stats", "nonsense"], "invalid choice: 'nonsense'"),
        (["produce", files / "nope.jsonl", "--bootstrap", NO_BROKER], "no such file"),
        (["produce", ev, "--pace", "soon"], "invalid int value"),
        (["outcomes", "--partitions", "many"], "invalid int value"),
        (["run", "--partitions", "0", "--journeys", j], "partitions must be >= 1"),
        (["gateway", "--security-protocol", "TLS"], "security protocol 'TLS'"),
    ]
    for argv, says in cases:
        code, out, err = run(capsys, *argv)
        assert code == cli.EXIT_USAGE, (argv, err)
        assert says in out + err, (argv, out, err)


def test_a_bad_environment_variable_is_a_usage_error(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("JOURNEYS_PARTITIONS", "lots")
    code, _out, err = run(capsys, "outcomes")
    assert code == cli.EXIT_USAGE
    assert err.startswith("journeys: JOURNEYS_PARTITIONS='lots': ")
    assert err.count("\n") == 1


def test_input_that_is_not_utf8(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setattr(sys, "stdin", io.TextIOWrapper(io.BytesIO(b"caf\xe9"), "utf-8"))
    code, _out, err = run(capsys, "sms-segments")
    assert code == cli.EXIT_USAGE
    assert "not UTF-8 text" in err


# --------------------------------------------------------------------------- Kafka


@pytest.mark.parametrize(
    "argv",
    [["outcomes"], ["outcomes", "--follow"], ["stats"], ["stats", "serve", "--port", "0"]],
    ids=" ".join,
)
def test_a_reader_says_what_it_reads_and_stops_without_a_broker(
    argv: list[str], capsys: pytest.CaptureFixture[str]
) -> None:
    code, out, err = run(capsys, *argv, "--bootstrap", NO_BROKER)
    assert code == cli.EXIT_USAGE
    assert out == ""
    lines = err.splitlines()
    assert lines[0] == f"reading journey.outcomes from {NO_BROKER}"
    assert lines[-1].startswith("journeys: can't reach Kafka (JOURNEYS_BOOTSTRAP): 127.0.0.1:1")


def test_stats_reads_the_topic_it_is_given(capsys: pytest.CaptureFixture[str]) -> None:
    # --topic used to be accepted and ignored
    code, _out, err = run(capsys, "stats", "--topic", "cli-test.outcomes", "--bootstrap", NO_BROKER)
    assert code == cli.EXIT_USAGE
    assert err.startswith(f"reading cli-test.outcomes from {NO_BROKER}\n")


def _journeys(*argv: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    clean = {k: v for k, v in os.environ.items() if not k.startswith("JOURNEYS_")}
    return subprocess.run(
        [sys.executable, "-m", "engine.cli", *argv],
        env={**clean, **(env or {})},
        capture_output=True,
        text=True,
        timeout=120,
        cwd=ROOT,
    )


@pytest.mark.parametrize(
    "argv",
    [
        ["run", "--journeys", "journeys"],
        ["gateway"],
        ["produce", "journeys/events/order-updates.jsonl"],
    ],
    ids=lambda argv: argv[0],
)
def test_a_service_without_a_broker_says_so(argv: list[str]) -> None:
    res = _journeys(*argv, "--bootstrap", NO_BROKER)
    assert res.returncode == cli.EXIT_USAGE, res.stderr[-2000:]
    assert "Traceback" not in res.stderr, res.stderr[-2000:]
    last = res.stderr.splitlines()[-1]
    assert last.startswith("journeys: ") and "Kafka" in last, last
    assert "Is the broker running" in last


def test_simulate_until_tomorrow_in_a_subprocess() -> None:
    res = _journeys(
        "simulate",
        "--journeys",
        "journeys",
        "--events",
        "journeys/events/order-updates.jsonl",
        "--until",
        "tomorrow",
    )
    assert res.returncode == cli.EXIT_USAGE
    assert "Traceback" not in res.stderr
    assert "argument --until: 'tomorrow' is not an ISO-8601 time" in res.stderr
    assert res.stdout == ""


# --------------------------------------------------------------------------- problems found


def test_simulate_fails_on_rejected_lines_unless_allowed(
    files: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    ev = files / "mixed.jsonl"
    ev.write_text(EVENT + "{not json\n" + EVENT.replace("2026-11-02T15:00:00Z", "tomorrow"))
    argv: list[str | Path] = [
        "simulate",
        "--journeys",
        files / "journeys",
        "--events",
        ev,
        "--quiet",
    ]

    code, out, err = run(capsys, *argv)
    assert code == cli.EXIT_PROBLEMS
    assert out  # the good line was still replayed
    assert f"{ev}:2: rejected: bad_json: " in err
    assert f"{ev}:3: rejected: bad_timestamp: " in err
    assert err.endswith("pass --allow-rejects to replay the file without them\n")

    code, out_allowed, err = run(capsys, *argv, "--allow-rejects")
    assert code == cli.EXIT_OK
    assert out_allowed == out
    assert f"{ev}:2: rejected: bad_json: " in err


def test_simulate_without_rejects_exits_0(files: Path, capsys: pytest.CaptureFixture[str]) -> None:
    argv: list[str | Path] = [
        "simulate",
        "--journeys",
        files / "journeys",
        "--events",
        files / "events.jsonl",
    ]
    code, out, _err = run(capsys, *argv, "--quiet", "--until", "2026-11-03T00:00:00Z")
    assert code == cli.EXIT_OK
    assert '"type":"message_sent"' in out


def test_validate_problems_exit_1_and_a_missing_file_exits_2(
    files: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    code, out, _err = run(capsys, "validate", files / "broken.yaml")
    assert code == cli.EXIT_PROBLEMS
    assert "nowhere" in out
    code, out, _err = run(capsys, "validate", files / "broken.yaml", files / "nope.yaml")
    assert code == cli.EXIT_USAGE
    assert f"{files / 'nope.yaml'}:1: journey: no such file or directory" in out


def test_validate_names_a_file_once(files: Path, capsys: pytest.CaptureFixture[str]) -> None:
    tiny = files / "journeys" / "tiny.yaml"
    same = files / "journeys" / ".." / "journeys" / "tiny.yaml"
    for argv in ([tiny, tiny], [tiny, same], [files / "journeys", tiny]):
        code, out, _err = run(capsys, "validate", *argv)
        assert code == cli.EXIT_OK, out
        assert "also defined" not in out


def test_schema_check_finds_stale_files(files: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _err = run(capsys, "schema", "--wire", files / "schemas", "--check")
    assert code == cli.EXIT_PROBLEMS
    assert "out of date; run journeys schema --wire" in out


# --------------------------------------------------------------------------- the unexpected


def _boom(args: argparse.Namespace) -> int:
    raise RuntimeError("something nobody expected")


def _interrupted(args: argparse.Namespace) -> int:
    raise KeyboardInterrupt


def test_an_internal_error_asks_for_a_report(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setattr(cli, "_sms_segments", _boom)
    code, _out, err = run(capsys, "sms-segments", "hi")
    assert code == cli.EXIT_INTERNAL
    assert err == (
        "journeys: internal error: RuntimeError: something nobody expected\n"
        "journeys: this is a bug: please report it, with the command you ran; run it again "
        "with --debug (or JOURNEYS_DEBUG=1) for the traceback\n"
    )


@pytest.mark.parametrize("how", ["--debug first", "--debug last", "JOURNEYS_DEBUG=1"])
def test_debug_shows_the_traceback(
    how: str, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setattr(cli, "_sms_segments", _boom)
    argv = {
        "--debug first": ["--debug", "sms-segments", "hi"],
        "--debug last": ["sms-segments", "hi", "--debug"],
        "JOURNEYS_DEBUG=1": ["sms-segments", "hi"],
    }[how]
    if how.startswith("JOURNEYS_DEBUG"):
        monkeypatch.setenv("JOURNEYS_DEBUG", "1")
    code = cli.main(argv)
    err = capsys.readouterr().err
    assert code == cli.EXIT_INTERNAL
    assert "Traceback (most recent call last)" in err
    assert err.endswith("journeys: this is a bug: please report it, with the command you ran\n")


def test_ctrl_c(monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> None:
    monkeypatch.setattr(cli, "_sms_segments", _interrupted)
    code, _out, err = run(capsys, "sms-segments", "hi")
    assert code == cli.EXIT_INTERRUPTED
    assert err == "journeys: interrupted\n"
