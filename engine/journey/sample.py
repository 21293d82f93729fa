"""Render a send node for sample data, and find the template variables the data lacks.

``journeys preview`` shows a message as a user will see it. A variable the data doesn't
have renders as nothing in production (``Hi ,``), which is easy to miss in the output, so
:func:`render_sample` renders the node twice:

* once exactly as the engine does (:func:`~engine.journey.render.render_send` with plain
  data): the message the user gets;
* once with a *marker* standing in for every value the data lacks. A marker prints as
  ``MARK_OPEN <n> MARK_CLOSE`` (private-use characters around the variable's index) and
  behaves like an undefined value everywhere else: it is falsy, so ``{% if %}`` skips it;
  ``default`` replaces it; it equals ``nil`` and ``""``; it has no size and no items.

So a marker found in the output is a missing value that was *printed as nothing*; a
missing value that was read but never printed was covered by a ``default`` or a
condition. :meth:`SampleRender.runs` splits a rendered string into text and markers, for
drawings that show each marker where the value should have been.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, fields, is_dataclass
from typing import Any

from engine.errors import ConfigError, ExpressionError, TemplateError
from engine.journey.expressions import compile_expression
from engine.journey.model import Journey, SendNode, UpdateProfileNode, successors
from engine.journey.render import RenderedMessage, render_send

MARK_OPEN, MARK_CLOSE = "\ue000", "\ue001"
# A filter may cut a marker (truncate) or change its case: the index is digits only, and
# a marker missing its end still counts.
_MARKER = re.compile(f"{MARK_OPEN}(\\d+){MARK_CLOSE}?")


@dataclass(frozen=True, slots=True)
class SampleData:
    """What a preview renders with: an event's properties (``event.*`` and ``entry.*``,
    as when the event starts the journey) and the user's profile (``user.*``)."""

    event: Mapping[str, Any]
    profile: Mapping[str, Any]

    def scope(self, journey: Journey) -> dict[str, Any]:
        entry = self.event
        schedule = journey.entry.schedule
        if schedule is not None and "occurrence" not in entry:
            # A scheduled entry's properties: its occurrence (engine.core.audience). The
            # sample is the first one the schedule names, else a Monday 10:00.
            first = schedule.at or f"{(schedule.start or '2026-01-05')[:10]}T{schedule.time}"
            entry = {**entry, "occurrence": first}
        return {
            "event": self.event,
            "entry": entry,
            "user": self.profile,
            "journey": {"id": journey.id, "version": journey.version},
        }


def profile_at(journey: Journey, node_id: str, data: SampleData) -> SampleData:
    """``data`` with the ``update_profile`` nodes on the way to ``node_id`` applied, in the
    order a user meets them from the start (breadth first): a send after one previews
    with the profile it will read. A null value removes the attribute."""
    order = [journey.start]
    for nid in order:
        node = journey.nodes.get(nid)
        if node is not None:
            order += [t for _, t in successors(node) if t not in order]
    before = _reaches(journey, node_id)
    profile = dict(data.profile)
    for nid in order:
        node = journey.nodes.get(nid)
        if not isinstance(node, UpdateProfileNode) or nid not in before:
            continue
        scope = {**data.scope(journey), "user": dict(profile)}  # as the node reads it
        values: dict[str, Any] = {}
        for key, source in node.set_.items():
            try:
                values[key] = compile_expression(source).evaluate(scope)
            except ExpressionError:  # the linter's business
                continue
        for key in node.unset:
            profile.pop(key, None)
        for key, value in values.items():
            if value is None:
                profile.pop(key, None)
            else:
                profile[key] = value
    return data if profile == dict(data.profile) else SampleData(data.event, profile)


def _reaches(journey: Journey, target: str) -> set[str]:
    """The nodes from which ``target`` can be reached (not ``target`` itself)."""
    into: dict[str, set[str]] = {}
    for nid, node in journey.nodes.items():
        for _, t in successors(node):
            into.setdefault(t, set()).add(nid)
    found: set[str] = set()
    todo = [target]
    while todo:
        for src in into.get(todo.pop(), ()):
            if src not in found:
                found.add(src)
                todo.append(src)
    return found


@dataclass(frozen=True, slots=True)
class SampleRender:
    """``message`` is what the user gets; ``marked`` the same with markers where a missing
    value was printed. ``variables[n]`` is the path of marker ``n``."""

    message: RenderedMessage
    marked: RenderedMessage
    variables: tuple[str, ...]
    # Read but absent in the data, and never printed: a default or a condition covers it.
    covered: tuple[str, ...]
    # Where each printed-missing variable appears, e.g. {"user.first_name": ["rich_card.title"]}.
    missing: Mapping[str, tuple[str, ...]]

    def runs(self, text: str) -> list[tuple[str, str | None]]:
        """``text`` as ``(piece, None)`` and ``(variable path, path)`` runs, in order."""
        return split_markers(text, self.variables)

    def plain(self, text: str) -> str:
        """``text`` without its markers: what the user reads."""
        return _MARKER.sub("", text)


def split_markers(text: str, variables: Sequence[str]) -> list[tuple[str, str | None]]:
    out: list[tuple[str, str | None]] = []
    pos = 0
    for m in _MARKER.finditer(text):
        if m.start() > pos:
            out.append((text[pos : m.start()], None))
        n = int(m.group(1))
        path = variables[n] if n < len(variables) else "?"
        out.append((path, path))
        pos = m.end()
    if pos < len(text):
        out.append((text[pos:], None))
    return out


class _Probe:
    """Hands out markers and remembers which paths were read and found missing."""

    def __init__(self) -> None:
        self.variables: list[str] = []
        self.read: dict[str, None] = {}

    def marker(self, path: str) -> _Missing:
        if path not in self.variables:
            self.variables.append(path)
        return _Missing(self, path)

    def wrap(self, value: Any, path: str) -> Any:
        if isinstance(value, Mapping):
            return _Data(self, value, path)
        if isinstance(value, list | tuple):
            return [self.wrap(v, f"{path}[{i}]") for i, v in enumerate(value)]
        return value


class _Data(Mapping[str, Any]):
    """Read-only view of sample data: a missing key gives a marker (and is remembered)."""

    def __init__(self, probe: _Probe, data: Mapping[str, Any], path: str) -> None:
        self._probe, self._data, self._path = probe, data, path

    def __getitem__(self, key: str) -> Any:
        path = f"{self._path}.{key}"
        if key in self._data:
            return self._probe.wrap(self._data[key], path)
        self._probe.read.setdefault(path)
        return self._probe.marker(path)

    def __iter__(self) -> Iterator[str]:
        return iter(self._data)

    def __len__(self) -> int:
        return len(self._data)


class _Missing(str):
    """A value the data lacks: prints as a marker, is an undefined value otherwise."""

    force_liquid_default = True  # liquid's `default` filter replaces such a value
    _probe: _Probe
    _path: str

    def __new__(cls, probe: _Probe, path: str) -> _Missing:
        self = super().__new__(cls, f"{MARK_OPEN}{probe.variables.index(path)}{MARK_CLOSE}")
        self._probe, self._path = probe, path
        return self

    def __liquid__(self) -> None:  # falsy in conditions, like nil
        return None

    def __bool__(self) -> bool:
        return False

    def __len__(self) -> int:
        return 0

    def __iter__(self) -> Iterator[str]:
        return iter(())

    def __eq__(self, other: object) -> bool:
        return other is None or other == "" or isinstance(other, _Missing)

    def __ne__(self, other: object) -> bool:
        return not self == other

    __hash__ = str.__hash__

    def __getitem__(self, key: Any) -> Any:
        if isinstance(key, slice):  # filters slice strings: keep the marker's own text
            return str(self)[key]
        return self._probe.marker(f"{self._path}.{key}")

    def get(self, key: Any, default: Any = None) -> Any:
        return self[key]


# The template fast path walks dotted names through mappings: a missing value must look
# like one, so that `{{ user.address.city }}` prints a marker when `address` is missing.
Mapping.register(_Missing)


def render_sample(node: SendNode, journey: Journey, data: SampleData) -> SampleRender:
    """Render ``node`` for ``data``; raises TemplateError as the engine would."""
    message = render_send(node, data.scope(journey))
    probe = _Probe()
    scope = {k: probe.wrap(v, k) for k, v in data.scope(journey).items()}
    try:
        marked = render_send(node, scope)
    except TemplateError:
        # A filter that can't take a marker (one the engine's data gives as nothing):
        # show the message as rendered and report the missing values without places.
        marked = message
    variables = tuple(probe.variables)
    missing: dict[str, list[str]] = {}
    for where, text in _strings(marked):
        for _, path in split_markers(text, variables):
            if path is not None and where not in missing.setdefault(path, []):
                missing[path].append(where)
    covered = tuple(p for p in probe.read if not any(_within(p, m) for m in missing))
    return SampleRender(
        message, marked, variables, covered, {k: tuple(v) for k, v in missing.items()}
    )


def _within(read: str, printed: str) -> bool:
    return printed == read or printed.startswith((read + ".", read + "["))


def _strings(obj: object, where: str = "") -> Iterator[tuple[str, str]]:
    """Every string field of a rendered message, with its place (``rich_card.title``)."""
    if isinstance(obj, str):
        yield where, obj
    elif isinstance(obj, tuple):
        for i, item in enumerate(obj):
            yield from _strings(item, f"{where}[{i}]")
    elif is_dataclass(obj):
        for f in fields(obj):
            yield from _strings(getattr(obj, f.name), f"{where}.{f.name}".lstrip("."))


# --------------------------------------------------------------------------- sample data


def merge_data(base: Mapping[str, Any], extra: Mapping[str, Any]) -> dict[str, Any]:
    """``extra`` over ``base``, nested objects merged key by key."""
    out = dict(base)
    for key, value in extra.items():
        old = out.get(key)
        if isinstance(old, Mapping) and isinstance(value, Mapping):
            value = merge_data(old, value)
        out[key] = value
    return out


def _valid_text(data: dict[str, Any], source: str) -> dict[str, Any]:
    """``data`` unless it holds a lone surrogate (``"\\ud800"`` in JSON, undecodable bytes
    in an argument), which no message can carry."""
    try:
        json.dumps(data, ensure_ascii=False).encode("utf-8")
    except UnicodeEncodeError as exc:
        bad = exc.object[exc.start : exc.end].encode("unicode_escape").decode()
        raise ConfigError(f"{source}: {bad} is not a character; give UTF-8 text") from None
    return data


def parse_assignments(pairs: Sequence[str]) -> dict[str, Any]:
    """``["first_name=Asha", "address.city=Paris", "vip=true"]`` as nested data. A value is
    JSON when it reads as JSON (``500``, ``true``, ``null``, ``[1, 2]``), else text."""
    out: dict[str, Any] = {}
    for pair in pairs:
        key, sep, raw = pair.partition("=")
        parts = key.strip().split(".")
        if not sep or not all(p.strip() for p in parts):
            raise ConfigError(f"{pair!r}: write KEY=VALUE, e.g. first_name=Asha")
        try:
            value: Any = json.loads(raw)
        except ValueError:
            value = raw
        node = out
        for p in parts[:-1]:
            child = node.get(p)
            if not isinstance(child, dict):
                child = node[p] = {}
            node = child
        node[parts[-1]] = value
    return _valid_text(out, "--user-profile")


def parse_event(
    text: str,
    source: str,
    entry_event: str,
    profile_events: Iterable[str] = ("profile_updated",),
) -> tuple[dict[str, Any], dict[str, Any]]:
    """``(properties, profile)`` from an event file: one JSON object, or JSON lines like
    ``journeys simulate`` reads (the first line with the journey's entry event is used).

    An object with ``properties``, or with ``name`` and ``user_id``, is an event (its
    ``profile``, if any, gives ``user.*``); any other object is the properties themselves.
    In JSON lines, ``user.*`` is the profile that user has built up to that line, as the
    engine keeps it: the ``profile`` of their earlier lines and the properties of their
    profile events (``profile_events``), merged (a null removes the attribute).
    """
    earlier: dict[str, Any] = {}
    try:
        whole = json.loads(text)
    except ValueError:
        whole = None
        records = _json_lines(text, source)
        chosen = next((r for r in records if r.get("name") == entry_event), None)
        if chosen is not None:
            earlier = _profile_before(records, chosen, frozenset(profile_events))
        if chosen is None:
            names = sorted({str(r["name"]) for r in records if "name" in r})
            found = f" (it has: {', '.join(names)})" if names else ""
            raise ConfigError(
                f"{source}: no {entry_event!r} event{found}; give a file with one, "
                "or a JSON object of the event's properties"
            ) from None
        whole = chosen
    if not isinstance(whole, dict):
        raise ConfigError(f"{source}: expected a JSON object (an event or its properties)")
    _valid_text(whole, source)
    if "properties" not in whole and not {"name", "user_id"} <= whole.keys():
        return whole, {}
    props, profile = whole.get("properties") or {}, whole.get("profile") or {}
    if not isinstance(props, dict) or not isinstance(profile, dict):
        raise ConfigError(f"{source}: 'properties' and 'profile' must be JSON objects")
    return props, _merged(earlier, profile) if earlier else profile


def _profile_before(
    records: list[dict[str, Any]], chosen: dict[str, Any], profile_events: frozenset[str]
) -> dict[str, Any]:
    """The profile of ``chosen``'s user from the lines before it."""
    user = chosen.get("user_id")
    profile: dict[str, Any] = {}
    for r in records:
        if r is chosen:
            break
        if user is None or r.get("user_id") != user or r.get("type", "event") != "event":
            continue
        for part in (r.get("properties") if r.get("name") in profile_events else None,
                     r.get("profile")):  # fmt: skip
            if isinstance(part, dict):
                profile = _merged(profile, part)
    return profile


def _merged(profile: dict[str, Any], update: dict[str, Any]) -> dict[str, Any]:
    out = {**profile, **update}
    return {k: v for k, v in out.items() if v is not None}


def _json_lines(text: str, source: str) -> list[dict[str, Any]]:
    records: list[dict[str, Any]] = []
    for no, line in enumerate(text.splitlines(), 1):
        if not line.strip() or line.lstrip().startswith("#"):
            continue
        try:
            record = json.loads(line)
        except ValueError as exc:
            raise ConfigError(
                f"{source}:{no}: not JSON ({exc.args[0] if exc.args else exc}); give one "
                "JSON object, or JSON lines"
            ) from None
        if isinstance(record, dict):
            records.append(record)
    return records


def parse_profile(text: str, source: str) -> dict[str, Any]:
    """A profile file: one JSON object (``user.*``)."""
    try:
        data = json.loads(text)
    except ValueError as exc:
        raise ConfigError(f"{source}: not JSON ({exc}); give one JSON object") from None
    if not isinstance(data, dict):
        raise ConfigError(f"{source}: expected a JSON object of profile fields")
    return _valid_text(data, source)
