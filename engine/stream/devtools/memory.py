"""The engine worker's per-input path without a broker: :class:`EngineRuntime` over an
in-memory backend, for tests (the poison fuzz test) and micro-benchmarks.

Everything the runtime produces is kept in :attr:`MemoryBackend.produced`; the checkpoint
is the real one (its commit writes the in-memory store), so what is tested is exactly the
handler the faust agent calls.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Iterable
from dataclasses import dataclass, field
from types import SimpleNamespace
from typing import Any

from engine.core.engine import Engine
from engine.journey.model import Journey
from engine.stream.common.checkpoint import Checkpoint
from engine.stream.common.dead_letters import DeadLetters
from engine.stream.common.feed import InputFeed
from engine.stream.common.settings import Settings
from engine.stream.common.timers import TimerIndex
from engine.stream.worker.runtime import EngineRuntime


@dataclass
class MemoryBackend:
    """:class:`~engine.stream.common.checkpoint.Backend` and producer, in memory."""

    partitions: int = 4
    store: dict[bytes, bytes] = field(default_factory=dict)
    produced: list[tuple[str, bytes | None, bytes, int | None]] = field(default_factory=list)
    changelog: list[tuple[int, bytes, bytes | None]] = field(default_factory=list)
    committed: dict[tuple[str, int], int] = field(default_factory=dict)
    topics: tuple[str, ...] = ()

    @staticmethod
    def _done(value: Any = None) -> Awaitable[Any]:
        fut: asyncio.Future[Any] = asyncio.get_running_loop().create_future()
        fut.set_result(value)
        return fut

    async def send(
        self, topic: str, key: bytes | None, value: bytes, partition: int | None
    ) -> Awaitable[Any]:
        self.produced.append((topic, key, value, partition))
        return self._done()

    def get(self, key: bytes) -> bytes | None:
        return self.store.get(key)

    def store_put(self, partition: int, key: bytes, value: bytes | None) -> None:
        if value is None:
            self.store.pop(key, None)
        else:
            self.store[key] = value

    async def send_changelog(
        self, partition: int, key: bytes, value: bytes | None
    ) -> Awaitable[Any]:
        self.changelog.append((partition, key, value))
        return self._done()

    async def commit_offsets(self, offsets: dict[tuple[str, int], int]) -> bool:
        self.committed.update(offsets)
        return True

    def assigned(self) -> set[tuple[str, int]]:
        return {(t, p) for t in self.topics for p in range(self.partitions)}

    def on(self, topic: str) -> list[bytes]:
        """The values produced to ``topic``."""
        return [v for t, _k, v, _p in self.produced if t == topic]


def memory_runtime(
    journeys: Iterable[Journey],
    settings: Settings | None = None,
    clock: Callable[[], int] | None = None,
) -> tuple[EngineRuntime, MemoryBackend]:
    """An :class:`EngineRuntime` over a :class:`MemoryBackend` (``clock``: the wall clock
    the timestamp window is cut at, epoch ms)."""
    settings = settings or Settings()
    backend = MemoryBackend(settings.partitions, topics=settings.topics.engine_inputs())
    checkpoint = Checkpoint(backend=backend)
    dead_letters = DeadLetters(backend.send, checkpoint, settings.topics.dead_letters, "engine")
    kw: dict[str, Any] = {} if clock is None else {"clock": clock}
    runtime = EngineRuntime(
        Engine(journeys),
        settings,
        checkpoint,
        TimerIndex(),
        backend.send,
        backend.get,
        dead_letters,
        **kw,
    )
    return runtime, backend


def memory_feed(runtime: EngineRuntime, backend: MemoryBackend) -> InputFeed:
    """The input feed the service puts in front of ``runtime.handle`` (each offset once,
    in order; a record the handler raises on twice is dead-lettered), every input partition
    starting at offset 0. Hand it messages with :func:`message`."""
    feed = InputFeed(
        runtime.settings,
        "memory",
        set(runtime.settings.topics.engine_inputs()),
        runtime.checkpoint,
        runtime.handle,
        backend.assigned,
        runtime.dead_letters,
    )
    feed.positions.reset(dict.fromkeys(backend.assigned(), 0))
    return feed


def message(
    topic: str, partition: int, offset: int, key: bytes | None, value: bytes | None
) -> SimpleNamespace:
    """A consumed message as :meth:`InputFeed.feed` reads it (no Kafka timestamp)."""
    return SimpleNamespace(
        topic=topic, partition=partition, offset=offset, key=key, value=value, timestamp=None
    )
