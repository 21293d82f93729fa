"""The gateway's webhook calls against the fake receiver (tests/fakes/webhook_server.py):
the caller (signature, idempotency key, retries, refusals, secrets) and the gateway
runtime's claim protocol without Kafka (the fake backend of test_gateway_runtime.py)."""

from __future__ import annotations

import asyncio
import random
import time
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import orjson
import pytest

from engine.channels.ratelimit import RetryPolicy
from engine.channels.webhook_call import WebhookCaller, secret_from_env, sign, verify
from engine.core import wire
from engine.core.effects import WebhookRequest
from engine.errors import ConfigError
from engine.stream.common.settings import Settings
from engine.stream.gateway.webhook_calls import WebhookCalls, build_caller
from tests.fakes.webhook_server import FakeWebhookServer, Rule
from tests.unit.test_gateway_runtime import REQUESTS, World

SECRET = b"s3cret"
NO_WAIT = RetryPolicy(max_attempts=5, base_s=0.0, cap_s=0.0)


@pytest.fixture
async def fake() -> AsyncIterator[FakeWebhookServer]:
    server = await FakeWebhookServer(SECRET).start()
    try:
        yield server
    finally:
        await server.stop()


def request(fake: FakeWebhookServer, user: str = "ok-1", n: int = 1, **kw: Any) -> WebhookRequest:
    fields: dict[str, Any] = {
        "action_id": f"00000000-0000-8000-8000-{n:012d}",
        "ts": 1_000,
        "user_id": user,
        "url": fake.url("/api/hooks/lead"),
        "method": "POST",
        "body": orjson.dumps({"user": user}).decode(),
        "headers": {"X-Tenant": "acme"},
        "timeout_ms": 2000,
        "allow": [f"http://127.0.0.1:{fake.port}/api/"],
        "journey_id": "j",
        "journey_version": 1,
        "instance_id": "i",
        "node_id": "hook",
    }
    fields.update(kw)
    return WebhookRequest(**fields)


OPEN: list[WebhookCaller] = []  # closed after each test (their aiohttp sessions)


@pytest.fixture(autouse=True)
async def _close_callers() -> AsyncIterator[None]:
    yield
    while OPEN:
        await OPEN.pop().close()


def caller(secret: bytes | None = SECRET, **kw: Any) -> WebhookCaller:
    kw.setdefault("retry", NO_WAIT)
    made = WebhookCaller(secret, rng=random.Random(1), **kw)
    OPEN.append(made)
    return made


# --------------------------------------------------------------------------- the caller


def test_signature_round_trip() -> None:
    sig = sign(SECRET, 1_700_000_000, b'{"a":1}')
    assert sig.startswith("v1=") and len(sig) == 3 + 64
    assert verify(SECRET, "1700000000", sig, b'{"a":1}', now_s=1_700_000_010)
    assert not verify(SECRET, "1700000000", sig, b'{"a":2}', now_s=1_700_000_010)
    assert not verify(b"other", "1700000000", sig, b'{"a":1}', now_s=1_700_000_010)
    assert not verify(SECRET, "1700000000", sig, b'{"a":1}', now_s=1_700_000_000 + 301)


async def test_a_call_is_signed_keyed_and_answered(fake: FakeWebhookServer) -> None:
    done = await caller().call(request(fake))
    assert done.result.status == "called" and done.result.code == 200 and done.attempts == 1
    answer = orjson.loads(done.result.body or "")
    assert answer["echo"] == {"user": "ok-1"}
    counts = fake.counts()
    assert counts["bad_signatures"] == 0 and counts["raw_calls"] == 1
    assert counts["calls_per_key"] == {request(fake).action_id: 1}


async def test_5xx_is_retried_with_the_same_key_then_succeeds(fake: FakeWebhookServer) -> None:
    fake.rules = [Rule("flaky", [500, 503, 200])]
    done = await caller().call(request(fake, "flaky-1"))
    assert (done.result.status, done.result.code, done.attempts) == ("called", 200, 3)
    assert fake.calls_per_key == {request(fake).action_id: 3}
    assert sum(fake.effects.values()) == 1


async def test_4xx_is_final(fake: FakeWebhookServer) -> None:
    fake.rules = [Rule("bad", [422])]
    done = await caller().call(request(fake, "bad-1"))
    assert (done.result.status, done.result.reason, done.attempts) == ("failed", "rejected:422", 1)


async def test_5xx_to_the_end_is_unavailable(fake: FakeWebhookServer) -> None:
    fake.rules = [Rule("down", [502])]
    done = await caller().call(request(fake, "down-1"))
    assert (done.result.reason, done.result.code, done.attempts) == ("unavailable:502", 502, 5)


async def test_a_timeout_is_retried_and_reported(fake: FakeWebhookServer) -> None:
    fake.latency_ms = 400
    done = await caller(retry=RetryPolicy(max_attempts=2, base_s=0)).call(
        request(fake, timeout_ms=100)
    )
    assert (done.result.reason, done.attempts) == ("timeout", 2)


async def test_nothing_listening_is_unreachable(fake: FakeWebhookServer) -> None:
    port = fake.port
    await fake.stop()
    req = request(fake, url=f"http://127.0.0.1:{port}/api/x")
    done = await caller().call(req)
    assert done.result.reason == "unreachable"


async def test_the_gateway_checks_the_allow_list_again(fake: FakeWebhookServer) -> None:
    outside = request(fake, url=fake.url("/admin/x"))
    assert (await caller().call(outside)).result.reason == "url_not_allowed"
    deployment = caller(allow=["https://crm.example.com/api/"])
    assert (await deployment.call(request(fake))).result.reason == "url_not_allowed"
    assert fake.raw_calls == 0


async def test_no_secret_no_call(fake: FakeWebhookServer) -> None:
    done = await caller(None).call(request(fake))
    assert (done.result.reason, done.attempts, fake.raw_calls) == ("no_secret", 0, 0)


def test_the_secret_comes_from_the_environment_or_a_file(tmp_path: Path) -> None:
    assert secret_from_env({"JOURNEYS_WEBHOOK_SECRET": "abc"}) == b"abc"
    f = tmp_path / "secret"
    f.write_text("from-file\n")
    assert secret_from_env({"JOURNEYS_WEBHOOK_SECRET_FILE": str(f)}) == b"from-file"
    assert secret_from_env({}) is None
    with pytest.raises(ConfigError, match="both set"):
        secret_from_env({"JOURNEYS_WEBHOOK_SECRET": "a", "JOURNEYS_WEBHOOK_SECRET_FILE": str(f)})
    with pytest.raises(ConfigError, match="can't read") as err:
        secret_from_env({"JOURNEYS_WEBHOOK_SECRET_FILE": str(tmp_path / "nope")})
    assert "from-file" not in str(err.value)


def test_the_gateway_refuses_to_start_without_a_secret_when_a_journey_needs_one() -> None:
    fixtures = Path(__file__).resolve().parents[1] / "fixtures" / "webhooks"
    settings = Settings(journeys=str(fixtures))
    with pytest.raises(ConfigError, match="JOURNEYS_WEBHOOK_SECRET") as err:
        build_caller(settings, {})
    assert "crm-sync" in str(err.value)
    assert build_caller(settings, {"JOURNEYS_WEBHOOK_SECRET": "x"}).has_secret
    assert not build_caller(Settings(), {}).has_secret  # no journeys given: starts


# --------------------------------------------------------------------------- the runtime


class HookWorld(World):
    def __init__(self, fake: FakeWebhookServer) -> None:
        super().__init__()
        rt = self.runtime
        rt.webhooks = WebhookCalls(caller(), rt.claims, self.checkpoint, rt.receipts, 4)
        rt.webhooks.recovered({0})

    async def feed_hook(self, req: WebhookRequest) -> None:
        async with self.checkpoint.lock:
            value = wire.webhook_request_value(req)
            await self.runtime.handle(REQUESTS, 0, self.offset, b"u", value, None)
            self.checkpoint.processed(REQUESTS, 0, self.offset)
        self.offset += 1

    async def settled(self) -> None:
        for _ in range(500):
            await asyncio.sleep(0.01)
            if not self.runtime.webhooks.tasks:
                return
        raise AssertionError("webhook calls never settled")

    def results(self) -> list[dict[str, Any]]:
        topic = self.settings.topics.channel_receipts
        return [r for r in self.backend.records(topic) if r.get("type") == "webhook_result"]


async def test_a_call_is_queued_claimed_before_the_call_then_settled(
    fake: FakeWebhookServer,
) -> None:
    w = HookWorld(fake)
    req = request(fake)
    await w.feed_hook(req)
    assert w.runtime.claims.get(req.action_id.encode())["st"] == "queued"  # type: ignore[index]
    await w.settled()
    [claimed] = [orjson.loads(v) for _k, v in w.backend.changelog if v]
    assert claimed["st"] == "claimed" and claimed["cl"]["n"] == 1
    [result] = w.results()
    assert (result["action_id"], result["status"], result["code"]) == (req.action_id, "called", 200)
    rec = w.runtime.claims.get(req.action_id.encode())
    assert rec is not None and rec["st"] == "sent" and "req" not in rec
    # a replayed request makes no call, and produces the result again
    await w.feed_hook(req)
    await w.settled()
    assert fake.raw_calls == 1 and len(w.results()) == 2
    assert w.runtime.webhooks.counts["duplicates"] == 1


async def test_after_a_crash_a_claimed_call_is_made_again_with_the_same_key(
    fake: FakeWebhookServer,
) -> None:
    first = HookWorld(fake)
    req = request(fake)
    await first.feed_hook(req)
    await first.settled()  # made once; now pretend the crash lost the settled record
    crashed = first.backend
    [claimed] = [v for _k, v in crashed.changelog if v]
    crashed.store = {req.action_id.encode(): claimed}
    crashed.produced.clear()
    again = HookWorld(fake)
    again.backend.store = crashed.store
    resumed = again.runtime.webhooks.recovered({0})
    assert resumed == 1
    await again.settled()
    assert fake.calls_per_key == {req.action_id: 2}  # two raw calls, one key
    assert fake.effects == {req.action_id: 1}  # the receiver applied it once
    [result] = again.results()
    assert result["status"] == "called"
    assert again.runtime.webhooks.counts["calls_after_restart"] == 1


async def test_a_stop_leaves_calls_not_started_for_the_restart(fake: FakeWebhookServer) -> None:
    w = HookWorld(fake)
    fake.latency_ms = 200
    await w.feed_hook(request(fake))
    await asyncio.sleep(0.05)  # in flight
    started = time.monotonic()
    left = await w.runtime.webhooks.stop(5.0)
    assert left == 0 and time.monotonic() - started < 5.0  # the call in flight finished
    assert [r["status"] for r in w.results()] == ["called"]
    await w.feed_hook(request(fake, n=2))  # after the stop: recorded, never called
    await asyncio.sleep(0.3)
    assert fake.raw_calls == 1
    rec = w.runtime.claims.get(request(fake, n=2).action_id.encode())
    assert rec is not None and rec["st"] == "queued"


async def test_a_call_recorded_before_the_partition_is_recovered_is_made_after(
    fake: FakeWebhookServer,
) -> None:
    w = HookWorld(fake)
    w.runtime.webhooks.revoked({0})  # not (or no longer) ours: the task gives up at once
    req = request(fake)
    await w.feed_hook(req)
    await w.settled()
    assert fake.raw_calls == 0
    assert w.runtime.webhooks.recovered({0}) == 1  # found in the buffer, not the store
    await w.settled()
    assert fake.calls_per_key == {req.action_id: 1}
    assert [r["status"] for r in w.results()] == ["called"]
