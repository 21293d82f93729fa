"""Run the figure modules one after the other; one that is missing or fails never stops
the others (see :mod:`engine.bench` for the interface)."""

from __future__ import annotations

import asyncio
import importlib
import inspect
import platform
import shutil
import sys
import tempfile
import time
import traceback
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from types import ModuleType
from typing import Any

from engine.bench.options import BenchOptions

PACKAGE = "engine.bench"


@dataclass(frozen=True)
class Figure:
    key: str  # what --only takes
    module: str  # under engine.bench
    title: str


FIGURES: tuple[Figure, ...] = (
    Figure("r1", "r1", "throughput: passthrough, worker, worker + gateway, two workers"),
    Figure("r2", "core_steps", "core steps/s against the serialization floor"),
    Figure("r3", "timers", "timer lateness with 1M pending timers"),
    Figure("r4", "memory", "bytes per waiting user (memory store, RocksDB)"),
    Figure("r5", "restore", "restore of 1M users after kill -9"),
)
KEYS = tuple(f.key for f in FIGURES)

OK, NOT_BUILT, FAILED = "ok", "not built", "failed"


@dataclass
class Outcome:
    """What one figure module gave."""

    key: str
    module: str
    title: str
    status: str  # OK, NOT_BUILT or FAILED
    seconds: float = 0.0
    result: dict[str, Any] | None = None
    error: str | None = None


@dataclass
class Report:
    started: str
    options: dict[str, Any]
    machine: dict[str, Any]
    outcomes: list[Outcome] = field(default_factory=list)

    def to_json(self) -> dict[str, Any]:
        return {
            "started": self.started,
            "options": self.options,
            "machine": self.machine,
            "results": {o.key: asdict(o) for o in self.outcomes},
        }


Importer = Callable[[str], ModuleType]


def parse_only(text: str | None) -> list[str]:
    """``"r1,r3"`` -> ``["r1", "r3"]`` (every key when empty); ValueError names the keys."""
    if not text:
        return list(KEYS)
    keys = [k.strip().lower() for k in text.split(",") if k.strip()]
    unknown = [k for k in keys if k not in KEYS]
    if unknown or not keys:
        wrong = ", ".join(unknown) or repr(text)
        raise ValueError(f"unknown figure(s) {wrong}: use {','.join(KEYS)}")
    return [k for k in KEYS if k in keys]  # the suite's order


def machine() -> dict[str, Any]:
    """Where the figures come from: they mean little without the load of the machine."""
    import os

    try:
        load = [round(x, 2) for x in os.getloadavg()]
    except OSError:
        load = []
    return {
        "host": platform.node(),
        "cpus": os.cpu_count(),
        "load_average": load,
        "python": platform.python_version(),
        "platform": platform.platform(),
    }


def run_suite(
    opts: BenchOptions,
    keys: Sequence[str] = KEYS,
    *,
    importer: Importer = importlib.import_module,
    on_done: Callable[[Outcome], None] | None = None,
) -> Report:
    """Run the figures ``keys`` in the suite's order, each in a fresh directory under
    ``opts.workdir`` (a temporary one when that is ``.``)."""
    report = Report(
        started=datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ"),
        options={k: str(v) if isinstance(v, Path) else v for k, v in asdict(opts).items()},
        machine=machine(),
    )
    report.options.pop("workdir", None)  # a path of this machine, not a figure
    owned = opts.workdir == Path(".")
    base = Path(tempfile.mkdtemp(prefix="journeys-bench-")) if owned else opts.workdir
    try:
        for fig in FIGURES:
            if fig.key not in keys:
                continue
            workdir = base / fig.key
            workdir.mkdir(parents=True, exist_ok=True)
            outcome = run_one(fig, opts.with_workdir(workdir), importer)
            report.outcomes.append(outcome)
            if on_done is not None:
                on_done(outcome)
    finally:
        if owned:
            shutil.rmtree(base, ignore_errors=True)
    report.machine["load_average_after"] = machine()["load_average"]
    return report


def run_one(fig: Figure, opts: BenchOptions, importer: Importer) -> Outcome:
    name = f"{PACKAGE}.{fig.module}"
    out = Outcome(fig.key, name, fig.title, NOT_BUILT)
    try:
        module = importer(name)
    except ModuleNotFoundError as exc:
        if exc.name == name:  # the module itself, not one it imports
            out.error = f"{name} is not in this build"
            return out
        return _failed(out, exc)
    except Exception as exc:  # a module that does not import is broken, not missing
        return _failed(out, exc)
    call = _entry_point(module, opts)
    if call is None:
        out.error = f"{name} has neither run(opts) nor measure(...)"
        return out
    start = time.monotonic()
    try:
        result = call()
        if inspect.iscoroutine(result):
            result = asyncio.run(result)
    except KeyboardInterrupt:
        raise
    except BaseException as exc:  # SystemExit included: one figure never ends the suite
        out.seconds = round(time.monotonic() - start, 1)
        return _failed(out, exc)
    out.seconds = round(time.monotonic() - start, 1)
    if not isinstance(result, dict):
        out.status, out.error = FAILED, f"returned {type(result).__name__}, not a dict"
        return out
    out.status, out.result = OK, result
    return out


def _entry_point(module: ModuleType, opts: BenchOptions) -> Callable[[], Any] | None:
    run = getattr(module, "run", None)
    if callable(run):
        return lambda: run(opts)
    measure = getattr(module, "measure", None)
    if callable(measure):
        # Pass the options its parameters name (users=..., quick=...), or all of them.
        params = inspect.signature(measure).parameters
        if "opts" in params:
            return lambda: measure(opts=opts)
        given = {k: v for k, v in asdict(opts).items() if k in params}
        return lambda: measure(**given)
    return None


def _failed(out: Outcome, exc: BaseException) -> Outcome:
    out.status = FAILED
    out.error = f"{type(exc).__name__}: {exc}"
    tb = "".join(traceback.format_exception(exc))
    print(f"bench: {out.key} failed:\n{tb}", file=sys.stderr, flush=True)
    return out
