"""The deployment's settings file (``journeys/_settings.yaml``): its rules, and loading it
for the engine (:mod:`engine.journey.deployment` reads it).

* ``global_control.share``: more than 0% and at most :data:`CONTROL_MAX` (a problem
  otherwise); a warning above :data:`CONTROL_WARN`: the group gets no marketing message
  from any journey, and a few percent is enough to measure the lift of all of them.
* One settings file: two directories each with one, given together, is a problem.
"""

from __future__ import annotations

import dataclasses
import os
from collections.abc import Iterable

from engine.core.config import EngineConfig
from engine.errors import InvalidJourney, Problem
from engine.journey.deployment import (
    DeploymentSettings,
    LoadedSettings,
    load_settings_file,
    settings_files,
)

CONTROL_MAX = 0.5
CONTROL_WARN = 0.1


def _rules(loaded: LoadedSettings, settings: DeploymentSettings) -> list[Problem]:
    out: list[Problem] = []
    control = settings.global_control
    if control is None:
        return out
    loc = ("global_control", "share")
    if control.fraction <= 0:
        out.append(loaded.problem(loc, f"global_control share {control.share} holds nobody "
                                       "out: give a share above 0% (e.g. 5%), or remove "
                                       "global_control"))
    elif control.fraction > CONTROL_MAX:
        out.append(loaded.problem(loc, f"global_control share {control.share} is more than "
                                       f"{CONTROL_MAX:.0%}: most users would get no marketing "
                                       f"message; give at most {CONTROL_MAX:.0%}"))
    elif control.fraction > CONTROL_WARN:
        warning = loaded.problem(loc, f"global_control share {control.share}: these users get "
                                      "no marketing message from any journey; 1 to "
                                      f"{CONTROL_WARN:.0%} is usually enough to measure the "
                                      "lift of all journeys")
        out.append(dataclasses.replace(warning, severity="warning"))
    return out


def lint_settings(paths: Iterable[str | os.PathLike[str]]) -> list[Problem]:
    """Every problem (and warning) of the settings files among ``paths``."""
    files = settings_files(paths)
    problems: list[Problem] = []
    for i, f in enumerate(files):
        loaded, found = load_settings_file(f)
        problems.extend(found)
        if i > 0:
            problems.append(loaded.problem((), f"a second settings file (the first is "
                                               f"{files[0]}): a deployment has one; merge them"))
        if loaded.settings is not None:
            problems.extend(_rules(loaded, loaded.settings))
    return problems


def load_deployment(paths: Iterable[str | os.PathLike[str]]) -> DeploymentSettings:
    """The settings of the deployment whose journeys are at ``paths`` (none: defaults), or
    InvalidJourney with every problem of the file."""
    paths = list(paths)
    problems = [p for p in lint_settings(paths) if not p.is_warning]
    if problems:
        raise InvalidJourney(problems)
    files = settings_files(paths)
    if not files:
        return DeploymentSettings()
    settings = load_settings_file(files[0])[0].settings
    return settings if settings is not None else DeploymentSettings()


def engine_config(
    paths: Iterable[str | os.PathLike[str]], base: EngineConfig | None = None
) -> EngineConfig:
    """The engine's settings with the deployment's (the global control group) from the
    settings file next to the journeys at ``paths``."""
    settings = load_deployment(paths)
    return dataclasses.replace(base or EngineConfig(), global_control=settings.global_control)
