"""Trace records on Kafka: the settings that turn them on, the topic, and the worker's
runtime producing them (keyed by user, on the input's partition) only for traced users."""

from __future__ import annotations

import asyncio
from typing import Any

import orjson
import pytest
import yaml

from engine.core import wire
from engine.core.engine import Engine, EngineConfig
from engine.errors import ConfigError
from engine.journey.model import Journey
from engine.stream.common.checkpoint import Checkpoint
from engine.stream.common.dead_letters import DeadLetters
from engine.stream.common.settings import DEFAULT_TOPICS, Settings
from engine.stream.common.timers import TimerIndex
from engine.stream.user_records import changelog_topic, partition_for
from engine.stream.worker.runtime import EngineRuntime

JOURNEY = Journey.model_validate(
    yaml.safe_load("""
id: hi
version: 1
entry: {event: signed_up, when: event.plan == 'pro'}
start: hello
nodes:
  hello: {type: send, channel: sms, text: "Hi. Reply STOP to opt out.", next: done}
  done: {type: exit}
""")
)


def test_trace_settings_and_topic() -> None:
    env = {"JOURNEYS_TRACE_USERS": " ann, bob ,,", "JOURNEYS_TRACE_SAMPLE": "0.25"}
    s = Settings.from_env_and_args(env=env)
    assert s.trace_users == frozenset({"ann", "bob"}) and s.trace_sample == 0.25
    assert DEFAULT_TOPICS["traces"] == s.topics.traces == "journey.traces"
    assert s.topics.traces in s.topics.all()  # created with the others
    prefixed = Settings.from_env_and_args(env={"JOURNEYS_TOPIC_PREFIX": "x."})
    assert prefixed.topics.traces == "x.journey.traces"
    assert Settings.from_env_and_args(env={}).trace_users == frozenset()
    with pytest.raises(ConfigError, match=r"JOURNEYS_TRACE_SAMPLE must be 0\.\.1"):
        Settings.from_env_and_args(env={"JOURNEYS_TRACE_SAMPLE": "2"})
    assert changelog_topic(Settings(app_id="eng")) == "eng-user-states-changelog"


def test_partition_is_kafkas_default_for_the_key() -> None:
    # aiokafka's default partitioner is the Java client's: murmur2, made positive, modulo n.
    from aiokafka.partitioner import DefaultPartitioner

    for key in (b"ann", b"u-0001", b"\xff\x00"):
        for n in (1, 4, 8, 12):
            assert partition_for(key, n) == DefaultPartitioner()(key, list(range(n)), [])


class Sent:
    def __init__(self) -> None:
        self.records: list[tuple[str, bytes | None, bytes, int | None]] = []

    async def __call__(
        self, topic: str, key: bytes | None, value: bytes, partition: int | None
    ) -> Any:
        self.records.append((topic, key, value, partition))
        fut: asyncio.Future[Any] = asyncio.get_running_loop().create_future()
        fut.set_result(None)
        return fut


async def test_the_runtime_produces_traced_users_records_to_journey_traces() -> None:
    settings = Settings()
    send = Sent()
    checkpoint = Checkpoint(backend=None)  # type: ignore[arg-type]  # nothing is committed
    engine = Engine([JOURNEY], EngineConfig(trace_users=frozenset({"ann"})))
    dead = DeadLetters(send, checkpoint, settings.topics.dead_letters, "engine")
    runtime = EngineRuntime(engine, settings, checkpoint, TimerIndex(), send, lambda k: None, dead)
    for offset, (user, plan) in enumerate((("ann", "free"), ("ann", "pro"), ("bob", "free"))):
        line = {"event_id": f"{user}-{offset}", "user_id": user, "name": "signed_up",
                "ts": "2026-03-02T10:00:00Z", "properties": {"plan": plan},
                "profile": {"phone": "+14155550123"}}  # fmt: skip
        await runtime.handle(
            settings.topics.user_events, 3, offset, user.encode(), orjson.dumps(line)
        )
    traces = [r for r in send.records if r[0] == settings.topics.traces]
    assert {(key, partition) for _t, key, _v, partition in traces} == {(b"ann", 3)}
    decoded = [wire.decode_trace(value) for _t, _k, value, _p in traces]
    assert [(t.kind, t.reason) for t in decoded][:2] == [
        ("entry", "when_false"),
        ("entry", "entered"),
    ]
    assert decoded[0].values["operands"] == {"event.plan": "free"}
    outcomes = [r for r in send.records if r[0] == settings.topics.outcomes]
    assert {key for _t, key, _v, _p in outcomes} == {b"ann"}  # bob: not entered, no outcome
    assert any("trace" in label for label, _ in checkpoint.effects)
