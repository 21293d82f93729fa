"""The options every figure module of the suite receives (see :mod:`engine.bench`)."""

from __future__ import annotations

import sys
from dataclasses import dataclass, field, replace
from pathlib import Path

DEFAULT_BOOTSTRAP = "127.0.0.1:9092"


@dataclass(frozen=True)
class BenchOptions:
    """Sizes and places for one run of the suite.

    ``users``: users whose events R1 (and R2) run, one entry each. ``waiting_users``: users
    parked in a wait for R3-R5 (the issue's 1,000,000). ``quick``: a smoke run; modules may
    shorten what has no size option (durations, repetitions). ``workdir``: a fresh
    directory per module (the runner makes it)."""

    bootstrap: str = DEFAULT_BOOTSTRAP
    users: int = 20_000
    partitions: int = 4
    waiting_users: int = 1_000_000
    quick: bool = False
    workdir: Path = field(default_factory=lambda: Path("."))
    seed: int = 0

    def note(self, message: str) -> None:
        """Progress for the person watching (stderr; stdout holds the table)."""
        print(f"bench: {message}", file=sys.stderr, flush=True)

    def with_workdir(self, workdir: Path) -> BenchOptions:
        return replace(self, workdir=workdir)


QUICK = {"users": 2_000, "partitions": 4, "waiting_users": 20_000}
"""The ``--quick`` preset: a smoke run in well under a minute per figure."""
