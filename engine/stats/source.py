"""Read outcomes: from a JSON-lines file, or everything so far on the outcomes topic."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from typing import Any

import orjson

from engine.errors import ConfigError
from engine.stream.common.settings import Settings


def read_file(path: str) -> Iterator[dict[str, Any]]:
    with open(path, "rb") as fh:
        for raw in fh:
            if raw.strip():
                yield orjson.loads(raw)


def read_topic(settings: Settings) -> list[dict[str, Any]]:
    """Every outcome on the outcomes topic so far (deduplicated on outcome_id)."""
    from aiokafka.errors import KafkaError

    from engine.stream.devtools.outcomes import collect_outcomes

    try:
        return asyncio.run(collect_outcomes(settings))
    except (KafkaError, OSError) as exc:
        raise ConfigError(
            f"can't read {settings.topics.outcomes} from {settings.bootstrap}: {exc}. Is the "
            "broker running (deploy/local-kafka.sh start)? Or pass --file outcomes.jsonl"
        ) from exc
