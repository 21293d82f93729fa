"""The gateway's webhook caller: one :class:`~engine.core.effects.WebhookRequest` becomes
HTTP calls, signed, with an idempotency key, under the gateway's retry policy.

Every attempt carries:

* ``Idempotency-Key: <action_id>``: the same for every attempt and after a restart, so a
  receiver that dedupes on it sees one effect per call (docs/providers.md);
* ``X-Journeys-Timestamp: <unix seconds>`` and
  ``X-Journeys-Signature: v1=<hex HMAC-SHA256 of "<timestamp>.<body>">``, keyed with
  ``JOURNEYS_WEBHOOK_SECRET`` (or the file named by ``JOURNEYS_WEBHOOK_SECRET_FILE``);
* ``Content-Type: application/json`` when there is a body, and the node's own headers.

Retries (:class:`~engine.channels.ratelimit.RetryPolicy`, 5 attempts): 5xx, 408, 429
(``Retry-After`` honoured), timeouts and connection failures are tried again with
backoff and jitter; any other answer is final (2xx ``called``; 3xx and 4xx ``rejected``:
redirects are never followed, so a redirect can't leave the allow-list). Before any call,
the URL is checked again against the journey's allow-list (carried on the request) and,
when set, the deployment's ``JOURNEYS_WEBHOOK_ALLOW``.
"""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import random
import time
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Final

import aiohttp

from engine.channels.providers.http import retry_after_s
from engine.channels.ratelimit import RetryPolicy
from engine.channels.webhook_answers import answered, is_retryable, not_made
from engine.core.effects import WebhookRequest
from engine.core.inputs import WebhookResult
from engine.errors import ConfigError
from engine.journey.webhooks import allowed_by, refusal

SECRET_VAR: Final = "JOURNEYS_WEBHOOK_SECRET"
SECRET_FILE_VAR: Final = "JOURNEYS_WEBHOOK_SECRET_FILE"
ALLOW_VAR: Final = "JOURNEYS_WEBHOOK_ALLOW"
IDEMPOTENCY_HEADER: Final = "Idempotency-Key"
TIMESTAMP_HEADER: Final = "X-Journeys-Timestamp"
SIGNATURE_HEADER: Final = "X-Journeys-Signature"
USER_AGENT: Final = "journeys-gateway"
#: what a receiver should accept between the timestamp and its clock (docs/providers.md)
SIGNATURE_TOLERANCE_S: Final = 300


def sign(secret: bytes, timestamp: int, body: bytes) -> str:
    """The ``X-Journeys-Signature`` value of ``body`` sent at ``timestamp``."""
    mac = hmac.new(secret, str(timestamp).encode() + b"." + body, hashlib.sha256)
    return "v1=" + mac.hexdigest()


def verify(
    secret: bytes,
    timestamp: str | None,
    signature: str | None,
    body: bytes,
    *,
    now_s: float,
    tolerance_s: float = SIGNATURE_TOLERANCE_S,
) -> bool:
    """What a receiver does: a fresh timestamp and a matching signature (constant time)."""
    if not timestamp or not signature or not timestamp.isdigit():
        return False
    if abs(now_s - int(timestamp)) > tolerance_s:
        return False
    return hmac.compare_digest(sign(secret, int(timestamp), body), signature)


def secret_from_env(env: Mapping[str, str]) -> bytes | None:
    """The signing secret, or None when neither variable is set; ConfigError when both
    are, or the file can't be read or is empty (never showing the secret)."""
    value, path = env.get(SECRET_VAR), env.get(SECRET_FILE_VAR)
    if value and path:
        raise ConfigError(f"{SECRET_VAR} and {SECRET_FILE_VAR} are both set: keep one")
    if path:
        try:
            value = Path(path).read_text().strip()
        except OSError as exc:
            raise ConfigError(f"{SECRET_FILE_VAR}: can't read {path} ({exc.strerror})") from exc
        if not value:
            raise ConfigError(f"{SECRET_FILE_VAR}: {path} is empty")
    return value.encode() if value else None


def allow_from_env(env: Mapping[str, str]) -> list[str] | None:
    """``JOURNEYS_WEBHOOK_ALLOW``: comma-separated URL prefixes every call must also match
    (None: unset, the journeys' own lists apply alone)."""
    raw = env.get(ALLOW_VAR)
    if raw is None or not raw.strip():
        return None
    return [p.strip() for p in raw.split(",") if p.strip()]


@dataclass(frozen=True, slots=True)
class Reply:
    status: int
    headers: Mapping[str, str]
    body: bytes


class CallFailed(Exception):
    """No HTTP answer: ``reason`` is ``timeout`` or ``unreachable``."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


#: one HTTP exchange: (method, url, body, headers, timeout_s) -> Reply, or CallFailed
Transport = Callable[[str, str, bytes | None, dict[str, str], float], Awaitable[Reply]]


class AiohttpTransport:
    """One aiohttp session for every call (created in the running loop on first use)."""

    def __init__(self) -> None:
        self._session: aiohttp.ClientSession | None = None

    async def __call__(
        self, method: str, url: str, body: bytes | None, headers: dict[str, str], timeout_s: float
    ) -> Reply:
        if self._session is None or self._session.closed:
            self._session = aiohttp.ClientSession()
        try:
            async with self._session.request(
                method,
                url,
                data=body,
                headers=headers,
                timeout=aiohttp.ClientTimeout(total=timeout_s),
                allow_redirects=False,
            ) as resp:
                return Reply(resp.status, dict(resp.headers), await resp.read())
        except TimeoutError as exc:
            raise CallFailed("timeout") from exc
        except aiohttp.ClientConnectorError as exc:
            raise CallFailed("unreachable") from exc
        except aiohttp.ClientError as exc:  # the connection dropped mid-answer
            raise CallFailed("timeout") from exc

    async def close(self) -> None:
        if self._session is not None and not self._session.closed:
            await self._session.close()
        self._session = None


@dataclass(slots=True)
class Called:
    result: WebhookResult
    attempts: int  # HTTP calls made


class WebhookCaller:
    def __init__(
        self,
        secret: bytes | None,
        *,
        allow: list[str] | None = None,
        retry: RetryPolicy | None = None,
        transport: Transport | None = None,
        sleep: Callable[[float], Awaitable[Any]] = asyncio.sleep,
        now_ms: Callable[[], int] = lambda: time.time_ns() // 1_000_000,
        rng: random.Random | None = None,
    ) -> None:
        self._secret = secret
        self.allow = allow  # the deployment's list (JOURNEYS_WEBHOOK_ALLOW), if any
        self.retry = retry or RetryPolicy()
        self._transport = transport or AiohttpTransport()
        self._sleep = sleep
        self._now_ms = now_ms
        self._rng = rng or random.Random()

    @classmethod
    def from_env(cls, env: Mapping[str, str], **kw: Any) -> WebhookCaller:
        return cls(secret_from_env(env), allow=allow_from_env(env), **kw)

    @property
    def has_secret(self) -> bool:
        return self._secret is not None

    def refused(self, req: WebhookRequest) -> str | None:
        """Why the gateway won't make this call at all (None: it will)."""
        if refusal(req.url, req.allow) is not None:
            return "url_not_allowed"
        if self.allow is not None and allowed_by(req.url, self.allow) is None:
            return "url_not_allowed"
        if self._secret is None:
            return "no_secret"
        return None

    def headers(self, req: WebhookRequest, body: bytes, timestamp: int) -> dict[str, str]:
        assert self._secret is not None
        out = {**req.headers, "User-Agent": USER_AGENT, IDEMPOTENCY_HEADER: req.action_id}
        if req.body is not None:
            out["Content-Type"] = "application/json"
        out[TIMESTAMP_HEADER] = str(timestamp)
        out[SIGNATURE_HEADER] = sign(self._secret, timestamp, body)
        return out

    async def call(self, req: WebhookRequest) -> Called:
        why = self.refused(req)
        if why is not None:
            return Called(not_made(req, self._now_ms(), why), 0)
        body = req.body.encode() if req.body is not None else b""
        last: Reply | str = "unreachable"
        attempts = 0
        for attempt in range(self.retry.max_attempts):
            attempts += 1
            headers = self.headers(req, body, self._now_ms() // 1000)
            data = body if req.body is not None else None
            try:
                last = await self._transport(
                    req.method, req.url, data, headers, req.timeout_ms / 1000
                )
            except CallFailed as exc:
                last = exc.reason
            if isinstance(last, Reply) and not is_retryable(last.status):
                break
            if attempt + 1 < self.retry.max_attempts:
                after = None
                if isinstance(last, Reply) and last.status == 429:
                    after = retry_after_s(last.headers.get("Retry-After"))
                await self._sleep(self.retry.delay(attempt, self._rng, after))
        now = self._now_ms()
        if isinstance(last, Reply):
            return Called(answered(req, now, last.status, last.body), attempts)
        return Called(not_made(req, now, last), attempts)

    async def close(self) -> None:
        close = getattr(self._transport, "close", None)
        if close is not None:
            await close()
