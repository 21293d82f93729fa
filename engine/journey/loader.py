"""Read journey files (YAML or JSON) into models, keeping the line of every key.

Problems are collected, never raised one at a time: a file with a YAML error gives
one problem; a file that parses gives one problem per schema error, each with the
line of the offending key, so ``journeys validate`` can print all of them at once.
"""

from __future__ import annotations

import json
import os
import re
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml
from pydantic import ValidationError

from engine.errors import Problem
from engine.journey.fields import did_you_mean
from engine.journey.model import NODE_TYPES, Journey

JOURNEY_SUFFIXES = (".yaml", ".yml", ".json")
# The deployment's settings file sits next to the journeys and is not one of them
# (engine.journey.deployment reads it).
SETTINGS_FILE_NAMES = ("_settings.yaml", "_settings.yml", "_settings.json")
_BOOL, _INT = "tag:yaml.org,2002:bool", "tag:yaml.org,2002:int"
Loc = tuple[str | int, ...]


@dataclass
class SourceMap:
    """Maps a key path (``("nodes", "confirm", "fallback", "after")``) to its 1-based line."""

    lines: dict[Loc, int] = field(default_factory=dict)

    def line_of(self, loc: Iterable[str | int]) -> int:
        path = tuple(loc)
        while path:
            if path in self.lines:
                return self.lines[path]
            path = path[:-1]
        return self.lines.get((), 1)


@dataclass
class LoadedJourney:
    path: str
    raw: Any
    source_map: SourceMap
    journey: Journey | None  # None when the file did not pass the schema

    def problem(self, loc: Loc, message: str, node: str | None = None) -> Problem:
        return Problem(self.path, self.source_map.line_of(loc), node or node_of(loc), message)


def node_of(loc: Loc) -> str:
    """The name printed in ``file:line: node: message``: the node id, else the top-level key."""
    if len(loc) >= 2 and loc[0] == "nodes":
        return str(loc[1])
    return "journey"


def expand_paths(paths: Iterable[str | os.PathLike[str]]) -> list[Path]:
    """Files as given, directories expanded to their journey files (sorted, not recursive).
    The deployment's settings file (:data:`SETTINGS_FILE_NAMES`) is never a journey."""
    out: list[Path] = []
    for p in map(Path, paths):
        if p.is_dir():
            out.extend(sorted(f for f in p.iterdir() if f.suffix in JOURNEY_SUFFIXES))
        else:
            out.append(p)
    return [f for f in out if f.name not in SETTINGS_FILE_NAMES]


class JourneyYamlLoader(yaml.SafeLoader):
    """SafeLoader with YAML 1.2 plain scalars.

    YAML 1.1 (PyYAML's default) reads ``Yes``/``No``/``on``/``off`` as booleans and ``21:00``
    as the base-60 integer 1260, so ``reply: {text: Yes, postback: yes}`` or
    ``quiet_hours: {from: 21:00}`` would fail with "Input should be a valid string". Here only
    true/false are booleans and integers are decimal (or 0x hex); the model still reads a
    ``yes``/``no`` string as a boolean where a field is one.
    """


JourneyYamlLoader.yaml_implicit_resolvers = {
    first: [(tag, rx) for tag, rx in resolvers if tag not in (_BOOL, _INT)]
    for first, resolvers in yaml.SafeLoader.yaml_implicit_resolvers.items()
}
JourneyYamlLoader.add_implicit_resolver(
    _BOOL, re.compile(r"^(?:true|True|TRUE|false|False|FALSE)$"), list("tTfF")
)
JourneyYamlLoader.add_implicit_resolver(
    _INT, re.compile(r"^(?:[-+]?(?:0|[1-9][0-9_]*)|0x[0-9a-fA-F_]+)$"), list("-+0123456789")
)


def _walk(
    node: yaml.Node, loc: Loc, lines: dict[Loc, int], dups: list[tuple[Loc, int]], seen: set[int]
) -> None:
    lines.setdefault(loc, node.start_mark.line + 1)
    if isinstance(node, yaml.CollectionNode):
        if id(node) in seen:  # an alias (maybe of itself): walked once, at its anchor
            return
        seen.add(id(node))
    if isinstance(node, yaml.MappingNode):
        for key_node, value_node in node.value:
            key = key_node.value if isinstance(key_node, yaml.ScalarNode) else str(key_node)
            child = (*loc, key)
            if child in lines:  # YAML and json.loads keep the last one silently
                dups.append((child, key_node.start_mark.line + 1))
                continue
            lines[child] = key_node.start_mark.line + 1
            _walk(value_node, child, lines, dups, seen)
    elif isinstance(node, yaml.SequenceNode):
        for i, item in enumerate(node.value):
            _walk(item, (*loc, i), lines, dups, seen)


def parse_text(text: str, path: str) -> tuple[Any, SourceMap, list[Problem]]:
    """YAML (JSON is read as YAML too) -> plain data, the line map, and a problem if it fails."""
    is_json = path.endswith(".json")
    try:
        # Tabs can only be whitespace in valid JSON, but YAML refuses them as indentation.
        root = yaml.compose(text.replace("\t", " ") if is_json else text, JourneyYamlLoader)
        # json.loads for JSON: YAML leaves "\ud83d\ude00" as two lone surrogates.
        data = json.loads(text) if is_json else yaml.load(text, JourneyYamlLoader)  # a SafeLoader
    except json.JSONDecodeError as exc:
        problem = Problem(path, exc.lineno, "journey", f"not valid JSON: {exc.msg}")
        return None, SourceMap(), [problem]
    except RecursionError:
        return None, SourceMap(), [Problem(path, 1, "journey", "nested too deeply to read")]
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        line = mark.line + 1 if mark is not None else 1
        what = getattr(exc, "problem", None) or str(exc)
        return None, SourceMap(), [Problem(path, line, "journey", f"not valid YAML/JSON: {what}")]
    lines: dict[Loc, int] = {}
    dups: list[tuple[Loc, int]] = []
    if root is not None:
        _walk(root, (), lines, dups, set())
    if dups:
        return data, SourceMap(lines), [
            Problem(path, line, node_of(loc), f"duplicate key '{loc[-1]}': only the last one "
                    "would count; rename or merge them")
            for loc, line in dups
        ]
    if not isinstance(data, dict):
        return (
            data,
            SourceMap(lines),
            [
                Problem(
                    path,
                    1,
                    "journey",
                    "a journey file is a mapping with id, version, entry, start, nodes",
                )
            ],
        )
    return data, SourceMap(lines), []


def _schema_loc(loc: tuple[int | str, ...], raw: Any) -> Loc:
    """Drop the discriminator tags pydantic inserts (``nodes.x.send.next`` -> ``nodes.x.next``)."""
    out: list[str | int] = []
    for i, part in enumerate(loc):
        if (
            i == 2
            and len(out) == 2
            and out[0] == "nodes"
            and part in NODE_TYPES
            and isinstance(raw, dict)
            and isinstance(raw.get("nodes"), dict)
            and isinstance(raw["nodes"].get(out[1]), dict)
            and part not in raw["nodes"][out[1]]
        ):
            continue
        out.append(part)
    return tuple(out)


def _schema_message(err: Any, raw: Any) -> str:
    kind = err["type"]
    loc = _schema_loc(tuple(err["loc"]), raw)
    inner = loc[2:] if len(loc) >= 2 and loc[0] == "nodes" else loc
    where = ".".join(str(p) for p in inner)
    field_name = str(loc[-1]) if loc else "journey"
    if kind == "missing":
        return f"missing required field '{field_name}'"
    if kind == "extra_forbidden":
        hint = did_you_mean(field_name, tuple(err["loc"])[:-1])
        return f"unknown field '{field_name}'" + (
            hint or " (check the spelling; `journeys schema` lists the fields)"
        )
    if kind == "union_tag_invalid":
        return f"unknown node type {err['input'].get('type')!r}: use one of {', '.join(NODE_TYPES)}"
    if kind == "union_tag_not_found":
        return f"node has no 'type': use one of {', '.join(NODE_TYPES)}"
    msg = str(err["msg"])
    msg = msg.removeprefix("Value error, ")
    return f"{where}: {msg}" if where else msg


def load_text(text: str, path: str) -> tuple[LoadedJourney | None, list[Problem]]:
    raw, smap, problems = parse_text(text, path)
    if problems:
        return (LoadedJourney(path, raw, smap, None) if raw is not None else None), problems
    loaded = LoadedJourney(path, raw, smap, None)
    try:
        loaded.journey = Journey.model_validate(raw)
    except ValidationError as exc:
        for err in exc.errors():
            loc = _schema_loc(tuple(err["loc"]), raw)
            problems.append(loaded.problem(loc, _schema_message(err, raw)))
    return loaded, problems


def load_file(path: str | os.PathLike[str]) -> tuple[LoadedJourney | None, list[Problem]]:
    p = str(path)
    try:
        text = Path(p).read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        return None, [Problem(p, 1, "journey", f"can't read the file: {exc}")]
    return load_text(text, p)


def load_paths(
    paths: Iterable[str | os.PathLike[str]],
) -> tuple[list[LoadedJourney], list[Problem]]:
    loaded: list[LoadedJourney] = []
    problems: list[Problem] = []
    for f in expand_paths(paths):
        item, found = load_file(f)
        problems.extend(found)
        if item is not None:
            loaded.append(item)
    return loaded, problems


def iter_journeys(loaded: Iterable[LoadedJourney]) -> Iterator[Journey]:
    for item in loaded:
        if item.journey is not None:
            yield item.journey
