"""A backtest from start to end: the jobs of a source (one per partition), run in this
process or in ``workers`` worker processes, merged in partition order.

Each job is a pure function of its records and the journey files, and the merge adds
counts of disjoint users, so the result is the same for any number of workers: that is
what lets ``--jobs`` split the work at all.

Worker processes are *spawned* (a fresh interpreter: no copy of this process's threads or
Kafka connections), load the journey files themselves, and read their partitions from
Kafka themselves. They report progress through a queue, and errors as values: an
exception that can't be pickled would otherwise hang the pool.
"""

from __future__ import annotations

import asyncio
import multiprocessing
import queue
import signal
import time
import traceback
from collections.abc import Iterable
from dataclasses import dataclass, field
from multiprocessing.pool import AsyncResult
from typing import Any

import orjson

from engine.backtest.job import Job, JobResult, Rejected, journeys_of, needs_every_user, run_job
from engine.backtest.partitions import file_lines, split_lines
from engine.backtest.progress import ProgressLine
from engine.backtest.tally import Tally
from engine.backtest.topic import plan
from engine.durations import parse_ts_ms
from engine.errors import ConfigError, EngineError
from engine.stream.common.settings import Settings


@dataclass(frozen=True)
class FileSource:
    """An events file, its users split as a topic of ``partitions`` partitions would."""

    path: str
    partitions: int


@dataclass(frozen=True)
class TopicSource:
    settings: Settings
    topic: str
    since_ms: int
    until_ms: int | None = None


@dataclass
class Backtest:
    candidate: Tally
    baseline: Tally | None
    partitions: int
    records: int = 0  # planned: lines of the file, offsets on the topic
    inputs: int = 0  # replayed
    users: int = 0
    rejected: list[Rejected] = field(default_factory=list)
    seconds: float = 0.0


def plan_jobs(source: FileSource | TopicSource, journeys: str, baseline: str | None) -> list[Job]:
    """One job per partition (those without records left out); a single ``whole`` job
    when a split picks its winner (:func:`~engine.backtest.job.needs_every_user`)."""
    whole = needs_every_user(journeys_of(journeys)) or (
        baseline is not None and needs_every_user(journeys_of(baseline))
    )
    if isinstance(source, FileSource):
        lines = list(file_lines(source.path))
        end = _last_ts(lines)  # scheduled entries: every partition up to the file's end
        if whole:
            return [Job(0, journeys, baseline, lines=lines, whole=True)] if lines else []
        by_part = split_lines(lines, source.partitions)
        return [
            Job(p, journeys, baseline, lines=by_part[p], horizon=end)
            for p in range(source.partitions)
            if by_part.get(p)
        ]
    parts = asyncio.run(plan(source.settings, source.topic, source.since_ms, source.until_ms))
    parts = [s for s in parts if s.records]
    if whole and parts:
        every = tuple(parts)
        return [Job(0, journeys, baseline, parts=every, settings=source.settings, whole=True)]
    # A topic's partitions are read apart: scheduled entries up to the window's end (or now).
    end = source.until_ms if source.until_ms is not None else int(time.time() * 1000)
    return [
        Job(s.partition, journeys, baseline, parts=(s,), settings=source.settings, horizon=end)
        for s in parts
    ]


def _last_ts(lines: Iterable[tuple[int, bytes]]) -> int | None:
    """The latest ``ts`` of an events file's lines (those that have a readable one)."""
    last: int | None = None
    for _no, raw in lines:
        try:
            at = parse_ts_ms(str(orjson.loads(raw).get("ts")))
        except Exception:
            continue  # a bad line: the job rejects it with its reason
        last = at if last is None else max(last, at)
    return last


def run_backtest(
    jobs: list[Job], workers: int = 1, progress: ProgressLine | None = None, partitions: int = 0
) -> Backtest:
    started = time.monotonic()
    if progress is not None:
        progress.total = sum(j.size for j in jobs)
    if workers <= 1 or len(jobs) <= 1:
        results = []
        for j in jobs:
            results.append(run_job(j, progress.add if progress is not None else _ignore))
            if progress is not None:
                progress.partition_done(len(results), len(jobs))
    else:
        results = _in_processes(jobs, workers, progress)
    if progress is not None:
        progress.finish()
    out = merge(results, partitions or len(jobs), baseline=any(j.baseline for j in jobs))
    out.records = sum(j.size for j in jobs)
    out.seconds = time.monotonic() - started
    return out


def merge(results: Iterable[JobResult], partitions: int, *, baseline: bool) -> Backtest:
    out = Backtest(Tally(), Tally() if baseline else None, partitions)
    for r in sorted(results, key=lambda r: r.partition):
        out.candidate.merge(r.candidate)
        if out.baseline is not None and r.baseline is not None:
            out.baseline.merge(r.baseline)
        out.inputs += r.inputs
        out.users += r.users  # a user is on one partition only
        out.rejected.extend(r.rejected)
    return out


def _ignore(n: int) -> None:
    return None


# --------------------------------------------------------------------------- processes

_queue: Any = None  # the progress queue, in a worker process


@dataclass(frozen=True)
class _Failed:
    kind: str  # user | kafka | bug
    message: str
    trace: str


def _init_worker(progress: Any) -> None:
    global _queue
    _queue = progress
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # Ctrl-C is the parent's to handle


def _work(job: Job) -> JobResult | _Failed:
    def report(n: int) -> None:
        if n:
            _queue.put(n)

    try:
        return run_job(job, report)
    except EngineError as exc:
        return _Failed("user", str(exc), traceback.format_exc())
    except Exception as exc:
        kind = "kafka" if type(exc).__module__.startswith("aiokafka") else "bug"
        return _Failed(kind, f"{type(exc).__name__}: {exc}", traceback.format_exc())


def _in_processes(jobs: list[Job], workers: int, progress: ProgressLine | None) -> list[JobResult]:
    ctx = multiprocessing.get_context("spawn")
    updates = ctx.Queue()
    results: list[JobResult] = []
    # The biggest partitions first: the last job to start is then a small one.
    ordered = sorted(jobs, key=lambda j: (-j.size, j.partition))
    with ctx.Pool(min(workers, len(jobs)), _init_worker, (updates,)) as pool:
        pending: list[AsyncResult[JobResult | _Failed]] = [
            pool.apply_async(_work, (j,)) for j in ordered
        ]
        while pending:
            pending[0].wait(0.1)
            _drain(updates, progress)
            still = []
            for r in pending:
                if not r.ready():
                    still.append(r)
                    continue
                got = r.get()
                if isinstance(got, _Failed):
                    raise _raise(got)
                results.append(got)
                if progress is not None:
                    progress.partition_done(len(results), len(jobs))
            pending = still
        _drain(updates, progress)
    return results


def _drain(updates: Any, progress: ProgressLine | None) -> None:
    while True:
        try:
            n = updates.get_nowait()
        except queue.Empty:
            return
        if progress is not None:
            progress.add(n)


class WorkerError(RuntimeError):
    """A bug in a worker process: its traceback is in the message."""


def _raise(failed: _Failed) -> Exception:
    if failed.kind == "user":
        return ConfigError(failed.message)
    if failed.kind == "kafka":
        from aiokafka.errors import KafkaError

        error: Exception = KafkaError(failed.message)
        return error
    return WorkerError(f"{failed.message}\nin a worker process:\n{failed.trace}")
