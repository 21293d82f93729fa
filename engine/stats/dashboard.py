"""The web side of the stats service: JSON API, Prometheus metrics and the live dashboard.

The journey graph is drawn on the server by :func:`engine.journey.graph.render` with counts
on every node, a band behind every arrow as wide as the share of users who took it, and
their number by the arrowhead (``/journeys/{id}/graph.svg``). A page embeds its first data
and the graph; its script (``static/dashboard.js``) renders KPI tiles, a funnel, bar charts
of sends and conversions, split variants with their 95% intervals (and a small-sample
warning), the lift over the journey's holdout and over the global control group (with
their 95% intervals) and a table of every step (users reached, per-channel counts,
opt-outs, deferrals, suppressions: the figures of ``journeys stats``), then refreshes
everything from the JSON API every few seconds. Markup, style and script are in
``static/``; nothing is loaded from the network.

The user search (``/users?id=...``, the box in every page's header) shows what ``journeys
explain`` prints for one user: their timeline with the core's reasons, the journeys they
did not enter, the messages they did not get, where they are now
(``/api/users/{id}``, read from the user's partition of the topics: :mod:`engine.explain`).
"""

from __future__ import annotations

import html
import re
from functools import cache
from importlib.resources import files
from string import Template
from typing import Any, Protocol

import orjson
from aiohttp import web

from engine.journey.diagram import ENTRY_ID
from engine.journey.graph import render
from engine.journey.model import Journey
from engine.stats.aggregate import Metric, format_prometheus, has_goal
from engine.stats.catalog import Catalog
from engine.stats.windows import BUCKETS, WindowStats


class PageSettings(Protocol):
    """The settings a page shows (:class:`engine.stats.service.ServiceConfig` has them)."""

    @property
    def topic(self) -> str: ...
    @property
    def refresh_s(self) -> float: ...


class ServiceView(Protocol):
    """What the pages read from the running stats service
    (:class:`engine.stats.service.StatsService`, which starts this app): a protocol, so
    that the web side does not import the service back."""

    @property
    def cfg(self) -> PageSettings: ...
    @property
    def stats(self) -> WindowStats: ...
    @property
    def catalog(self) -> Catalog: ...
    @property
    def health(self) -> dict[str, Any]: ...
    async def explain_user(self, user_id: str, journey: str | None) -> dict[str, Any]:
        """The ``journeys explain`` report of one user, from Kafka."""
        ...


SEND_LINES = (
    "sent", "delivered", "reached", "read", "clicked", "replied", "sms_fallback", "failed",
    "opted_out", "deferred",
)  # fmt: skip
POINTS = {"hour": 48, "day": 60}


def journey_list(stats: WindowStats, catalog: Catalog) -> list[dict[str, Any]]:
    out = []
    for jid in catalog.ids(stats):
        versions = catalog.versions(jid, stats)
        summary = stats.summary(jid, versions[-1])
        out.append({**summary, "name": catalog.name(jid), "versions": versions})
    return out


def global_control(stats: WindowStats, catalog: Catalog) -> dict[str, Any] | None:
    """The lift of all journeys over the global control group (:mod:`engine.stats.lift`)."""
    return stats.global_control(lambda j, v: has_goal(catalog.journeys.get(j, {}).get(v)))


def journey_report(
    stats: WindowStats, catalog: Catalog, jid: str, version: int | None = None
) -> dict[str, Any] | None:
    """One version of a journey (default: the newest), or None when there is no such one."""
    versions = catalog.versions(jid, stats)
    if not versions or (version is not None and version not in versions):
        return None
    ver = versions[-1] if version is None else version
    journey = catalog.journeys.get(jid, {}).get(ver)
    head = {"journey_id": jid, "name": catalog.name(jid), "version": ver, "versions": versions}
    return {**head, "defined": journey is not None, **stats.report(jid, ver, journey)}


# --------------------------------------------------------------------------- the graph


def graph_counts(journey: Journey, report: dict[str, Any]) -> dict[str, dict[str, int]]:
    """The figures drawn under each box: entered, and for sends what became of them."""
    s = report["summary"]
    counts = {ENTRY_ID: {"entered": s["entered"]}}
    if journey.goal is not None or s["converted"]:
        counts[ENTRY_ID]["converted"] = s["converted"]
    if report.get("holdout"):
        counts[ENTRY_ID]["held out"] = report["holdout"]["holdout"]["users"]
    for nid, node in journey.nodes.items():
        row = report["nodes"].get(nid, {})
        c = {"entered": row.get("entered", 0)}
        if node.type == "send":
            # sent: sends (an SMS fallback is its RCS send's, drawn as sms_fallback)
            figures = {**row, "sent": row["sends"], "sms_fallback": row["fallback"]}
            c.update((k, figures[k]) for k in SEND_LINES if figures[k] or k == "sent")
            c.update((f"held back: {k}", n) for k, n in row["suppressed"].items())
        if node.type == "webhook":
            c.update(called=row.get("webhook_called", 0), failed=row.get("webhook_failed", 0))
        for name, v in report["splits"].get(nid, {}).get("variants", {}).items():
            c[f"variant {name}"] = v["users"]
        counts[nid] = c
    return counts


_EDGE = re.compile(
    r'<g class="edge( back)?" data-source="([^"]*)" data-target="([^"]*)">(<path d="([^"]*)")'
)
_LAST_POINT = re.compile(r"(-?[\d.]+),(-?[\d.]+)\s*$")


def graph_svg(journey: Journey, report: dict[str, Any]) -> str:
    """The journey drawn with live counts; behind each arrow a band as wide as the share of
    users who took it, and their number by the arrowhead."""
    svg = render(journey, "svg", counts=graph_counts(journey, report))
    users = {(e["source"], e["target"]): e["users"] for e in report["edges"]}
    top = max(users.values(), default=0)
    labels: list[str] = []

    def widen(m: re.Match[str]) -> str:
        n = users.get((html.unescape(m[2]), html.unescape(m[3])), 0)
        end = _LAST_POINT.search(m[5])
        band = ""
        if n and end:
            band = (
                f'<path class="flow" d="{m[5]}" fill="none" stroke="#90caf9" '
                f'stroke-opacity="0.55" stroke-width="{2 + 14 * n / top:.1f}"/>'
            )
            labels.append(
                f'<text class="edge-count" x="{float(end[1]) + 7:.1f}" y="{float(end[2]) - 7:.1f}" '
                f'font-size="11" font-weight="bold" fill="#0d47a1" stroke="#ffffff" '
                f'stroke-width="3" paint-order="stroke">{n:,}</text>'
            )
        return (
            f'<g class="edge{m[1] or ""}" data-source="{m[2]}" data-target="{m[3]}" '
            f'data-users="{n}"><title>{n:,} users took this path</title>{band}{m[4]}'
        )

    svg = _EDGE.sub(widen, svg)
    return svg.replace("</svg>", "".join(labels) + "</svg>", 1)


# --------------------------------------------------------------------------- pages


@cache
def _asset(name: str) -> str:
    return (files("engine.stats") / "static" / name).read_text(encoding="utf-8")


def _json_bytes(data: Any) -> bytes:
    return orjson.dumps(data, option=orjson.OPT_NON_STR_KEYS)


def page(svc: ServiceView, main: str, initial: dict[str, Any], **body: object) -> str:
    """A whole page: the ``main`` markup, the data it starts with (the page script renders
    it, then refreshes it from the JSON API every few seconds)."""
    data = _json_bytes({**initial, "health": svc.health}).decode().replace("</", "<\\/")
    attrs = {"refresh-ms": int(svc.cfg.refresh_s * 1000), **body}
    return Template(_asset("page.html")).substitute(
        title=html.escape(str(initial.get("name") or "Journeys")),
        css=_asset("dashboard.css"),
        js=_asset("dashboard.js"),
        body_attrs=" ".join(f'data-{k}="{html.escape(str(v))}"' for k, v in attrs.items()),
        main=main,
        initial=data,
        topic=html.escape(svc.cfg.topic),
        refresh_s=f"{svc.cfg.refresh_s:g}",
    )


# --------------------------------------------------------------------------- metrics

HEALTH_METRICS = (  # name, type, section and key in /api/health, help
    ("journeys_stats_consumer_lag", "gauge", "stats", "lag", "Outcomes not yet read here."),
    ("journeys_engine_consumer_lag", "gauge", "engine", "lag", "Lag of the engine's group."),
    ("journeys_events_per_second", "gauge", "engine", "events_per_second", "User events/s."),
    ("journeys_outcomes_per_second", "gauge", "engine", "outcomes_per_second", "Outcomes/s."),
    ("journeys_pending_timers", "gauge", "engine", "pending_timers", "Timers pending."),
    ("journeys_dead_letters_total", "counter", "engine", "dead_letters", "Dead letters."),
)


def metrics_text(svc: ServiceView) -> str:
    """Outcome counters and the health figures in the Prometheus text format."""
    s, h = svc.stats, svc.health
    per_journey: list[tuple[dict[str, Any], float | int | None]] = [
        ({"journey_id": j, "version": v, "type": t}, n)
        for j, v in s.journeys()
        for t, n in sorted(s.journey_totals(j, v).items())
        if ":" not in t and "+" not in t
    ]
    metrics: list[Metric] = [
        (
            "journeys_outcomes_total",
            "counter",
            "Outcomes counted (deduplicated), by type.",
            [({"type": t}, n) for t, n in sorted(s.by_type.items())],
        ),
        (
            "journeys_journey_outcomes_total",
            "counter",
            "Outcomes by journey version, type.",
            per_journey,
        ),
        ("journeys_stats_duplicates_total", "counter", "Duplicates skipped.", [({}, s.duplicates)]),
        ("journeys_stats_invalid_total", "counter", "Not outcomes.", [({}, s.invalid)]),
        (
            "journeys_stats_up",
            "gauge",
            "1 when the stats service reads its topic.",
            [({}, int(h.get("status") == "ok"))],
        ),
    ]
    for name, kind, section, key, help_ in HEALTH_METRICS:
        metrics.append((name, kind, help_, [({}, h.get(section, {}).get(key))]))
    return format_prometheus(metrics)


# --------------------------------------------------------------------------- the app


def _json(data: Any) -> web.Response:
    return web.Response(body=_json_bytes(data), content_type="application/json")


def _query(request: web.Request) -> tuple[int | None, str]:
    raw, bucket = request.query.get("version", ""), request.query.get("bucket", "hour")
    if bucket not in BUCKETS:
        raise web.HTTPBadRequest(
            text='{"error": "bucket must be hour or day"}', content_type="application/json"
        )
    return (int(raw) if raw.isdigit() else None), bucket


def make_app(svc: ServiceView) -> web.Application:
    def report(request: web.Request) -> dict[str, Any]:
        jid = request.match_info["id"]
        found = journey_report(svc.stats, svc.catalog, jid, _query(request)[0])
        if found is None:
            raise web.HTTPNotFound(
                text=_json_bytes({"error": f"no journey {jid!r}"}).decode(),
                content_type="application/json",
            )
        return found

    def series(request: web.Request) -> dict[str, Any]:
        jid, (version, bucket) = request.match_info["id"], _query(request)
        report(request)  # 404 for an unknown journey
        points = svc.stats.series(jid, bucket, version=version, points=POINTS[bucket])
        return {"journey_id": jid, "version": version, "bucket": bucket, "points": points}

    async def api_journeys(request: web.Request) -> web.Response:
        return _json(
            {
                "journeys": journey_list(svc.stats, svc.catalog),
                "global_control": global_control(svc.stats, svc.catalog),
            }
        )

    async def api_journey(request: web.Request) -> web.Response:
        return _json(report(request))

    async def api_series(request: web.Request) -> web.Response:
        return _json(series(request))

    async def api_health(request: web.Request) -> web.Response:
        return _json(svc.health)

    async def metrics(request: web.Request) -> web.Response:
        ctype = "text/plain; version=0.0.4; charset=utf-8"
        return web.Response(body=metrics_text(svc).encode(), headers={"Content-Type": ctype})

    async def graph(request: web.Request) -> web.Response:
        r = report(request)
        journey = svc.catalog.journeys.get(r["journey_id"], {}).get(r["version"])
        if journey is None:
            raise web.HTTPNotFound(text="no journey file for this version")
        return web.Response(text=graph_svg(journey, r), content_type="image/svg+xml")

    async def user_report(request: web.Request, user_id: str) -> dict[str, Any]:
        journey = request.query.get("journey") or None
        if not user_id.strip():
            raise web.HTTPBadRequest(
                text='{"error": "name a user id"}', content_type="application/json"
            )
        return await svc.explain_user(user_id.strip(), journey)

    async def api_user(request: web.Request) -> web.Response:
        return _json(await user_report(request, request.match_info["id"]))

    async def user(request: web.Request) -> web.Response:
        user_id = request.query.get("id", "").strip()
        initial: dict[str, Any] = {"name": f"User {user_id}" if user_id else "Users"}
        if user_id:
            initial["user"] = await user_report(request, user_id)
        main = Template(_asset("user.html")).substitute(user=html.escape(user_id))
        text = page(svc, main, initial, page="user", user=user_id)
        return web.Response(text=text, content_type="text/html")

    async def index(request: web.Request) -> web.Response:
        journeys = journey_list(svc.stats, svc.catalog)
        initial = {
            "journeys": journeys,
            "problems": svc.catalog.problems,
            "global_control": global_control(svc.stats, svc.catalog),
        }
        text = page(svc, _asset("index.html"), initial, page="index")
        return web.Response(text=text, content_type="text/html")

    async def journey(request: web.Request) -> web.Response:
        r, s = report(request), series(request)
        journey = svc.catalog.journeys.get(r["journey_id"], {}).get(r["version"])
        drawn = (
            graph_svg(journey, r)
            if journey
            else '<div class="empty">No file for this version</div>'
        )
        main = Template(_asset("journey.html")).substitute(name=html.escape(r["name"]), graph=drawn)
        text = page(
            svc,
            main,
            {**r, "series": s},
            page="journey",
            journey=r["journey_id"],
            version=r["version"],
            bucket=s["bucket"],
            defined=int(journey is not None),
        )
        return web.Response(text=text, content_type="text/html")

    app = web.Application()
    for path, handler in (
        ("/api/journeys", api_journeys),
        ("/api/journeys/{id}", api_journey),
        ("/api/journeys/{id}/timeseries", api_series),
        ("/api/health", api_health),
        ("/api/users/{id}", api_user),
        ("/users", user),
        ("/metrics", metrics),
        ("/", index),
        ("/journeys/{id}", journey),
        ("/journeys/{id}/graph.svg", graph),
    ):
        app.router.add_get(path, handler)
    return app
