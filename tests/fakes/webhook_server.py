"""A local stand-in for a webhook receiver (a CRM), in the test's process::

    fake = await FakeWebhookServer(secret=b"...").start()   # fake.url("/api/hooks/lead")

Every request to ``/api/...`` (any method):

* must carry a valid ``X-Journeys-Signature`` over ``X-Journeys-Timestamp`` and the body
  (:func:`engine.channels.webhook_call.verify`), else ``401`` (counted, nothing else);
* is counted as a raw call, per ``Idempotency-Key`` (a request without one: ``400``);
* is answered by the script: the rule of the first ``match`` found in the body (a
  substring) gives the statuses of the 1st, 2nd, ... call with that key (the last one
  repeats), ``latency_ms`` delays every answer. Without a rule: ``200``;
* **dedupes by key**, as a careful receiver does: the first 2xx of a key applies the
  "effect" (``effects[key] += 1``) and its answer is kept; later calls with that key get
  the same answer again and apply nothing. A 2xx answers
  ``{"id": "crm-<key>", "tier": <rule's tier or "silver">, "echo": <the request body>}``.

``counts()``: ``raw_calls``, ``calls_per_key``, ``effects`` (per key), ``bad_signatures``,
``bodies`` (key -> the first body), ``methods``.
"""

from __future__ import annotations

import asyncio
import json
import time
from collections import Counter
from dataclasses import dataclass, field
from typing import Any

from aiohttp import web

from engine.channels.webhook_call import (
    IDEMPOTENCY_HEADER,
    SIGNATURE_HEADER,
    TIMESTAMP_HEADER,
    verify,
)


@dataclass
class Rule:
    match: str  # a substring of the request body
    statuses: list[int]  # of the 1st, 2nd, ... call with one key; the last repeats
    tier: str = "silver"


@dataclass
class FakeWebhookServer:
    secret: bytes
    rules: list[Rule] = field(default_factory=list)
    latency_ms: int = 0
    raw_calls: int = 0
    bad_signatures: int = 0
    calls_per_key: Counter[str] = field(default_factory=Counter)
    effects: Counter[str] = field(default_factory=Counter)
    answers: dict[str, tuple[int, dict[str, Any]]] = field(default_factory=dict)
    bodies: dict[str, str] = field(default_factory=dict)
    methods: Counter[str] = field(default_factory=Counter)
    in_flight: int = 0  # requests being answered (latency_ms) right now
    port: int = 0
    _runner: web.AppRunner | None = None

    def url(self, path: str = "/api/hooks") -> str:
        return f"http://127.0.0.1:{self.port}{path}"

    async def start(self) -> FakeWebhookServer:
        app = web.Application()
        app.router.add_route("*", "/api/{tail:.*}", self._handle)
        self._runner = web.AppRunner(app, access_log=None)
        await self._runner.setup()
        site = web.TCPSite(self._runner, "127.0.0.1", 0)
        await site.start()
        server = site._server
        assert server is not None
        self.port = server.sockets[0].getsockname()[1]  # type: ignore[attr-defined]
        return self

    async def stop(self) -> None:
        if self._runner is not None:
            await self._runner.cleanup()

    def _rule(self, body: str) -> Rule | None:
        return next((r for r in self.rules if r.match in body), None)

    async def _handle(self, request: web.Request) -> web.Response:
        body = await request.read()
        ok = verify(
            self.secret,
            request.headers.get(TIMESTAMP_HEADER),
            request.headers.get(SIGNATURE_HEADER),
            body,
            now_s=time.time(),
        )
        if not ok:
            self.bad_signatures += 1
            return web.json_response({"error": "bad signature"}, status=401)
        key = request.headers.get(IDEMPOTENCY_HEADER)
        if not key:
            return web.json_response({"error": "no Idempotency-Key"}, status=400)
        self.raw_calls += 1
        self.calls_per_key[key] += 1
        self.methods[request.method] += 1
        text = body.decode()
        self.bodies.setdefault(key, text)
        if self.latency_ms:
            self.in_flight += 1
            try:
                await asyncio.sleep(self.latency_ms / 1000)
            finally:
                self.in_flight -= 1
        if key in self.answers:  # dedupe: the same answer, no second effect
            status, payload = self.answers[key]
            return web.json_response(payload, status=status)
        rule = self._rule(text)
        statuses = rule.statuses if rule is not None else [200]
        status = statuses[min(self.calls_per_key[key], len(statuses)) - 1]
        if 200 <= status < 300:
            echo = json.loads(text) if text else None
            tier = rule.tier if rule is not None else "silver"
            payload = {"id": f"crm-{key[:8]}", "tier": tier, "echo": echo}
            self.effects[key] += 1
            self.answers[key] = (status, payload)
            return web.json_response(payload, status=status)
        return web.json_response({"error": f"scripted {status}"}, status=status)

    def counts(self) -> dict[str, Any]:
        return {
            "raw_calls": self.raw_calls,
            "calls_per_key": dict(self.calls_per_key),
            "effects": dict(self.effects),
            "bad_signatures": self.bad_signatures,
            "bodies": dict(self.bodies),
            "methods": dict(self.methods),
        }
