"""The stats service end to end against the real broker: outcomes produced to a unique topic,
the service in-process on an ephemeral port, its JSON API polled until the counts match.
Restarts keep the counts and never count twice."""

from __future__ import annotations

import asyncio
import shutil
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import aiohttp
import orjson
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, TopicPartition
from aiokafka.admin import AIOKafkaAdminClient

from engine.core.wire import decode_line
from engine.durations import format_ts
from engine.lint.linter import load_journeys
from engine.sim.simulator import Simulator
from engine.stats.aggregate import Aggregator
from engine.stats.service import ServiceConfig, StatsService

TopicFactory = Callable[..., Awaitable[str]]
PHONE = "+14155550123"
JOURNEY_ID = "welcome-it"
JOURNEY = """
id: welcome-it
version: 1
name: Welcome offer
entry: {event: signed_up}
goal: {event: purchased, within: 7d}
settings: {default_timezone: UTC}
start: hello
nodes:
  hello:
    type: send
    name: Welcome card
    channel: rcs
    rich_card:
      title: "Welcome!"
      description: "10% off your first order"
      suggestions:
        - reply: {text: "Shop now", postback: shop}
    fallback: {sms: "Welcome! 10% off your first order. Reply STOP to opt out.", after: 10m}
    next: wait_shop
  wait_shop:
    type: wait_for
    name: Wait for a tap
    paths:
      - {click: shop, of: hello, next: offer}
    timeout: 1d
    on_timeout: reminder
  offer: {type: send, name: Send the code, channel: sms, text: "Code WELCOME10. Reply STOP to opt out.", next: done}
  reminder: {type: send, name: Reminder, channel: sms, text: "Your offer ends soon. Reply STOP to opt out.", next: done}
  done: {type: exit}
"""  # noqa: E501


def write_journey(directory: Path) -> Path:
    directory.mkdir(parents=True, exist_ok=True)
    path = directory / f"{JOURNEY_ID}.yaml"
    path.write_text(JOURNEY, encoding="utf-8")
    return path


def simulate(directory: Path, users: range) -> list[dict[str, Any]]:
    """Outcomes of ``users`` going through the journey, starting three hours ago: every
    third user can't get RCS (SMS fallback), every other one taps "Shop now", every fourth
    one buys."""
    base = (int(time.time() * 1000) // 3_600_000 - 3) * 3_600_000
    lines: list[dict[str, Any]] = []
    for i in users:
        u, at = f"u{i}", base + i * 1000
        profile = {"phone": PHONE, "rcs_capable": i % 3 != 0}
        lines.append({"event_id": f"e{i}", "user_id": u, "name": "signed_up",
                      "ts": format_ts(at), "profile": profile})  # fmt: skip
        if i % 2:
            lines.append({"type": "inbound", "user_id": u, "ts": format_ts(at + 60_000),
                          "postback": "shop"})  # fmt: skip
        if i % 4 == 1:
            lines.append({"event_id": f"p{i}", "user_id": u, "name": "purchased",
                          "ts": format_ts(at + 3_600_000)})  # fmt: skip
    sim = Simulator(load_journeys([directory]))
    return [o.to_wire() for o in sim.run([decode_line(line) for line in lines]).outcomes]


def expected(outcomes: list[dict[str, Any]]) -> dict[str, Any]:
    agg = Aggregator()
    agg.add_all(outcomes)
    [report] = agg.to_json()
    return report


async def produce(bootstrap: str, topic: str, outcomes: list[dict[str, Any]]) -> None:
    producer = AIOKafkaProducer(bootstrap_servers=bootstrap, acks="all")
    await producer.start()
    try:
        for o in outcomes:
            await producer.send(topic, orjson.dumps(o), key=o["user_id"].encode())
        await producer.flush()
    finally:
        await producer.stop()


@asynccontextmanager
async def running(**config: Any) -> AsyncIterator[StatsService]:
    opts = {"host": "127.0.0.1", "port": 0, "persist_interval_s": 0.2, "health_interval_s": 0.3}
    svc = StatsService(ServiceConfig(**{**opts, **config}))
    await svc.start()
    try:
        yield svc
    finally:
        await svc.stop()


async def get(url: str, *, expect: int = 200) -> Any:
    async with aiohttp.ClientSession() as http, http.get(url) as resp:
        assert resp.status == expect, f"{url}: {resp.status} {await resp.text()}"
        if resp.content_type == "application/json":
            return await resp.json()
        return await resp.text()


async def until(check: Callable[[], Awaitable[Any]], what: str, timeout_s: float = 30.0) -> Any:
    """Poll ``check`` until it returns something truthy."""
    deadline = time.monotonic() + timeout_s
    last: Any = None
    while time.monotonic() < deadline:
        last = await check()
        if last:
            return last
        await asyncio.sleep(0.2)
    raise AssertionError(f"timed out waiting for {what}; last: {last!r}")


async def counts_match(svc: StatsService, want: dict[str, Any]) -> dict[str, Any]:
    """Wait until the journey's counts equal ``want`` (an Aggregator report), and return
    the API's report."""

    async def check() -> dict[str, Any] | None:
        got = await get(f"{svc.url}/api/journeys/{JOURNEY_ID}")
        s = got["summary"]
        ok = (s["entered"], s["converted"]) == (want["entered"], want["converted"]) and all(
            got["nodes"][n]["entered"] == row["entered"] and got["nodes"][n]["sent"] == row["sent"]
            for n, row in want["nodes"].items()
        )
        return got if ok else None

    report: dict[str, Any] = await until(check, f"counts {want['entered']} entered")
    return report


async def test_service_counts_serves_and_dedupes(
    kafka_bootstrap: str, create_topic: TopicFactory, unique_name: Callable[[str], str],
    tmp_path: Path,
) -> None:  # fmt: skip
    topic = await create_topic(partitions=3)
    journeys = write_journey(tmp_path / "journeys").parent
    outcomes = simulate(journeys, range(30))
    await produce(kafka_bootstrap, topic, outcomes + outcomes[::2])  # duplicates, as after a crash
    want = expected(outcomes)
    state = tmp_path / "stats-state.json"
    group = unique_name("stats")
    async with running(bootstrap=kafka_bootstrap, topic=topic, journeys_dir=str(journeys),
                       state_path=str(state), group_id=group,
                       dead_letter_topic=unique_name("no-such-topic")) as svc:  # fmt: skip
        report = await counts_match(svc, want)
        assert report["name"] == "Welcome offer" and report["defined"] is True
        assert list(report["nodes"]) == ["hello", "wait_shop", "offer", "reminder", "done"]
        assert report["summary"]["conversion_rate"] == want["conversion_rate"]
        hello = report["nodes"]["hello"]
        assert hello["sent"] == want["nodes"]["hello"]["sent"]
        assert hello["fallback"] == want["nodes"]["hello"]["fallback"] > 0
        assert hello["delivery_rate"] == want["nodes"]["hello"]["delivery_rate"]
        # every user got the welcome message, a third of them by the SMS fallback
        assert hello["reached"] == hello["entered"] == 30 and hello["reach_rate"] == 1.0
        assert hello["reached_by_channel"] == want["nodes"]["hello"]["reached_by_channel"]
        assert hello["reached_by_channel"]["sms"] == 10
        assert report["nodes"] == {
            n: {**row, "label": report["nodes"][n]["label"], "type": report["nodes"][n]["type"]}
            for n, row in want["nodes"].items()
        }  # the same rows as `journeys stats`
        edges = {(e["source"], e["target"]): e["users"] for e in report["edges"]}
        assert edges[("wait_shop", "offer")] == 15 and edges[("wait_shop", "reminder")] == 15
        assert [f["step"] for f in report["funnel"]] == [
            "entered", "sent", "reached", "read", "clicked", "converted"
        ]  # fmt: skip

        listing = await get(f"{svc.url}/api/journeys")
        [summary] = listing["journeys"]
        assert summary["journey_id"] == JOURNEY_ID and summary["entered"] == 30

        hours = await get(f"{svc.url}/api/journeys/{JOURNEY_ID}/timeseries?bucket=hour")
        assert hours["bucket"] == "hour" and len(hours["points"]) == 48
        assert sum(p["entered"] for p in hours["points"]) == 30
        days = await get(f"{svc.url}/api/journeys/{JOURNEY_ID}/timeseries?bucket=day")
        sent = sum(sum(r["sent"].values()) for r in want["nodes"].values())
        assert sum(p["sent"] for p in days["points"]) == sent
        await get(f"{svc.url}/api/journeys/{JOURNEY_ID}/timeseries?bucket=week", expect=400)
        await get(f"{svc.url}/api/journeys/nope", expect=404)
        await get(f"{svc.url}/api/journeys/{JOURNEY_ID}?version=9", expect=404)

        async def healthy() -> dict[str, Any] | None:
            h: dict[str, Any] = await get(f"{svc.url}/api/health")
            return h if h["status"] == "ok" and h["stats"]["lag"] == 0 else None

        health = await until(healthy, "health ok with no lag")
        assert health["stats"]["partitions"] == 3
        assert health["stats"]["duplicates"] == len(outcomes[::2])
        assert health["engine"]["dead_letters"] is None  # no such topic here

        metrics = await get(f"{svc.url}/metrics")
        assert 'journeys_outcomes_total{type="journey_entered"} 30\n' in metrics
        assert "# TYPE journeys_outcomes_total counter" in metrics
        assert f"journeys_stats_duplicates_total {len(outcomes[::2])}\n" in metrics
        assert "journeys_stats_consumer_lag 0\n" in metrics

        svg = await get(f"{svc.url}/journeys/{JOURNEY_ID}/graph.svg")
        assert 'id="node-hello"' in svg and "entered 30" in svg
    # stopped: state saved, then offsets committed for monitoring
    saved = orjson.loads(state.read_bytes())
    assert sum(saved["offsets"].values()) == len(outcomes) + len(outcomes[::2])
    admin = AIOKafkaAdminClient(bootstrap_servers=kafka_bootstrap)
    await admin.start()
    try:
        committed = await admin.list_consumer_group_offsets(group)
    finally:
        await admin.close()
    assert {tp.partition: om.offset for tp, om in committed.items()} == {
        int(p): o for p, o in saved["offsets"].items()
    }


async def test_restart_resumes_without_double_counting(
    kafka_bootstrap: str, create_topic: TopicFactory, unique_name: Callable[[str], str],
    tmp_path: Path,
) -> None:  # fmt: skip
    topic = await create_topic(partitions=2)
    journeys = write_journey(tmp_path / "journeys").parent
    first, second = simulate(journeys, range(12)), simulate(journeys, range(12, 20))
    state, snapshot = tmp_path / "state.json", tmp_path / "state-after-first.json"
    config = {"bootstrap": kafka_bootstrap, "topic": topic, "journeys_dir": str(journeys),
              "state_path": str(state), "group_id": unique_name("stats")}  # fmt: skip

    await produce(kafka_bootstrap, topic, first)
    async with running(**config) as svc:
        await counts_match(svc, expected(first))
        await until(
            lambda: asyncio.sleep(0, svc.persisted_at is not None and not svc._dirty),
            "the state saved",
        )
        shutil.copy(state, snapshot)  # what a crash right now would leave behind
        await produce(kafka_bootstrap, topic, second)
        await counts_match(svc, expected(first + second))
    # A clean restart: counts kept, nothing read twice.
    async with running(**config) as svc:
        report = await counts_match(svc, expected(first + second))
        assert report["summary"]["entered"] == 20
        assert svc.stats.duplicates == 0
        await asyncio.sleep(0.5)  # nothing more arrives
        assert svc.stats.counted == len(first) + len(second)
    # A crash after the second batch was counted but before it was saved: the old file
    # resumes at the old offsets with the old counts, and the second batch is read again.
    shutil.copy(snapshot, state)
    async with running(**config) as svc:
        assert svc.stats.summary(JOURNEY_ID, 1)["entered"] == 12
        report = await counts_match(svc, expected(first + second))
        assert report["summary"]["entered"] == 20
        assert svc.stats.duplicates == 0


async def test_a_state_file_of_an_older_format_is_recounted(
    kafka_bootstrap: str, create_topic: TopicFactory, unique_name: Callable[[str], str],
    tmp_path: Path,
) -> None:  # fmt: skip
    topic = await create_topic(partitions=1)
    journeys = write_journey(tmp_path / "journeys").parent
    outcomes = simulate(journeys, range(4))
    await produce(kafka_bootstrap, topic, outcomes)
    state = tmp_path / "state.json"  # counters without users reached, at the topic's end
    old = {"format": "journeys-stats/1", "topic": topic, "offsets": {"0": len(outcomes)},
           "stats": {"totals": [[JOURNEY_ID, 1, "hello", {"node_entered": 99}]]}}  # fmt: skip
    state.write_bytes(orjson.dumps(old))
    async with running(bootstrap=kafka_bootstrap, topic=topic, journeys_dir=str(journeys),
                       state_path=str(state), group_id=unique_name("stats")) as svc:  # fmt: skip
        report = await counts_match(svc, expected(outcomes))
        assert report["nodes"]["hello"]["entered"] == 4
        assert report["nodes"]["hello"]["reached"] == 4
    assert orjson.loads(state.read_bytes())["format"] == "journeys-stats/2"


async def test_health_reports_engine_lag_and_dead_letters(
    kafka_bootstrap: str, create_topic: TopicFactory, unique_name: Callable[[str], str],
    tmp_path: Path,
) -> None:  # fmt: skip
    topic, events_topic, dead_topic = [await create_topic() for _ in range(3)]
    producer = AIOKafkaProducer(bootstrap_servers=kafka_bootstrap)
    await producer.start()
    try:
        for i in range(7):
            await producer.send_and_wait(events_topic, b"{}", key=f"u{i}".encode())
        for i in range(2):
            await producer.send_and_wait(dead_topic, b"not json", key=f"u{i}".encode())
    finally:
        await producer.stop()
    engine_group = unique_name("engine")
    consumer = AIOKafkaConsumer(bootstrap_servers=kafka_bootstrap, group_id=engine_group,
                                enable_auto_commit=False)  # fmt: skip
    await consumer.start()
    try:
        consumer.assign([TopicPartition(events_topic, 0)])
        await consumer.commit({TopicPartition(events_topic, 0): 4})  # the engine is 3 behind
    finally:
        await consumer.stop()
    async with running(bootstrap=kafka_bootstrap, topic=topic, journeys_dir=str(tmp_path),
                       state_path=None, group_id=unique_name("stats"), engine_group=engine_group,
                       input_topic=events_topic, dead_letter_topic=dead_topic,
                       pending_timers=lambda: 5) as svc:  # fmt: skip

        async def reported() -> dict[str, Any] | None:
            h: dict[str, Any] = await get(f"{svc.url}/api/health")
            return h if h.get("engine", {}).get("lag") is not None else None

        health = await until(reported, "the engine's lag")
        assert health["engine"]["lag"] == 3
        assert health["engine"]["dead_letters"] == 2
        assert health["engine"]["pending_timers"] == 5
        assert health["engine"]["group_id"] == engine_group
        metrics = await get(f"{svc.url}/metrics")
        assert "journeys_engine_consumer_lag 3\n" in metrics
        assert "journeys_dead_letters_total 2\n" in metrics
        assert "journeys_pending_timers 5\n" in metrics
        listing = await get(f"{svc.url}/api/journeys")
        assert listing == {"journeys": [], "global_control": None}
