"""The ``journeys`` command line. Each subcommand is a small function; errors from the
engine are printed as one clear line (never a traceback) with a non-zero exit code."""

from __future__ import annotations

import argparse
import os
import sys
from collections import Counter
from collections.abc import Callable, Sequence
from pathlib import Path

import orjson

from engine.errors import EngineError, InvalidJourney

# The stream settings import neither faust nor aiokafka: cheap enough for every command.
from engine.stream.common.settings import Settings, add_arguments

EXIT_OK, EXIT_PROBLEMS, EXIT_USAGE = 0, 1, 2


def _validate(args: argparse.Namespace) -> int:
    from engine.lint.linter import lint_paths

    missing = [p for p in args.paths if not Path(p).exists()]
    for p in missing:
        print(f"{p}:1: journey: no such file or directory", file=sys.stdout)
    problems = lint_paths([p for p in args.paths if Path(p).exists()])
    for problem in problems:
        print(problem)
    if problems or missing:
        print(f"{len(problems) + len(missing)} problem(s)", file=sys.stderr)
        return EXIT_PROBLEMS
    return EXIT_OK


def _schema(args: argparse.Namespace) -> int:
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


def _simulate(args: argparse.Namespace) -> int:
    from engine.durations import parse_ts_ms
    from engine.lint.linter import load_journeys
    from engine.sim.simulator import Simulator, read_events

    journeys = load_journeys([args.journeys])
    inputs, bad = read_events(args.events)
    for b in bad:
        print(f"{args.events}:{b}", file=sys.stderr)
    until = parse_ts_ms(args.until) if args.until else None
    result = Simulator(journeys).run(inputs, until=until, trace=args.trace)
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
    return EXIT_OK


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


def _sms_segments(args: argparse.Namespace) -> int:
    from engine.channels.sms import segment

    text = args.text if args.text is not None else sys.stdin.read()
    sys.stdout.write(orjson.dumps(segment(text).to_json_dict()).decode() + "\n")
    return EXIT_OK


def _stats(args: argparse.Namespace) -> int:
    if args.action == "serve":
        return _stats_serve(args)
    from engine.stats.aggregate import Aggregator, format_table
    from engine.stats.source import read_file, read_topic

    agg = Aggregator()
    if args.file:
        agg.add_all(read_file(args.file))
    else:
        settings = Settings.from_env_and_args(args)
        agg.add_all(read_topic(settings))
    report = agg.to_json()
    if args.json:
        sys.stdout.write(orjson.dumps(report, option=orjson.OPT_INDENT_2).decode() + "\n")
    else:
        sys.stdout.write(format_table(report) if report else "no outcomes\n")
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
    from engine.stream.devtools.produce import produce_file

    return produce_file(
        Settings.from_env_and_args(args), args.file, realtime=args.now, pace_ms=args.pace
    )


def _outcomes(args: argparse.Namespace) -> int:
    from engine.stream.devtools.outcomes import print_outcomes

    return print_outcomes(Settings.from_env_and_args(args), follow=args.follow)


def _stats_serve(args: argparse.Namespace) -> int:
    import asyncio

    from engine.stats.service import run_service

    settings = Settings.from_env_and_args(args)
    asyncio.run(
        run_service(
            settings.bootstrap,
            settings.topics.outcomes,
            args.journeys,
            args.host,
            args.port,
            args.state,
            engine_group=args.engine_group or settings.app_id,
            input_topic=settings.topics.user_events,
            dead_letter_topic=settings.topics.dead_letters,
            on_ready=lambda url: print(f"stats dashboard on {url}", flush=True),
        )
    )
    return EXIT_OK


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="journeys", description="Journey orchestration engine: RCS with SMS fallback."
    )
    sub = parser.add_subparsers(dest="command", required=True)

    def add(
        name: str, fn: Callable[[argparse.Namespace], int], help_: str
    ) -> argparse.ArgumentParser:
        p = sub.add_parser(name, help=help_, description=help_)
        p.set_defaults(func=fn)
        return p

    p = add("validate", _validate, "lint journey files; exit 0 when clean, 1 with problems")
    p.add_argument("paths", nargs="+", help="journey files or directories")
    p = add(
        "schema", _schema, "print the JSON Schema of journey files (for editors; docs/journeys.md)"
    )
    p.add_argument(
        "--wire", metavar="DIR", help="write the wire records' JSON Schemas to DIR instead"
    )
    p.add_argument("--check", action="store_true", help="with --wire: compare only, exit 1")
    p = add("graph", _graph, "draw a journey")
    p.add_argument("file")
    p.add_argument("--format", choices=["mermaid", "dot", "svg"], default="mermaid")
    p = add("simulate", _simulate, "replay events through the journeys on a virtual clock")
    p.add_argument("--journeys", required=True, help="directory (or file) of journeys")
    p.add_argument("--events", required=True, help="JSON-lines file of events")
    p.add_argument("--until", help="stop the virtual clock at this ISO-8601 time")
    p.add_argument("--trace", action="store_true", help="per-user trace on stderr")
    p.add_argument("--quiet", action="store_true", help="no per-node summary on stderr")
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
    add_arguments(p)
    p = add("outcomes", _outcomes, "print the outcomes so far as JSON lines")
    p.add_argument("--follow", action="store_true", help="keep printing new outcomes")
    add_arguments(p)
    p = add("stats", _stats, "per-journey, per-node counts and rates from outcomes")
    p.add_argument(
        "action",
        nargs="?",
        choices=["show", "serve"],
        default="show",
        help="show: print the table once (default); serve: live dashboard, JSON API, /metrics",
    )
    p.add_argument("--journeys", default="journeys", help="serve: journeys to draw")
    p.add_argument("--host", default="127.0.0.1", help="serve: address to listen on")
    p.add_argument("--port", type=int, default=8090, help="serve: port (0: any free port)")
    p.add_argument("--state", help="serve: file that keeps the counters across restarts")
    p.add_argument("--engine-group", help="serve: the engine's consumer group, for its lag")
    p.add_argument("--file", help="a JSON-lines file of outcomes (default: the outcomes topic)")
    p.add_argument("--json", action="store_true", help="machine-readable output")
    p.add_argument("--bootstrap", default=os.environ.get("JOURNEYS_BOOTSTRAP", "127.0.0.1:9092"))
    p.add_argument("--topic", default=os.environ.get("JOURNEYS_TOPIC_OUTCOMES", "journey.outcomes"))
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        code: int = args.func(args)
    except InvalidJourney as exc:
        for problem in exc.problems:
            print(problem, file=sys.stderr)
        return EXIT_PROBLEMS
    except EngineError as exc:
        print(f"journeys: {exc}", file=sys.stderr)
        return EXIT_USAGE
    except OSError as exc:
        print(f"journeys: {exc}", file=sys.stderr)
        return EXIT_USAGE
    return code


if __name__ == "__main__":
    sys.exit(main())
