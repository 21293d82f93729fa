"""``journeys produce FILE.jsonl [--now]``: put a simulation file on Kafka.

Every line goes to ``journey.user-events`` keyed by its ``user_id``, the
``{"type": "receipt"}`` and ``{"type": "inbound"}`` lines of a simulation file too: one
topic keeps each user's lines in file order (Kafka orders within a partition, not across
topics), and the worker decodes that topic by ``type``. Blank lines and ``#`` comments are
skipped. A line that doesn't decode is still produced, as-is, to ``journey.user-events``
(keyed by its ``user_id`` if one can be found): the worker dead-letters it with its reason,
which is how to try the dead-letter path.

Broker hiccups (a leader election right after the topics are created, a lost connection)
are retried with a backoff; if the broker keeps failing, the error names the line to go on
from with ``--from-line``. On a terminal, a progress bar goes to stderr.

``realtime`` (``--now``): the file is re-timed so that its earliest line happens now, the
gaps between lines are kept, and each line is produced when its time comes. This is how
to replay a file against a live worker and get the same outcomes as ``journeys simulate``
(waits are real time then: use journeys with short waits). Without it, lines are produced
at once with their own timestamps; ``pace_ms`` then spaces them out so the engine and the
gateway keep up as they would in real time (for replays from the past, with
``JOURNEYS_TIMER_SETTLE_MS`` on the worker).
"""

from __future__ import annotations

import asyncio
import logging
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TextIO

import orjson
from aiokafka import AIOKafkaProducer
from aiokafka.errors import KafkaError, KafkaTimeoutError

from engine.core.wire import decode_line, loads
from engine.durations import format_ts
from engine.errors import InputError, ProduceError
from engine.stream.common.logs import event
from engine.stream.common.settings import Settings
from engine.stream.common.topics import ensure_topics

log = logging.getLogger("engine.stream.produce")


@dataclass
class Line:
    no: int
    raw: bytes
    topic: str
    key: bytes | None
    ts: int | None
    data: dict[str, Any] | None
    error: str | None = None


def read_lines(settings: Settings, path: str | Path) -> list[Line]:
    # Every line goes to the user-events topic, receipts and inbound lines of a simulation
    # file too: one topic keeps each user's lines in file order (Kafka orders within a
    # partition, not across topics), so a tap can't overtake the send it answers.
    t = settings.topics
    out: list[Line] = []
    with open(path, "rb") as fh:
        for no, raw in enumerate(fh, 1):
            raw = raw.strip()
            if not raw or raw.startswith(b"#"):
                continue
            try:
                d = loads(raw)
            except InputError as exc:
                out.append(Line(no, raw, t.user_events, None, None, None, exc.reason))
                continue
            user = d.get("user_id")
            key = user.encode() if isinstance(user, str) and user else None
            topic = t.user_events
            try:
                inp = decode_line(d)
            except InputError as exc:
                out.append(Line(no, raw, topic, key, None, d, exc.reason))
                continue
            out.append(Line(no, raw, topic, key, inp.ts, d))
    return out


def retime(lines: list[Line], now_ms: int) -> int:
    """Shift every decodable line so the earliest happens at ``now_ms``; returns the shift."""
    times = [ln.ts for ln in lines if ln.ts is not None]
    if not times:
        return 0
    shift = now_ms - min(times)
    for ln in lines:
        if ln.ts is not None and ln.data is not None:
            ln.ts += shift
            ln.data["ts"] = format_ts(ln.ts)
            ln.raw = orjson.dumps(ln.data)
    return shift


#: Lines in flight between two waits for the broker's acknowledgements: what a retry may
#: produce twice (the engine drops repeated events by ``event_id``).
WINDOW = 200


def transient(exc: BaseException) -> bool:
    """A broker hiccup worth retrying: a leader election, a connection or a timeout."""
    return isinstance(exc, KafkaTimeoutError | OSError) or (
        isinstance(exc, KafkaError) and bool(getattr(exc, "retriable", False))
    )


@dataclass
class Retry:
    attempts: int = 8  # tries in a row without progress before giving up
    first_s: float = 0.5  # backoff doubles from here
    max_s: float = 10.0


class Progress:
    """A progress bar on stderr when it is a terminal; silence otherwise (logs, CI)."""

    def __init__(self, total: int, stream: TextIO | None = None, enabled: bool | None = None):
        self.total = total
        self.stream = stream if stream is not None else sys.stderr
        self.enabled = self.stream.isatty() if enabled is None else enabled
        self.done = 0
        self._last = 0.0

    def advance(self, n: int) -> None:
        self.done += n
        now = time.monotonic()
        if self.enabled and (now - self._last > 0.1 or self.done >= self.total):
            self._last = now
            frac = self.done / self.total if self.total else 1.0
            bar = "#" * int(frac * 30)
            self.stream.write(f"\r[{bar:<30}] {self.done}/{self.total} lines {frac:4.0%}")
            self.stream.flush()

    def close(self) -> None:
        if self.enabled:
            self.stream.write("\n")
            self.stream.flush()


async def produce_lines(
    settings: Settings,
    lines: list[Line],
    realtime: bool,
    pace_ms: int = 0,
    *,
    retry: Retry | None = None,
    progress: Progress | None = None,
    producer: Callable[[], Any] | None = None,
) -> dict[str, int]:
    """Produce in time order. ``pace_ms`` (replays from the past): pause that long between
    lines so the engine and the gateway keep up, as they would in real time; without it a
    user's next line can arrive before the provider's receipt for the message before.

    Transient broker errors (a leader election, a lost connection) are retried with a
    backoff, from the first line not yet acknowledged; after ``retry.attempts`` tries in a
    row without progress, :class:`~engine.errors.ProduceError` says which line to resume
    from (``--from-line``)."""
    retry = retry or Retry()
    order = sorted(lines, key=lambda ln: (ln.ts is None, ln.ts or 0, ln.no))
    if realtime:
        retime(order, int(time.time() * 1000) + 200)
        order.sort(key=lambda ln: (ln.ts is None, ln.ts or 0, ln.no))
    counts: dict[str, int] = {}
    acked = [0]  # order[:acked[0]] are acknowledged (moved on by _produce_from)
    failures = 0
    while acked[0] < len(order):
        before = acked[0]
        try:
            await _produce_from(
                producer or (lambda: _producer(settings)),
                order,
                acked,
                realtime,
                pace_ms,
                counts,
                progress,
            )
        except Exception as exc:
            if not transient(exc):
                raise
            done = acked[0]
            failures = 0 if done > before else failures + 1
            if failures >= retry.attempts:
                resume = min(ln.no for ln in order[done:])
                raise ProduceError(
                    f"the broker kept failing ({exc!r}) after {retry.attempts} tries; "
                    f"{done} of {len(order)} lines were produced. Run again with "
                    f"--from-line {resume} to go on (a few lines may be produced twice; "
                    "the engine drops repeated events by event_id)."
                ) from exc
            wait = min(retry.max_s, retry.first_s * 2 ** max(failures - 1, 0))
            event(log, "produce_retry", logging.WARNING, error=repr(exc), wait_s=wait, done=done)
            await asyncio.sleep(wait)
    return counts


def _producer(settings: Settings) -> AIOKafkaProducer:
    return AIOKafkaProducer(
        bootstrap_servers=settings.bootstrap_servers,
        acks="all",
        enable_idempotence=True,
        linger_ms=5,
        **settings.security.aiokafka_kwargs(),
    )


async def _produce_from(
    make_producer: Callable[[], Any],
    order: list[Line],
    acked: list[int],
    realtime: bool,
    pace_ms: int,
    counts: dict[str, int],
    progress: Progress | None,
) -> None:
    """Produce ``order[acked[0]:]`` with a fresh producer, moving ``acked[0]`` past every
    window the broker acknowledged (so a retry goes on from there)."""
    producer = make_producer()
    await producer.start()
    try:
        while acked[0] < len(order):
            window = order[acked[0] : acked[0] + (1 if realtime or pace_ms else WINDOW)]
            futures = []
            for ln in window:
                if realtime and ln.ts is not None:
                    wait = ln.ts / 1000 - time.time()
                    if wait > 0:
                        await asyncio.sleep(wait)
                futures.append(await producer.send(ln.topic, ln.raw, key=ln.key))
            await asyncio.gather(*futures)
            for ln in window:
                counts[ln.topic] = counts.get(ln.topic, 0) + 1
            acked[0] += len(window)
            if progress is not None:
                progress.advance(len(window))
            if pace_ms and not realtime:
                await asyncio.sleep(pace_ms / 1000)
    finally:
        await producer.stop()


def produce_file(
    settings: Settings,
    path: str | Path,
    realtime: bool,
    pace_ms: int = 0,
    *,
    from_line: int = 1,
    retry: Retry | None = None,
    show_progress: bool | None = None,
) -> int:
    """Produce the lines of ``path`` (JSON lines) to their topics, from line number
    ``from_line`` on (to resume a run that stopped). Returns an exit code: 0, or 1 when
    some lines don't decode (they are produced anyway and reported on stderr, one
    ``path:line: reason`` each). Raises :class:`~engine.errors.ProduceError` when the
    broker keeps failing (the message says where to resume)."""
    from engine.stream.common.logs import setup

    setup(settings.log_level, "journeys-produce")
    lines = [ln for ln in read_lines(settings, path) if ln.no >= from_line]
    for ln in lines:
        if ln.error is not None:
            print(
                f"{path}:{ln.no}: {ln.error} (produced anyway; it will be dead-lettered)",
                file=sys.stderr,
            )
    progress = Progress(len(lines), enabled=show_progress)

    async def run() -> dict[str, int]:
        await ensure_topics(settings, settings.topics.all())
        return await produce_lines(
            settings, lines, realtime, pace_ms, retry=retry, progress=progress
        )

    try:
        counts = asyncio.run(run())
    finally:
        progress.close()
    event(log, "produced", file=str(path), realtime=realtime, from_line=from_line, counts=counts)
    return 1 if any(ln.error for ln in lines) else 0
