"""The HTTP side of ``journeys ingest``: Segment's ``/v1/*`` endpoints on aiohttp.

Every answer is JSON. The order of the checks matters:

1. the body is read up to the endpoint's limit (32 KB a call, 500 KB a batch; gzip is
   undone first by aiohttp);
2. the write key (HTTP Basic username, else ``writeKey`` in the body) must be one of the
   configured ones, else **401** and nothing is written anywhere (an unknown sender can't
   fill the dead-letter topic);
3. a body past the limit: **413**; not JSON, or a call that can't be mapped: **400** whose
   ``reason`` / ``error`` say what is wrong. Both leave a dead letter (stage ``ingest``,
   the path as its topic, the body with the write key blanked out);
4. the user events go to the broker and the **200** goes back once it has acknowledged
   every one of them (and the dead letters of a batch's bad items). A broker that fails:
   **503** with ``Retry-After``, which Segment and RudderStack retry; a retried call is
   the same event (its ``messageId``), which the engine sees once.

A batch is answered 200 when the body is a batch: its bad items are dead-lettered one by
one and listed in the answer's ``rejected``, the others are produced.
"""

from __future__ import annotations

import asyncio
import base64
import binascii
import logging
import time
from collections.abc import Awaitable, Callable
from typing import Any, Protocol

import orjson
from aiohttp import web
from prometheus_client import CollectorRegistry, Counter, generate_latest

from engine.core import wire
from engine.errors import InputError
from engine.stream.common.logs import event
from engine.stream.common.settings import Settings
from engine.stream.ingest import segment
from engine.stream.ingest.config import IngestConfig

log = logging.getLogger("engine.stream.ingest")

#: The types with an endpoint of their own (``POST /v1/<type>``).
CALL_TYPES = segment.MAPPED_TYPES + segment.IGNORED_TYPES
RETRY_AFTER_S = 5
STAGE = "ingest"
METRICS_CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"


class Sink(Protocol):
    """Where records go. ``enqueue`` hands one over and returns what to await for the
    broker's acknowledgement (aiokafka's ``send``), so a batch waits for all at once."""

    async def enqueue(self, topic: str, key: bytes | None, value: bytes) -> Awaitable[Any]: ...


class IngestMetrics:
    """Prometheus counters, on a registry of their own."""

    def __init__(self) -> None:
        r = self.registry = CollectorRegistry()
        self.requests = Counter(
            "journeys_ingest_requests", "HTTP calls by path and status", ["path", "status"],
            registry=r,
        )  # fmt: skip
        self.records = Counter(
            "journeys_ingest_records", "User events produced, by call type", ["type"], registry=r
        )
        self.ignored = Counter(
            "journeys_ingest_ignored", "Valid calls the engine does not use, by type", ["type"],
            registry=r,
        )  # fmt: skip
        self.rejected = Counter(
            "journeys_ingest_rejected", "Calls (or batch items) dead-lettered, by reason",
            ["reason"], registry=r,
        )  # fmt: skip

    def exposition(self) -> bytes:
        return bytes(generate_latest(self.registry))


def wall_ms() -> int:
    return time.time_ns() // 1_000_000


def basic_username(header: str) -> str | None:
    """The username of an ``Authorization: Basic`` header (the write key; the password is
    empty, or anything: RudderStack's docs show both), None when it isn't one."""
    scheme, _, encoded = header.strip().partition(" ")
    if scheme.lower() != "basic" or not encoded.strip():
        return None
    try:
        decoded = base64.b64decode(encoded.strip(), validate=True).decode()
    except (binascii.Error, UnicodeDecodeError):
        return None
    return decoded.partition(":")[0]  # no colon: the whole is the key (Segment accepts it)


def _answer(status: int, body: dict[str, Any], **headers: str) -> web.Response:
    return web.Response(
        status=status, body=orjson.dumps(body), content_type="application/json", headers=headers
    )


def _refusal(status: int, reason: str, message: str, **headers: str) -> web.Response:
    return _answer(status, {"success": False, "reason": reason, "error": message}, **headers)


class _Unauthorized(Exception):
    pass


class IngestServer:
    def __init__(
        self,
        settings: Settings,
        config: IngestConfig,
        sink: Sink,
        *,
        clock: Callable[[], int] = wall_ms,
        metrics: IngestMetrics | None = None,
    ) -> None:
        self.settings = settings
        self.config = config
        self.sink = sink
        self.clock = clock
        self.metrics = metrics or IngestMetrics()
        self.events_topic = settings.topics.user_events
        self.dead_letter_topic = settings.topics.dead_letters

    def app(self) -> web.Application:
        # Bodies are read by hand up to each endpoint's limit: the default cap stays unused.
        app = web.Application(middlewares=[self._count])
        for kind in CALL_TYPES:
            app.router.add_post(f"/v1/{kind}", self._call_handler(kind))
        app.router.add_post("/v1/batch", self._batch)
        app.router.add_post("/v1/import", self._batch)  # Segment's older name for batch
        app.router.add_post("/v1/webhook", self._call_handler(None))  # type from the body
        app.router.add_get("/healthz", self._healthz)
        app.router.add_get("/metrics", self._metrics)
        return app

    # ------------------------------------------------------------------ plumbing

    @web.middleware
    async def _count(self, request: web.Request, handler: Any) -> web.StreamResponse:
        path = (
            request.match_info.route.resource.canonical
            if request.match_info.route.resource
            else "other"
        )
        try:
            response: web.StreamResponse = await handler(request)
        except web.HTTPException as exc:
            self.metrics.requests.labels(path, str(exc.status)).inc()
            raise
        self.metrics.requests.labels(path, str(response.status)).inc()
        return response

    async def _read(self, request: web.Request, limit: int) -> tuple[bytes, bool]:
        """The body, up to ``limit`` bytes (after gzip), and whether it went past them."""
        chunks: list[bytes] = []
        size = 0
        while size <= limit:
            chunk = await request.content.read(limit + 1 - size)
            if not chunk:
                break
            chunks.append(chunk)
            size += len(chunk)
        raw = b"".join(chunks)
        return raw[:limit], size > limit

    def _authenticate(self, request: web.Request, body: Any) -> None:
        """The HTTP Basic username, or the body's ``writeKey`` (Segment's OAuth senders put
        it there next to a Bearer token), must be a configured key."""
        header = request.headers.get("Authorization")
        given = basic_username(header) if header is not None else None
        in_body = body.get("writeKey") if isinstance(body, dict) else None
        keys = self.config.keys
        if not (keys.accepts(given) or (isinstance(in_body, str) and keys.accepts(in_body))):
            raise _Unauthorized

    def _unauthorized(self) -> web.Response:
        return _refusal(
            401,
            "unauthorized",
            "missing or unknown write key: send it as the HTTP Basic username with an empty "
            "password (or as writeKey in the JSON body)",
            **{"WWW-Authenticate": 'Basic realm="journeys ingest"'},
        )

    def _dead_letter(
        self, reason: str, detail: str, path: str, key: bytes | None, raw: bytes, at: int
    ) -> bytes:
        self.metrics.rejected.labels(reason).inc()
        event(
            log, "ingest_rejected", logging.WARNING, reason=reason, detail=detail[:300], path=path
        )
        return wire.dead_letter(
            reason=reason,
            detail=detail,
            stage=STAGE,
            topic=path,
            partition=-1,
            offset=-1,
            key=key,
            value=self.config.keys.redact(raw),
            dead_lettered_at=at,
            timestamp_ms=at,
        )

    async def _deliver(self, records: list[tuple[str, bytes | None, bytes]]) -> web.Response | None:
        """Produce and wait for every acknowledgement; a 503 when the broker fails."""
        try:
            acks = [await self.sink.enqueue(topic, key, value) for topic, key, value in records]
            await asyncio.gather(*acks)
        except Exception as exc:  # any producer failure: the sender retries the whole call
            event(log, "ingest_kafka_failed", logging.ERROR, error=repr(exc)[:300])
            return _refusal(
                503,
                "kafka_unavailable",
                "the broker did not acknowledge the records: retry later",
                **{"Retry-After": str(RETRY_AFTER_S)},
            )
        return None

    async def _refuse_call(
        self,
        status: int,
        reason: str,
        message: str,
        path: str,
        key: bytes | None,
        raw: bytes,
        at: int,
    ) -> web.Response:
        """Dead-letter the call, then say why (once the dead letter is acknowledged)."""
        failed = await self._deliver(
            [(self.dead_letter_topic, key, self._dead_letter(reason, message, path, key, raw, at))]
        )
        return failed or _refusal(status, reason, message)

    # ------------------------------------------------------------------ endpoints

    def _call_handler(self, kind: str | None) -> Callable[[web.Request], Awaitable[web.Response]]:
        async def handle(request: web.Request) -> web.Response:
            return await self._call(request, kind)

        return handle

    async def _parse(
        self, request: web.Request, limit: int
    ) -> tuple[bytes, Any, web.Response | None, int]:
        """Read, authenticate and parse a body: (raw, JSON or None, a refusal or None, now)."""
        at = self.clock()
        path = request.path
        raw, oversized = await self._read(request, limit)
        body: Any = None
        bad_json: str | None = None
        if not oversized:
            try:
                body = orjson.loads(raw)
            except orjson.JSONDecodeError as exc:
                bad_json = str(exc)
        try:
            self._authenticate(request, body)
        except _Unauthorized:
            return raw, None, self._unauthorized(), at
        if oversized:
            msg = f"the body is over {limit} bytes, Segment's limit for this call"
            return (
                raw,
                None,
                await self._refuse_call(413, "oversized", msg, path, None, raw, at),
                at,
            )
        if bad_json is not None:
            msg = f"the body is not JSON: {bad_json}"
            return raw, None, await self._refuse_call(400, "bad_json", msg, path, None, raw, at), at
        return raw, body, None, at

    async def _call(self, request: web.Request, kind: str | None) -> web.Response:
        raw, body, refusal, at = await self._parse(request, segment.MAX_CALL_BYTES)
        if refusal is not None:
            return refusal
        try:
            mapped = segment.map_call(
                body,
                kind,
                received_at=at,
                window=self.settings.ts_window(at),
                profile_event=self.config.profile_event,
            )
        except InputError as exc:
            return await self._refuse_call(
                400, exc.reason, exc.detail, request.path, _user_key(body), raw, at
            )
        if isinstance(mapped, segment.Ignored):
            self.metrics.ignored.labels(mapped.kind).inc()
            return _answer(200, {"success": True, "ignored": mapped.kind})
        failed = await self._deliver([(self.events_topic, mapped.key, mapped.value)])
        if failed is not None:
            return failed
        self.metrics.records.labels(mapped.kind).inc()
        return _answer(200, {"success": True})

    async def _batch(self, request: web.Request) -> web.Response:
        raw, body, refusal, at = await self._parse(request, segment.MAX_BATCH_BYTES)
        if refusal is not None:
            return refusal
        path = request.path
        try:
            calls = segment.batch(body)
        except InputError as exc:
            return await self._refuse_call(400, exc.reason, exc.detail, path, None, raw, at)
        window = self.settings.ts_window(at)
        out: list[tuple[str, bytes | None, bytes]] = []
        produced: list[str] = []
        ignored: list[str] = []
        rejected: list[dict[str, Any]] = []
        for index, item in enumerate(calls.items):
            try:
                size = segment.item_size(item)
                if size > segment.MAX_CALL_BYTES:
                    raise InputError(
                        "oversized", f"{size} bytes; Segment's limit is {segment.MAX_CALL_BYTES}"
                    )
                mapped = segment.map_call(
                    item,
                    None,
                    received_at=at,
                    window=window,
                    profile_event=self.config.profile_event,
                    batch_context=calls.context,
                    batch_sent_at=calls.sent_at,
                )
            except InputError as exc:
                key = _user_key(item)
                detail = f"batch item {index}: {exc.detail}"
                item_raw = orjson.dumps(item)
                out.append(
                    (
                        self.dead_letter_topic,
                        key,
                        self._dead_letter(exc.reason, detail, path, key, item_raw, at),
                    )
                )
                rejected.append({"index": index, "reason": exc.reason, "error": exc.detail})
                continue
            if isinstance(mapped, segment.Ignored):
                ignored.append(mapped.kind)
            else:
                out.append((self.events_topic, mapped.key, mapped.value))
                produced.append(mapped.kind)
        failed = await self._deliver(out)
        if failed is not None:
            return failed
        for kind in produced:
            self.metrics.records.labels(kind).inc()
        for kind in ignored:
            self.metrics.ignored.labels(kind).inc()
        return _answer(
            200,
            {
                "success": True,
                "accepted": len(produced),
                "ignored": len(ignored),
                "rejected": rejected,
            },
        )

    async def _healthz(self, request: web.Request) -> web.Response:
        return _answer(200, {"status": "ok"})

    async def _metrics(self, request: web.Request) -> web.Response:
        return web.Response(
            body=self.metrics.exposition(), headers={"Content-Type": METRICS_CONTENT_TYPE}
        )


def _user_key(msg: Any) -> bytes | None:
    """The dead letter's key: the call's userId when it has a usable one."""
    user = msg.get("userId") if isinstance(msg, dict) else None
    return (
        str(user).encode()
        if isinstance(user, str | int) and not isinstance(user, bool) and str(user)
        else None
    )
