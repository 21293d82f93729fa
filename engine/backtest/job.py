"""One share of a backtest: decode its records, run the simulator over its users (in
batches), count.

Users are independent (their state, timers and messages are their own), so a batch of
users simulated alone gives exactly the outcomes it gives among all the others: batches
bound the memory a partition needs and let progress move. One thing ties users together:
a split that picks its winner decides from every user's outcomes. A job whose journeys
have one is ``whole``: all the records, one simulator run (see :mod:`.run`).
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from functools import lru_cache

from engine.backtest.tally import Tally, tally
from engine.backtest.topic import Slice, read
from engine.core.config import EngineConfig
from engine.core.inputs import Input
from engine.core.wire import decode_line, loads
from engine.errors import InputError
from engine.journey.model import Journey
from engine.lint.deployment import engine_config
from engine.lint.linter import load_journeys
from engine.sim.simulator import Simulator
from engine.stream.common.settings import Settings

#: inputs per simulator run (whole users: a user is never split)
BATCH_INPUTS = 2_000

Progress = Callable[[int], None]
Record = tuple[int, int, bytes | None]  # partition, line number or offset, the record


@dataclass(frozen=True, slots=True)
class Job:
    """Records to replay: a file's lines (``lines``, by partition) or a topic's
    (``parts``). ``whole``: one simulator run over all of them (no batches)."""

    partition: int
    journeys: str
    baseline: str | None = None
    lines: list[tuple[int, bytes]] | None = None  # (line number, line)
    parts: tuple[Slice, ...] = ()
    settings: Settings | None = None
    whole: bool = False
    # Scheduled entries are decided up to this instant in every batch (the whole history's
    # last input, or the window's end): Simulator.run's horizon.
    horizon: int | None = None

    @property
    def size(self) -> int:
        if self.lines is not None:
            return len(self.lines)
        return sum(p.records for p in self.parts)


@dataclass(frozen=True, slots=True)
class Rejected:
    """A record the engine can't use: ``position`` is its line in the file, or its offset
    in ``partition`` of the topic."""

    partition: int
    position: int
    reason: str
    detail: str


@dataclass
class JobResult:
    partition: int
    candidate: Tally
    baseline: Tally | None = None
    inputs: int = 0
    users: int = 0
    rejected: list[Rejected] = field(default_factory=list)


@lru_cache(maxsize=4)
def journeys_of(path: str) -> list[Journey]:
    """The journeys of a file or directory (InvalidJourney when they don't load), loaded
    once per process: every partition a process runs uses the same files."""
    return load_journeys([path])


@lru_cache(maxsize=4)
def config_of(path: str) -> EngineConfig:
    """The engine settings next to the journeys (``_settings.yaml``), as ``journeys
    simulate`` reads them."""
    return engine_config([path])


def needs_every_user(journeys: Iterable[Journey]) -> bool:
    """Whether a split picks its winner: it decides from all its users' outcomes, so their
    runs are not independent and can't be simulated apart."""
    return any(
        node.type == "split" and getattr(node, "winner", None) is not None
        for j in journeys
        for node in j.nodes.values()
    )


def _records(job: Job) -> Iterator[Record]:
    if job.lines is not None:
        yield from ((job.partition, no, raw) for no, raw in job.lines)
        return
    if job.settings is None:
        return
    for part in job.parts:
        records = asyncio.run(read(job.settings, part))
        yield from ((part.partition, offset, raw) for offset, raw in records)


def decode(records: Iterable[Record]) -> tuple[list[Input], list[Rejected]]:
    inputs: list[Input] = []
    rejected: list[Rejected] = []
    for partition, position, raw in records:
        if raw is None:  # a tombstone: nothing to replay
            continue
        try:
            inputs.append(decode_line(loads(raw)))
        except InputError as exc:
            rejected.append(Rejected(partition, position, exc.reason, exc.detail))
    return inputs, rejected


def batches(inputs: list[Input], size: int = BATCH_INPUTS) -> Iterator[list[Input]]:
    """Whole users, in the order they first appear, about ``size`` inputs a batch; each
    user's inputs in their original order."""
    by_user: dict[str, list[Input]] = {}
    for inp in inputs:
        by_user.setdefault(inp.user_id, []).append(inp)
    batch: list[Input] = []
    for own in by_user.values():
        batch.extend(own)
        if len(batch) >= size:
            yield batch
            batch = []
    if batch:
        yield batch


def _simulate(path: str, inputs: Sequence[Input], horizon: int | None = None) -> Tally:
    return tally(Simulator(journeys_of(path), config_of(path)).run(inputs, horizon=horizon))


def run_job(job: Job, progress: Progress = lambda n: None) -> JobResult:
    """Simulate the job's users; ``progress(n)`` as records are done with (reading is not
    what takes long: what was simulated, or rejected, counts)."""
    inputs, rejected = decode(_records(job))
    progress(job.size - len(inputs))  # rejected, tombstones, offsets without a record
    result = JobResult(job.partition, Tally(), Tally() if job.baseline is not None else None)
    result.inputs, result.rejected = len(inputs), rejected
    result.users = len({i.user_id for i in inputs})
    for batch in [inputs] if job.whole else batches(inputs, BATCH_INPUTS):
        result.candidate.merge(_simulate(job.journeys, batch, job.horizon))
        if job.baseline is not None and result.baseline is not None:
            result.baseline.merge(_simulate(job.baseline, batch, job.horizon))
        progress(len(batch))
    return result
