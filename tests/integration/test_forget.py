"""``journeys forget USER_ID`` on the real broker: the worker tombstones the user's state in
its changelog, drops their timer, writes ``user_forgotten`` and forwards the request to the
gateway, which drops its record of the user's message; the other users keep theirs."""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
import time
from pathlib import Path

import orjson
import pytest
from aiokafka import AIOKafkaConsumer

from engine.core import wire
from engine.durations import format_ts
from engine.stream.devtools.harness import StreamEnv

JOURNEY = """
id: forget-it
version: 1
entry: {event: signed_up}
start: hello
nodes:
  hello: {type: send, channel: sms, marketing: false, text: "Hi", next: wait}
  wait: {type: wait, duration: 1d, next: done}
  done: {type: exit}
"""


async def _changelog(env: StreamEnv, topic: str) -> dict[bytes, bytes | None]:
    """The last value per key of a changelog topic (None: a tombstone)."""
    consumer = AIOKafkaConsumer(
        topic, bootstrap_servers=env.bootstrap, auto_offset_reset="earliest",
        enable_auto_commit=False,
    )  # fmt: skip
    await consumer.start()
    last: dict[bytes, bytes | None] = {}
    try:
        while True:
            batch = await consumer.getmany(timeout_ms=1500)
            if not batch:
                return last
            for records in batch.values():
                for r in records:
                    if r.key is not None:
                        last[r.key] = r.value
    finally:
        await consumer.stop()


@pytest.mark.timeout(150)
async def test_forget_erases_the_user_and_keeps_the_others(
    kafka_bootstrap: str, tmp_path: Path
) -> None:
    jdir = tmp_path / "journeys"
    jdir.mkdir()
    (jdir / "forget.yaml").write_text(JOURNEY)
    env = StreamEnv(kafka_bootstrap, tmp_path, jdir, partitions=2)
    try:
        worker, gateway = env.start_worker(), env.start_gateway()
        await worker.wait_for("worker_ready", 60)
        await gateway.wait_for("gateway_ready", 60)
        now = int(time.time() * 1000)
        t = env.settings().topics
        await env.produce(
            (
                t.user_events,
                user.encode(),
                orjson.dumps(
                    {
                        "event_id": f"e-{user}",
                        "user_id": user,
                        "name": "signed_up",
                        "ts": format_ts(now),
                        "profile": {"phone": "+14155550100", "first_name": "Asha"},
                    }
                ),
            )
            for user in ("keep", "gone")
        )
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            outs = await env.read_json(t.outcomes)
            sent = {o["user_id"] for o in outs if o["type"] == "message_sent"}
            delivered = {o["user_id"] for o in outs if o["type"] == "message_delivered"}
            if sent == delivered == {"keep", "gone"}:
                break
            await asyncio.sleep(0.5)
        assert sent == {"keep", "gone"}

        res = subprocess.run(
            [sys.executable, "-m", "engine.cli", "forget", "gone", "--request-id", "req-9"],
            env={**os.environ, **env.env()}, capture_output=True, text=True, timeout=60,
        )  # fmt: skip
        assert res.returncode == 0, res.stderr
        assert "forget request req-9 for user gone" in res.stderr

        forgotten: list[dict[str, object]] = []
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline and not forgotten:
            outs = await env.read_json(t.outcomes)
            forgotten = [o for o in outs if o["type"] == "user_forgotten"]
            await asyncio.sleep(0.5)
        [o] = forgotten
        assert o["user_id"] == "gone"
        assert o["attributes"] == {"runs_ended": 1, "request_id": "req-9"}
        await worker.wait_for("user_forgotten", 10)
        dropped = await gateway.wait_for("user_forgotten", 30)  # forwarded by the worker
        assert dropped["user_id"] == "gone" and dropped["records"] == 1

        changelog = f"{env.env()['JOURNEYS_APP_ID']}-user-states-changelog"
        deadline = time.monotonic() + 30
        last: dict[bytes, bytes | None] = {}
        while time.monotonic() < deadline:
            last = await _changelog(env, changelog)
            if b"gone" in last and last[b"gone"] is None:
                break
            await asyncio.sleep(1)
        assert last.get(b"gone", b"missing") is None, "no tombstone for the forgotten user"
        kept = last[b"keep"]
        # the other user's state is untouched (the table value is compact: its JSON)
        assert kept is not None and b"Asha" in wire.state_json(kept)
    finally:
        await env.aclose()
