"""The engine on Kafka gives the simulator's outcomes for the same events.

A worker and a gateway (simulated provider) run as child processes on the real broker;
events are produced in real time (each at its own ``ts``) for a journey whose waits are
seconds long. The outcomes read back from ``journey.outcomes`` must equal what
``Simulator`` gives for the same events: same users, nodes, outcome types and channels
(compared as multisets), and even the same deterministic outcome ids.
"""

from __future__ import annotations

import asyncio
import time
from collections import Counter
from pathlib import Path
from typing import Any

import orjson
import pytest

from engine.core.wire import decode_line
from engine.durations import format_ts, parse_ts_ms
from engine.lint.linter import load_journeys
from engine.sim.simulator import Simulator
from engine.stream.devtools.harness import StreamEnv

JOURNEY = """
id: stream-it
version: 1
name: Short waits, for the stream tests
entry: {event: signed_up, reentry: always}
exit_on: [cancelled]
settings: {default_timezone: UTC}
start: hello
nodes:
  hello:
    type: send
    channel: rcs
    marketing: false
    text: "Hi {{ user.first_name | default: 'there' }}"
    suggestions:
      - reply: {text: "Tell me more", postback: more}
    fallback: {sms: "Hi from Example. Reply STOP to opt out.", after: 12s}
    next: pause
  pause: {type: wait, duration: 3s, next: ask}
  ask:
    type: wait_for
    paths:
      - {event: clicked, next: thanks}
      - {click: more, of: hello, next: more_info}
    timeout: 5s
    on_timeout: nudge
  thanks: {type: send, channel: sms, marketing: false, text: "Thanks!", next: done}
  more_info: {type: send, channel: rcs, marketing: false, text: "Here is more.", next: done}
  nudge: {type: send, channel: sms, marketing: false, text: "Still there?", next: done}
  done: {type: exit}
"""


def scenario(base_ms: int) -> list[dict[str, Any]]:
    """Lines of a simulation file, times relative to ``base_ms``: at least a second apart
    wherever the order across topics matters."""
    lines: list[dict[str, Any]] = []

    def ev(at: int, user: str, name: str, eid: str, **extra: Any) -> None:
        lines.append(
            {"event_id": eid, "user_id": user, "name": name, "ts": format_ts(base_ms + at), **extra}
        )

    for i in range(12):
        u = f"u{i:02d}"
        profile: dict[str, Any] = {"phone": f"+1415555{1000 + i:04d}", "first_name": f"N{i}"}
        if i % 4 == 1:
            profile["rcs_capable"] = False
        if i == 7:
            profile["phone"] = "12345"  # invalid: suppressed
        ev(200 * i, u, "signed_up", f"{u}-in", profile=profile)
    ev(4500, "u02", "clicked", "u02-click")  # during ask -> thanks
    ev(2000, "u03", "clicked", "u03-early")  # during pause: nothing
    ev(5000, "u04", "cancelled", "u04-cancel")  # exit_on
    lines.append(
        {"type": "inbound", "user_id": "u05", "ts": format_ts(base_ms + 5200), "postback": "more"}
    )  # tap -> more_info
    lines.append(
        {"type": "inbound", "user_id": "u06", "ts": format_ts(base_ms + 4000), "text": "STOP"}
    )  # nudge suppressed
    lines.append(
        {
            "type": "receipt",
            "user_id": "u08",
            "ts": format_ts(base_ms + 3000),
            "node": "hello",
            "status": "read",
        }
    )  # read before delivered
    ev(1500, "u09", "unrelated", "u09-x")  # no journey mentions it
    ev(2500, "u10", "signed_up", "u10-in")  # duplicate event_id
    return lines


def key(o: dict[str, Any]) -> tuple[Any, ...]:
    return (o["user_id"], o["node_id"], o["type"], o["channel"])


@pytest.mark.timeout(90)
async def test_outcomes_on_kafka_equal_the_simulator(kafka_bootstrap: str, tmp_path: Path) -> None:
    jdir = tmp_path / "journeys"
    jdir.mkdir()
    (jdir / "stream-it.yaml").write_text(JOURNEY)
    env = StreamEnv(kafka_bootstrap, tmp_path, jdir)
    try:
        worker, gateway = env.start_worker(), env.start_gateway()
        await worker.wait_for("worker_ready", 45)
        await gateway.wait_for("gateway_ready", 45)

        base_ms = int(time.time() * 1000) + 1500
        lines = scenario(base_ms)
        expected = Simulator(load_journeys([jdir])).run([decode_line(d) for d in lines]).outcomes
        assert len(expected) > 60

        t = env.settings().topics
        topic = {"receipt": t.channel_receipts, "inbound": t.inbound}
        lines.sort(key=lambda d: d["ts"])
        await env.produce(
            [
                (
                    topic.get(d.get("type", ""), t.user_events),
                    d["user_id"].encode(),
                    orjson.dumps(d),
                )
                for d in lines
            ],
            at=[parse_ts_ms(d["ts"]) / 1000 for d in lines],
        )

        deadline = time.monotonic() + 45
        got: list[dict[str, Any]] = []
        while time.monotonic() < deadline:
            got = await env.read_json(t.outcomes)
            if len(got) >= len(expected):
                break
            await asyncio.sleep(0.5)
        await asyncio.sleep(2.0)  # anything extra would show up now
        got = await env.read_json(t.outcomes)

        want = Counter(key(o.to_wire()) for o in expected)
        have = Counter(key(o) for o in got)
        assert have == want, f"missing: {want - have}\nextra: {have - want}\n" + worker.tail(15)
        assert sorted(o["outcome_id"] for o in got) == sorted(o.outcome_id for o in expected)
        assert worker.count("dead_letter") == 0
    finally:
        await env.aclose()
