"""``python -m engine.bench``: the benchmark suite (the same as ``journeys bench``)."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence

from engine.bench.command import DESCRIPTION, EXIT_USAGE, add_bench_arguments, bench
from engine.errors import EngineError

EXIT_INTERRUPTED = 130


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m engine.bench",
        description=DESCRIPTION,
        epilog="exit codes: 0 every figure measured; 1 a figure failed or is not built "
        "(--check: or missed its target); 2 bad flags, bad settings or no broker; 130 "
        "interrupted. docs/benchmarks.md",
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    add_bench_arguments(parser)
    try:
        args = parser.parse_args(argv)
    except SystemExit as exc:  # --help, or a usage error: already printed
        return exc.code if isinstance(exc.code, int) else EXIT_USAGE
    try:
        return bench(args)
    except EngineError as exc:
        print(f"python -m engine.bench: {exc}", file=sys.stderr)
        return EXIT_USAGE
    except KeyboardInterrupt:
        print("python -m engine.bench: interrupted", file=sys.stderr)
        return EXIT_INTERRUPTED


if __name__ == "__main__":
    sys.exit(main())
