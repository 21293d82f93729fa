"""The stats service: consume ``journey.outcomes``, count as outcomes arrive, serve a JSON
API, a live HTML dashboard and Prometheus metrics (:mod:`engine.stats.dashboard`).

* **Consuming.** A consumer with its own group id is *assigned* every partition (no
  rebalancing: every instance sees everything) and feeds a
  :class:`~engine.stats.windows.WindowStats` (deduped by ``outcome_id``).
* **Persistence.** Every ``persist_interval_s`` and on stop, the counters and the next offset
  of every partition go together into one JSON file (``state_path``: temporary file, fsync,
  rename); only then are the offsets committed to Kafka, for lag monitoring only. On start
  the file is the truth: it resumes at its offsets (other partitions from the beginning),
  so a crash replays what came after the last save onto counters without it: nothing is
  lost or counted twice. Without a ``state_path`` the counts are rebuilt from the topic.
* **Health.** Every ``health_interval_s``: lags, events and outcomes per second (growth of
  the topics' end offsets), dead letters (end offsets of ``journey.dead-letters``), pending
  timers (``pending_timers``, a callable the worker may provide).

Entry point: ``await run_service(bootstrap, topic, journeys_dir, host, port, state_path)``.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import signal
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import orjson
from aiohttp import web
from aiokafka import AIOKafkaConsumer, TopicPartition
from aiokafka.admin import AIOKafkaAdminClient
from aiokafka.errors import KafkaError

from engine.core.wire import outcome_record
from engine.durations import format_ts
from engine.errors import ConfigError, InputError
from engine.stats import dashboard
from engine.stats.catalog import Catalog
from engine.stats.windows import Limits, WindowStats
from engine.stream.common.settings import Settings

log = logging.getLogger(__name__)
STATE_FORMAT = "journeys-stats/2"
# Counter files of earlier formats lack counters the report needs now (users reached,
# deliveries by channel): the service ignores them and recounts from the topic.
OLDER_FORMATS = ("journeys-stats/1",)


@dataclass
class ServiceConfig:
    bootstrap: str
    topic: str = "journey.outcomes"
    journeys_dir: str = "journeys"
    host: str = "127.0.0.1"
    port: int = 8090
    state_path: str | None = None
    group_id: str = "journeys-stats"
    engine_group: str | None = None
    input_topic: str = "journey.user-events"
    dead_letter_topic: str = "journey.dead-letters"
    persist_interval_s: float = 5.0
    health_interval_s: float = 5.0
    refresh_s: float = 3.0
    limits: Limits = field(default_factory=Limits)
    pending_timers: Callable[[], int | None] | None = None
    # Client options for every Kafka connection (SASL / TLS: Security.aiokafka_kwargs()).
    kafka: dict[str, Any] = field(default_factory=dict, repr=False)
    # The stream settings (topics, the engine's app id): the user search reads a user's
    # partition of every topic and the engine's state changelog with them.
    stream: Settings | None = field(default=None, repr=False)


def write_atomic(path: str, data: bytes) -> None:
    tmp = f"{path}.tmp"
    Path(path).parent.mkdir(parents=True, exist_ok=True)
    with open(tmp, "wb") as fh:
        fh.write(data)
        fh.flush()
        os.fsync(fh.fileno())
    os.replace(tmp, path)


class Rate:
    """Growth per second of a monotonic figure, over the last ``span_s`` seconds."""

    def __init__(self, span_s: float = 30.0) -> None:
        self.span_s = span_s
        self.samples: deque[tuple[float, int]] = deque()

    def sample(self, value: int, now: float) -> float | None:
        self.samples.append((now, value))
        while len(self.samples) > 2 and now - self.samples[1][0] >= self.span_s:
            self.samples.popleft()
        (t0, v0), (t1, v1) = self.samples[0], self.samples[-1]
        return round(max(v1 - v0, 0) / (t1 - t0), 3) if t1 > t0 else None


class StatsService:
    def __init__(self, cfg: ServiceConfig) -> None:
        self.cfg = cfg
        self.stats = WindowStats(cfg.limits)
        self.offsets: dict[int, int] = {}  # partition -> next offset to read
        self.catalog = Catalog(cfg.journeys_dir)
        self.health: dict[str, Any] = {"status": "starting"}
        self.persisted_at: str | None = None
        self.port: int | None = None
        self._consumer: AIOKafkaConsumer | None = None
        self._admin: AIOKafkaAdminClient | None = None
        self._probe: AIOKafkaConsumer | None = None
        self._runner: web.AppRunner | None = None
        self._tasks: list[asyncio.Task[None]] = []
        self._assigned: set[TopicPartition] = set()
        self._dirty = self._stopping = False
        self._consumed = 0
        self._rates = {k: Rate() for k in ("consumed", "events", "outcomes")}

    # ------------------------------------------------------------------ lifecycle

    @property
    def url(self) -> str:
        return f"http://{self.cfg.host}:{self.port}"

    async def start(self) -> None:
        self._load_state()
        kafka = {"bootstrap_servers": self.cfg.bootstrap, **self.cfg.kafka}
        gid = self.cfg.group_id
        self._consumer = AIOKafkaConsumer(
            **kafka, group_id=gid, client_id=f"{gid}-consumer", enable_auto_commit=False,
            auto_offset_reset="earliest",
        )  # fmt: skip
        # End offsets for the health figures on a connection of their own: on the consumer's
        # they would wait behind its long-polling fetches (up to fetch_max_wait_ms).
        self._probe = AIOKafkaConsumer(**kafka, client_id=f"{gid}-health")
        self._admin = AIOKafkaAdminClient(**kafka, client_id=f"{gid}-admin")
        try:
            for client in (self._consumer, self._probe, self._admin):
                await client.start()
        except (KafkaError, OSError) as exc:
            await self.stop()
            raise ConfigError(
                f"can't reach Kafka at {self.cfg.bootstrap}: {exc}. Is the broker running "
                "(deploy/local-kafka.sh start)?"
            ) from exc
        self._runner = web.AppRunner(dashboard.make_app(self), access_log=None)
        await self._runner.setup()
        site = web.TCPSite(self._runner, self.cfg.host, self.cfg.port)
        await site.start()
        self.port = self._runner.addresses[0][1]
        self._tasks = [
            asyncio.create_task(self._consume_loop(), name="stats-consume"),
            asyncio.create_task(self._health_loop(), name="stats-health"),
        ]
        log.info("stats service on %s, reading %s", self.url, self.cfg.topic)

    async def stop(self) -> None:
        self._stopping = True  # the consume loop ends after its batch (never mid-save)
        for task in self._tasks[1:]:
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        self._tasks = []
        if self._consumer is not None and self._assigned:
            await self.persist()
        if self._runner is not None:
            await self._runner.cleanup()
        if self._admin is not None:
            await self._admin.close()
        for consumer in (self._probe, self._consumer):
            if consumer is not None:
                await consumer.stop()
        self._runner = self._admin = self._consumer = self._probe = None

    # ------------------------------------------------------------------ user search

    async def explain_user(self, user_id: str, journey: str | None) -> dict[str, Any]:
        """``journeys explain USER`` from Kafka, with the journeys of the catalog."""
        from engine.explain.sources import from_kafka

        settings = self.cfg.stream or Settings(bootstrap=self.cfg.bootstrap)
        journeys = [j for vs in self.catalog.journeys.values() for j in vs.values()]
        return await from_kafka(settings, user_id, journey=journey, journeys=journeys)

    # ------------------------------------------------------------------ state file

    def _load_state(self) -> None:
        path = self.cfg.state_path
        if not path or not os.path.exists(path):
            return
        try:
            with open(path, "rb") as fh:
                data = orjson.loads(fh.read())
            if data.get("format") in OLDER_FORMATS:
                log.warning(
                    "the stats state %s is in the older format %s: recounting from the start "
                    "of %s (it is replaced at the next save)",
                    path,
                    data.get("format"),
                    self.cfg.topic,
                )
                return
            if data.get("format") != STATE_FORMAT:
                raise ValueError(f"format {data.get('format')!r}, expected {STATE_FORMAT}")
            self.stats = WindowStats.from_state(data["stats"], self.cfg.limits)
        except (OSError, ValueError, KeyError, TypeError) as exc:
            raise ConfigError(f"can't read the stats state {path}: {exc}") from exc
        if data.get("topic") == self.cfg.topic:
            self.offsets = {int(p): int(o) for p, o in data.get("offsets", {}).items()}
        self.persisted_at = data.get("saved_at")

    async def persist(self) -> None:
        """Save counters and offsets together, then commit the offsets to Kafka."""
        offsets = dict(self.offsets)
        if self.cfg.state_path:
            saved_at = format_ts(int(time.time() * 1000))
            doc = {
                "format": STATE_FORMAT,
                "topic": self.cfg.topic,
                "group_id": self.cfg.group_id,
                "saved_at": saved_at,
                "offsets": {str(p): o for p, o in sorted(offsets.items())},
                "stats": self.stats.to_state(),
            }
            await asyncio.to_thread(write_atomic, self.cfg.state_path, orjson.dumps(doc))
            self.persisted_at = saved_at
        self._dirty = False
        if self._consumer is not None and offsets:
            try:
                await self._consumer.commit(
                    {TopicPartition(self.cfg.topic, p): o for p, o in offsets.items()}
                )
            except KafkaError as exc:  # monitoring only: the state file is the truth
                log.warning("committing stats offsets failed: %s", exc)

    # ------------------------------------------------------------------ consuming

    async def _assign(self) -> bool:
        """Assign every partition of the topic (new ones too); False while it doesn't exist."""
        assert self._consumer is not None
        found = (await self._topics()).get(self.cfg.topic, [])
        tps = {TopicPartition(self.cfg.topic, p) for p in found}
        new = tps - self._assigned
        if new:
            self._consumer.assign(sorted(tps))
            self._assigned = tps
            for tp in sorted(tps):
                if tp.partition in self.offsets:
                    self._consumer.seek(tp, self.offsets[tp.partition])
                else:
                    await self._consumer.seek_to_beginning(tp)
        return bool(tps)

    def handle(self, raw: bytes | None) -> None:
        self._consumed += 1
        try:
            outcome = outcome_record(raw) if raw else None
        except InputError:  # not JSON, or not an object
            outcome = None
        if outcome is not None:
            self.stats.add(outcome)
        else:
            self.stats.invalid += 1

    async def _consume_loop(self) -> None:
        assert self._consumer is not None
        last_check = last_save = 0.0
        while not self._stopping:
            now = time.monotonic()
            if now - last_check > (30.0 if self._assigned else 1.0):
                last_check = now
                if not await self._assign():
                    await asyncio.sleep(1.0)
                    continue
            try:
                batch = await self._consumer.getmany(timeout_ms=500, max_records=5000)
            except KafkaError as exc:  # aiokafka reconnects; report it and go on
                log.warning("reading %s failed: %s", self.cfg.topic, exc)
                await asyncio.sleep(1.0)
                continue
            for tp, records in batch.items():
                for rec in records:
                    self.handle(rec.value)
                if records:
                    self.offsets[tp.partition] = records[-1].offset + 1
                    self._dirty = True
            if self._dirty and time.monotonic() - last_save >= self.cfg.persist_interval_s:
                await self.persist()
                last_save = time.monotonic()

    # ------------------------------------------------------------------ health

    async def _topics(self) -> dict[str, list[int]]:
        """Partitions of every topic. Asking for all topics never creates one; naming a
        missing topic in a metadata request would auto-create it on most brokers."""
        assert self._admin is not None
        return {
            t["topic"]: [p["partition"] for p in t["partitions"]]
            for t in await self._admin.describe_topics()
            if t["error_code"] == 0
        }

    async def _figures(self) -> dict[str, int | None]:
        """End-offset sums of the topics, this consumer's and the engine's lag: one
        ``end_offsets`` request for all (each costs a metadata round)."""
        assert self._admin is not None and self._probe is not None
        cfg, topics = self.cfg, await self._topics()
        named = {
            "events": cfg.input_topic,
            "outcomes": cfg.topic,
            "dead_letters": cfg.dead_letter_topic,
        }
        committed = {}
        if cfg.engine_group:
            found = await self._admin.list_consumer_group_offsets(cfg.engine_group)
            committed = {tp: om.offset for tp, om in found.items() if om.offset >= 0}
        tps = {TopicPartition(t, p) for t in named.values() for p in topics.get(t, [])}
        ends = await self._probe.end_offsets(sorted(tps | self._assigned | set(committed)))

        def total(topic: str) -> int | None:
            got = [ends[tp] for tp in ends if tp.topic == topic]
            return int(sum(got)) if got and topic in topics else None

        out = {key: total(topic) for key, topic in named.items()}
        out["lag"] = (
            sum(max(ends[tp] - self.offsets.get(tp.partition, 0), 0) for tp in self._assigned)
            if self._assigned
            else None
        )
        out["engine_lag"] = (
            int(sum(max(ends[tp] - o, 0) for tp, o in committed.items())) if committed else None
        )
        return out

    async def check_health(self) -> dict[str, Any]:
        cfg, now, errors = self.cfg, time.monotonic(), []
        try:
            figures = await self._figures()
        except KafkaError as exc:
            figures, errors = {}, [str(exc)]
        lag, engine_lag = figures.get("lag"), figures.get("engine_lag")
        consuming = self._tasks[0] if self._tasks else None
        if consuming is not None and consuming.done() and not consuming.cancelled():
            errors.append(f"stopped reading {cfg.topic}: {consuming.exception()!r}")

        def rate(key: str, value: int | None) -> float | None:
            return None if value is None else self._rates[key].sample(value, now)

        self.catalog.refresh()
        s = self.stats
        return {
            "status": "degraded" if errors else "ok" if self._assigned else "waiting for topic",
            "checked_at": format_ts(int(time.time() * 1000)),
            "stats": {
                "topic": cfg.topic,
                "group_id": cfg.group_id,
                "partitions": len(self._assigned),
                "lag": lag,
                "consumed_per_second": rate("consumed", self._consumed),
                "outcomes_counted": s.counted,
                "duplicates": s.duplicates,
                "invalid": s.invalid,
                "last_outcome_ts": None if s.last_ts is None else format_ts(s.last_ts),
                "state_path": cfg.state_path,
                "persisted_at": self.persisted_at,
            },
            "engine": {
                "group_id": cfg.engine_group,
                "lag": engine_lag,
                "events_per_second": rate("events", figures.get("events")),
                "outcomes_per_second": rate("outcomes", figures.get("outcomes")),
                "pending_timers": cfg.pending_timers() if cfg.pending_timers else None,
                "dead_letters": figures.get("dead_letters"),
            },
            "journeys": {"loaded": len(self.catalog.journeys), "problems": self.catalog.problems},
            "errors": errors,
        }

    async def _health_loop(self) -> None:
        while True:
            try:
                self.health = await self.check_health()
            except (KafkaError, OSError) as exc:
                self.health = {**self.health, "status": "degraded", "errors": [str(exc)]}
            await asyncio.sleep(self.cfg.health_interval_s)


async def run_service(
    bootstrap: str,
    topic: str,
    journeys_dir: str,
    host: str,
    port: int,
    state_path: str | None,
    *,
    group_id: str = "journeys-stats",
    engine_group: str | None = None,
    on_ready: Callable[[str], None] | None = None,
    **options: Any,
) -> None:
    """Serve until SIGINT / SIGTERM (or cancellation), then save the state. ``on_ready`` gets
    the dashboard's URL once it listens; ``options``: other :class:`ServiceConfig` fields."""
    args = (bootstrap, topic, journeys_dir, host, port, state_path, group_id, engine_group)
    svc = StatsService(ServiceConfig(*args, **options))
    await svc.start()
    if on_ready is not None:
        on_ready(svc.url + "/")
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        with contextlib.suppress(NotImplementedError, RuntimeError):
            loop.add_signal_handler(sig, stop.set)
    try:
        await stop.wait()
    finally:
        await svc.stop()
