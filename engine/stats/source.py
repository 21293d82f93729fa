"""Read outcomes: from a JSON-lines file, or everything so far on the outcomes topic."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from typing import Any

from engine.core.wire import outcome_record
from engine.errors import ConfigError
from engine.stream.common.settings import Settings


def read_file(path: str) -> Iterator[dict[str, Any]]:
    """The outcomes of a JSON-lines file; a line that is not a JSON object is an
    :class:`~engine.errors.InputError`."""
    with open(path, "rb") as fh:
        for raw in fh:
            if raw.strip():
                yield outcome_record(raw)


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
