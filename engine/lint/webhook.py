"""Linter rules of webhook nodes (docs/journeys.md, "webhook").

* ``settings.webhooks.allow``: each entry a valid https URL prefix (http only to a
  loopback host); a journey with a webhook node lists at least one;
* ``url``: inside the allow-list. Liquid may fill the path or query, never the scheme or
  host: the part before the first ``{{``/``{%`` must already name the host and be allowed
  (the runtime checks the rendered URL again);
* ``body``: its templates parse, and a body written as one string renders to JSON with no
  data at all (a missing value must not break the JSON: quote it, or give a ``default``);
* ``save``: attribute names and ``$.a.b[0]`` paths that parse.

``on_failure`` is required by the model (a missing one is reported with its line).
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable
from typing import Any

from engine.errors import TemplateError
from engine.journey.loader import Loc
from engine.journey.model import Journey, WebhookNode
from engine.journey.templates import Template
from engine.journey.webhooks import allowed_by, parse_path, refusal, url_problem

Add = Callable[[Loc, str], None]
CompileTemplate = Callable[[str], Template | TemplateError]
_ATTR = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")
_MARKUP = re.compile(r"\{\{|\{%")
#: what a body renders with to check it is JSON whatever the data: nothing at all
EMPTY_SCOPE: dict[str, Any] = {"event": {}, "entry": {}, "user": {}, "journey": {}}


def _strings(value: Any, loc: Loc) -> list[tuple[Loc, str]]:
    if isinstance(value, str):
        return [(loc, value)]
    if isinstance(value, dict):
        return [s for k, v in value.items() for s in _strings(v, (*loc, k))]
    if isinstance(value, list):
        return [s for i, v in enumerate(value) for s in _strings(v, (*loc, i))]
    return []


def _url(nid: str, node: WebhookNode, allow: list[str], add: Add) -> None:
    loc: Loc = ("nodes", nid, "url")
    m = _MARKUP.search(node.url)
    if m is None:
        why = refusal(node.url, allow)
        if why is not None:
            add(loc, f"webhook url: {why}: add its prefix to settings.webhooks.allow or fix it")
        return
    fixed = node.url[: m.start()]
    scheme_host = re.match(r"^[a-z]+://[^/?#]+[/?]", fixed)
    if scheme_host is None:
        add(loc, "webhook url: Liquid may fill the path or query only: write the scheme and "
                 "host as text (https://host/...)")  # fmt: skip
        return
    if url_problem(fixed) is not None or allowed_by(fixed, allow) is None:
        listed = ", ".join(allow) or "nothing"
        add(loc, f"webhook url: {fixed!r}... is outside the allow-list ({listed}): add its "
                 "prefix to settings.webhooks.allow")  # fmt: skip


def _body(nid: str, node: WebhookNode, template: CompileTemplate, add: Add) -> None:
    base: Loc = ("nodes", nid, "body")
    for loc, source in _strings(node.body, base):
        if isinstance(template(source), TemplateError):
            t = template(source)
            assert isinstance(t, TemplateError)
            add(loc, f"webhook body: {t.message}: fix the Liquid template")
            return
    if isinstance(node.body, str):
        t = template(node.body)
        assert not isinstance(t, TemplateError)
        try:
            json.loads(t.render(EMPTY_SCOPE))
        except TemplateError as exc:
            add(base, f"webhook body: cannot render: {exc.message}")
        except ValueError as exc:
            add(
                base,
                f"webhook body doesn't render to JSON when values are missing ({exc}): "
                "quote each value, give it a default, or write the body as a mapping",
            )


def _save(nid: str, node: WebhookNode, add: Add) -> None:
    for attr, path in node.save.items():
        loc: Loc = ("nodes", nid, "save", attr)
        if not _ATTR.match(attr):
            add(loc, f"webhook save: {attr!r} is not an attribute name (letters, digits, _)")
        try:
            parse_path(path)
        except ValueError as exc:
            add(loc, f"webhook save: {exc}")


def webhook_problems(journey: Journey, template: CompileTemplate, add: Add) -> None:
    hooks = journey.settings.webhooks
    allow = [] if hooks is None else list(hooks.allow)
    for i, prefix in enumerate(allow):
        why = url_problem(prefix)
        if why is not None:
            add(("settings", "webhooks", "allow", i), f"webhooks.allow: {why}")
    nodes = [(nid, n) for nid, n in journey.nodes.items() if isinstance(n, WebhookNode)]
    if nodes and not allow:
        add(("nodes", nodes[0][0], "url"), "webhook nodes need settings.webhooks.allow: list "
            "the URL prefixes they may call (https://host/path/)")  # fmt: skip
    for nid, node in nodes:
        if isinstance(template(node.url), TemplateError):
            add(("nodes", nid, "url"), "webhook url: the Liquid template doesn't parse")
        else:
            _url(nid, node, allow, add)
        _body(nid, node, template, add)
        _save(nid, node, add)
