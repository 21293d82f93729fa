"""Poison input and isolation on the real broker (issue 11).

* A corpus of 10,000 malformed records of 28 kinds (timestamps 1e17, -1e17, 1e300, 9e18,
  9999-12-31T23:59:59Z, -5, 1970-01-01...; broken JSON, missing keys, tombstones, records
  too big...), interleaved with valid users' events, against a running worker and gateway:
  the worker stays up, every valid user finishes its journey, every bad record is
  dead-lettered exactly once with its reason, and the repeated warnings are collapsed.
* Two runs with different topic prefixes and default app ids share nothing; a worker
  whose consumer group holds another run's offsets refuses to start, and so does one
  without journeys, before it creates any topic.
"""

from __future__ import annotations

import asyncio
import time
from collections import Counter
from pathlib import Path
from typing import Any

import pytest
from aiokafka import AIOKafkaConsumer, TopicPartition

from engine.durations import format_ts, parse_iso_instant
from engine.stream.common.settings import Settings
from engine.stream.devtools.corpus import Record, bad_records, event, interleave, produce_fast
from engine.stream.devtools.harness import StreamEnv

JOURNEY = """
id: poison-it
version: 1
name: Poison corpus journey
entry: {event: signed_up}
start: hello
nodes:
  hello: {type: send, channel: sms, marketing: false, text: "Hi", next: pause}
  pause: {type: wait, duration: 2s, next: bye}
  bye: {type: send, channel: sms, marketing: false, text: "Bye", next: done}
  done: {type: exit}
"""

BAD = 10_000
GOOD = 200


def journeys_dir(tmp_path: Path, text: str | None = JOURNEY) -> Path:
    jdir = tmp_path / "journeys"
    jdir.mkdir(exist_ok=True)
    if text is not None:
        (jdir / "poison.yaml").write_text(text)
    return jdir


async def count(settings: Settings, topic: str) -> int:
    """Records on ``topic`` (end offsets summed; nothing is ever deleted in a test)."""
    c = AIOKafkaConsumer(bootstrap_servers=settings.bootstrap_servers, enable_auto_commit=False)
    await c.start()
    try:
        parts = c.partitions_for_topic(topic) or set()
        if not parts:
            await c._client.force_metadata_update()
            parts = c.partitions_for_topic(topic) or set()
        ends = await c.end_offsets([TopicPartition(topic, p) for p in parts])
        return sum(ends.values())
    finally:
        await c.stop()


def finished(outcomes: list[dict[str, Any]]) -> set[str]:
    """Users whose journey ended, with both messages delivered by the gateway."""
    exited = {o["user_id"] for o in outcomes if o["type"] == "journey_exited"}
    delivered = Counter(o["user_id"] for o in outcomes if o["type"] == "message_delivered")
    return {u for u in exited if delivered[u] >= 2}


@pytest.mark.timeout(240)
async def test_a_corpus_of_bad_records_is_dead_lettered_once_and_the_worker_goes_on(
    kafka_bootstrap: str, tmp_path: Path
) -> None:
    env = StreamEnv(kafka_bootstrap, tmp_path, journeys_dir(tmp_path), partitions=4)
    try:
        worker, gateway = env.start_worker(), env.start_gateway()
        await worker.wait_for("worker_ready", 60)
        await gateway.wait_for("gateway_ready", 60)
        settings = env.settings()
        t = settings.topics
        now = int(time.time() * 1000)
        bad = bad_records(t, BAD, now)
        good = [
            Record(t.user_events, f"ok-{i}".encode(), event(f"ok-{i}", format_ts(now), f"ok-{i}"))
            for i in range(GOOD)
        ]
        assert len({r.kind for r in bad}) >= 15
        started = time.monotonic()
        placed = await produce_fast(settings, interleave(bad, good))

        deadline = time.monotonic() + 150
        while time.monotonic() < deadline:
            if await count(settings, t.dead_letters) >= BAD:
                break
            await asyncio.sleep(1.0)
        outcomes: list[dict[str, Any]] = []
        while time.monotonic() < deadline:
            outcomes = await env.read_json(t.outcomes)
            if len(finished(outcomes)) >= GOOD:
                break
            await asyncio.sleep(1.0)
        elapsed = time.monotonic() - started
        await asyncio.sleep(2.0)  # anything more (a second dead letter) would show now
        letters = await env.read_json(t.dead_letters)

        # Every bad record dead-lettered exactly once, with its reason; no valid one.
        expected = {(r.topic, p, o): r for r, p, o in placed if r.reason is not None}
        got = Counter((d["topic"], d["partition"], d["offset"]) for d in letters)
        assert len(letters) == BAD, f"{len(letters)} dead letters for {BAD} bad records"
        assert set(got) == set(expected) and set(got.values()) == {1}
        wrong = [
            (expected[k].kind, d["reason"])
            for d in letters
            if expected[(k := (d["topic"], d["partition"], d["offset"]))].reason != d["reason"]
        ]
        assert wrong == []
        far = [d for d in letters if expected[(d["topic"], d["partition"], d["offset"])].kind
               == "kafka_ts_far_future"]  # fmt: skip
        assert far and all(d["timestamp"] is None for d in far)

        # Every valid user finished; the services never stopped.
        assert finished(outcomes) == {f"ok-{i}" for i in range(GOOD)}
        assert worker.proc.poll() is None and gateway.proc.poll() is None
        assert worker.restarts == 0 and gateway.restarts == 0
        assert worker.count("agent_crashed") == 0 and worker.count("fail_stop") == 0

        # 10,000 dead-letter warnings, collapsed: a handful written, the rest counted (told
        # once their 10 s window is over, on the next line: the stats line comes every 2 s).
        def accounted() -> tuple[int, int]:
            lines = [
                d
                for d in worker.events()
                if d.get("event") == "dead_letter"
                or (d.get("event") == "log_repeated" and d.get("message") == "dead_letter")
            ]
            written = sum(1 for d in lines if d["event"] == "dead_letter")
            return written, written + sum(d.get("suppressed", 0) for d in lines)

        for _ in range(60):
            written, total = accounted()
            if total >= BAD:
                break
            await asyncio.sleep(0.5)
        assert written < 1000 and total == BAD
        stamps = sorted(parse_iso_instant(d["dead_lettered_at"]) for d in letters)
        span_s = max((stamps[-1] - stamps[0]) / 1000, 1e-3)
        print(
            f"\ncorpus: {BAD} bad records of {len({r.kind for r in bad})} kinds + {GOOD} users; "
            f"all dead-lettered once and finished in {elapsed:.1f} s; dead letters "
            f"{BAD / span_s:.0f}/s over {span_s:.1f} s; {written} dead_letter log lines"
        )
    finally:
        await env.aclose()


# --------------------------------------------------------------------------- isolation

ISOLATION_JOURNEY = """
id: iso
version: 1
name: Isolation
entry: {event: signed_up}
start: hello
nodes:
  hello: {type: send, channel: sms, marketing: false, text: "Hi", next: done}
  done: {type: exit}
"""


class DefaultIds(StreamEnv):
    """A run that sets only its topic prefix: the app ids are the defaults."""

    def env(self) -> dict[str, str]:
        env = super().env()
        del env["JOURNEYS_APP_ID"], env["JOURNEYS_GATEWAY_APP_ID"]
        return env


async def _run_users(env: StreamEnv, users: list[str]) -> list[dict[str, Any]]:
    t = env.settings().topics
    now = format_ts(int(time.time() * 1000))
    await env.produce([(t.user_events, u.encode(), event(u, now, u)) for u in users])
    outcomes: list[dict[str, Any]] = []
    for _ in range(120):
        outcomes = await env.read_json(t.outcomes)
        if {o["user_id"] for o in outcomes if o["type"] == "journey_exited"} >= set(users):
            break
        await asyncio.sleep(0.5)
    return outcomes


@pytest.mark.timeout(240)
async def test_runs_with_different_prefixes_share_nothing_and_a_foreign_group_is_refused(
    kafka_bootstrap: str, tmp_path: Path
) -> None:
    jdir = journeys_dir(tmp_path, ISOLATION_JOURNEY)
    (tmp_path / "a").mkdir()
    (tmp_path / "b").mkdir()
    first = DefaultIds(kafka_bootstrap, tmp_path / "a", jdir, partitions=2)
    second = DefaultIds(kafka_bootstrap, tmp_path / "b", jdir, partitions=2)
    third = StreamEnv(kafka_bootstrap, tmp_path / "c", jdir, partitions=2)
    try:
        a, b = first.settings(), second.settings()
        assert a.app_id == f"{first.prefix}journeys-engine" != b.app_id
        wa, wb = first.start_worker(), second.start_worker()
        await wa.wait_for("worker_ready", 60)
        await wb.wait_for("worker_ready", 60)
        # The same user ids in both runs: each run sees only its own inputs.
        users = [f"u{i}" for i in range(15)]
        out_a = await _run_users(first, users)
        out_b = await _run_users(second, users)
        for out in (out_a, out_b):
            exited = Counter(o["user_id"] for o in out if o["type"] == "journey_exited")
            assert exited == Counter(users), exited  # each once: no state from the other run
        wa.stop()
        wb.stop()

        # A worker of a third run whose group is run A's (the same group name reached
        # through another prefix and app id) refuses to start and creates nothing.
        (tmp_path / "c").mkdir()
        third.extra_env = {"JOURNEYS_TOPIC_PREFIX": "", "JOURNEYS_APP_ID": a.app_id}
        assert third.settings().app_id == a.app_id
        third.extra_env["JOURNEYS_TOPIC_USER_EVENTS"] = f"it.{third.run_id}.events"
        intruder = third.start_worker()
        assert intruder.proc.wait(60) == 2
        log = intruder.log_path.read_text()
        assert "holds the state of another run" in log and "JOURNEYS_TOPIC_PREFIX" in log
        assert a.topics.user_events in log
        admin_topics = await _topics(kafka_bootstrap)
        assert f"it.{third.run_id}.events" not in admin_topics
    finally:
        third.close()
        await first.aclose()
        await second.aclose()


async def _topics(bootstrap: str) -> set[str]:
    from aiokafka.admin import AIOKafkaAdminClient

    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap)
    await admin.start()
    try:
        return set(await admin.list_topics())
    finally:
        await admin.close()


@pytest.mark.timeout(120)
@pytest.mark.parametrize(
    ("journey", "message"),
    [(None, "no journeys found"), ("id: broken\nnodes: 5\n", "nodes: Input should be")],
)
async def test_a_worker_without_valid_journeys_refuses_to_start_before_touching_kafka(
    kafka_bootstrap: str, tmp_path: Path, journey: str | None, message: str
) -> None:
    env = StreamEnv(kafka_bootstrap, tmp_path, journeys_dir(tmp_path, journey), partitions=2)
    worker = env.start_worker()
    code = worker.proc.wait(60)
    assert code in (1, 2)
    assert message in worker.log_path.read_text()
    assert not [t for t in await _topics(kafka_bootstrap) if env.run_id in t]
