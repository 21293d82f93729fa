"""Per-provider rate limits (token bucket), per-journey send rates (a sliding window) and
retry backoff with jitter.

Both take their clock from the caller: ``monotonic()`` for "now" in seconds and an async
``sleep(seconds)``. Tests pass a fake clock whose ``sleep`` just moves time forward, so a
bucket or a backoff schedule is checked without real waiting.
"""

from __future__ import annotations

import asyncio
import random
import time
from collections import deque
from collections.abc import Awaitable, Callable
from dataclasses import dataclass

Sleep = Callable[[float], Awaitable[None]]
Monotonic = Callable[[], float]

_EPSILON = 1e-9  # float slack: 0.9999999999 tokens after an exact wait counts as 1


@dataclass(frozen=True, slots=True)
class RateLimit:
    """At most ``per_second`` calls on average, bursts of up to ``burst`` calls."""

    per_second: float
    burst: float = 1.0

    def __post_init__(self) -> None:
        if self.per_second <= 0 or self.burst < 1:
            raise ValueError("a rate limit needs per_second > 0 and burst >= 1")


class TokenBucket:
    """Classic token bucket: ``burst`` tokens, refilled at ``per_second``; a call takes one.

    Waiters are served one at a time in arrival order (an :class:`asyncio.Lock`), so a
    burst of concurrent sends is spread out evenly instead of all waking together.
    """

    def __init__(
        self,
        limit: RateLimit,
        *,
        monotonic: Monotonic = time.monotonic,
        sleep: Sleep = asyncio.sleep,
    ) -> None:
        self.limit = limit
        self._monotonic = monotonic
        self._sleep = sleep
        self._tokens = float(limit.burst)
        self._last = monotonic()
        self._lock = asyncio.Lock()

    def _refill(self) -> None:
        now = self._monotonic()
        elapsed = max(0.0, now - self._last)
        self._last = now
        self._tokens = min(self.limit.burst, self._tokens + elapsed * self.limit.per_second)

    async def acquire(self, tokens: float = 1.0) -> float:
        """Wait until ``tokens`` are available and take them; returns the seconds waited."""
        if tokens > self.limit.burst:
            raise ValueError(f"can't take {tokens} tokens from a bucket of {self.limit.burst}")
        waited = 0.0
        async with self._lock:
            self._refill()
            while self._tokens + _EPSILON < tokens:
                wait = (tokens - self._tokens) / self.limit.per_second
                await self._sleep(wait)
                waited += wait
                self._refill()
            self._tokens -= tokens
        return waited

    def set_rate(self, per_second: float) -> None:
        """A new rate from now on (this instance's share of a deployment-wide rate
        changed); the burst scales with it, and never drops below one call."""
        self._refill()
        burst = max(1.0, self.limit.burst * per_second / self.limit.per_second)
        self.limit = RateLimit(per_second, burst)
        self._tokens = min(self._tokens, burst)


class WindowLimit:
    """At most ``max_calls`` in any window of ``per_s`` seconds (a journey's
    ``settings.send_rate``). Waiters go one at a time in arrival order, so the sends
    over the rate wait in the order they came."""

    def __init__(
        self,
        max_calls: int,
        per_s: float,
        *,
        monotonic: Monotonic = time.monotonic,
        sleep: Sleep = asyncio.sleep,
    ) -> None:
        if max_calls < 1 or per_s <= 0:
            raise ValueError("a send rate needs max >= 1 and a positive window")
        self.max_calls = max_calls
        self.per_s = per_s
        self._monotonic = monotonic
        self._sleep = sleep
        self._calls: deque[float] = deque()
        self._lock = asyncio.Lock()

    async def acquire(self) -> float:
        """Wait for a place in the window and take it; returns the seconds waited."""
        waited = 0.0
        async with self._lock:
            while True:
                now = self._monotonic()
                while self._calls and self._calls[0] <= now - self.per_s:
                    self._calls.popleft()
                if len(self._calls) < self.max_calls:
                    self._calls.append(now)
                    return waited
                wait = self._calls[0] + self.per_s - now
                await self._sleep(wait)
                waited += wait

    @property
    def idle(self) -> bool:
        """Nobody waiting and no call in the current window: the limit can be dropped."""
        now = self._monotonic()
        return not self._lock.locked() and all(t <= now - self.per_s for t in self._calls)


@dataclass(frozen=True, slots=True)
class RetryPolicy:
    """Exponential backoff with "equal jitter" for retryable provider errors.

    Retry ``n`` (0-based) waits between ``c/2`` and ``c`` where
    ``c = min(cap_s, base_s * factor**n)``: never less than half the schedule (so a
    struggling provider gets real relief), never in lockstep with other workers. A
    ``Retry-After`` from the provider is a floor, bounded by ``max_retry_after_s``.
    """

    max_attempts: int = 5
    base_s: float = 0.5
    factor: float = 2.0
    cap_s: float = 30.0
    max_retry_after_s: float = 120.0

    def __post_init__(self) -> None:
        if self.max_attempts < 1 or self.base_s < 0 or self.factor < 1 or self.cap_s < 0:
            raise ValueError("retry policy: max_attempts >= 1, base_s >= 0, factor >= 1")

    def delay(self, retry: int, rng: random.Random, retry_after: float | None = None) -> float:
        ceiling = min(self.cap_s, self.base_s * self.factor**retry)
        wait = ceiling / 2 + rng.uniform(0, ceiling / 2)
        if retry_after is not None and retry_after > 0:
            wait = max(wait, min(retry_after, self.max_retry_after_s))
        return wait
