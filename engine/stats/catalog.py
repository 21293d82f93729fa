"""The journey files of a directory, loaded to draw them and reloaded when one changes.

The stats service keeps one (:mod:`engine.stats.service`) and the dashboard reads it
(:mod:`engine.stats.dashboard`).
"""

from __future__ import annotations

from pathlib import Path

from engine.errors import ConfigError, InvalidJourney
from engine.journey.loader import expand_paths, iter_journeys, load_paths
from engine.journey.model import Journey
from engine.lint.linter import load_journeys
from engine.stats.windows import WindowStats


def load_tolerant(path: str) -> tuple[list[Journey], list[str]]:
    """The journeys of a file or directory that parse, and the problems of those that
    don't (stats only need a journey's nodes and edges, not a clean lint)."""
    if not Path(path).exists():
        raise ConfigError(f"--journeys {path}: no such file or directory")
    loaded, problems = load_paths([path])
    return list(iter_journeys(loaded)), [str(p) for p in problems[:20]]


class Catalog:
    """The journey files of a directory (to draw them), reloaded when one changes."""

    def __init__(self, directory: str) -> None:
        self.directory = directory
        self.journeys: dict[str, dict[int, Journey]] = {}
        self.problems: list[str] = []
        self._stamp: object = None
        self.refresh()

    def refresh(self) -> None:
        d = Path(self.directory)
        found = expand_paths([d]) if d.is_dir() else []
        stamp = [(str(f), f.stat().st_mtime_ns) for f in found if f.is_file()]
        if stamp == self._stamp:
            return
        self._stamp, self.problems = stamp, []
        try:
            loaded = load_journeys([d]) if found else []
        except InvalidJourney as exc:  # draw what parses; report the rest
            self.problems = [str(p) for p in exc.problems[:20]]
            loaded = list(iter_journeys(load_paths([d])[0]))
        self.journeys = {}
        for j in loaded:
            self.journeys.setdefault(j.id, {})[j.version] = j

    def versions(self, jid: str, stats: WindowStats) -> list[int]:
        return sorted(
            set(self.journeys.get(jid, {})) | {v for j, v in stats.journeys() if j == jid}
        )

    def ids(self, stats: WindowStats) -> list[str]:
        return sorted(set(self.journeys) | {j for j, _ in stats.journeys()})

    def name(self, jid: str) -> str:
        versions = self.journeys.get(jid, {})
        return (versions[max(versions)].name if versions else None) or jid
