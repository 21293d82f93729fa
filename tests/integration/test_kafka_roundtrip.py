"""Round trips through the real broker: admin, keyed produce, group consume, transactions."""

from __future__ import annotations

import asyncio
from collections import defaultdict
from collections.abc import Awaitable, Callable

import pytest
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, ConsumerRecord
from aiokafka.admin import AIOKafkaAdminClient

pytestmark = pytest.mark.integration

TopicFactory = Callable[..., Awaitable[str]]

KEYS = [f"customer-{i}" for i in range(8)]
MESSAGES_PER_KEY = 5


async def consume_n(
    consumer: AIOKafkaConsumer, n: int, timeout_s: float = 60.0
) -> list[ConsumerRecord[bytes, bytes]]:
    """Read until ``n`` records arrived (or fail after ``timeout_s``)."""
    records: list[ConsumerRecord[bytes, bytes]] = []
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout_s
    while len(records) < n:
        if loop.time() > deadline:
            raise AssertionError(f"got {len(records)} of {n} records after {timeout_s} s")
        batches = await consumer.getmany(timeout_ms=500)
        for batch in batches.values():
            records.extend(batch)
    return records


async def test_admin_creates_topic_with_three_partitions(
    kafka_admin: AIOKafkaAdminClient, create_topic: TopicFactory
) -> None:
    topic = await create_topic(partitions=3)

    assert topic in await kafka_admin.list_topics()
    (described,) = await kafka_admin.describe_topics([topic])
    assert sorted(p["partition"] for p in described["partitions"]) == [0, 1, 2]


async def test_keyed_messages_round_trip_through_a_consumer_group(
    kafka_bootstrap: str,
    kafka_admin: AIOKafkaAdminClient,
    create_topic: TopicFactory,
    unique_name: Callable[[str], str],
) -> None:
    topic = await create_topic(partitions=3)
    group = unique_name("group")

    sent: dict[str, list[str]] = defaultdict(list)
    sent_partition: dict[str, set[int]] = defaultdict(set)
    producer = AIOKafkaProducer(bootstrap_servers=kafka_bootstrap, acks="all")
    await producer.start()
    try:
        for seq in range(MESSAGES_PER_KEY):
            for key in KEYS:
                value = f"{key}:{seq}"
                meta = await producer.send_and_wait(topic, value.encode(), key=key.encode())
                sent[key].append(value)
                sent_partition[key].add(meta.partition)
    finally:
        await producer.stop()

    # The default partitioner hashes the key: one partition per key, several partitions used.
    assert all(len(parts) == 1 for parts in sent_partition.values()), sent_partition
    assert len({p for parts in sent_partition.values() for p in parts}) > 1

    consumer = AIOKafkaConsumer(
        topic,
        bootstrap_servers=kafka_bootstrap,
        group_id=group,
        auto_offset_reset="earliest",
        enable_auto_commit=False,
    )
    await consumer.start()
    try:
        records = await consume_n(consumer, len(KEYS) * MESSAGES_PER_KEY)
        await consumer.commit()
        assignment = {tp.partition for tp in consumer.assignment()}
    finally:
        await consumer.stop()

    assert assignment == {0, 1, 2}
    got: dict[str, list[str]] = defaultdict(list)
    got_partition: dict[str, set[int]] = defaultdict(set)
    for record in records:
        assert record.key is not None and record.value is not None
        assert record.topic == topic
        key = record.key.decode()
        got[key].append(record.value.decode())
        got_partition[key].add(record.partition)
    # Same messages, per-key order kept, each key on the partition the producer reported.
    assert got == sent
    assert got_partition == sent_partition

    # The group committed its position: the end of every assigned partition.
    expected_end: dict[int, int] = defaultdict(int)
    for key, parts in sent_partition.items():
        (partition,) = parts
        expected_end[partition] += len(sent[key])
    offsets = await kafka_admin.list_consumer_group_offsets(group)
    assert {tp.partition: meta.offset for tp, meta in offsets.items()} == {
        p: expected_end[p] for p in (0, 1, 2)
    }


async def test_transactions_hide_aborted_and_expose_committed_messages(
    kafka_bootstrap: str,
    create_topic: TopicFactory,
    unique_name: Callable[[str], str],
) -> None:
    topic = await create_topic(partitions=3)

    producer = AIOKafkaProducer(
        bootstrap_servers=kafka_bootstrap,
        transactional_id=unique_name("txn"),
        enable_idempotence=True,
    )
    await producer.start()
    try:
        await producer.begin_transaction()
        for i in range(3):
            await producer.send(topic, f"aborted-{i}".encode(), key=f"k{i}".encode())
        await producer.abort_transaction()

        async with producer.transaction():
            for i in range(3):
                await producer.send(topic, f"committed-{i}".encode(), key=f"k{i}".encode())
    finally:
        await producer.stop()

    consumer = AIOKafkaConsumer(
        topic,
        bootstrap_servers=kafka_bootstrap,
        group_id=unique_name("group"),
        auto_offset_reset="earliest",
        isolation_level="read_committed",
    )
    await consumer.start()
    try:
        # Aborted records precede the committed ones in every partition, so once the three
        # committed records have arrived, any aborted one would have been delivered too.
        records = await consume_n(consumer, 3)
        records.extend(
            r for batch in (await consumer.getmany(timeout_ms=500)).values() for r in batch
        )
    finally:
        await consumer.stop()

    values = sorted(r.value.decode() for r in records if r.value is not None)
    assert values == ["committed-0", "committed-1", "committed-2"]
