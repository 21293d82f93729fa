"""The gateway's id map: which user, phone, journey and node each message belongs to, the
provider's id of each message (Twilio's SID), the latest message per phone, and the
webhook events already handled. Kept in a compacted topic of its own,
``journey.gateway-ids``, so a delivery report finds its user after any restart, on any
gateway instance.

Records (key -> JSON value; a tombstone forgets)::

    m:<message_id>   {"u", "to", "ch", "pv", "j", "n", "p", "at"}
    s:<provider_id>  {"m": message_id}
    t:<phone>        {"m": message_id}    the latest message to that phone (inbound texts)
    e:<event key>    {"at": ms}           a webhook event handed on (dedupe)

The gateway writes ``m:`` and ``t:`` with the claim (acknowledged before the provider is
called) and ``s:`` when the provider answers with an id of its own (through the
checkpoint, so before the request's offset is committed); the webhook ingress writes
``e:``. A gateway whose providers are both simulated keeps no map (nothing calls back).
Every instance reads the whole topic into memory at start (a plain consumer, no group),
keeps following it, and applies its own writes at once (:meth:`IdMap.apply`).

Memory: one entry per message, forgotten with the message's claim record
(``JOURNEYS_DEDUPE_RETENTION_H``); event ids are forgotten after ``EVENT_RETENTION_MS``
(Google retries a webhook for up to 7 days); the latest message per phone is kept.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Iterable
from typing import Any

import orjson
from aiokafka import AIOKafkaConsumer, TopicPartition

from engine.channels.webhooks import SentMessage
from engine.stream.common.logs import event
from engine.stream.common.settings import Settings

log = logging.getLogger("engine.stream.gateway")

EVENT_RETENTION_MS = 8 * 24 * 3_600_000
KV = tuple[bytes, bytes | None]


def message_key(message_id: str) -> bytes:
    return f"m:{message_id}".encode()


def message_records(sent: SentMessage, at_ms: int) -> list[KV]:
    """The records of a claimed message: its entry and the phone's latest message."""
    value: dict[str, Any] = {
        "u": sent.user_id,
        "to": sent.phone,
        "ch": sent.channel,
        "pv": sent.provider,
        "j": sent.journey_id,
        "n": sent.node_id,
        "p": sent.partition,
        "at": at_ms,
    }
    if sent.provider_id:
        value["pid"] = sent.provider_id
    mid = orjson.dumps({"m": sent.message_id})
    out: list[KV] = [(message_key(sent.message_id), orjson.dumps(value))]
    out.append((f"t:{sent.phone}".encode(), mid))
    if sent.provider_id:
        out.append((f"s:{sent.provider_id}".encode(), mid))
    return out


def provider_records(message_id: str, provider_id: str) -> list[KV]:
    """The provider's id of a message, once it answered."""
    return [(f"s:{provider_id}".encode(), orjson.dumps({"m": message_id}))]


def forget_records(message_id: str, provider_id: str | None) -> list[KV]:
    out: list[KV] = [(message_key(message_id), None)]
    if provider_id:
        out.append((f"s:{provider_id}".encode(), None))
    return out


def event_record(key: str, at_ms: int) -> KV:
    return f"e:{key}".encode(), orjson.dumps({"at": at_ms})


class IdMap:
    """The map in memory (:class:`~engine.channels.webhooks.MessageDirectory` and the
    dedupe side of :class:`~engine.channels.webhooks.EventLog`)."""

    def __init__(self) -> None:
        self.messages: dict[str, SentMessage] = {}
        self.provider_ids: dict[str, str] = {}
        self.phones: dict[str, str] = {}
        self.events: dict[str, int] = {}
        self.loaded = False

    def apply(self, key: bytes, value: bytes | None) -> None:
        """One record of the topic (or one written here)."""
        try:
            kind, _, ident = key.decode().partition(":")
            data = orjson.loads(value) if value is not None else None
        except (UnicodeDecodeError, orjson.JSONDecodeError):
            return
        if kind == "m":
            if data is None:
                self.messages.pop(ident, None)
            else:
                p = data.get("p")
                self.messages[ident] = SentMessage(
                    ident,
                    str(data["u"]),
                    str(data["to"]),
                    str(data["ch"]),
                    str(data["pv"]),
                    data.get("j"),
                    data.get("n"),
                    p if isinstance(p, int) else None,
                    data.get("pid"),
                )
        elif kind in ("s", "t"):
            table = self.provider_ids if kind == "s" else self.phones
            if data is None:
                table.pop(ident, None)
            else:
                table[ident] = str(data["m"])
        elif kind == "e":
            if data is None:
                self.events.pop(ident, None)
            else:
                self.events[ident] = int(data.get("at", 0))

    def apply_all(self, records: Iterable[KV]) -> None:
        for key, value in records:
            self.apply(key, value)

    # -- MessageDirectory

    def by_message_id(self, message_id: str) -> SentMessage | None:
        return self.messages.get(message_id)

    def by_provider_id(self, provider_id: str) -> SentMessage | None:
        mid = self.provider_ids.get(provider_id)
        return None if mid is None else self.messages.get(mid)

    def latest_for_phone(self, phone: str) -> SentMessage | None:
        mid = self.phones.get(phone)
        return None if mid is None else self.messages.get(mid)

    # -- EventLog (the reading side)

    def seen(self, key: str) -> bool:
        return key in self.events

    def old_events(self, now_ms: int) -> list[str]:
        return [k for k, at in self.events.items() if at < now_ms - EVENT_RETENTION_MS]


class IdMapFollower:
    """Reads the topic into an :class:`IdMap`: everything up to the end offsets found at
    start (then ``loaded``), and every record after that, until stopped."""

    def __init__(self, settings: Settings, ids: IdMap, client_id: str) -> None:
        self.settings = settings
        self.ids = ids
        self.client_id = client_id
        self.records = 0
        self._task: asyncio.Task[None] | None = None
        self._consumer: AIOKafkaConsumer | None = None

    async def start(self) -> None:
        """Load the whole map; returns once it is loaded (then follows in the background)."""
        s = self.settings
        consumer = AIOKafkaConsumer(
            bootstrap_servers=s.bootstrap_servers,
            client_id=self.client_id,
            group_id=None,
            enable_auto_commit=False,
            auto_offset_reset="earliest",
            **s.security.aiokafka_kwargs(),
        )
        await consumer.start()
        self._consumer = consumer
        topic = s.topics.gateway_ids
        parts = consumer.partitions_for_topic(topic)
        for _ in range(100):
            if parts:
                break
            # as engine.stream.devtools.outcomes does: aiokafka has no public refresh
            await consumer._client.force_metadata_update()
            parts = consumer.partitions_for_topic(topic)
            await asyncio.sleep(0.1)
        if not parts:
            raise RuntimeError(f"topic {topic} has no partitions (was it created?)")
        tps = [TopicPartition(topic, p) for p in sorted(parts)]
        consumer.assign(tps)
        await consumer.seek_to_beginning(*tps)
        ends = await consumer.end_offsets(tps)
        pending = {tp: end for tp, end in ends.items() if end > 0}
        while pending:
            batches = await consumer.getmany(timeout_ms=500)
            for tp, msgs in batches.items():
                for m in msgs:
                    self.ids.apply(m.key, m.value)
                    self.records += 1
                if msgs and msgs[-1].offset + 1 >= pending.get(tp, 0):
                    pending.pop(tp, None)
            for tp in list(pending):
                if await consumer.position(tp) >= pending[tp]:
                    pending.pop(tp)
        self.ids.loaded = True
        event(
            log,
            "gateway_ids_loaded",
            records=self.records,
            messages=len(self.ids.messages),
            events=len(self.ids.events),
        )
        self._task = asyncio.ensure_future(self._follow(consumer))

    async def _follow(self, consumer: AIOKafkaConsumer) -> None:
        while True:
            try:
                batches = await consumer.getmany(timeout_ms=1000)
            except asyncio.CancelledError:
                raise
            except Exception as exc:  # keep following: a broker hiccup must not end it
                event(log, "gateway_ids_read_failed", logging.WARNING, error=repr(exc))
                await asyncio.sleep(1.0)
                continue
            for msgs in batches.values():
                for m in msgs:
                    self.ids.apply(m.key, m.value)
                    self.records += 1

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await self._task
        if self._consumer is not None:
            await self._consumer.stop()
