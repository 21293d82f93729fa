"""Read user states for ``journeys diff --state``: from a file of states (JSON lines, as
``journeys simulate --states-out`` writes them), or from the engine's state table as its
changelog topic keeps it (``{app id}-user-states-changelog``: faust names a table's
changelog after the app and the table).

The changelog is read from the beginning of every partition to the end offsets found at
the start, without a consumer group: the latest record of each key is the user's state,
and a record without a value (a tombstone) means the user has none any more. Only what
the worker has committed is there: a checkpoint writes the changelog.
"""

from __future__ import annotations

import asyncio
from typing import Any

from engine.core.wire import state_wire
from engine.errors import ConfigError, InputError
from engine.lint.inflight import InFlight, Place, places
from engine.stream.common.settings import Settings
from engine.stream.worker.service import STATE_TABLE

Places = tuple[list[Place], list[Place]]


def changelog_topic(settings: Settings) -> str:
    """The changelog topic of the worker's state table (faust: ``{app id}-{table}-changelog``)."""
    return f"{settings.app_id}-{STATE_TABLE}-changelog"


def _places(raw: bytes, where: str) -> Places:
    try:
        return places(state_wire(raw))
    except InputError as exc:
        raise ConfigError(f"{where}: not a user state ({exc})") from None
    except (KeyError, IndexError, TypeError, ValueError) as exc:
        raise ConfigError(f"{where}: not a user state ({type(exc).__name__}: {exc})") from None


def read_states_file(path: str) -> InFlight:
    """The runs in flight in a file of states (a state's wire form or a table value a
    line; blank lines and ``#`` comments are skipped)."""
    found = InFlight(path)
    with open(path, "rb") as fh:
        for no, raw in enumerate(fh, 1):
            if not raw.strip() or raw.lstrip().startswith(b"#"):
                continue
            found.add(_places(raw, f"{path}:{no}"))
    return found


def read_changelog(settings: Settings, topic: str) -> InFlight:
    """The runs in flight in the latest state of every user on ``topic``."""
    latest = asyncio.run(_latest(settings, topic))
    found = InFlight(topic)
    for p in latest.values():
        found.add(p)
    return found


async def _latest(settings: Settings, topic: str) -> dict[bytes, Places]:
    from aiokafka import AIOKafkaConsumer, TopicPartition

    consumer = AIOKafkaConsumer(
        bootstrap_servers=settings.bootstrap_servers,
        enable_auto_commit=False,
        auto_offset_reset="earliest",
        **settings.security.aiokafka_kwargs(),
    )
    await consumer.start()
    latest: dict[bytes, Places] = {}
    try:
        # The cluster's metadata as the broker has it now (partitions_for_topic only knows
        # topics the client was already asked about).
        cluster = await consumer._client.fetch_all_metadata()
        partitions = cluster.partitions_for_topic(topic)
        if not partitions:
            raise ConfigError(
                f"no topic {topic} on {settings.bootstrap}: the worker's state changelog is "
                f"named after its app id ({settings.app_id}-{STATE_TABLE}-changelog): pass "
                "the worker's --app-id (JOURNEYS_APP_ID), or --state kafka:TOPIC"
            )
        tps = [TopicPartition(topic, p) for p in sorted(partitions)]
        consumer.assign(tps)
        await consumer.seek_to_beginning(*tps)
        end: dict[Any, int] = await consumer.end_offsets(tps)
        remaining = {tp for tp in tps if end[tp] > 0}
        while remaining:
            batch = await consumer.getmany(*remaining, timeout_ms=500)
            for tp, records in batch.items():
                for r in records:
                    if r.offset >= end[tp]:
                        continue
                    if r.key is not None:
                        if r.value is None:
                            latest.pop(r.key, None)
                        else:
                            where = f"{topic}[{tp.partition}]@{r.offset}"
                            latest[r.key] = _places(r.value, where)
                    if r.offset + 1 >= end[tp]:
                        remaining.discard(tp)
            for tp in list(remaining):
                if await consumer.position(tp) >= end[tp]:
                    remaining.discard(tp)
    finally:
        await consumer.stop()
    return latest
