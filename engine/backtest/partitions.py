"""Which partition a user's records are on: Kafka's default partitioner (murmur2 of the key,
the ``user_id``), as ``journeys produce``, the Java clients and aiokafka use it.

A backtest of a file splits the file's users with it, so that ``--events`` and ``--topic``
divide the same users the same way, and any ``--jobs`` gives the same tables.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from pathlib import Path

import orjson
from aiokafka.partitioner import murmur2

# Lines whose user can't be read (bad JSON, no user_id) go to one partition: the job there
# rejects them with the reason, as `journeys simulate` does.
UNROUTABLE = 0


def partition_of(user_id: str, partitions: int) -> int:
    """The partition of ``user_id``'s records on a topic with ``partitions`` partitions."""
    hashed: int = murmur2(user_id.encode())
    return (hashed & 0x7FFFFFFF) % partitions


def file_lines(path: str | Path) -> Iterator[tuple[int, bytes]]:
    """(line number, line) of the lines of an events file that are not blank or ``#``."""
    with open(path, "rb") as fh:
        for no, raw in enumerate(fh, 1):
            stripped = raw.strip()
            if stripped and not stripped.startswith(b"#"):
                yield no, stripped


def split_lines(
    lines: Iterable[tuple[int, bytes]], partitions: int
) -> dict[int, list[tuple[int, bytes]]]:
    """The lines by their user's partition, in file order within each."""
    cache: dict[str, int] = {}
    out: dict[int, list[tuple[int, bytes]]] = {}
    for no, raw in lines:
        part = UNROUTABLE
        try:
            user = orjson.loads(raw).get("user_id")
        except (orjson.JSONDecodeError, AttributeError):
            user = None
        if isinstance(user, str) and user:
            found = cache.get(user)
            if found is None:
                found = cache[user] = partition_of(user, partitions)
            part = found
        out.setdefault(part, []).append((no, raw))
    return out
