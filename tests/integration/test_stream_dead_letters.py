"""Unusable input goes to ``journey.dead-letters`` with its reason and the original bytes,
none is dropped, and the worker (and the gateway) keep going."""

from __future__ import annotations

import asyncio
import base64
import time
from collections import Counter
from pathlib import Path
from typing import Any

import orjson
import pytest

from engine.durations import format_ts
from engine.stream.devtools.harness import StreamEnv

JOURNEY = """
id: dl-it
version: 1
name: Dead-letter test journey
entry: {event: signed_up}
start: hello
nodes:
  hello: {type: send, channel: sms, marketing: false, text: "Hi", next: done}
  done: {type: exit}
"""


def good(user: str, eid: str) -> bytes:
    return orjson.dumps(
        {
            "event_id": eid,
            "user_id": user,
            "name": "signed_up",
            "ts": format_ts(int(time.time() * 1000)),
            "profile": {"phone": "+14155550100"},
        }
    )


@pytest.mark.timeout(90)
async def test_bad_input_is_dead_lettered_with_its_reason(
    kafka_bootstrap: str, tmp_path: Path
) -> None:
    jdir = tmp_path / "journeys"
    jdir.mkdir()
    (jdir / "dl.yaml").write_text(JOURNEY)
    env = StreamEnv(kafka_bootstrap, tmp_path, jdir, partitions=2)
    try:
        worker, gateway = env.start_worker(), env.start_gateway()
        await worker.wait_for("worker_ready", 45)
        await gateway.wait_for("gateway_ready", 45)
        t = env.settings().topics
        now = format_ts(int(time.time() * 1000))
        big = orjson.dumps(
            {
                "event_id": "big",
                "user_id": "u-big",
                "name": "signed_up",
                "ts": now,
                "properties": {"pad": "x" * 300_000},
            }
        )
        # (topic, key, value, expected reason)
        bad: list[tuple[str, bytes | None, bytes | None, str]] = [
            (t.user_events, b"u1", b"{not json", "bad_json"),
            (t.user_events, b"u1", b"[1, 2, 3]", "not_an_object"),
            (
                t.user_events,
                b"u1",
                orjson.dumps({"event_id": "e", "name": "signed_up", "ts": now}),
                "missing_field",
            ),
            (
                t.user_events,
                b"u1",
                orjson.dumps({"event_id": "e", "user_id": "u1", "name": 5, "ts": now}),
                "wrong_type",
            ),
            (
                t.user_events,
                b"u1",
                orjson.dumps(
                    {"event_id": "e", "user_id": "u1", "name": "signed_up", "ts": "yesterday"}
                ),
                "bad_timestamp",
            ),
            (t.user_events, b"u-big", big, "oversized"),
            (t.user_events, None, good("u2", "e-nokey"), "missing_key"),
            (t.user_events, b"someone-else", good("u3", "e-mismatch"), "key_mismatch"),
            (t.user_events, b"u4", None, "missing_value"),
            (
                t.channel_receipts,
                b"u1",
                orjson.dumps({"user_id": "u1", "ts": now, "message_id": "m", "status": "exploded"}),
                "wrong_type",
            ),
            (t.inbound, b"u1", orjson.dumps({"user_id": "u1", "ts": now}), "missing_field"),
            (t.timers, b"u1", b"\xff\xfe garbage", "bad_json"),
            (t.send_requests, b"u1", b"{}", "missing_field"),  # the gateway's input
            (t.send_requests, b"u1", orjson.dumps({"type": "teleport"}), "unknown_type"),
        ]
        records = [(topic, k, v) for topic, k, v, _r in bad]
        # Good events before, between and after: the worker must keep processing.
        records.insert(0, (t.user_events, b"ok-1", good("ok-1", "ok-1")))
        records.insert(7, (t.user_events, b"ok-2", good("ok-2", "ok-2")))
        records.append((t.user_events, b"ok-3", good("ok-3", "ok-3")))
        await env.produce(records)

        deadline = time.monotonic() + 30
        letters: list[dict[str, Any]] = []
        while time.monotonic() < deadline:
            letters = await env.read_json(t.dead_letters)
            if len(letters) >= len(bad):
                break
            await asyncio.sleep(0.5)
        await asyncio.sleep(1.0)
        letters = await env.read_json(t.dead_letters)

        assert Counter((d["topic"], d["reason"]) for d in letters) == Counter(
            (topic, reason) for topic, _k, _v, reason in bad
        )
        by_origin = {(d["topic"], d["value_b64"]): d for d in letters}
        for topic, k, v, reason in bad:
            b64 = base64.b64encode(v).decode() if v is not None else None
            d = by_origin[(topic, b64)]
            assert d["reason"] == reason
            assert d["detail"]
            assert d["stage"] == ("gateway" if topic == t.send_requests else "engine")
            assert d["key_b64"] == (base64.b64encode(k).decode() if k is not None else None)
            assert d["truncated"] is False
            assert isinstance(d["offset"], int) and isinstance(d["partition"], int)

        # The good events after the bad ones were processed, and sent through the gateway.
        for _ in range(60):
            outcomes = await env.read_json(t.outcomes)
            sent = {o["user_id"] for o in outcomes if o["type"] == "message_sent"}
            if {"ok-1", "ok-2", "ok-3"} <= sent:
                break
            await asyncio.sleep(0.5)
        assert {"ok-1", "ok-2", "ok-3"} <= sent
        await gateway.wait_for("provider_send", 20, n=3)
        assert worker.proc.poll() is None and gateway.proc.poll() is None
    finally:
        await env.aclose()
