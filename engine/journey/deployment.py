"""The deployment's settings: one file next to the journeys, for what spans all of them.

``journeys/_settings.yaml`` (or ``.yml`` / ``.json``; :data:`~.loader.SETTINGS_FILE_NAMES`)
is read with the journeys by ``journeys run``, ``journeys simulate`` and ``journeys
validate``; it is never taken for a journey. Today it holds the global control group::

    global_control:
      share: 5%          # of all users, held out of every marketing send of every journey
      salt: "2026-h1"    # change it to draw another 5%

The model checks the shape (as :mod:`.model` does for a journey); the ranges are the
linter's (:mod:`engine.lint.deployment`).
"""

from __future__ import annotations

import difflib
import os
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from engine.errors import Problem
from engine.journey.loader import (
    SETTINGS_FILE_NAMES,
    Loc,
    SourceMap,
    _schema_loc,
    _schema_message,
    parse_text,
)
from engine.journey.model import _check_percent, percent_share


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class GlobalControl(_Model):
    """A share of all users who get no marketing send from any journey (utility sends still
    go): the baseline the lift of all journeys together is measured against."""

    share: str = Field(description="Share of all users in the control group, e.g. 5%")
    salt: str = Field(
        default="",
        description="Mixed into the user's hash: change it to draw a new control group",
    )

    _v_share = field_validator("share", mode="before")(
        classmethod(lambda cls, v: _check_percent(v))
    )

    @property
    def fraction(self) -> float:
        return percent_share(self.share)


class DeploymentSettings(_Model):
    global_control: GlobalControl | None = Field(
        default=None, description="The global control group (none by default)"
    )


@dataclass
class LoadedSettings:
    path: str
    source_map: SourceMap
    settings: DeploymentSettings | None  # None when the file did not pass the schema

    def problem(self, loc: Loc, message: str) -> Problem:
        return Problem(self.path, self.source_map.line_of(loc), "settings", message)


def is_settings_file(path: str | os.PathLike[str]) -> bool:
    return Path(path).name in SETTINGS_FILE_NAMES


def settings_files(paths: Iterable[str | os.PathLike[str]]) -> list[Path]:
    """The settings files among ``paths``: given as such, or in a given directory."""
    out: list[Path] = []
    for p in map(Path, paths):
        if p.is_dir():
            out.extend(p / n for n in SETTINGS_FILE_NAMES if (p / n).is_file())
        elif is_settings_file(p):
            out.append(p)
    unique: dict[Path, Path] = {}
    for f in out:
        unique.setdefault(f.resolve(), f)
    return list(unique.values())


def load_settings_file(path: str | os.PathLike[str]) -> tuple[LoadedSettings, list[Problem]]:
    p = str(path)
    try:
        text = Path(p).read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        return LoadedSettings(p, SourceMap(), None), [
            Problem(p, 1, "settings", f"can't read the file: {exc}")
        ]
    raw, smap, problems = parse_text(text, p)
    loaded = LoadedSettings(p, smap, None)
    if raw is None and problems and problems[0].message.startswith("a journey file"):
        problems = []  # an empty file (or only comments): no settings
    elif raw is not None and not isinstance(raw, dict):
        return loaded, [loaded.problem((), "the settings file is a mapping, like "
                                           "global_control: {share: 5%, salt: '2026'}")]
    if problems:  # not YAML/JSON, a duplicate key
        return loaded, [Problem(x.file, x.line, "settings", x.message) for x in problems]
    data: Any = raw if raw is not None else {}
    try:
        loaded.settings = DeploymentSettings.model_validate(data)
    except ValidationError as exc:
        for err in exc.errors():
            loc = _schema_loc(tuple(err["loc"]), data)
            problems.append(loaded.problem(loc, _message(err, data)))
    return loaded, problems


def _message(err: Any, data: Any) -> str:
    if err["type"] != "extra_forbidden":
        return _schema_message(err, data)
    name = str(err["loc"][-1])
    model: type[BaseModel] = GlobalControl if len(err["loc"]) > 1 else DeploymentSettings
    known = list(model.model_fields)
    close = difflib.get_close_matches(name, known, n=1, cutoff=0.6)
    hint = f"did you mean '{close[0]}'?" if close else f"the fields here are {', '.join(known)}"
    return f"unknown field '{name}': {hint}"
