"""Create the topics, and refuse to run on topics that are not co-partitioned.

Every topic of the runtime is created with ``settings.partitions`` partitions, so partition
``p`` of each holds the same users; a topic that already exists with another count is an
error (the worker would otherwise split a user's state across workers).
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Iterable

from aiokafka.admin import AIOKafkaAdminClient, NewTopic
from aiokafka.errors import TopicAlreadyExistsError

from engine.errors import ConfigError
from engine.stream.common.logs import event
from engine.stream.common.settings import Settings

log = logging.getLogger("engine.stream.topics")

#: The dead-letter topic takes a whole 1 MiB input in base64, plus the envelope.
DEAD_LETTER_MAX_MESSAGE_BYTES = 4 * 1024 * 1024
TOPIC_ERROR_EXISTS = 36


def admin_client(settings: Settings, client_id: str) -> AIOKafkaAdminClient:
    return AIOKafkaAdminClient(
        bootstrap_servers=settings.bootstrap_servers,
        client_id=client_id,
        request_timeout_ms=30_000,
        **settings.security.aiokafka_kwargs(),
    )


def topic_configs(settings: Settings, name: str) -> dict[str, str]:
    if name == settings.topics.dead_letters:
        return {"max.message.bytes": str(DEAD_LETTER_MAX_MESSAGE_BYTES)}
    # Maps: the latest record per key is kept (split decisions for good, gateway ids).
    if name in (settings.topics.control, settings.topics.gateway_ids):
        return {"cleanup.policy": "compact"}
    return {}


async def ensure_topics(
    settings: Settings, names: Iterable[str], *, timeout_s: float = 30.0
) -> dict[str, int]:
    """Create missing topics; check that all have ``settings.partitions`` partitions.
    Returns {topic: partition count}. Raises :class:`ConfigError` on a mismatch."""
    names = list(dict.fromkeys(names))
    admin = admin_client(settings, f"{settings.app_id}-admin")
    await admin.start()
    try:
        existing = set(await admin.list_topics())
        missing = [n for n in names if n not in existing]
        if missing:
            new = [
                NewTopic(
                    name=n,
                    num_partitions=settings.partitions,
                    replication_factor=settings.replication_factor,
                    topic_configs=topic_configs(settings, n),
                )
                for n in missing
            ]
            try:
                resp = await admin.create_topics(new, timeout_ms=int(timeout_s * 1000))
                for topic, code, *rest in resp.topic_errors:
                    if code not in (0, TOPIC_ERROR_EXISTS):
                        raise ConfigError(f"creating topic {topic!r} failed: error {code} {rest}")
            except TopicAlreadyExistsError:
                pass  # another worker created it meanwhile
            event(log, "topics_created", topics=missing, partitions=settings.partitions)
        counts = await _partition_counts(admin, names, timeout_s)
    finally:
        await admin.close()
    wrong = {n: c for n, c in counts.items() if c != settings.partitions}
    if wrong:
        raise ConfigError(
            f"topics must all have {settings.partitions} partitions (JOURNEYS_PARTITIONS) to be "
            f"co-partitioned, but {wrong}: recreate them or set JOURNEYS_PARTITIONS to match"
        )
    return counts


async def _partition_counts(
    admin: AIOKafkaAdminClient, names: list[str], timeout_s: float
) -> dict[str, int]:
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout_s
    while True:
        described = await admin.describe_topics(names)
        counts: dict[str, int] = {}
        ready = True
        for t in described:
            if t["error_code"] != 0:
                ready = False
                continue
            parts = t["partitions"]
            counts[t["topic"]] = len(parts)
            if any(p["leader"] < 0 for p in parts):
                ready = False
        if ready and len(counts) == len(names):
            return counts
        if loop.time() > deadline:
            raise ConfigError(f"topics not ready after {timeout_s} s: {names}")
        await asyncio.sleep(0.2)
