"""The stream runtime's old codec: every wire format now lives in :mod:`engine.core.wire`.

Only :func:`dead_letter` is more than a name here: the pure one takes the time as an
argument, and this adapter-side wrapper reads the wall clock for it.
"""

# compatibility re-export, removed after the issue-9 merge

from __future__ import annotations

import time

from engine.core import wire
from engine.core.wire import (
    DEAD_LETTER_MAX_ORIGINAL,
    decode_gateway_request,
    dumps,
    receipt_from_wire,
    receipt_wire,
    revoke_value,
    send_request_value,
    wake_from,
    wake_value,
)

__all__ = [
    "DEAD_LETTER_MAX_ORIGINAL",
    "dead_letter",
    "decode_gateway_request",
    "dumps",
    "receipt_from_wire",
    "receipt_wire",
    "revoke_value",
    "send_request_value",
    "wake_from",
    "wake_value",
]


def dead_letter(
    *,
    reason: str,
    detail: str,
    stage: str,
    topic: str,
    partition: int,
    offset: int,
    key: bytes | None,
    value: bytes | None,
    timestamp_ms: int | None = None,
) -> bytes:
    """:func:`engine.core.wire.dead_letter`, stamped with the wall clock now."""
    return wire.dead_letter(
        reason=reason,
        detail=detail,
        stage=stage,
        topic=topic,
        partition=partition,
        offset=offset,
        key=key,
        value=value,
        timestamp_ms=timestamp_ms,
        dead_lettered_at=int(time.time() * 1000),
    )
