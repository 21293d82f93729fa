"""``python -m engine.bench.profiled OUT.prof MODULE [ARGS...]``: run a service module
(``engine.stream.worker``) with a CPU-time profiler that is off until the process gets
SIGWINCH, and on until the next SIGWINCH, which writes OUT.prof.

Why not ``python -m cProfile``: it counts wall time from the first import, so a profile
of a benchmark shows the interpreter starting, the journeys loading and the event loop
waiting in ``epoll`` for input. The benchmark switches this one on when the events start
flowing and off when the last outcome is on the topic. (SIGWINCH: faust and mode use
SIGINT, SIGTERM, SIGUSR1 and SIGUSR2; a service has no terminal to resize.)
"""

from __future__ import annotations

import cProfile
import runpy
import signal
import sys
import time
from pathlib import Path
from types import FrameType

TOGGLE = signal.SIGWINCH


def main(argv: list[str]) -> int:
    if len(argv) < 2:
        print(__doc__, file=sys.stderr)
        return 2
    out, module, *rest = argv
    profiler = cProfile.Profile(time.process_time)
    on = False

    def toggle(_signum: int, _frame: FrameType | None) -> None:
        nonlocal on
        if on:
            profiler.disable()
            profiler.dump_stats(f"{out}.part")
            Path(f"{out}.part").replace(out)  # whole, or not there: the benchmark polls
        else:
            Path(out).unlink(missing_ok=True)
            profiler.enable()
        on = not on

    signal.signal(TOGGLE, toggle)
    sys.argv = [module, *rest]
    try:
        runpy.run_module(module, run_name="__main__", alter_sys=True)
    except SystemExit as exc:
        return exc.code if isinstance(exc.code, int) else 0
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
