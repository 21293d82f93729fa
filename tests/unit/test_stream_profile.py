"""The Kafka worker (on the in-memory backend) with profiles: a profile event writes its
outcome and the state, an update_profile node's change is in the stored state, and an
event past a profile limit is dead-lettered while the state stays as it was."""

from __future__ import annotations

from typing import Any

import orjson
import pytest
import yaml

from engine.core import wire
from engine.durations import format_ts, parse_iso_instant
from engine.journey.model import Journey
from engine.stream.common.settings import Settings
from engine.stream.devtools.memory import MemoryBackend, memory_runtime

NOW = parse_iso_instant("2026-11-30T12:00:00Z")

JOURNEY = Journey.model_validate(
    yaml.safe_load(
        """
id: crm
version: 1
entry: {event: converted, reentry: always}
start: record
nodes:
  record: {type: update_profile, set: {plan: entry.plan}, unset: [trial], next: done}
  done: {type: exit}
"""
    )
)


@pytest.fixture
def settings() -> Settings:
    return Settings.from_env_and_args(env={})


def event(i: int, name: str, props: dict[str, Any]) -> bytes:
    return orjson.dumps(
        {"event_id": f"e{i}", "user_id": "u", "name": name, "ts": format_ts(NOW + i),
         "properties": props}
    )  # fmt: skip


def outcomes(backend: MemoryBackend, settings: Settings) -> list[dict[str, Any]]:
    return [orjson.loads(v) for v in backend.on(settings.topics.outcomes)]


def stored_profile(runtime: Any) -> dict[str, Any]:
    _, raw = runtime.checkpoint.get_dirty(b"u") or (0, None)
    assert raw is not None
    attrs: dict[str, Any] = orjson.loads(wire.state_json(raw))["s"].get("a", {})
    return attrs


async def test_profile_updates_on_the_worker(settings: Settings) -> None:
    runtime, backend = memory_runtime([JOURNEY], settings, clock=lambda: NOW)
    t = settings.topics
    await runtime.handle(t.user_events, 0, 0, b"u", event(0, "profile_updated", {"trial": 1}))
    await runtime.handle(t.user_events, 0, 1, b"u", event(1, "converted", {"plan": "pro"}))
    await runtime.handle(
        t.user_events, 0, 2, b"u", event(2, "profile_updated", {"bio": "x" * 5000})
    )
    got = [(o["type"], o["attributes"].get("keys")) for o in outcomes(backend, settings)]
    assert ("profile_updated", ["trial"]) in got
    assert ("profile_updated", ["plan", "trial"]) in got
    assert stored_profile(runtime) == {"plan": "pro"}
    dead = [orjson.loads(v) for v in backend.on(t.dead_letters)]
    assert [d["reason"] for d in dead] == ["profile_limit"]
