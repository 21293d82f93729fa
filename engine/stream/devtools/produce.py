"""``journeys produce FILE.jsonl [--now]``: put a simulation file on Kafka.

Every line goes to ``journey.user-events`` keyed by its ``user_id``, the
``{"type": "receipt"}`` and ``{"type": "inbound"}`` lines of a simulation file too: one
topic keeps each user's lines in file order (Kafka orders within a partition, not across
topics), and the worker decodes that topic by ``type``. Blank lines and ``#`` comments are
skipped. A line that doesn't decode is still produced, as-is, to ``journey.user-events``
(keyed by its ``user_id`` if one can be found): the worker dead-letters it with its reason,
which is how to try the dead-letter path.

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
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import orjson
from aiokafka import AIOKafkaProducer

from engine.core.wire import decode_line, loads
from engine.durations import format_ts
from engine.errors import InputError
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


async def produce_lines(
    settings: Settings, lines: list[Line], realtime: bool, pace_ms: int = 0
) -> dict[str, int]:
    """Produce in time order. ``pace_ms`` (replays from the past): pause that long between
    lines so the engine and the gateway keep up, as they would in real time; without it a
    user's next line can arrive before the provider's receipt for the message before."""
    producer = AIOKafkaProducer(
        bootstrap_servers=settings.bootstrap_servers,
        acks="all",
        enable_idempotence=True,
        linger_ms=5,
        **settings.security.aiokafka_kwargs(),
    )
    await producer.start()
    counts: dict[str, int] = {}
    try:
        order = sorted(lines, key=lambda ln: (ln.ts is None, ln.ts or 0, ln.no))
        if realtime:
            retime(order, int(time.time() * 1000) + 200)
            order.sort(key=lambda ln: (ln.ts is None, ln.ts or 0, ln.no))
        futures = []
        for ln in order:
            if realtime and ln.ts is not None:
                wait = ln.ts / 1000 - time.time()
                if wait > 0:
                    await asyncio.sleep(wait)
            futures.append(await producer.send(ln.topic, ln.raw, key=ln.key))
            counts[ln.topic] = counts.get(ln.topic, 0) + 1
            if realtime:
                await producer.flush()
            elif pace_ms:
                await producer.flush()
                await asyncio.sleep(pace_ms / 1000)
        await asyncio.gather(*futures)
    finally:
        await producer.stop()
    return counts


def produce_file(settings: Settings, path: str | Path, realtime: bool, pace_ms: int = 0) -> int:
    """Produce the lines of ``path`` (JSON lines) to their topics. Returns an exit code:
    0, or 1 when some lines don't decode (they are produced anyway and reported on
    stderr, one ``path:line: reason`` each)."""
    from engine.stream.common.logs import setup

    setup(settings.log_level, "journeys-produce")
    lines = read_lines(settings, path)
    for ln in lines:
        if ln.error is not None:
            print(
                f"{path}:{ln.no}: {ln.error} (produced anyway; it will be dead-lettered)",
                file=sys.stderr,
            )

    async def run() -> dict[str, int]:
        await ensure_topics(settings, settings.topics.all())
        return await produce_lines(settings, lines, realtime, pace_ms)

    counts = asyncio.run(run())
    event(log, "produced", file=str(path), realtime=realtime, counts=counts)
    return 1 if any(ln.error for ln in lines) else 0
