"""A corpus of malformed input records, each with the dead-letter reason it must get.

Used by the real-broker poison test (``tests/integration/test_poison_on_the_broker.py``) and
by ``python -m engine.stream.devtools.bench poison`` (dead-letter throughput). Each kind
is one way a record can be unusable; :func:`bad_records` cycles through them, and
:func:`interleave` mixes valid users' events in, so a test sees the worker go on after
every kind. Records are produced with :func:`produce_fast`, which returns where each one
landed: a dead letter names its original topic, partition and offset.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any

import orjson
from aiokafka import AIOKafkaProducer

from engine.durations import format_ts
from engine.stream.common.settings import Settings, Topics


@dataclass(frozen=True)
class Record:
    """One record to produce; ``reason``: the dead-letter reason it must get (None: a
    valid input)."""

    topic: str
    key: bytes | None
    value: bytes | None
    reason: str | None = None
    kind: str = "valid"
    timestamp_ms: int | None = None  # the Kafka timestamp (None: the producer's clock)


def event(user: str, ts: Any, eid: str, name: Any = "signed_up", **extra: Any) -> bytes:
    return orjson.dumps(
        {
            "event_id": eid,
            "user_id": user,
            "name": name,
            "ts": ts,
            "profile": {"phone": "+14155550100"},
            **extra,
        }
    )


Maker = Callable[[Topics, str, int], Record]


def _ts(kind: str, ts: Any) -> Maker:
    def make(t: Topics, user: str, now: int) -> Record:
        return Record(t.user_events, user.encode(), event(user, ts, user), "bad_timestamp", kind)

    return make


#: kind -> how to make one (topics, a unique user id, the wall clock in ms).
KINDS: dict[str, Maker] = {
    "ts_1e17": _ts("ts_1e17", 1e17),
    "ts_minus_1e17": _ts("ts_minus_1e17", -1e17),
    "ts_1e300": _ts("ts_1e300", 1e300),
    "ts_9e18": _ts("ts_9e18", 9e18),
    "ts_minus_5": _ts("ts_minus_5", -5),
    "ts_year_9999": _ts("ts_year_9999", "9999-12-31T23:59:59Z"),
    "ts_1970_date": _ts("ts_1970_date", "1970-01-01"),
    "ts_1970": _ts("ts_1970", "1970-01-01T00:00:00Z"),
    "ts_text": _ts("ts_text", "yesterday"),
    "ts_bool": _ts("ts_bool", True),
    "ts_next_century": _ts("ts_next_century", "2099-06-01T00:00:00Z"),
    "bad_json": lambda t, u, now: Record(
        t.user_events, u.encode(), b'{"user_id": "' + u.encode() + b'", ', "bad_json", "bad_json"
    ),
    "binary": lambda t, u, now: Record(
        t.user_events, u.encode(), b"\xff\xfe\x00garbage", "bad_json", "binary"
    ),
    "not_an_object": lambda t, u, now: Record(
        t.user_events, u.encode(), b"[1, 2, 3]", "not_an_object", "not_an_object"
    ),
    "missing_user_id": lambda t, u, now: Record(
        t.user_events,
        u.encode(),
        orjson.dumps({"event_id": u, "name": "signed_up", "ts": format_ts(now)}),
        "missing_field",
        "missing_user_id",
    ),
    "name_not_text": lambda t, u, now: Record(
        t.user_events,
        u.encode(),
        event(u, format_ts(now), u, name=5),
        "wrong_type",
        "name_not_text",
    ),
    "profile_not_object": lambda t, u, now: Record(
        t.user_events,
        u.encode(),
        orjson.dumps(
            {"event_id": u, "user_id": u, "name": "signed_up", "ts": format_ts(now), "profile": 7}
        ),
        "wrong_type",
        "profile_not_object",
    ),
    "no_key": lambda t, u, now: Record(
        t.user_events, None, event(u, format_ts(now), u), "missing_key", "no_key"
    ),
    "key_mismatch": lambda t, u, now: Record(
        t.user_events, b"someone-else", event(u, format_ts(now), u), "key_mismatch", "key_mismatch"
    ),
    "tombstone": lambda t, u, now: Record(
        t.user_events, u.encode(), None, "missing_value", "tombstone"
    ),
    "unknown_type": lambda t, u, now: Record(
        t.user_events,
        u.encode(),
        orjson.dumps({"type": "teleport", "user_id": u, "ts": format_ts(now)}),
        "unknown_type",
        "unknown_type",
    ),
    "receipt_bad_status": lambda t, u, now: Record(
        t.channel_receipts,
        u.encode(),
        orjson.dumps({"user_id": u, "ts": format_ts(now), "message_id": "m", "status": "boom"}),
        "wrong_type",
        "receipt_bad_status",
    ),
    "receipt_ts_9e18": lambda t, u, now: Record(
        t.channel_receipts,
        u.encode(),
        orjson.dumps({"user_id": u, "ts": 9e18, "message_id": "m", "status": "delivered"}),
        "bad_timestamp",
        "receipt_ts_9e18",
    ),
    "inbound_empty": lambda t, u, now: Record(
        t.inbound,
        u.encode(),
        orjson.dumps({"user_id": u, "ts": format_ts(now)}),
        "missing_field",
        "inbound_empty",
    ),
    "wake_year_9999": lambda t, u, now: Record(
        t.timers,
        u.encode(),
        orjson.dumps({"type": "wake", "user_id": u, "ts": "9999-12-31T23:59:59Z", "token": "x"}),
        "bad_timestamp",
        "wake_year_9999",
    ),
    "wake_garbage": lambda t, u, now: Record(
        t.timers, u.encode(), b"\x00\x01 not a wake-up", "bad_json", "wake_garbage"
    ),
    # A Kafka timestamp no ISO-8601 text can hold, on a record that is bad anyway: the dead
    # letter must still be written (its "timestamp" left out).
    "kafka_ts_far_future": lambda t, u, now: Record(
        t.user_events, u.encode(), b"{", "bad_json", "kafka_ts_far_future", 2**62
    ),
}

#: Big records: a few of them are enough (each is ~300 KB).
OVERSIZED = "oversized"


def oversized(t: Topics, user: str, now: int) -> Record:
    value = event(user, format_ts(now), user, properties={"pad": "x" * 300_000})
    return Record(t.user_events, user.encode(), value, "oversized", OVERSIZED)


def bad_records(topics: Topics, n: int, now_ms: int, *, oversized_every: int = 500) -> list[Record]:
    """``n`` malformed records, cycling through :data:`KINDS` (one ``oversized`` record in
    every ``oversized_every``), each for its own user id ``bad-<i>``."""
    makers = list(KINDS.values())
    out = []
    for i in range(n):
        user = f"bad-{i}"
        if oversized_every and i % oversized_every == oversized_every - 1:
            out.append(oversized(topics, user, now_ms))
        else:
            out.append(makers[i % len(makers)](topics, user, now_ms))
    return out


def interleave(bad: list[Record], good: list[Record]) -> list[Record]:
    """``good`` spread evenly through ``bad``: one first, the rest every few bad records."""
    out: list[Record] = []
    step = max(1, len(bad) // max(1, len(good)))
    goods = iter(good)
    for i, r in enumerate(bad):
        if i % step == 0 and (g := next(goods, None)) is not None:
            out.append(g)
        out.append(r)
    out.extend(goods)
    return out


async def produce_fast(
    settings: Settings, records: Iterable[Record]
) -> list[tuple[Record, int, int]]:
    """Produce every record (batched, acks=all); returns (record, partition, offset) of each,
    in the order given. Keyless records go to partition 0, as the partitioner may pick any."""
    producer = AIOKafkaProducer(
        bootstrap_servers=settings.bootstrap_servers,
        acks="all",
        linger_ms=10,
        max_request_size=2 * 1024 * 1024,
        **settings.security.aiokafka_kwargs(),
    )
    await producer.start()
    try:
        sent = []
        for r in records:
            fut = await producer.send(
                r.topic,
                r.value,
                key=r.key,
                partition=0 if r.key is None else None,
                timestamp_ms=r.timestamp_ms,
            )
            sent.append((r, fut))
        metas = await asyncio.gather(*(f for _r, f in sent))
    finally:
        await producer.stop()
    return [(r, m.partition, m.offset) for (r, _f), m in zip(sent, metas, strict=True)]
