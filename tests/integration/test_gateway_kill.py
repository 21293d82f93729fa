"""``kill -9`` of the gateway at random moments, more than 20 times in one run, with the
real adapters against the fakes: every message reaches its user at most once, and no send
is lost.

The fakes run as a process of their own and count what reached each "user"; their sends
take 300 ms (half before the message exists, half after), so kills land before, during
and after provider calls. RBM delivers each message 300 ms after taking it (and retries
the webhook until the gateway answers 200). Users arrive throughout; half of them can't
get RCS, so their fallback SMS goes through Twilio, which has no idempotency key. The
worker keeps running; the gateway is killed and started again each time.

Checked at the end, on the fakes' counts:

* Twilio: messages created per message id <= 1 (a claimed send is looked up, never
  repeated blindly);
* RBM: one message per message id (a repeated messageId is ignored, as Google does; the
  gateway repeats it only with the same id), and at most one card per user and node;
* no user got both an RCS message and its SMS fallback;
* no send lost: every send request reached its provider or ended with a receipt that
  says why not (``not_capable``; ``unknown`` when a crash left its fate unknowable;
  ``revoked`` when the fallback window ended before its turn came, so the SMS went
  instead); every user finishes the journey.
"""

from __future__ import annotations

import asyncio
import random
import time
from collections import Counter
from pathlib import Path
from typing import Any

import orjson
import pytest
from aiokafka import AIOKafkaConsumer, TopicPartition

from engine.durations import format_ts
from engine.stream.devtools.harness import StreamEnv, free_port
from tests.fakes.process import FakeProcess

JOURNEY = """
id: gw-kill
version: 1
name: Two RCS sends with SMS fallback, for the kill test
entry: {event: signed_up}
start: card
nodes:
  card:
    type: send
    channel: rcs
    marketing: false
    text: "Your order is confirmed."
    fallback: {sms: "Your order is confirmed (SMS).", after: 40s}
    next: pause
  pause: {type: wait, duration: 2s, next: second}
  second:
    type: send
    channel: rcs
    marketing: false
    text: "It ships tomorrow."
    fallback: {sms: "It ships tomorrow (SMS).", after: 40s}
    next: done
  done: {type: exit}
"""

USERS = 60
KILLS = 22
SPREAD_S = 70.0  # users arrive over this long, while the kills go on
#: receipts that settle a send that never reached its provider: the user can't get RCS;
#: a crash left its fate unknowable; a revoke came while it still waited its turn
SETTLED = ("not_capable", "unknown", "failed", "revoked")
FALLS_BACK = ("not_capable", "failed", "revoked")  # the core asks for the SMS then


def phone(i: int) -> str:
    return f"+1415556{2000 + i:04d}"


async def read_all(env: StreamEnv, topic: str) -> list[dict[str, Any]]:
    """Every record of ``topic`` up to its end now, by consumer position (the source of
    truth for "every send request")."""
    settings = env.settings()
    consumer = AIOKafkaConsumer(
        bootstrap_servers=settings.bootstrap_servers, enable_auto_commit=False
    )
    await consumer.start()
    try:
        await consumer._client.force_metadata_update()
        tps = [TopicPartition(topic, p) for p in sorted(consumer.partitions_for_topic(topic))]
        consumer.assign(tps)
        await consumer.seek_to_beginning(*tps)
        end = await consumer.end_offsets(tps)
        out: list[dict[str, Any]] = []
        while any([await consumer.position(tp) < end[tp] for tp in tps]):
            for records in (await consumer.getmany(timeout_ms=500)).values():
                out.extend(orjson.loads(r.value) for r in records if r.value is not None)
        return out
    finally:
        await consumer.stop()


@pytest.mark.timeout(420)
async def test_kill_9_at_random_points_sends_each_message_at_most_once_and_loses_none(
    kafka_bootstrap: str, tmp_path: Path
) -> None:
    rng = random.Random(20261130)
    jdir = tmp_path / "journeys"
    jdir.mkdir()
    (jdir / "gw-kill.yaml").write_text(JOURNEY)
    env = StreamEnv(kafka_bootstrap, tmp_path, jdir)
    fake = FakeProcess(tmp_path, free_port(), "--auto-deliver-ms", "300", "--latency-ms", "300")
    unreachable = [phone(i) for i in range(USERS) if i % 2 == 1]
    t0 = time.monotonic()
    try:
        await fake.start()
        await fake.script(unreachable=unreachable)
        worker = env.start_worker()
        gateway = env.start_gateway(
            rcs="rbm",
            sms="twilio",
            **fake.gateway_env(),
            # faust's static membership: a restarted gateway takes its partitions back at
            # once instead of waiting for the dead one's session to time out
            CONSUMER_GROUP_INSTANCE_ID=f"gw-kill-{env.run_id}",
        )
        await worker.wait_for("worker_ready", 60)
        await gateway.wait_for("gateway_ids_loaded", 60)

        topics = env.settings().topics
        base = time.time()
        events = [
            {
                "event_id": f"k{i}",
                "user_id": f"k{i:02d}",
                "name": "signed_up",
                "ts": format_ts(int((base + 1 + i * SPREAD_S / USERS) * 1000)),
                "profile": {"phone": phone(i)},
            }
            for i in range(USERS)
        ]
        producing = asyncio.ensure_future(
            env.produce(
                [(topics.user_events, e["user_id"].encode(), orjson.dumps(e)) for e in events],
                at=[base + 1 + i * SPREAD_S / USERS for i in range(USERS)],
            )
        )

        # The kills: each a random moment after the gateway came back (ready or not).
        lives: list[float] = []
        readies = gateway.count("gateway_ready")  # lives that got as far as consuming
        for n in range(KILLS):
            if n % 3 == 1:  # now and then wait until it consumes again before killing
                await gateway.wait_for("gateway_ready", 60, n=readies + 1)
            started = time.monotonic()
            await asyncio.sleep(rng.uniform(0.5, 4.0))
            gateway.kill()
            lives.append(time.monotonic() - started)
            readies = gateway.count("gateway_ready")
            gateway.restarts += 1
            gateway.spawn()
        await producing
        kills_done = time.monotonic() - t0

        # Every user finishes; every send request is settled.
        async def finished() -> bool:
            outcomes = await env.read_json(topics.outcomes)
            exited = {o["user_id"] for o in outcomes if o["type"] == "journey_exited"}
            return len(exited) == USERS

        deadline = time.monotonic() + 120
        while not await finished():
            assert time.monotonic() < deadline, "not every user finished:\n" + gateway.tail()
            await asyncio.sleep(1.0)

        # Every send request settled, and every RCS message that can't arrive has had its
        # SMS fallback asked for (which may come a little after the user finished).
        async def settled() -> tuple[dict[str, Any], list[dict[str, Any]], Any, set[str]]:
            requests = await read_all(env, topics.send_requests)
            sends = {r["message_id"]: r for r in requests if r.get("type") == "send"}
            receipts = await read_all(env, topics.channel_receipts)
            by_receipt = {r["message_id"]: r["status"] for r in receipts}
            counts = await fake.counts()
            reached = set(counts["rbm"]["states"]) | set(counts["twilio"]["accepted"])
            lost = {m for m in sends if m not in reached and by_receipt.get(m) not in SETTLED}
            fell_back = {r.get("fallback_of") for r in sends.values()}
            owed = {
                m
                for m, r in sends.items()
                if r["channel"] == "rcs" and by_receipt.get(m) in FALLS_BACK and m not in fell_back
            }
            return sends, receipts, counts, lost | owed

        sends, receipts, counts, lost = await settled()
        deadline = time.monotonic() + 90
        while lost and time.monotonic() < deadline:
            await asyncio.sleep(1.0)
            sends, receipts, counts, lost = await settled()
        assert not lost, f"sends lost: {sorted(lost)}\n" + gateway.tail()

        # At most once, per provider.
        twice = {m: n for m, n in counts["twilio"]["accepted"].items() if n > 1}
        assert not twice, f"Twilio sent these twice: {twice}"
        per_node = Counter(
            (sends[m]["user_id"], sends[m]["node_id"])
            for m in counts["rbm"]["states"]
            if m in sends
        )
        assert all(n == 1 for n in per_node.values()), per_node
        assert set(counts["rbm"]["states"]) <= set(sends)  # no id the engine didn't ask for
        assert counts["rcs_and_sms"] == [], "users got an RCS message and its SMS"

        # The kills really hit the gateway while it sent.
        resent = sum(1 for _ in gateway.events("provider_resend"))
        looked_up = list(gateway.events("send_looked_up"))
        unknown = sum(1 for r in receipts if r["status"] == "unknown")
        print(
            f"\nkill test: {KILLS} kills, lives {min(lives):.1f}-{max(lives):.1f} s, "
            f"{len(sends)} sends, {sum(counts['rbm']['posts'].values())} RBM posts for "
            f"{len(counts['rbm']['states'])} messages, "
            f"{sum(counts['twilio']['accepted'].values())} SMS, {resent} resent after a "
            f"restart, {len(looked_up)} looked up "
            f"({sum(1 for e in looked_up if e['found'])} found), {unknown} unknown; "
            f"kills over after {kills_done:.0f} s, all done after {time.monotonic() - t0:.0f} s"
        )
        assert gateway.restarts >= KILLS
        assert len(sends) >= USERS * 2 + len(unreachable) * 2  # two cards, or two SMS
    finally:
        await env.aclose()
        await fake.stop()
