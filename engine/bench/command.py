"""The flags and the body of ``python -m engine.bench`` and ``journeys bench`` (one set of
flags for both).

Exit codes, as every ``journeys`` command: 0 every figure selected was measured (and with
``--check``, met its target); 1 a figure failed or is not built (or, with ``--check``,
missed its target); 2 bad flags, bad settings or no broker.
"""

from __future__ import annotations

import argparse
import asyncio
import sys
from pathlib import Path
from typing import Any

from engine.bench.options import QUICK, BenchOptions
from engine.bench.runner import FIGURES, KEYS, OK, Outcome, Report, parse_only, run_suite

EXIT_OK, EXIT_PROBLEMS, EXIT_USAGE = 0, 1, 2
DEFAULTS = BenchOptions()

DESCRIPTION = (
    "Measure every figure of docs/benchmarks.md in one run on the broker (R1 throughput, "
    "R2 core steps, R3 timer lateness, R4 bytes per waiting user, R5 restore); print a table "
    "and optionally write JSON."
)


def add_bench_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument(
        "--only",
        type=_only,
        metavar="KEYS",
        help=f"comma-separated figures to run, of {','.join(KEYS)} (default: all): "
        + "; ".join(f"{f.key}: {f.title}" for f in FIGURES),
    )
    p.add_argument(
        "--quick",
        action="store_true",
        help="a smoke run: small sizes (--users {users}, --waiting-users {waiting_users}) "
        "unless given".format(**QUICK),
    )
    p.add_argument(
        "--users",
        type=_positive,
        metavar="N",
        help=f"users whose events R1 and R2 run, one entry each "
        f"(default: {DEFAULTS.users}; --quick: {QUICK['users']})",
    )
    p.add_argument(
        "--waiting-users",
        type=_positive,
        metavar="N",
        help=f"users waiting in a journey for R3-R5 "
        f"(default: {DEFAULTS.waiting_users}; --quick: {QUICK['waiting_users']})",
    )
    p.add_argument(
        "--partitions",
        type=_positive,
        metavar="N",
        help=f"partitions of the benchmark's topics (default: {DEFAULTS.partitions})",
    )
    p.add_argument(
        "--json",
        dest="json_path",
        metavar="FILE",
        help="also write the results as JSON to FILE (- : standard output, instead of the "
        "table) (default: none)",
    )
    p.add_argument(
        "--check",
        action="store_true",
        help="exit 1 when a figure misses its target (default: only when one fails)",
    )
    p.add_argument(
        "--profile",
        action="store_true",
        help="R1: run the worker once more under cProfile and add where its time goes (by "
        "area and function) to the JSON; keep the .prof file with --workdir",
    )
    p.add_argument(
        "--bootstrap",
        metavar="HOST:PORT",
        help=f"broker list (default: {DEFAULTS.bootstrap}; JOURNEYS_BOOTSTRAP)",
    )
    p.add_argument(
        "--workdir",
        metavar="DIR",
        help="keep the services' logs and data under DIR (default: a temporary directory, "
        "deleted at the end)",
    )


def _only(text: str) -> list[str]:
    try:
        return parse_only(text)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None


def _positive(text: str) -> int:
    try:
        n = int(text.replace("_", ""))
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a whole number") from None
    if n < 1:
        raise argparse.ArgumentTypeError(f"{text!r}: give 1 or more")
    return n


def options_from_args(args: argparse.Namespace) -> BenchOptions:
    """The options of a run; ConfigError for bad settings (JOURNEYS_* included)."""
    from engine.stream.common.settings import Settings

    settings = Settings.from_env_and_args(env=None, args=args)
    quick = bool(args.quick)

    def size(name: str) -> int:
        given = getattr(args, name, None)
        if given is not None:
            return int(given)
        return int(QUICK[name]) if quick else int(getattr(DEFAULTS, name))

    # Absolute: the services run with it as their working directory.
    workdir = Path(args.workdir).resolve() if args.workdir else Path(".")
    if args.workdir:
        workdir.mkdir(parents=True, exist_ok=True)
    return BenchOptions(
        bootstrap=settings.bootstrap,
        users=size("users"),
        partitions=size("partitions"),
        waiting_users=size("waiting_users"),
        quick=quick,
        workdir=workdir,
        profile=bool(getattr(args, "profile", False)),
    )


def bench(args: argparse.Namespace) -> int:
    """The command. Raises ConfigError (exit 2) for bad flags or an unreachable broker."""
    from engine.bench.table import format_table, to_json
    from engine.stream.common.preflight import check_brokers
    from engine.stream.common.settings import Settings

    keys = args.only or list(KEYS)
    opts = options_from_args(args)
    asyncio.run(check_brokers(Settings.from_env_and_args(env=None, args=args)))
    figures = ", ".join(keys)
    opts.note(
        f"running {figures} on {opts.bootstrap} (users {opts.users:,}, "
        f"waiting users {opts.waiting_users:,}, partitions {opts.partitions})"
    )

    def done(o: Outcome) -> None:
        opts.note(f"{o.key}: {o.status} in {o.seconds:.0f} s")

    report = run_suite(opts, keys, on_done=done)
    to_stdout = args.json_path == "-"
    if args.json_path and not to_stdout:
        Path(args.json_path).write_bytes(to_json(report) + b"\n")
        opts.note(f"wrote {args.json_path}")
    if to_stdout:
        sys.stdout.buffer.write(to_json(report) + b"\n")
        sys.stdout.flush()
    else:
        sys.stdout.write(format_table(report))
        sys.stdout.flush()
    return exit_code(report, check=bool(args.check))


def exit_code(report: Report, *, check: bool) -> int:
    if any(o.status != OK for o in report.outcomes):
        return EXIT_PROBLEMS
    if check and any(missed_target(o.result or {}) for o in report.outcomes):
        return EXIT_PROBLEMS
    return EXIT_OK


def missed_target(result: dict[str, Any]) -> bool:
    """A figure of the result says ``met: false`` (or the result itself does)."""
    figures = result.get("figures")
    if isinstance(figures, list):
        return any(isinstance(f, dict) and f.get("met") is False for f in figures)
    return result.get("met") is False
