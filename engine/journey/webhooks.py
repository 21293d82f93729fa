"""Webhook nodes: the URL allow-list and the ``save`` paths, shared by the linter, the core
and the gateway (each checks with the same functions).

**Allow-list.** A journey's ``settings.webhooks.allow`` lists URL prefixes
(``https://crm.example.com/api/``). A URL is allowed when its scheme and host (port
included) equal a prefix's, and its path starts with the prefix's path at a segment
boundary (``/api`` allows ``/api`` and ``/api/x``, never ``/apix``; ``/api/`` allows
``/api/x``). A URL with credentials (``user@``), a fragment, or a ``.``/``..`` segment (also
percent-encoded) is never allowed. Only ``https``, except plain ``http`` to a loopback host
(``127.0.0.1``, ``localhost``, ``[::1]``): local test servers.

**Save paths.** ``save: {attr: "$.a.b[0]"}`` reads one value of the JSON response: ``$``
then ``.name`` and ``[index]`` steps (names of letters, digits, ``_`` and ``-``), no
wildcards or filters.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from typing import Any
from urllib.parse import unquote, urlsplit

LOOPBACK_HOSTS = frozenset({"127.0.0.1", "localhost", "[::1]", "::1"})
_STEP = re.compile(r"\.([A-Za-z0-9_\-]+)|\[(\d{1,6})\]")


def _host(parts: Any) -> str:
    host = (parts.hostname or "").lower()
    return host if parts.port is None else f"{host}:{parts.port}"


def url_problem(url: str) -> str | None:
    """Why ``url`` can't be a webhook URL at all (None: its form is fine)."""
    try:
        parts = urlsplit(url)
        parts.port  # noqa: B018 - raises ValueError for a bad port
    except ValueError as exc:
        return f"{url!r} is not a URL ({exc})"
    if parts.scheme not in ("https", "http") or not parts.hostname:
        return f"{url!r} is not an absolute http(s) URL"
    if parts.scheme == "http" and (parts.hostname or "").lower() not in LOOPBACK_HOSTS:
        return f"{url!r} is plain http: webhooks go over https (http only to 127.0.0.1/localhost)"
    if "@" in parts.netloc:
        return f"{url!r} carries credentials: put secrets in the gateway's environment"
    if parts.fragment:
        return f"{url!r} has a #fragment: remove it"
    segments = unquote(parts.path).split("/")
    if any(s in (".", "..") for s in segments):
        return f"{url!r} has a . or .. segment"
    return None


def allowed_by(url: str, allow: Iterable[str]) -> str | None:
    """The allow-list entry that allows ``url``, or None (a malformed URL is never allowed)."""
    if url_problem(url) is not None:
        return None
    parts = urlsplit(url)
    for prefix in allow:
        if url_problem(prefix) is not None:
            continue
        p = urlsplit(prefix)
        if p.scheme != parts.scheme or _host(p) != _host(parts):
            continue
        want, path = p.path or "/", parts.path or "/"
        if want.endswith("/"):
            if path.startswith(want) or path + "/" == want:
                return prefix
        elif path == want or path.startswith(want + "/"):
            return prefix
    return None


def refusal(url: str, allow: Iterable[str]) -> str | None:
    """Why ``url`` may not be called with ``allow``: None when it may."""
    problem = url_problem(url)
    if problem is not None:
        return problem
    allow = list(allow)
    if allowed_by(url, allow) is None:
        listed = ", ".join(allow) if allow else "nothing (settings.webhooks.allow is empty)"
        return f"{url!r} is outside the allow-list ({listed})"
    return None


def parse_path(path: str) -> list[str | int]:
    """``$.a.b[0]`` -> ``["a", "b", 0]``; ValueError saying what is wrong."""
    if not path.startswith("$"):
        raise ValueError(f"{path!r} must start with $ (like $.data.id)")
    steps: list[str | int] = []
    at = 1
    while at < len(path):
        m = _STEP.match(path, at)
        if m is None:
            raise ValueError(
                f"{path!r}: can't read {path[at:]!r}; use .name and [index] steps only"
            )
        steps.append(m.group(1) if m.group(1) is not None else int(m.group(2)))
        at = m.end()
    if not steps:
        raise ValueError(f"{path!r} names no field (like $.data.id)")
    return steps


_MISSING = object()


def extract(document: Any, path: str) -> tuple[bool, Any]:
    """(found, value) of ``path`` in a parsed JSON document."""
    value = document
    for step in parse_path(path):
        if isinstance(step, str) and isinstance(value, dict):
            value = value.get(step, _MISSING)
        elif isinstance(step, int) and isinstance(value, list) and step < len(value):
            value = value[step]
        else:
            return False, None
        if value is _MISSING:
            return False, None
    return True, value
