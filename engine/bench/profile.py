"""Where a service's time goes: a cProfile file summed up by area and by function.

The suite runs the worker once more under ``python -m cProfile`` when asked
(``--profile``): a figure that misses its target comes with the profile that says why.
Profiling slows the process down, so that run's rate is not a figure.
"""

from __future__ import annotations

import pstats
from pathlib import Path
from typing import Any

# First match wins: (area, fragments of the file path or of a built-in's name).
AREAS: tuple[tuple[str, tuple[str, ...]], ...] = (
    ("engine core", ("engine/core/",)),
    ("engine journeys and channels", ("engine/journey/", "engine/channels/")),
    ("engine stream runtime", ("engine/stream/",)),
    ("faust and mode", ("/faust/", "/mode/")),
    ("aiokafka", ("/aiokafka/", "/kafka/")),
    ("JSON (orjson)", ("orjson",)),
    ("asyncio and sockets", ("/asyncio/", "selectors", "socket", "ssl")),
    ("logging", ("/logging/",)),
    ("metrics (prometheus_client)", ("/prometheus_client/",)),
)
OTHER = "other"


def area_of(filename: str, function: str) -> str:
    where = f"{filename} {function}".replace("\\", "/")
    for area, fragments in AREAS:
        if any(f in where for f in fragments):
            return area
    return OTHER


def _shares(
    filename: str, function: str, tottime: float, callers: dict[Any, Any]
) -> list[tuple[str, float]]:
    """A Python function's own time goes to its area. A built-in's (``len``, a dict's
    ``get``, ``orjson.dumps``: file ``~``) goes to the areas of its callers, in the
    proportions they called it, unless its name says where it belongs (orjson)."""
    own = area_of(filename, function)
    if filename != "~" or own != OTHER or not callers:
        return [(own, tottime)]
    parts = [(area_of(f, fn), float(stats[2])) for (f, _l, fn), stats in callers.items()]
    total = sum(tt for _a, tt in parts)
    if total <= 0:
        return [(own, tottime)]
    return [(area, tottime * tt / total) for area, tt in parts]


def summarize(path: Path, *, inputs: int | None = None, top: int = 20) -> dict[str, Any]:
    """The profile's own time (tottime) by area and its ``top`` functions; with
    ``inputs``, microseconds per input."""
    stats = pstats.Stats(str(path))
    raw: dict[tuple[str, int, str], tuple[int, int, float, float, Any]] = stats.stats  # type: ignore[attr-defined]
    total = sum(tt for (_cc, _nc, tt, _ct, _callers) in raw.values()) or 1e-9
    by_area: dict[str, float] = {}
    for (filename, _line, function), (_cc, _nc, tt, _ct, callers) in raw.items():
        for area, seconds in _shares(filename, function, tt, callers):
            by_area[area] = by_area.get(area, 0.0) + seconds
    functions = sorted(raw.items(), key=lambda kv: kv[1][2], reverse=True)[:top]

    def per_input(seconds: float) -> float | None:
        return round(seconds / inputs * 1e6, 1) if inputs else None

    return {
        "total_s": round(total, 3),
        "us_per_input": per_input(total),
        "by_area": [
            {"area": area, "share": round(tt / total, 3), "us_per_input": per_input(tt)}
            for area, tt in sorted(by_area.items(), key=lambda kv: kv[1], reverse=True)
        ],
        "top_functions": [
            {
                "function": f"{_short(filename)}:{line}({function})",
                "calls": nc,
                "share": round(tt / total, 3),
                "us_per_input": per_input(tt),
            }
            for (filename, line, function), (_cc, nc, tt, _ct, _callers) in functions
        ],
    }


def _short(filename: str) -> str:
    """The path from the package down (site-packages/... and the checkout's root cut)."""
    f = filename.replace("\\", "/")
    for marker in ("site-packages/", "/engine/"):
        if marker in f:
            cut = f.index(marker) + len(marker)
            return ("engine/" if marker == "/engine/" else "") + f[cut:]
    return f
