"""One namespace per run, and a refusal to start on another run's state.

Everything a run creates derives from ``JOURNEYS_TOPIC_PREFIX``: the topics, and the
consumer groups (``Settings.app_id`` / ``gateway_app_id`` start with the prefix), hence the
tables' changelog topics (``{group}-<table>-changelog``) and the gateway's dedupe table.
Two runs with different prefixes share nothing.

What can still mix runs is a group named explicitly (``JOURNEYS_APP_ID``,
``--app-id``) that another run already uses. A group's committed offsets name the topics
it consumes: that is the marker. Before a service creates anything, it reads its group's
committed offsets; offsets on topics that are not its own inputs (nor the group's own
internal topics) mean the group -- and its changelog, its dedupe table -- belongs to
another run, and the service refuses to start (:class:`~engine.errors.ConfigError`
naming the settings).
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Iterable
from typing import Any

from aiokafka.errors import CoordinatorLoadInProgressError, GroupCoordinatorNotAvailableError

from engine.errors import ConfigError
from engine.stream.common.logs import event
from engine.stream.common.settings import Settings
from engine.stream.common.topics import admin_client

log = logging.getLogger("engine.stream.namespace")


def foreign_topics(group: str, inputs: Iterable[str], committed: Iterable[str]) -> list[str]:
    """The topics among ``committed`` (those the group has offsets on) that are neither
    the service's ``inputs`` nor the group's own (``{group}-...``: faust's changelogs and
    assignor topic)."""
    own = set(inputs)
    return sorted({t for t in committed if t not in own and not t.startswith(f"{group}-")})


def legacy_group(settings: Settings, group: str) -> str | None:
    """The name ``group`` had before default groups took the topic prefix (None: the
    group is not a default one, or there is no prefix)."""
    ns = settings.namespace
    bare = group[len(ns) :] if ns and group.startswith(ns) else None
    return bare if bare in (Settings.app_id, Settings.gateway_app_id) else None


async def check_namespace(settings: Settings, group: str, inputs: Iterable[str]) -> None:
    """Refuse (ConfigError) a consumer group whose committed offsets are on another run's
    topics; and a new default group when the group of the same name without the prefix
    (before groups took it) holds this run's offsets. A new run passes."""
    inputs = tuple(inputs)
    legacy = legacy_group(settings, group)
    admin = admin_client(settings, f"{group}-namespace")
    await admin.start()
    try:
        committed = await _offsets(admin, group)
        old = await _offsets(admin, legacy) if legacy and not committed else {}
    finally:
        await admin.close()
    if set(inputs) & {tp.topic for tp in old}:
        raise ConfigError(
            f"this run's state is in consumer group {legacy!r}, named before the groups took "
            f"the topic prefix {settings.namespace!r}; the new group {group!r} would start "
            f"over from the beginning of the topics. Keep the old group: set "
            f"{'JOURNEYS_APP_ID' if legacy == Settings.app_id else 'JOURNEYS_GATEWAY_APP_ID'}"
            f"={legacy}."
        )
    foreign = foreign_topics(group, inputs, {tp.topic for tp in committed})
    if foreign:
        raise ConfigError(
            f"consumer group {group!r} holds the state of another run: it has committed "
            f"offsets on {', '.join(foreign)}, not on this run's topics "
            f"({', '.join(inputs)}). Its changelog and tables belong to that run. Check "
            f"JOURNEYS_TOPIC_PREFIX (now {settings.namespace!r}), JOURNEYS_APP_ID / "
            "JOURNEYS_GATEWAY_APP_ID and JOURNEYS_TOPIC_<NAME>; use a group of your own, or "
            "delete that group (kafka-consumer-groups --delete --group ...) if its run is over."
        )
    event(log, "namespace_checked", group=group, namespace=settings.namespace, topics=len(inputs))


async def _offsets(admin: Any, group: str, wait_s: float = 30.0) -> dict[Any, Any]:
    """The group's committed offsets. A broker that has never seen a group has no offsets
    topic yet, and says "no coordinator" until it made one: ask again for a while."""
    deadline = time.monotonic() + wait_s
    while True:
        try:
            return dict(await admin.list_consumer_group_offsets(group))
        except (GroupCoordinatorNotAvailableError, CoordinatorLoadInProgressError):
            if time.monotonic() > deadline:
                raise
            await asyncio.sleep(0.5)
