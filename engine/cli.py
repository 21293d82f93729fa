"""The ``journeys`` command line. Each subcommand is a small function that returns an exit
code; :func:`main` turns every error into one message that says what to do, never a
traceback for a user error (``--debug`` or ``JOURNEYS_DEBUG=1`` shows it).

Exit codes (docs/journeys.md, "Command line"):

* 0: done, nothing wrong.
* 1: done, and problems were found: ``validate`` problems, files ``schema --check``
  finds out of date, input lines ``simulate`` or ``backtest`` rejected, what ``diff``
  flags.
* 2: the command could not do its job: bad flags, a missing or unreadable file, journeys
  that don't load (outside ``validate``), bad settings, a broker that can't be reached.
* 70: an internal error, i.e. a bug: please report it. 130: interrupted (Ctrl-C).
  141: the reader of the output went away (``journeys outcomes | head``).
"""

from __future__ import annotations

import argparse
import contextlib
import os
import sys
import traceback
from collections import Counter
from collections.abc import Callable, Iterable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, NoReturn

import orjson

from engine.errors import ConfigError, EngineError, InvalidJourney

# The stream settings import neither faust nor aiokafka: cheap enough for every command.
from engine.stream.common.settings import DEFAULT_BOOTSTRAP, DEFAULT_TOPICS, Settings, add_arguments

if TYPE_CHECKING:
    from engine.backtest.run import FileSource, TopicSource
    from engine.core.state import UserState
    from engine.lint.inflight import InFlight

EXIT_OK, EXIT_PROBLEMS, EXIT_USAGE = 0, 1, 2
EXIT_INTERNAL, EXIT_INTERRUPTED, EXIT_BROKEN_PIPE = 70, 130, 141


def _validate(args: argparse.Namespace) -> int:
    from engine.lint.linter import lint_paths

    missing = [p for p in args.paths if not Path(p).exists()]
    for p in missing:
        print(f"{p}:1: journey: no such file or directory", file=sys.stdout)
    found = lint_paths(_journey_files(p for p in args.paths if Path(p).exists()), warnings=True)
    for problem in found:
        print(problem)
    errors = len(missing) + sum(1 for p in found if not p.is_warning)
    warnings = len(found) + len(missing) - errors
    if errors or warnings:
        strict = " (--strict: warnings fail)" if args.strict and warnings else ""
        print(f"{errors} problem(s), {warnings} warning(s){strict}", file=sys.stderr)
    if missing:
        return EXIT_USAGE
    return EXIT_PROBLEMS if errors or (args.strict and warnings) else EXIT_OK


def _journey_files(paths: Iterable[str]) -> list[Path]:
    """The journey files of ``paths`` (directories expanded), each once: ``a.yaml a.yaml``
    or ``journeys journeys/a.yaml`` name one file, not a duplicate journey."""
    from engine.journey.deployment import settings_files
    from engine.journey.loader import expand_paths

    paths = list(paths)
    seen: set[Path] = set()
    files: list[Path] = []
    for f in expand_paths(paths) + settings_files(paths):  # the settings file is checked too
        if f.resolve() not in seen:
            seen.add(f.resolve())
            files.append(f)
    return files


def _schema(args: argparse.Namespace) -> int:
    if args.check and args.wire is None:
        raise ConfigError("--check compares the files of a directory: pass --wire DIR too")
    if args.wire is not None:
        return _wire_schemas(Path(args.wire), check=args.check)
    from engine.journey.model import Journey

    schema = Journey.model_json_schema(by_alias=True)
    schema["$schema"] = "https://json-schema.org/draft/2020-12/schema"
    schema["title"] = "Journey file"
    sys.stdout.write(orjson.dumps(schema, option=orjson.OPT_INDENT_2).decode() + "\n")
    return EXIT_OK


def _wire_schemas(out: Path, *, check: bool) -> int:
    """The JSON Schema files of the wire records (engine/core/schema.py), written to ``out``
    or, with ``check``, compared with it."""
    from engine.core.schema import render_all

    files = render_all()
    stale = [n for n, b in files.items() if not (out / n).is_file() or (out / n).read_bytes() != b]
    if check:
        for n in stale:
            print(f"{out / n}: out of date; run journeys schema --wire {out}")
        return EXIT_PROBLEMS if stale else EXIT_OK
    out.mkdir(parents=True, exist_ok=True)
    for n in stale:
        (out / n).write_bytes(files[n])
        print(f"wrote {out / n}")
    return EXIT_OK


def _load_one(path: str) -> object:
    from engine.lint.linter import load_journeys

    journeys = load_journeys([path])
    if len(journeys) != 1:
        raise EngineError(f"{path}: expected one journey file")
    return journeys[0]


def _graph(args: argparse.Namespace) -> int:
    from engine.journey.graph import render
    from engine.journey.model import Journey

    journey = _load_one(args.file)
    assert isinstance(journey, Journey)
    sys.stdout.write(render(journey, args.format))
    return EXIT_OK


def _preview(args: argparse.Namespace) -> int:
    from engine.channels.preview import format_text, preview_journey
    from engine.channels.preview_svg import to_html, to_svg
    from engine.errors import ConfigError
    from engine.journey.model import Journey
    from engine.journey.sample import (
        SampleData,
        merge_data,
        parse_assignments,
        parse_event,
        parse_profile,
    )

    for given in (args.file, args.event, args.profile):
        if given is not None and (not Path(given).exists() or Path(given).is_dir()):
            raise ConfigError(f"{given}: no such file")
    journey = _load_one(args.file)
    assert isinstance(journey, Journey)
    event: dict[str, object] = {}
    profile: dict[str, object] = {}  # the event's, then --profile's, then --user-profile's
    sources = []
    if args.event:
        event, profile = parse_event(_read(args.event), args.event, journey.entry.event)
        sources.append(f"event {args.event}")
    if args.profile:
        profile = merge_data(profile, parse_profile(_read(args.profile), args.profile))
        sources.append(f"profile {args.profile}")
    if args.user_profile:
        profile = merge_data(profile, parse_assignments(args.user_profile))
        sources.append("profile " + " ".join(args.user_profile))
    previews = preview_journey(journey, SampleData(event, profile), args.node)
    title = journey.name or journey.id
    note = f"{journey.id} v{journey.version} · sample data: " + ("; ".join(sources) or "none")
    if args.format == "svg":
        output = to_svg(previews, title=title, note=note)
    elif args.format == "html":
        output = to_html(previews, title=title, note=note)
    else:
        output = format_text(previews)
    if args.out:
        Path(args.out).write_text(output, encoding="utf-8")
        print(f"wrote {args.out}", file=sys.stderr)
    else:
        sys.stdout.write(output)
    problems = sum(len(p.problems()) for p in previews)
    if problems:
        print(f"{problems} problem(s)", file=sys.stderr)
        return EXIT_PROBLEMS
    return EXIT_OK


def _read(path: str) -> str:
    from engine.errors import ConfigError

    try:
        return Path(path).read_text(encoding="utf-8")
    except UnicodeDecodeError as exc:
        raise ConfigError(f"{path}: not UTF-8 text ({exc.reason})") from None


def _simulate(args: argparse.Namespace) -> int:
    from engine.lint.deployment import engine_config
    from engine.lint.linter import load_journeys
    from engine.sim.simulator import Simulator, read_events

    journeys = load_journeys([args.journeys])
    config = engine_config([args.journeys])  # the settings file next to the journeys
    if not journeys:
        raise ConfigError(f"{args.journeys}: no journey file (.yaml, .yml, .json) in it")
    inputs, rejected = read_events(args.events)
    for b in rejected:
        why = f"{b.reason}: {b.detail}" if b.detail else b.reason
        print(f"{args.events}:{b.line}: rejected: {why}", file=sys.stderr)
    result = Simulator(journeys, config).run(inputs, until=args.until, trace=args.trace)
    if args.states_out:
        _write_states(args.states_out, result.states.values())
    out = sys.stdout.buffer
    for o in result.outcomes:
        out.write(orjson.dumps(o.to_wire()) + b"\n")
    out.flush()
    if args.trace:
        for user in sorted(result.trace):
            print(f"== {user}", file=sys.stderr)
            for line in result.trace[user]:
                print(f"  {line}", file=sys.stderr)
    if not args.quiet:
        _summary(result.outcomes)
    if rejected and not args.allow_rejects:
        print(
            f"journeys: {len(rejected)} line(s) of {args.events} rejected (listed above): "
            "fix them, or pass --allow-rejects to replay the file without them",
            file=sys.stderr,
        )
        return EXIT_PROBLEMS
    return EXIT_OK


def _write_states(path: str, states: Iterable[UserState]) -> None:
    """Every user's final state as JSON lines, by user id (``journeys diff --state``)."""
    from engine.core.wire import state_line

    by_user = sorted(states, key=lambda s: s.user_id)
    with open(path, "wb") as fh:
        for state in by_user:
            fh.write(state_line(state) + b"\n")


def _diff(args: argparse.Namespace) -> int:
    from engine.lint.diff_report import diff_report, load_side
    from engine.lint.diff_text import format_report

    old, new = load_side(args.old, "OLD"), load_side(args.new, "NEW")
    inflight = _read_states(args) if args.state is not None else None
    report = diff_report(old, new, inflight)
    if args.json:
        sys.stdout.write(orjson.dumps(report, option=orjson.OPT_INDENT_2).decode() + "\n")
    else:
        sys.stdout.write(format_report(report))
    return EXIT_PROBLEMS if report["summary"]["flagged"] else EXIT_OK


def _read_states(args: argparse.Namespace) -> InFlight:
    """--state: a file of states, ``kafka`` (the worker's state changelog) or ``kafka:TOPIC``."""
    import asyncio

    from engine.stats.state_source import changelog_topic, read_changelog, read_states_file
    from engine.stream.common.preflight import check_brokers

    source: str = args.state
    if source != "kafka" and not source.startswith("kafka:"):
        if not Path(source).is_file():
            raise ConfigError(f"--state {source}: no such file (or write kafka, or kafka:TOPIC)")
        return read_states_file(source)
    settings = Settings.from_env_and_args(args)
    topic = source.removeprefix("kafka").removeprefix(":") or changelog_topic(settings)
    print(f"reading {topic} from {settings.bootstrap}", file=sys.stderr, flush=True)
    asyncio.run(check_brokers(settings))
    return read_changelog(settings, topic)


def _summary(outcomes: Sequence[object]) -> None:
    from engine.core.effects import Outcome

    counts: Counter[tuple[str, int, str, str]] = Counter()
    for o in outcomes:
        assert isinstance(o, Outcome)
        if o.journey_id is not None:
            counts[(o.journey_id, o.journey_version or 0, o.node_id or "-", o.type)] += 1
    if not counts:
        print("no outcomes", file=sys.stderr)
        return
    print(f"{'journey':<24} {'node':<20} {'outcome':<20} {'count':>6}", file=sys.stderr)
    for (jid, ver, node, kind), n in sorted(counts.items()):
        print(f"{jid + '@' + str(ver):<24} {node:<20} {kind:<20} {n:>6}", file=sys.stderr)


def _backtest(args: argparse.Namespace) -> int:
    from engine.backtest.job import journeys_of
    from engine.backtest.progress import ProgressLine
    from engine.backtest.report import rejected_lines, summary, to_json
    from engine.backtest.run import plan_jobs, run_backtest
    from engine.backtest.table import format_comparison, format_run

    if args.jobs < 1:
        raise ConfigError(f"--jobs {args.jobs}: give 1 or more worker processes")
    candidate = journeys_of(args.journeys)
    if not candidate:
        raise ConfigError(f"{args.journeys}: no journey file (.yaml, .yml, .json) in it")
    baseline = journeys_of(args.baseline) if args.baseline else None
    if baseline is not None and not baseline:
        raise ConfigError(f"{args.baseline}: no journey file (.yaml, .yml, .json) in it")
    source, described = _backtest_source(args)
    jobs = plan_jobs(source, args.journeys, args.baseline)
    result = run_backtest(jobs, args.jobs, ProgressLine(sys.stderr, 0))
    for line in rejected_lines(result.rejected, described):
        print(line, file=sys.stderr)
    print(summary(result, args.jobs), file=sys.stderr)
    out = to_json(result, described, candidate, baseline)
    if args.json:
        sys.stdout.write(orjson.dumps(out, option=orjson.OPT_INDENT_2).decode() + "\n")
    elif "differences" in out:
        sys.stdout.write(format_comparison(out["differences"]))
    else:
        table = format_run(out["journeys"], out["global_control"])
        sys.stdout.write(table if out["journeys"] else "no outcomes\n")
    if result.rejected and not args.allow_rejects:
        print(
            f"journeys: {len(result.rejected)} record(s) rejected (listed above): fix them, or "
            "pass --allow-rejects to replay without them",
            file=sys.stderr,
        )
        return EXIT_PROBLEMS
    return EXIT_OK


def _backtest_source(
    args: argparse.Namespace,
) -> tuple[FileSource | TopicSource, dict[str, object]]:
    """The history to replay (a file, or a topic between two times) and how to name it."""
    import time

    from engine.backtest.run import FileSource, TopicSource
    from engine.backtest.window import check_window, parse_instant
    from engine.durations import format_ts

    if args.events is not None:
        if args.since is not None or args.until is not None:
            raise ConfigError(
                "--since and --until pick a topic's records by time: with --events every "
                "line of the file is replayed (drop them, or read the topic with --topic)"
            )
        settings = Settings.from_env_and_args(args)
        file = FileSource(args.events, settings.partitions)
        return file, {"events": args.events, "partitions": settings.partitions}
    if args.since is None:
        raise ConfigError(
            "--topic needs --since: how far back to replay, like --since 30d or "
            "--since 2026-11-01T00:00:00Z"
        )
    now = int(time.time() * 1000)
    since = parse_instant(args.since, now, "--since")
    until = parse_instant(args.until, now, "--until") if args.until is not None else None
    check_window(since, until)
    settings = _kafka_reader(args, "user_events")
    topic = TopicSource(settings, settings.topics.user_events, since, until)
    return topic, {
        "topic": settings.topics.user_events,
        "since": format_ts(since),
        "until": format_ts(until) if until is not None else None,
    }


def _sms_segments(args: argparse.Namespace) -> int:
    from engine.channels.sms import segment

    if args.text is None and sys.stdin.isatty():
        print("type the text, then Ctrl-D (or pass it as an argument)", file=sys.stderr)
    text = args.text if args.text is not None else sys.stdin.read()
    sys.stdout.write(orjson.dumps(segment(text).to_json_dict()).decode() + "\n")
    return EXIT_OK


def _stats(args: argparse.Namespace) -> int:
    if args.action == "serve":
        return _stats_serve(args)
    from engine.journey.model import Journey
    from engine.stats.aggregate import Aggregator
    from engine.stats.catalog import load_tolerant
    from engine.stats.source import read_file, read_topic
    from engine.stats.table import format_table

    journeys: list[Journey] = []
    if args.journeys is not None:  # for node order, and nodes nobody reached
        journeys, problems = load_tolerant(args.journeys)
        for problem in problems:
            print(f"journeys stats: skipped: {problem}", file=sys.stderr)
    agg = Aggregator()
    if args.file:
        agg.add_all(read_file(args.file))
    else:
        settings = _kafka_reader(args, "outcomes")
        agg.add_all(read_topic(settings))
    report = agg.to_json(journeys)
    if args.json:
        sys.stdout.write(orjson.dumps(report, option=orjson.OPT_INDENT_2).decode() + "\n")
    else:
        control = agg.global_control(journeys)
        sys.stdout.write(format_table(report, control) if report else "no outcomes\n")
    return EXIT_OK


def _explain(args: argparse.Namespace) -> int:
    """One user's timeline with the core's reasons: simulated from --events, or from Kafka."""
    from engine.explain.sources import from_events, from_kafka
    from engine.explain.text import format_report
    from engine.lint.linter import load_journeys

    journeys = load_journeys([args.journeys]) if args.journeys else []
    if args.events is not None:
        if not journeys:
            raise ConfigError("--events simulates the journeys: pass --journeys DIR too")
        report = from_events(
            journeys, args.events, args.user_id, journey=args.journey, until=args.until
        )
    else:
        import asyncio

        from engine.stream.common.preflight import check_brokers

        settings = Settings.from_env_and_args(args)
        print(
            f"reading {args.user_id}'s partition of {settings.topics.user_events} and the "
            f"other topics from {settings.bootstrap}",
            file=sys.stderr,
            flush=True,
        )
        asyncio.run(check_brokers(settings))
        report = asyncio.run(
            from_kafka(settings, args.user_id, journey=args.journey, journeys=journeys)
        )
    if args.json:
        sys.stdout.write(orjson.dumps(report, option=orjson.OPT_INDENT_2).decode() + "\n")
    else:
        sys.stdout.write(format_report(report))
    return EXIT_OK


def _run(args: argparse.Namespace) -> int:
    from engine.stream.worker.service import run_worker

    return run_worker(Settings.from_env_and_args(args))


def _gateway(args: argparse.Namespace) -> int:
    from engine.channels.providers.config import ProviderSettings
    from engine.stream.gateway.service import run_gateway

    settings = Settings.from_env_and_args(args)
    # Secrets and provider settings from the environment only; checked before anything runs.
    providers = ProviderSettings.from_env(os.environ, rcs=args.rcs, sms=args.sms)
    return run_gateway(settings, providers)


def _produce(args: argparse.Namespace) -> int:
    from engine.stream.devtools.produce import Retry, produce_file

    return produce_file(
        Settings.from_env_and_args(args),
        args.file,
        realtime=args.now,
        pace_ms=args.pace,
        from_line=args.from_line,
        retry=Retry(attempts=args.retries),
    )


def _outcomes(args: argparse.Namespace) -> int:
    from engine.stream.devtools.outcomes import print_outcomes

    return print_outcomes(_kafka_reader(args, "outcomes"), follow=args.follow)


def _forget(args: argparse.Namespace) -> int:
    """Queue the erasure of a user: a ``forget`` record on journey.user-events, keyed by
    the user, acknowledged by the broker before this returns (docs/operations.md)."""
    import asyncio
    import time
    import uuid

    from aiokafka import AIOKafkaProducer

    from engine.core import wire
    from engine.core.inputs import Forget
    from engine.stream.common.preflight import check_brokers

    settings = Settings.from_env_and_args(args)
    topic = settings.topics.user_events
    request = Forget(args.user_id, int(time.time() * 1000), args.request_id or uuid.uuid4().hex)

    async def send() -> None:
        await check_brokers(settings)
        producer = AIOKafkaProducer(
            bootstrap_servers=settings.bootstrap_servers,
            acks="all",
            **settings.security.aiokafka_kwargs(),
        )
        await producer.start()
        try:
            await producer.send_and_wait(
                topic, wire.input_value(request), key=args.user_id.encode()
            )
        finally:
            await producer.stop()

    asyncio.run(send())
    print(
        f"forget request {request.request_id} for user {args.user_id} written to {topic} "
        f"on {settings.bootstrap}; the engine answers with a user_forgotten outcome",
        file=sys.stderr,
    )
    return EXIT_OK


def _stats_serve(args: argparse.Namespace) -> int:
    import asyncio

    from engine.stats.service import run_service

    settings = _kafka_reader(args, "outcomes")
    asyncio.run(
        run_service(
            settings.bootstrap,
            settings.topics.outcomes,
            args.journeys or "journeys",
            args.host,
            args.port,
            args.state,
            engine_group=args.engine_group or settings.app_id,
            input_topic=settings.topics.user_events,
            dead_letter_topic=settings.topics.dead_letters,
            kafka=settings.security.aiokafka_kwargs(),
            stream=settings,
            on_ready=lambda url: print(f"stats dashboard on {url}", flush=True),
        )
    )
    return EXIT_OK


def _kafka_reader(args: argparse.Namespace, topic: str) -> Settings:
    """The stream settings of a command that reads ``topic`` (a field of
    :class:`~engine.stream.common.settings.Topics`), once a broker has accepted a connection
    with them (else a ConfigError that names the settings to fix). The topic and the broker
    are said on stderr: nobody should read whatever broker happens to run unawares."""
    import asyncio

    from engine.stream.common.preflight import check_brokers

    settings = Settings.from_env_and_args(args)
    name = getattr(settings.topics, topic)
    print(f"reading {name} from {settings.bootstrap}", file=sys.stderr, flush=True)
    asyncio.run(check_brokers(settings))
    return settings


# --------------------------------------------------------------------------- arguments


class _HelpFormatter(argparse.RawDescriptionHelpFormatter):
    """Every option's help ends with its default, unless the help already says it, or it
    has none worth saying (a flag that is off, or ``None``: then the help says what not
    giving it means, as the Kafka flags do with their environment variables)."""

    def _get_help_string(self, action: argparse.Action) -> str:
        help_ = action.help or ""
        default = action.default
        if (
            "default" in help_
            or default is None
            or default is False
            or default == argparse.SUPPRESS
            or not (action.option_strings or action.nargs in ("?", "*"))
        ):
            return help_
        return f"{help_} (default: %(default)s)"


class _Parser(argparse.ArgumentParser):
    """A usage error is one message, with the --help to read next (exit code 2)."""

    def error(self, message: str) -> NoReturn:
        self.print_usage(sys.stderr)
        self.exit(EXIT_USAGE, f"{self.prog}: error: {message}\nsee: {self.prog} --help\n")


def _existing_path(text: str) -> str:
    if not Path(text).exists():
        raise argparse.ArgumentTypeError(f"{text}: no such file or directory")
    return text


def _existing_file(text: str) -> str:
    if Path(text).is_dir():
        raise argparse.ArgumentTypeError(f"{text} is a directory: name a file")
    return _existing_path(text)


def _port(text: str) -> int:
    if not (text.isascii() and text.isdigit()) or int(text) > 65535:
        raise argparse.ArgumentTypeError(f"{text!r} is not a TCP port: use 1 to 65535, or 0")
    return int(text)


def _instant(text: str) -> int:
    from engine.durations import parse_ts_ms

    try:
        return parse_ts_ms(text)
    except (ValueError, OverflowError):
        raise argparse.ArgumentTypeError(
            f"{text!r} is not an ISO-8601 time: write it like 2026-11-29T10:00:00Z"
        ) from None


def _version() -> str:
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version("journey-engine")
    except PackageNotFoundError:
        return "(not installed: pip install -e .)"


EPILOG = """\
exit codes: 0 ok; 1 problems found (validate, schema --check, lines simulate or backtest
rejected, what diff flags); 2 usage or input error (bad flags, missing or unreadable files, bad
settings, no broker); 70 internal error (please report it); 130 interrupted. Details:
docs/journeys.md.
--debug or JOURNEYS_DEBUG=1 shows the traceback of an error."""


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(
        prog="journeys",
        description="Journey orchestration engine: RCS with SMS fallback.",
        epilog=EPILOG,
        formatter_class=_HelpFormatter,
    )
    parser.add_argument("--version", action="version", version=f"%(prog)s {_version()}")
    parser.add_argument("--debug", action="store_true", help="show the traceback of an error")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    def add(
        name: str, fn: Callable[[argparse.Namespace], int], help_: str
    ) -> argparse.ArgumentParser:
        p = sub.add_parser(name, help=help_, description=help_, formatter_class=_HelpFormatter)
        p.set_defaults(func=fn, parser=p)
        # SUPPRESS: a subcommand without --debug keeps the value given before its name.
        p.add_argument(
            "--debug", action="store_true", default=argparse.SUPPRESS, help="show tracebacks"
        )
        return p

    p = add(
        "validate",
        _validate,
        "lint journey files; exit 0 when clean or with warnings only, 1 with problems",
    )
    p.add_argument("paths", nargs="+", metavar="PATH", help="journey files or directories")
    p.add_argument("--strict", action="store_true", help="warnings fail too (exit 1): for CI")
    p = add(
        "schema", _schema, "print the JSON Schema of journey files (for editors; docs/journeys.md)"
    )
    p.add_argument(
        "--wire",
        metavar="DIR",
        help="write the wire records' JSON Schemas to DIR instead (default: print the "
        "journey file's schema)",
    )
    p.add_argument(
        "--check", action="store_true", help="with --wire: compare only; exit 1 when out of date"
    )
    p = add("graph", _graph, "draw a journey")
    p.add_argument("file", type=_existing_file, metavar="FILE", help="one journey file")
    p.add_argument(
        "--format", choices=["mermaid", "dot", "svg"], default="mermaid", help="drawing format"
    )
    p = add("preview", _preview, "show each send as a user will see it, for sample data")
    p.add_argument("file", metavar="FILE", help="one journey file")
    p.add_argument("--node", help="only this send node (default: every send node)")
    p.add_argument(
        "--event",
        metavar="FILE.json",
        help="event.* and entry.*: a JSON event (its profile gives user.*), its properties, "
        "or JSON lines (the first event that starts the journey) (default: none)",
    )
    p.add_argument("--profile", metavar="FILE.json", help="user.*: a JSON object (default: none)")
    p.add_argument(
        "--user-profile",
        nargs="+",
        action="extend",
        metavar="KEY=VALUE",
        help="user.* fields, over the files' (a.b=1 nests; JSON values, else text) "
        "(default: none)",
    )
    p.add_argument(
        "--format",
        choices=["text", "svg", "html"],
        default="text",
        help="text; svg: phone mock-ups; html: both on one page (default: text)",
    )
    p.add_argument("--out", metavar="PATH", help="write here (default: standard output)")
    p = add("simulate", _simulate, "replay events through the journeys on a virtual clock")
    p.add_argument(
        "--journeys",
        required=True,
        type=_existing_path,
        metavar="DIR",
        help="directory (or file) of journeys",
    )
    p.add_argument(
        "--events",
        required=True,
        type=_existing_file,
        metavar="FILE",
        help="JSON-lines file of events",
    )
    p.add_argument(
        "--until",
        type=_instant,
        metavar="TIME",
        help="stop the virtual clock at this ISO-8601 time, like 2026-11-29T10:00:00Z "
        "(default: when no timer is left)",
    )
    p.add_argument("--trace", action="store_true", help="per-user trace on stderr")
    p.add_argument("--quiet", action="store_true", help="no per-node summary on stderr")
    p.add_argument(
        "--allow-rejects",
        action="store_true",
        help="exit 0 even when input lines were rejected (they are still listed on stderr)",
    )
    p.add_argument(
        "--states-out",
        metavar="FILE",
        help="write every user's final state here, as JSON lines, for journeys diff --state "
        "(default: none)",
    )
    p = add(
        "diff",
        _diff,
        "what changed between two versions of journeys, and what it does to users in flight",
    )
    p.add_argument("old", metavar="OLD", help="journey file or directory: what runs now")
    p.add_argument("new", metavar="NEW", help="journey file or directory: what will run")
    p.add_argument(
        "--state",
        metavar="SOURCE",
        help="count the runs in flight: a file of states (journeys simulate --states-out), "
        "kafka (the worker's state changelog, {app id}-user-states-changelog) or "
        "kafka:TOPIC (default: none, no counts)",
    )
    p.add_argument("--json", action="store_true", help="machine-readable output")
    p.add_argument(
        "--bootstrap",
        metavar="HOST:PORT",
        help=f"--state kafka: broker list (default: {DEFAULT_BOOTSTRAP}; JOURNEYS_BOOTSTRAP)",
    )
    p.add_argument(
        "--app-id",
        dest="app_id",
        metavar="ID",
        help="--state kafka: the worker's app id, which names its changelog (default: "
        "journeys-engine; JOURNEYS_APP_ID)",
    )
    p = add(
        "explain",
        _explain,
        "why a user got what they got (and not the rest): their timeline with the reasons",
    )
    p.add_argument("user_id", metavar="USER_ID", help="the user id (the Kafka key)")
    p.add_argument("--journey", metavar="ID", help="only this journey (default: all)")
    p.add_argument(
        "--journeys",
        type=_existing_path,
        metavar="DIR",
        help="directory (or file) of journeys: needed with --events; from Kafka, they add "
        "node types and the journeys whose entry event never came (default: none)",
    )
    p.add_argument(
        "--events",
        type=_existing_file,
        metavar="FILE",
        help="simulate this JSON-lines file with tracing on for the user (default: read "
        "Kafka: the user's partition of every topic, and the engine's state changelog)",
    )
    p.add_argument(
        "--until",
        type=_instant,
        metavar="TIME",
        help="with --events: stop the virtual clock at this ISO-8601 time, to see where the "
        "user is then (default: when no timer is left)",
    )
    p.add_argument("--json", action="store_true", help="machine-readable output")
    add_arguments(p)
    p = add(
        "backtest",
        _backtest,
        "replay real history (a topic since a time, or an events file) through the journeys "
        "and print per-journey, per-node counts; --baseline: side by side with other versions",
    )
    p.add_argument(
        "--journeys",
        required=True,
        type=_existing_path,
        metavar="DIR",
        help="the journeys to try (directory or file): the candidate",
    )
    p.add_argument(
        "--baseline",
        type=_existing_path,
        metavar="DIR",
        help="the journeys to compare with, over the same history (default: none)",
    )
    src = p.add_mutually_exclusive_group(required=True)
    src.add_argument(
        "--events",
        type=_existing_file,
        metavar="FILE",
        help="replay a JSON-lines file of events (no default: this or --topic)",
    )
    src.add_argument(
        "--topic",
        nargs="?",
        const="",
        dest="topic_user_events",
        metavar="TOPIC",
        help="replay this topic's records (no default: this or --events; --topic alone: "
        f"{DEFAULT_TOPICS['user_events']}, with JOURNEYS_TOPIC_PREFIX; "
        "JOURNEYS_TOPIC_USER_EVENTS)",
    )
    p.add_argument(
        "--since",
        metavar="WHEN",
        help="with --topic: the records from this time on, by record timestamp: a duration "
        "back from now (30d, 12h) or an ISO-8601 time (no default: --topic needs it)",
    )
    p.add_argument(
        "--until",
        metavar="WHEN",
        help="with --topic: the records before this time, in the same forms (default: up to "
        "the end of each partition now)",
    )
    p.add_argument(
        "--jobs",
        type=int,
        default=1,
        metavar="N",
        help="worker processes; the work is split by partition, the tables are the same",
    )
    p.add_argument(
        "--partitions",
        type=int,
        metavar="N",
        help="with --events: split the users as a topic of N partitions would "
        f"(default: {Settings.partitions}; JOURNEYS_PARTITIONS)",
    )
    p.add_argument("--json", action="store_true", help="machine-readable output")
    p.add_argument(
        "--allow-rejects",
        action="store_true",
        help="exit 0 even when records were rejected (they are still listed on stderr)",
    )
    p.add_argument(
        "--bootstrap",
        metavar="HOST:PORT",
        help=f"broker list (default: {DEFAULT_BOOTSTRAP}; JOURNEYS_BOOTSTRAP)",
    )
    p = add("sms-segments", _sms_segments, "how a text splits into SMS segments")
    p.add_argument("text", nargs="?", help="the text (default: standard input)")
    p = add("run", _run, "the engine worker on Kafka")
    add_arguments(p, journeys=True)
    p = add("gateway", _gateway, "the channel gateway and its webhook server")
    add_arguments(p)
    g = p.add_argument_group("providers (their settings and secrets: JOURNEYS_* variables only)")
    g.add_argument("--rcs", choices=["simulated", "rbm"], default="simulated", help="RCS provider")
    g.add_argument(
        "--sms", choices=["simulated", "twilio"], default="simulated", help="SMS provider"
    )
    p = add("produce", _produce, "feed a JSON-lines file of events into journey.user-events")
    p.add_argument("file")
    p.add_argument(
        "--now",
        action="store_true",
        help="replay in real time: each event when its turn comes, stamped with that moment",
    )
    p.add_argument(
        "--pace",
        type=int,
        default=0,
        metavar="MS",
        help="pause between lines (replays from the past: lets provider receipts keep up)",
    )
    p.add_argument(
        "--from-line",
        type=int,
        default=1,
        metavar="N",
        help="skip the lines before line N of the file (to resume a run that stopped)",
    )
    p.add_argument(
        "--retries",
        type=int,
        default=8,
        metavar="N",
        help="tries in a row when the broker fails (leader elections, lost connections)",
    )
    add_arguments(p)
    p = add("outcomes", _outcomes, "print the outcomes so far as JSON lines")
    p.add_argument("--follow", action="store_true", help="keep printing new outcomes (Ctrl-C ends)")
    add_arguments(p)
    p = add("forget", _forget, "erase a user: their state, runs, profile and gateway records")
    p.add_argument("user_id", metavar="USER_ID", help="the user to erase")
    p.add_argument(
        "--request-id",
        help="id of this request; a repeat with the same id is one erasure (default: a new one)",
    )
    add_arguments(p)
    p = add("stats", _stats, "per-journey, per-node counts and rates from outcomes")
    p.add_argument(
        "action",
        nargs="?",
        choices=["show", "serve"],
        default="show",
        help="show: print the table once (default); serve: live dashboard, JSON API, /metrics",
    )
    p.add_argument(
        "--journeys",
        help="journey files or directory: show lists their nodes in flow order (else in the "
        "order runs took them); serve draws them (default for serve: journeys)",
    )
    p.add_argument("--host", default="127.0.0.1", help="serve: address to listen on")
    p.add_argument("--port", type=_port, default=8090, help="serve: port (0: any free port)")
    p.add_argument(
        "--state",
        help="serve: file that keeps the counters across restarts (default: none, the counts "
        "are rebuilt from the topic)",
    )
    p.add_argument(
        "--engine-group",
        help="serve: the engine's consumer group, for its lag (default: JOURNEYS_APP_ID or "
        "journeys-engine)",
    )
    p.add_argument("--file", help="a JSON-lines file of outcomes (default: the outcomes topic)")
    p.add_argument("--json", action="store_true", help="machine-readable output")
    p.add_argument(
        "--bootstrap",
        metavar="HOST:PORT",
        help=f"broker list (default: {DEFAULT_BOOTSTRAP}; JOURNEYS_BOOTSTRAP)",
    )
    p.add_argument(
        "--topic",
        dest="topic_outcomes",  # the Settings name: --topic used to be ignored
        metavar="TOPIC",
        help=f"outcomes topic (default: {DEFAULT_TOPICS['outcomes']}; JOURNEYS_TOPIC_OUTCOMES)",
    )
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Run one command; returns its exit code (module docstring), never raises for a user
    error, and prints a traceback only with --debug or JOURNEYS_DEBUG=1."""
    try:
        args, unknown = build_parser().parse_known_args(argv)
        if unknown:  # said by the subcommand, whose --help lists what it takes
            args.parser.error(f"unrecognized arguments: {' '.join(unknown)}")
    except SystemExit as exc:  # --help, --version, or a usage error: already printed
        return exc.code if isinstance(exc.code, int) else EXIT_USAGE
    debug = args.debug or os.environ.get("JOURNEYS_DEBUG", "") not in ("", "0", "false", "no")
    try:
        code: int = args.func(args)
    except (Exception, KeyboardInterrupt) as exc:  # SystemExit: a command's own exit code
        if debug:
            traceback.print_exc()
        return _report(exc, debug=debug)
    return code


def _report(exc: BaseException, *, debug: bool) -> int:
    """Say what went wrong and what to do, on stderr; returns the exit code."""

    def say(message: str) -> None:
        print(f"journeys: {message}", file=sys.stderr)

    if isinstance(exc, InvalidJourney):
        for problem in exc.problems:
            print(problem, file=sys.stderr)
        say(f"{len(exc.problems)} problem(s) in the journeys above: fix them, then run it again")
        return EXIT_USAGE
    if isinstance(exc, EngineError):
        say(str(exc))
        return EXIT_USAGE
    if _is_kafka_error(exc):
        say(
            f"Kafka: {exc}. Is the broker running (deploy/local-kafka.sh start)? Check "
            "--bootstrap / JOURNEYS_BOOTSTRAP; on a secured cluster also "
            "JOURNEYS_SECURITY_PROTOCOL, JOURNEYS_SASL_USERNAME / JOURNEYS_SASL_PASSWORD and "
            "JOURNEYS_SSL_CAFILE"
        )
        return EXIT_USAGE
    if isinstance(exc, KeyboardInterrupt):
        say("interrupted")
        return EXIT_INTERRUPTED
    if isinstance(exc, BrokenPipeError):
        # The reader stopped (| head): quietly, and without a second error when Python
        # flushes stdout at exit.
        with contextlib.suppress(OSError, ValueError):  # no real stdout (tests)
            os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return EXIT_BROKEN_PIPE
    if isinstance(exc, OSError):
        where = f"{exc.filename}: " if exc.filename is not None else ""
        reason = exc.strerror or str(exc)
        say(f"{where}{reason[:1].lower()}{reason[1:]}")
        return EXIT_USAGE
    if isinstance(exc, UnicodeDecodeError):
        say(f"the input is not UTF-8 text ({exc.reason} at byte {exc.start}): save it as UTF-8")
        return EXIT_USAGE
    say(f"internal error: {type(exc).__name__}: {exc}")
    hint = "" if debug else "; run it again with --debug (or JOURNEYS_DEBUG=1) for the traceback"
    say(f"this is a bug: please report it, with the command you ran{hint}")
    return EXIT_INTERNAL


def _is_kafka_error(exc: BaseException) -> bool:
    # Only a command that imported aiokafka can raise its errors: no import here for others.
    errors = sys.modules.get("aiokafka.errors")
    return errors is not None and isinstance(exc, errors.KafkaError)


if __name__ == "__main__":
    sys.exit(main())
