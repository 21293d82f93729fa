"""A webhook journey on the real broker, with the gateway killed (``kill -9``) while calls
are in flight: every user's call reaches the fake receiver under exactly one
``Idempotency-Key``, and the receiver (deduping on it) applies exactly one effect per
user; the run routes on the answer (a 4xx goes ``on_failure``); ``save`` lands in the
profile and the branch after the node reads it.

Also: without ``JOURNEYS_WEBHOOK_SECRET``, a gateway pointed at these journeys refuses to
start and names the variable.

Traffic goes on after the last kill (a second batch of users, at least one on every
partition), as in production: a restarted gateway finds the requests faust dropped around
its restart only when a later record arrives on the partition (docs/streaming.md, "Input
continuity": the gap is read then). Without any later record they would wait.
"""

from __future__ import annotations

import asyncio
import subprocess
import sys
import time
from collections import Counter
from pathlib import Path

import orjson
import pytest

from engine.backtest.partitions import partition_of
from engine.durations import format_ts
from engine.stream.devtools.harness import StreamEnv
from tests.fakes.webhook_server import FakeWebhookServer, Rule

SECRET = "it-webhook-secret"
GROUPS = ("ok", "gold", "bad", "flaky")
PARTITIONS = 4


def _late_users() -> list[str]:
    """Two per group, covering every partition (Kafka's default partitioner)."""
    picked: list[str] = []
    seen: set[int] = set()
    for g in GROUPS * 2:
        names = (f"{g}-late{k:02d}" for k in range(100))
        fresh = [u for u in names if partition_of(u, PARTITIONS) not in seen]
        u = fresh[0] if fresh else f"{g}-late{len(picked):02d}"
        picked.append(u)
        seen.add(partition_of(u, PARTITIONS))
    assert seen == set(range(PARTITIONS))
    return picked


EARLY = [f"{g}-{i:02d}" for i in range(4) for g in GROUPS]  # 16, the groups interleaved
LATE = _late_users()  # 8, after the last kill
USERS = EARLY + LATE
PER_GROUP = len(USERS) // len(GROUPS)
EXPECTED_EXIT = {"ok": "synced", "gold": "gold", "bad": "crm_failed", "flaky": "synced"}
ROOT = Path(__file__).resolve().parents[2]


def journey(port: int) -> str:
    return f"""
id: wh-kill
version: 1
entry: {{event: lead_qualified}}
settings:
  webhooks:
    allow: ["http://127.0.0.1:{port}/api/"]
start: tell_crm
nodes:
  tell_crm:
    type: webhook
    url: "http://127.0.0.1:{port}/api/hooks/lead"
    body: {{lead: "{{{{ entry.who }}}}", source: journeys}}
    timeout: 5s
    save: {{crm_id: "$.id", tier: "$.tier"}}
    next: check
    on_failure: failed
  check:
    type: branch
    cases:
      - {{when: "user.tier == 'gold'", next: gold}}
    default: synced
  gold: {{type: exit, reason: gold}}
  synced: {{type: exit, reason: synced}}
  failed: {{type: exit, reason: crm_failed}}
"""


async def _refuses_without_secret(env: StreamEnv) -> None:
    """The gateway exits 2 naming the variable, before touching Kafka."""
    child_env = {k: v for k, v in env.env().items() if not k.startswith("JOURNEYS_WEBHOOK_")}
    child_env["PYTHONPATH"] = str(ROOT)
    proc = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "engine.stream.gateway",
        env=child_env,
        cwd=env.workdir,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
    )
    _out, err = await asyncio.wait_for(proc.communicate(), 60)
    assert proc.returncode == 2, err.decode()
    assert b"JOURNEYS_WEBHOOK_SECRET" in err and b"wh-kill" in err


@pytest.mark.timeout(180)
async def test_each_user_is_called_once_per_key_across_gateway_kills(
    kafka_bootstrap: str, tmp_path: Path
) -> None:
    fake = await FakeWebhookServer(SECRET.encode(), latency_ms=400).start()
    fake.rules = [Rule('"lead":"gold-', [200], tier="gold"), Rule('"lead":"bad-', [422]),
                  Rule('"lead":"flaky-', [500, 200])]  # fmt: skip
    jdir = tmp_path / "journeys"
    jdir.mkdir()
    (jdir / "wh-kill.yaml").write_text(journey(fake.port))
    env = StreamEnv(kafka_bootstrap, tmp_path, jdir)
    t0 = time.monotonic()
    try:
        await _refuses_without_secret(env)
        worker = env.start_worker()
        gateway = env.start_gateway(
            JOURNEYS_WEBHOOK_SECRET=SECRET,
            CONSUMER_GROUP_INSTANCE_ID=f"wh-kill-{env.run_id}",
        )
        await worker.wait_for("worker_ready", 60)
        await gateway.wait_for("gateway_ready", 60)

        topics = env.settings().topics

        def produce(users: list[str], spread: float) -> asyncio.Future[None]:
            base = time.time()
            at = [base + i * spread / len(users) for i in range(len(users))]
            events = [
                {
                    "event_id": f"e-{u}",
                    "user_id": u,
                    "name": "lead_qualified",
                    "ts": format_ts(int(t * 1000)),
                    "properties": {"who": u},
                }
                for u, t in zip(users, at, strict=True)
            ]
            records = [(topics.user_events, u.encode(), orjson.dumps(e)) for u, e in
                       zip(users, events, strict=True)]  # fmt: skip
            return asyncio.ensure_future(env.produce(records, at=at))

        producing = produce(EARLY, 8.0)
        # Two kills, each while the receiver is answering a call (its latency is 400 ms).
        kills = 0
        for at_least in (3, 8):
            deadline = time.monotonic() + 40
            while not (fake.raw_calls >= at_least and fake.in_flight > 0):
                assert time.monotonic() < deadline, "no call in flight:\n" + gateway.tail()
                await asyncio.sleep(0.02)
            gateway.kill()
            kills += 1
            gateway.restarts += 1
            gateway.spawn()
        await producing
        await gateway.wait_for("gateway_ready", 60, n=kills + 1)
        await produce(LATE, 2.0)

        async def exits() -> dict[str, str]:
            outcomes = await env.read_json(topics.outcomes)
            return {
                o["user_id"]: o["attributes"]["reason"]
                for o in outcomes
                if o["type"] == "journey_exited"
            }

        deadline = time.monotonic() + 90
        while len(done := await exits()) < len(USERS):
            called = {orjson.loads(b)["lead"]: n for k, b in fake.bodies.items()
                      for n in [fake.calls_per_key[k]]}  # fmt: skip
            assert time.monotonic() < deadline, (
                f"{len(done)} of {len(USERS)} users finished; not: "
                f"{sorted(set(USERS) - set(done))}; calls per user: {called}\n"
                + gateway.tail(15)
                + "\n"
                + worker.tail(15)
            )
            await asyncio.sleep(0.5)
        outcomes = {o["outcome_id"]: o for o in await env.read_json(topics.outcomes)}

        # Routed on the answer; the branch after the node read the saved tier.
        assert {u: done[u] for u in USERS} == {u: EXPECTED_EXIT[u.split("-")[0]] for u in USERS}
        kinds = Counter(o["type"] for o in outcomes.values())
        assert kinds["webhook_called"] == 3 * PER_GROUP, kinds
        assert kinds["webhook_failed"] == PER_GROUP, kinds
        failed = [o for o in outcomes.values() if o["type"] == "webhook_failed"]
        assert {(o["attributes"]["status"], o["attributes"]["reason"]) for o in failed} == {
            (422, "rejected:422")
        }
        saved = [o for o in outcomes.values() if o["type"] == "webhook_called"]
        assert all(o["attributes"]["saved"] == ["crm_id", "tier"] for o in saved)

        # Exactly once per user, by key; the receiver applied one effect per 2xx user.
        keys = fake.calls_per_key
        users_by_key = {k: orjson.loads(b)["lead"] for k, b in fake.bodies.items()}
        assert sorted(users_by_key.values()) == sorted(USERS), "one key per user"
        assert all(n == 1 for n in fake.effects.values())
        assert len(fake.effects) == 3 * PER_GROUP  # ok, gold, flaky: one effect each
        assert fake.bad_signatures == 0
        flaky = [k for k, u in users_by_key.items() if u.startswith("flaky-")]
        assert all(keys[k] >= 2 for k in flaky)  # 500, then retried with the same key
        repeats = sum(n - 1 for k, n in keys.items() if k not in flaky)
        print(
            f"\nwebhook kill test: {kills} gateway kills, {len(USERS)} users, "
            f"{len(keys)} distinct idempotency keys, {fake.raw_calls} raw calls "
            f"({repeats} repeated after a kill, {sum(keys[k] for k in flaky)} for the "
            f"{len(flaky)} flaky users), {sum(fake.effects.values())} effects; "
            f"{time.monotonic() - t0:.0f} s"
        )
        assert gateway.restarts >= kills
    finally:
        await env.aclose()
        await fake.stop()
