"""The shared seeding step of R3-R5: N users, each waiting in a wait node, written straight
into a fresh worker's state changelog, as if a worker had processed their entries.

Each user's state is made by the core itself (:meth:`engine.core.engine.Engine.advance` on
one ``signed_up`` event of a journey that waits ``WAIT``), encoded with
:func:`engine.core.wire.state_record`, and produced to the partition of the changelog that
the user's events would land on (the Kafka default partitioner of the key). So the records
are exactly what the worker would have written; only the path there is shorter (no input
topic, no checkpoint). ``wake_at(i)`` chooses user ``i``'s wake time: the entry time is
that minus the wait, so the state is the one of a user who entered ``WAIT`` earlier.

A worker started by :class:`~engine.stream.devtools.harness.StreamEnv` on the same env
(same app id, hence the same changelog) restores these users, rebuilds its timer index from
them, and wakes each one at its time: ``node_entered`` of ``after`` on ``journey.outcomes``.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from aiokafka import AIOKafkaProducer
from aiokafka.admin import NewTopic
from aiokafka.errors import TopicAlreadyExistsError
from aiokafka.partitioner import DefaultPartitioner

from engine.core import wire
from engine.core.engine import Engine
from engine.core.inputs import UserEvent
from engine.durations import parse_duration_ms, parse_ts_ms
from engine.journey.loader import load_text
from engine.stream.common.topics import admin_client, ensure_topics
from engine.stream.devtools.harness import StreamEnv
from engine.stream.worker.service import STATE_TABLE

WAIT = "30d"
JOURNEY_ID = "waiting"
WAITING_JOURNEY = f"""
id: {JOURNEY_ID}
version: 1
name: Waiting users (benchmarks R3-R5)
entry: {{event: signed_up}}
start: pause
nodes:
  pause: {{type: wait, duration: {WAIT}, next: after}}
  after: {{type: exit}}
"""
#: Records per produced batch (one partition's batch of at most ~1 MiB).
BATCH_BYTES = 1024 * 1024


def changelog_topic(env: StreamEnv) -> str:
    """The worker's state changelog, as faust names it: ``{app_id}-{table}-changelog``."""
    return f"{env.settings().app_id}-{STATE_TABLE}-changelog"


def waiting_env(bootstrap: str, workdir: Path, partitions: int, **extra: str) -> StreamEnv:
    """A :class:`StreamEnv` (unique topic prefix and app ids) with the waiting journey."""
    jdir = workdir / "journeys"
    jdir.mkdir(parents=True, exist_ok=True)
    (jdir / f"{JOURNEY_ID}.yaml").write_text(WAITING_JOURNEY)
    return StreamEnv(bootstrap, workdir, jdir, partitions=partitions, extra_env=dict(extra))


def waiting_engine() -> Engine:
    loaded, problems = load_text(WAITING_JOURNEY, f"{JOURNEY_ID}.yaml")
    if loaded is None or loaded.journey is None or problems:
        raise RuntimeError(f"the benchmark journey does not load: {problems}")
    return Engine([loaded.journey])


def user_id(i: int) -> str:
    return f"w{i:07d}"


def waiting_states(
    users: int | range, wake_at: Callable[[int], int], partitions: int
) -> Iterator[tuple[int, bytes, bytes]]:
    """(partition, key, table value) of users ``0 .. users-1`` (or of the range), each made
    by the core: user ``i`` entered the waiting journey ``WAIT`` before ``wake_at(i)``."""
    engine = waiting_engine()
    wait_ms = parse_duration_ms(WAIT)
    partitioner = DefaultPartitioner()
    all_parts = list(range(partitions))
    for i in range(users) if isinstance(users, int) else users:
        uid = user_id(i)
        key = uid.encode()
        entered = wake_at(i) - wait_ms
        state = engine.new_state(uid)
        engine.advance(state, UserEvent(f"e-{uid}", uid, "signed_up", entered), entered)
        if state.wake_at != wake_at(i):
            raise RuntimeError(f"{uid}: the core scheduled {state.wake_at}, not {wake_at(i)}")
        partition = partitioner(key, all_parts, all_parts)
        yield partition, key, wire.state_record(partition, state)


@dataclass(frozen=True)
class Seeded:
    users: int
    changelog: str
    bytes: int  # table values produced
    seconds: float  # core + produce

    def as_dict(self) -> dict[str, Any]:
        return {
            "users": self.users,
            "changelog": self.changelog,
            "value_bytes_avg": round(self.bytes / max(1, self.users), 1),
            "seed_s": round(self.seconds, 1),
            "seed_users_per_s": round(self.users / max(self.seconds, 1e-9)),
        }


async def seed(
    env: StreamEnv,
    users: int | range,
    wake_at: Callable[[int], int],
    note: Callable[[str], None] = lambda _m: None,
) -> Seeded:
    """Create the env's topics and its changelog (unless they exist), and put the waiting
    users ``0 .. users-1`` (or those of the range) on it."""
    n = users if isinstance(users, int) else len(users)
    settings = env.settings()
    await ensure_topics(settings, settings.topics.all())
    topic = changelog_topic(env)
    admin = admin_client(settings, f"{settings.app_id}-seed")
    await admin.start()
    try:
        await admin.create_topics(
            [
                NewTopic(
                    name=topic,
                    num_partitions=env.partitions,
                    replication_factor=1,
                    topic_configs={"cleanup.policy": "compact"},
                )
            ]
        )
    except TopicAlreadyExistsError:
        pass  # a worker of this env created it (a second seeding)
    finally:
        await admin.close()
    producer = AIOKafkaProducer(
        bootstrap_servers=settings.bootstrap_servers,
        acks="all",
        max_batch_size=BATCH_BYTES,
        max_request_size=8 * BATCH_BYTES,
        linger_ms=20,
    )
    await producer.start()
    t0 = time.monotonic()
    total = 0
    try:
        batches: dict[int, Any] = {}
        pending: list[asyncio.Future[Any]] = []
        for count, (partition, key, value) in enumerate(
            waiting_states(users, wake_at, env.partitions), 1
        ):
            total += len(value)
            batch = batches.get(partition)
            if batch is None:
                batch = batches[partition] = producer.create_batch()
            if batch.append(key=key, value=value, timestamp=None) is None:
                pending.append(await producer.send_batch(batch, topic, partition=partition))
                batch = batches[partition] = producer.create_batch()
                batch.append(key=key, value=value, timestamp=None)
            if count % 100_000 == 0:
                note(f"seeded {count:,} / {n:,} waiting users")
                await asyncio.gather(*pending)
                pending.clear()
        for partition, batch in batches.items():
            if batch.record_count():
                pending.append(await producer.send_batch(batch, topic, partition=partition))
        await asyncio.gather(*pending)
    finally:
        await producer.stop()
    return Seeded(n, topic, total, time.monotonic() - t0)


def rss_bytes(pid: int) -> int:
    """The resident set size of a process (Linux ``/proc/<pid>/status``, ``VmRSS``)."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) * 1024
    raise RuntimeError(f"no VmRSS for process {pid}")


def logged_ms(line: dict[str, Any]) -> int:
    """The epoch ms of one of our JSON log lines (its ``ts``)."""
    return parse_ts_ms(str(line["ts"]))


def options(opts: Any) -> tuple[str, int, int, bool, Path, Callable[[str], None]]:
    """(bootstrap, waiting users, partitions, quick, workdir, note) of the suite's
    :class:`~engine.bench.options.BenchOptions`, or of anything with some of those names."""
    quick = bool(getattr(opts, "quick", False))
    users = getattr(opts, "waiting_users", None) or getattr(opts, "users", None)
    if users is None:
        users = 20_000 if quick else 1_000_000
    note = getattr(opts, "note", None) or (lambda _m: None)
    return (
        str(getattr(opts, "bootstrap", "127.0.0.1:9092")),
        int(users),
        int(getattr(opts, "partitions", 4)),
        quick,
        Path(getattr(opts, "workdir", ".")),
        note,
    )
