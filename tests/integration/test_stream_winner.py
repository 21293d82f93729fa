"""A split that picks its winner reaches the simulator's decision on Kafka, at the same time.

The event log of an experiment whose variant B converts clearly better is generated here
(``tests/experiment_log.py``) and run through the simulator first: it decides B at a mark
``T``. Then a worker, a gateway (simulated provider) and the decider run as child processes
on the real broker, and the same log is produced to ``journey.user-events`` in three parts:

1. every line before ``T``: the decider must not decide (its watermark is before ``T``);
   the test waits until every outcome the simulator has before ``T`` is on the topic;
2. the first line at or after ``T`` (a purchase): the outcomes' watermark passes ``T``,
   the decider decides, and the worker applies the decision;
3. the rest, late sign-ups included: they take the winner.

The decision on ``journey.control`` must equal the simulator's (variant, decided and
effective times, figures) and the outcomes the simulator's, ids included. Finally a second
worker with a fresh group and state replays the whole input from the beginning: with the
decision known from the start, entries before ``T`` still split by hash and entries after
it take the winner, as the first time.
"""

from __future__ import annotations

import asyncio
import time
from collections import Counter
from pathlib import Path
from typing import Any

import orjson
import pytest

from engine.core.wire import decode_line, decode_split_decision
from engine.durations import parse_ts_ms
from engine.sim.simulator import Simulator
from engine.stream.devtools.harness import Service, StreamEnv
from tests import experiment_log

WAIT_S = 150.0  # generous: four helpers share two cores


def key(o: dict[str, Any]) -> tuple[Any, ...]:
    return (o["user_id"], o["node_id"], o["type"], o["attributes"].get("variant"))


async def outcomes_until(env: StreamEnv, topic: str, ids: set[str], worker: Service) -> list[Any]:
    """The outcomes on ``topic`` once every id in ``ids`` is there."""
    deadline = time.monotonic() + WAIT_S
    while True:
        got = await env.read_json(topic)
        if ids <= {o["outcome_id"] for o in got}:
            return got
        if time.monotonic() > deadline:
            missing = ids - {o["outcome_id"] for o in got}
            raise AssertionError(f"{len(missing)} outcomes missing on {topic}\n" + worker.tail(20))
        await asyncio.sleep(1.0)


def split_entries(outcomes: list[dict[str, Any]]) -> dict[str, tuple[str, bool]]:
    return {
        o["user_id"]: (o["attributes"]["variant"], bool(o["attributes"].get("winner")))
        for o in outcomes
        if o["type"] == "node_entered" and o["node_id"] == "pick"
    }


@pytest.mark.timeout(600)
async def test_kafka_decides_as_the_simulator(kafka_bootstrap: str, tmp_path: Path) -> None:
    jdir = tmp_path / "journeys"
    jdir.mkdir()
    text = experiment_log.JOURNEY.replace("MIN_USERS", "100")
    (jdir / "pick-best.yaml").write_text(text)
    lines = experiment_log.lines()
    sim = Simulator([experiment_log.journey()]).run([decode_line(d) for d in lines])
    (decision,) = sim.decisions
    at = decision.decided_at
    assert decision.variant == "B"
    expected = [o.to_wire() for o in sim.outcomes]
    before = [d for d in lines if parse_ts_ms(d["ts"]) < at]
    after = [d for d in lines if parse_ts_ms(d["ts"]) >= at]
    assert after[0]["name"] == "purchased", "the log's first line after T must not enter"

    env = StreamEnv(kafka_bootstrap, tmp_path, jdir, extra_env={"JOURNEYS_DECIDER_IDLE_S": "2"})
    t = env.settings().topics

    def records(part: list[dict[str, Any]]) -> list[tuple[str, bytes, bytes]]:
        return [(t.user_events, d["user_id"].encode(), orjson.dumps(d)) for d in part]

    try:
        worker, gateway = env.start_worker(), env.start_gateway()
        decider = env.start("engine.stream.decider", "decider")
        await worker.wait_for("worker_ready", WAIT_S)
        await gateway.wait_for("gateway_ready", WAIT_S)
        await decider.wait_for("decider_ready", WAIT_S)

        # 1. everything before T: no decision yet
        await env.produce(records(before))
        want_before = {o["outcome_id"] for o in expected if parse_ts_ms(o["ts"]) < at}
        await outcomes_until(env, t.outcomes, want_before, worker)
        await asyncio.sleep(4.0)  # the decider's idle time, twice: it would have decided now
        assert decider.count("split_decision_made") == 0
        assert await env.read(t.control) == []

        # 2. the first line at or after T: the watermark passes T
        await env.produce(records(after[:1]))
        made = await decider.wait_for("split_decision_made", WAIT_S)
        await worker.wait_for("split_decision_applied", WAIT_S)
        (record,) = await env.read(t.control)
        on_kafka = decode_split_decision(record[1])
        assert record[0] == b"pick-best:1:pick"
        assert on_kafka == decision  # variant, decided_at, effective_at, ...
        assert on_kafka.figures == decision.figures
        assert made["variant"] == "B"

        # 3. the rest: late sign-ups take the winner
        await env.produce(records(after[1:]))
        got = await outcomes_until(env, t.outcomes, {o["outcome_id"] for o in expected}, worker)
        assert Counter(key(o) for o in got) == Counter(key(o) for o in expected)
        assert sorted({o["outcome_id"] for o in got}) == sorted(o["outcome_id"] for o in expected)
        (chosen,) = [o for o in got if o["type"] == "split_winner_chosen"]
        (chosen_sim,) = [o for o in expected if o["type"] == "split_winner_chosen"]
        assert chosen == chosen_sim
        entries = split_entries(got)
        assert entries == split_entries(expected)
        late = {u: v for u, v in entries.items() if u.startswith("late")}
        assert len(late) == 40 and set(late.values()) == {("B", True)}
        assert worker.count("dead_letter") == 0

        # A replay from the beginning, by a fresh worker that knows the decision from the
        # start: the same split for everyone.
        worker.stop()
        replay_topic = f"{env.prefix}replay.outcomes"
        replayer = env.start_worker(
            "replayer",
            JOURNEYS_APP_ID=f"it-{env.run_id}-replay",
            JOURNEYS_TOPIC_OUTCOMES=replay_topic,
            JOURNEYS_TOPIC_SEND_REQUESTS=f"{env.prefix}replay.send-requests",
        )
        want_entries = {
            o["outcome_id"]
            for o in expected
            if o["type"] == "node_entered" and o["node_id"] == "pick"
        }
        replayed = await outcomes_until(env, replay_topic, want_entries, replayer)
        assert split_entries(replayed) == entries
        assert replayer.count("split_decision_applied") == 1
    finally:
        await env.aclose()
