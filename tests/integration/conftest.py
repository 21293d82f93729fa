"""Fixtures for the integration tests: they run against a real Kafka broker.

Start one with ``deploy/local-kafka.sh start`` (``bash .ci/run`` does it for you). The
broker address comes from ``JOURNEYS_BOOTSTRAP`` (default ``127.0.0.1:9092``). A broker that
does not answer is a test *failure*, never a skip.
"""

from __future__ import annotations

import asyncio
import os
import re
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path

import pytest
from aiokafka.admin import AIOKafkaAdminClient, NewTopic

DEFAULT_BOOTSTRAP = "127.0.0.1:9092"
BROKER_CHECK_TIMEOUT_S = 15.0

_HERE = Path(__file__).resolve().parent


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """Mark every test collected under tests/integration with ``integration``."""
    for item in items:
        if _HERE in Path(str(item.path)).resolve().parents:
            item.add_marker(pytest.mark.integration)


async def _probe_broker(bootstrap: str) -> dict[str, object]:
    admin = AIOKafkaAdminClient(
        bootstrap_servers=bootstrap,
        client_id="journeys-it-probe",
        request_timeout_ms=int(BROKER_CHECK_TIMEOUT_S * 1000),
    )
    try:
        await admin.start()
        cluster: dict[str, object] = await admin.describe_cluster()
        return cluster
    finally:
        await admin.close()


@pytest.fixture(scope="session")
def kafka_bootstrap() -> str:
    """Bootstrap address of a live broker; fails the requesting tests if there is none."""
    bootstrap = os.environ.get("JOURNEYS_BOOTSTRAP", "").strip() or DEFAULT_BOOTSTRAP
    error: BaseException | None = None
    cluster: dict[str, object] = {}
    try:
        cluster = asyncio.run(
            asyncio.wait_for(_probe_broker(bootstrap), timeout=BROKER_CHECK_TIMEOUT_S)
        )
    except Exception as exc:  # any failure to reach the broker is reported the same way
        error = exc
    if error is not None:
        reason = str(error) if type(error).__name__ in str(error) else repr(error)
        pytest.fail(
            f"Kafka broker at {bootstrap} (JOURNEYS_BOOTSTRAP) is not reachable: {reason}. "
            "Start one with `deploy/local-kafka.sh start` "
            "(or run everything with `bash .ci/run`).",
            pytrace=False,
        )
    brokers = cluster.get("brokers")
    if not brokers:
        pytest.fail(
            f"Kafka at {bootstrap} answered but lists no brokers: {cluster!r}. "
            "Restart it with `deploy/local-kafka.sh stop && deploy/local-kafka.sh start`.",
            pytrace=False,
        )
    return bootstrap


@pytest.fixture(autouse=True)
def _requires_kafka(kafka_bootstrap: str) -> None:
    """Every integration test needs the broker: fail (not skip) early when it is missing."""


@pytest.fixture
def unique_name(request: pytest.FixtureRequest) -> Callable[[str], str]:
    """Factory for names unique to this test and run: ``unique_name("orders")``.

    Use it for topics, consumer groups and transactional ids, so tests never share state
    on a long-lived broker.
    """
    test = re.sub(r"[^A-Za-z0-9_-]+", "-", request.node.name).strip("-")[:60]
    run = uuid.uuid4().hex[:10]
    counter = 0

    def make(prefix: str = "t") -> str:
        nonlocal counter
        counter += 1
        return f"it.{prefix}.{test}.{run}.{counter}"

    return make


@pytest.fixture
def unique_topic(unique_name: Callable[[str], str]) -> str:
    """One topic name unique to this test (the topic itself is not created)."""
    return unique_name("topic")


@pytest.fixture
async def kafka_admin(kafka_bootstrap: str) -> AsyncIterator[AIOKafkaAdminClient]:
    """A started admin client, closed after the test."""
    admin = AIOKafkaAdminClient(bootstrap_servers=kafka_bootstrap, client_id="journeys-it-admin")
    await admin.start()
    try:
        yield admin
    finally:
        await admin.close()


TopicFactory = Callable[..., Awaitable[str]]


@pytest.fixture
async def create_topic(
    kafka_admin: AIOKafkaAdminClient, unique_name: Callable[[str], str]
) -> AsyncIterator[TopicFactory]:
    """``await create_topic(partitions=3)`` creates a uniquely named topic and returns its name
    once every partition has a leader; the topics are deleted after the test."""
    created: list[str] = []

    async def make(name: str | None = None, *, partitions: int = 1, timeout_s: float = 30.0) -> str:
        topic = name or unique_name("topic")
        response = await kafka_admin.create_topics(
            [NewTopic(name=topic, num_partitions=partitions, replication_factor=1)],
            timeout_ms=int(timeout_s * 1000),
        )
        for got, error_code, *rest in response.topic_errors:
            if error_code != 0:
                raise AssertionError(f"creating topic {got!r} failed: error {error_code} {rest}")
        created.append(topic)
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout_s
        while True:
            described = await kafka_admin.describe_topics([topic])
            leaders = [
                p["leader"]
                for t in described
                if t["topic"] == topic and t["error_code"] == 0
                for p in t["partitions"]
            ]
            if len(leaders) == partitions and all(leader >= 0 for leader in leaders):
                return topic
            if loop.time() > deadline:
                raise AssertionError(f"topic {topic!r} not ready after {timeout_s} s: {described}")
            await asyncio.sleep(0.1)

    yield make
    if created:
        await kafka_admin.delete_topics(created)
