"""Template names the engine never sets.

A send or a webhook renders with four names in scope: ``event``, ``entry``, ``user`` and
``journey`` (:meth:`engine.core.context.Step.scope`). Liquid prints any other name as
nothing, so ``Hi {{ user_id }}`` or ``{{ usr.first_name }}`` goes out as ``Hi `` with no
error anywhere: a silent loss the author only sees on a phone. Names a template defines
itself (``for``, ``assign``, ``capture``) are not reported: Liquid's own analysis gives
only the names read from the scope.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from difflib import get_close_matches
from typing import Any, Final

from engine.errors import TemplateError
from engine.journey.loader import Loc
from engine.journey.model import Journey, SendNode, WebhookNode
from engine.journey.templates import compile_template
from engine.lint.rcs import send_fields, where

Report = Callable[[Loc, str], None]

#: What a template can read (the render scope of the core).
SCOPE: Final = ("event", "entry", "user", "journey")


def _webhook_strings(value: Any, loc: Loc) -> Iterator[tuple[Loc, str]]:
    if isinstance(value, str):
        yield loc, value
    elif isinstance(value, dict):
        for k, v in value.items():
            yield from _webhook_strings(v, (*loc, k))
    elif isinstance(value, list):
        for i, v in enumerate(value):
            yield from _webhook_strings(v, (*loc, i))


def _templates(journey: Journey) -> Iterator[tuple[Loc, str]]:
    for nid, node in journey.nodes.items():
        if isinstance(node, SendNode):
            for field in send_fields(nid, node):
                yield field.loc, field.value
        elif isinstance(node, WebhookNode):
            base: Loc = ("nodes", nid)
            yield (*base, "url"), node.url
            yield from _webhook_strings(node.body, (*base, "body"))


def _hint(name: str) -> str:
    if name.startswith("user_") and len(name) > 5:
        return f"a profile attribute is read as user.<name> (user.{name[5:]}?)"
    close = get_close_matches(name, SCOPE, n=1, cutoff=0.6)
    if close:
        return f"did you mean {close[0]!r}?"
    return "use event.*, entry.*, user.* or journey.*"


def unknown_template_names(journey: Journey, report: Report) -> None:
    """Warn on every template name outside the render scope."""
    for loc, source in _templates(journey):
        if "{{" not in source and "{%" not in source:
            continue
        try:
            names = compile_template(source).variables
        except TemplateError:
            continue  # reported as a problem by the template rules
        for name in sorted(set(names) - set(SCOPE)):
            report(
                loc,
                f"{where(loc)}: {{{{ {name} }}}} is not a name the engine sets, so it always "
                f"prints nothing: {_hint(name)}",
            )
