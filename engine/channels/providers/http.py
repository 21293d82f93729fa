"""A small aiohttp client shared by the HTTP adapters: one session, timeouts, and the
translation of transport failures and HTTP statuses into provider errors.

aiohttp is already a dependency of faust-streaming; using its client saves a second HTTP
stack. The session is created on first use (inside the running loop) and must be closed
with :meth:`HttpClient.close`.
"""

from __future__ import annotations

import json
import time
from collections.abc import Mapping
from dataclasses import dataclass
from email.utils import parsedate_to_datetime
from typing import Any

import aiohttp

from engine.channels.providers.base import OutcomeUnknown, RateLimited
from engine.errors import PermanentProviderError, RetryableProviderError

DEFAULT_TIMEOUT_S = 10.0


@dataclass(frozen=True, slots=True)
class Answer:
    status: int
    headers: Mapping[str, str]
    body: bytes

    def json(self) -> Any:
        """The body as JSON, or ``None`` when it isn't JSON."""
        try:
            return json.loads(self.body) if self.body else None
        except ValueError:
            return None

    @property
    def ok(self) -> bool:
        return 200 <= self.status < 300


def retry_after_s(value: str | None, *, now: float | None = None) -> float | None:
    """``Retry-After`` as seconds: delta-seconds or an HTTP date."""
    if not value:
        return None
    value = value.strip()
    try:
        return max(0.0, float(value))
    except ValueError:
        pass
    try:
        when = parsedate_to_datetime(value).timestamp()
    except (TypeError, ValueError):
        return None
    return max(0.0, when - (time.time() if now is None else now))


def raise_for_status(answer: Answer, what: str, detail: str = "") -> None:
    """Generic mapping, for statuses the adapter didn't handle itself."""
    if answer.ok:
        return
    status = answer.status
    text = f"{what}: HTTP {status}" + (f" ({detail})" if detail else "")
    if status == 429:
        raise RateLimited(text, retry_after=retry_after_s(answer.headers.get("Retry-After")))
    if status == 503:  # the server refused before doing anything: safe to repeat
        raise RetryableProviderError(text, status=status)
    if status >= 500 or status == 408:
        raise OutcomeUnknown(text, status=status)
    raise PermanentProviderError(text, status=status)


class HttpClient:
    def __init__(
        self,
        base_url: str,
        *,
        timeout_s: float = DEFAULT_TIMEOUT_S,
        headers: Mapping[str, str] | None = None,
    ) -> None:
        self.base_url = base_url.rstrip("/")
        self._timeout = aiohttp.ClientTimeout(total=timeout_s)
        self._headers = dict(headers or {})
        self._session: aiohttp.ClientSession | None = None

    def _get_session(self) -> aiohttp.ClientSession:
        if self._session is None or self._session.closed:
            self._session = aiohttp.ClientSession(timeout=self._timeout, headers=self._headers)
        return self._session

    async def request(
        self,
        method: str,
        path: str,
        *,
        what: str,
        params: Mapping[str, str] | None = None,
        json_body: Any = None,
        form: Mapping[str, str] | None = None,
        headers: Mapping[str, str] | None = None,
    ) -> Answer:
        """One HTTP exchange. Transport failures become provider errors: a refused
        connection is safe to retry, a timeout or a dropped connection is not known to
        have failed (:class:`OutcomeUnknown`)."""
        session = self._get_session()
        try:
            async with session.request(
                method,
                self.base_url + path,
                params=params,
                json=json_body,
                data=form,
                headers=headers,
            ) as resp:
                body = await resp.read()
                return Answer(resp.status, dict(resp.headers), body)
        except aiohttp.ClientConnectorError as exc:
            raise RetryableProviderError(f"{what}: can't connect ({exc})") from exc
        except TimeoutError as exc:
            raise OutcomeUnknown(f"{what}: timed out") from exc
        except aiohttp.ClientError as exc:
            raise OutcomeUnknown(f"{what}: {type(exc).__name__}: {exc}") from exc

    async def close(self) -> None:
        if self._session is not None and not self._session.closed:
            await self._session.close()
        self._session = None
