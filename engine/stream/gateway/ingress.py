"""The webhook ingress of ``journeys gateway``: the providers' callbacks, in the gateway
process, on ``JOURNEYS_WEBHOOK_PORT``.

The HTTP side is the library's :class:`~engine.channels.webhooks.WebhookReceiver`; this
module gives it Kafka:

* the **sink** produces a receipt to ``journey.channel-receipts`` or an inbound message
  to ``journey.inbound``, keyed by user_id on the partition the user's sends came from,
  and returns once the broker has acknowledged it (only then does the provider get its
  200);
* the **directory** is the id map (:mod:`engine.stream.gateway.idmap`), read whole from
  ``journey.gateway-ids`` at start and followed after (503 until it is loaded);
* the **event log** (webhook dedupe) writes ``e:<event id>`` records to the same topic;
* **dead letters** go to ``journey.dead-letters`` with stage ``webhook``, the path as
  the topic and the request body as the value.

A plain aiokafka producer and consumer: none of this is part of the consumer group.
"""

from __future__ import annotations

import logging
import socket
import time
from typing import Any

from aiohttp import web
from aiokafka import AIOKafkaProducer

from engine.channels.providers.config import ProviderSettings
from engine.channels.webhooks import Event, SentMessage, WebhookReceiver
from engine.core import wire
from engine.core.inputs import Receipt
from engine.errors import ConfigError
from engine.stream.common.logs import event
from engine.stream.common.metrics import Metrics
from engine.stream.common.settings import Settings
from engine.stream.gateway import idmap

log = logging.getLogger("engine.stream.gateway")


def wall_ms() -> int:
    return time.time_ns() // 1_000_000


def bind(port: int, host: str = "0.0.0.0") -> socket.socket:
    """The webhook server's socket, bound now, so that a port in use stops the gateway at
    start (before it consumes anything)."""
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        sock.bind((host, port))
    except OSError as exc:
        sock.close()
        raise ConfigError(
            f"JOURNEYS_WEBHOOK_PORT={port}: can't listen there ({exc.strerror}); pick a free port"
        ) from exc
    return sock


class Ingress:
    def __init__(
        self,
        settings: Settings,
        providers: ProviderSettings,
        ids: idmap.IdMap,
        sock: socket.socket,
    ) -> None:
        self.settings = settings
        self.ids = ids
        self.sock = sock
        topics = settings.topics
        self.receipts_topic = topics.channel_receipts
        self.inbound_topic = topics.inbound
        self.dead_letter_topic = topics.dead_letters
        self.ids_topic = topics.gateway_ids
        rbm, twilio = providers.rbm, providers.twilio
        self.receiver = WebhookReceiver(
            sink=self._sink,
            directory=ids,
            events=self,
            dead_letter=self._dead_letter,
            rbm_client_token=rbm.webhook_token if rbm is not None else None,
            twilio_auth_token=twilio.auth_token if twilio is not None else None,
            public_url=providers.webhook.public_url,
            ready=lambda: ids.loaded,
        )
        self.follower = idmap.IdMapFollower(settings, ids, f"{settings.gateway_app_id}-ids")
        self._producer: AIOKafkaProducer | None = None
        self._runner: web.AppRunner | None = None
        self.metrics: Metrics | None = None  # Prometheus (set by the service)

    @property
    def port(self) -> int:
        return int(self.sock.getsockname()[1])

    async def start(self) -> None:
        s = self.settings
        self._producer = AIOKafkaProducer(
            bootstrap_servers=s.bootstrap_servers,
            client_id=f"{s.gateway_app_id}-webhooks",
            acks="all",
            enable_idempotence=True,
            **s.security.aiokafka_kwargs(),
        )
        await self._producer.start()
        app = self.receiver.app()
        if self.metrics is not None:
            app.middlewares.append(_counting(self.metrics))
        self._runner = web.AppRunner(app, access_log=None)
        await self._runner.setup()
        await web.SockSite(self._runner, self.sock).start()
        event(log, "webhooks_listening", port=self.port)
        await self.follower.start()  # 503 until the map is loaded

    async def stop(self) -> None:
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None
        await self.follower.stop()
        if self._producer is not None:
            await self._producer.stop()
            self._producer = None
        event(log, "webhooks_stopped", **self.receiver.counts)

    async def _produce(self, topic: str, key: bytes | None, value: bytes | None, **kw: Any) -> None:
        assert self._producer is not None, "start() first"
        fut = await self._producer.send(topic, value, key=key, **kw)
        await fut  # the provider gets its 200 only once the broker has the record

    # -- the receiver's sink, event log and dead letters

    async def _sink(self, item: Event, sent: SentMessage) -> None:
        if isinstance(item, Receipt):
            topic, value = self.receipts_topic, wire.receipt_wire(item)
        else:
            topic, value = self.inbound_topic, wire.inbound_wire(item)
        await self._produce(
            topic, item.user_id.encode(), wire.dumps(value), partition=sent.partition
        )

    def seen(self, key: str) -> bool:
        return self.ids.seen(key)

    async def mark(self, key: str) -> None:
        k, v = idmap.event_record(key, wall_ms())
        await self._produce(self.ids_topic, k, v)
        self.ids.apply(k, v)

    async def _dead_letter(self, reason: str, detail: str, path: str, body: bytes) -> None:
        record = wire.dead_letter(
            reason=reason,
            detail=detail,
            stage="webhook",
            topic=path,
            partition=-1,
            offset=-1,
            key=None,
            value=body,
            dead_lettered_at=wall_ms(),
        )
        await self._produce(self.dead_letter_topic, None, record)
        event(log, "dead_letter", logging.WARNING, reason=reason, detail=detail[:300], topic=path)

    async def sweep(self) -> int:
        """Forget the ids of webhook events too old to be retried."""
        old = self.ids.old_events(wall_ms())
        for key in old:
            k = f"e:{key}".encode()
            await self._produce(self.ids_topic, k, None)
            self.ids.apply(k, None)
        return len(old)


def _counting(metrics: Metrics) -> Any:
    """journeys_webhook_requests_total{provider, status}: the provider from the path
    (/webhooks/rbm, /webhooks/twilio), the HTTP status of the answer."""

    @web.middleware
    async def count(request: web.Request, handler: Any) -> web.StreamResponse:
        provider = request.path.rsplit("/", 1)[-1] or "root"
        try:
            response: web.StreamResponse = await handler(request)
        except web.HTTPException as exc:
            metrics.webhooks.labels(provider, str(exc.status)).inc()
            raise
        metrics.webhooks.labels(provider, str(response.status)).inc()
        return response

    return count
