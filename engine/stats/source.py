"""Read outcomes: from a JSON-lines file, or everything so far on the outcomes topic."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from typing import Any

import orjson

from engine.errors import ConfigError


def read_file(path: str) -> Iterator[dict[str, Any]]:
    with open(path, "rb") as fh:
        for raw in fh:
            if raw.strip():
                yield orjson.loads(raw)


async def _read_topic(bootstrap: str, topic: str, timeout_s: float) -> list[dict[str, Any]]:
    from aiokafka import AIOKafkaConsumer, TopicPartition
    from aiokafka.errors import KafkaError

    consumer = AIOKafkaConsumer(
        bootstrap_servers=bootstrap, enable_auto_commit=False, auto_offset_reset="earliest"
    )
    try:
        await asyncio.wait_for(consumer.start(), timeout_s)
        partitions = await consumer.partitions_for_topic(topic) or set()
        tps = [TopicPartition(topic, p) for p in sorted(partitions)]
        if not tps:
            return []
        consumer.assign(tps)
        await consumer.seek_to_beginning(*tps)
        end = await consumer.end_offsets(tps)
        out: list[dict[str, Any]] = []
        remaining = {tp for tp in tps if end[tp] > 0}
        while remaining:
            batch = await consumer.getmany(*remaining, timeout_ms=1000, max_records=5000)
            for tp, records in batch.items():
                for rec in records:
                    if rec.value:
                        try:
                            out.append(orjson.loads(rec.value))
                        except orjson.JSONDecodeError:
                            continue  # not an outcome; the stats skip it
                if await consumer.position(tp) >= end[tp]:
                    remaining.discard(tp)
            if not batch:
                done = {tp for tp in remaining if await consumer.position(tp) >= end[tp]}
                remaining -= done
        return out
    except (KafkaError, TimeoutError, OSError) as exc:
        raise ConfigError(
            f"can't read {topic} from {bootstrap}: {exc}. Is the broker running "
            "(deploy/local-kafka.sh start)? Or pass --file outcomes.jsonl"
        ) from exc
    finally:
        await consumer.stop()


def read_topic(bootstrap: str, topic: str, timeout_s: float = 15.0) -> list[dict[str, Any]]:
    return asyncio.run(_read_topic(bootstrap, topic, timeout_s))
