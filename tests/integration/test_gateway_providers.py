"""A journey on Kafka with only the real adapters (RBM, Twilio), against the fake Google
token endpoint, RBM and Twilio (tests/fakes/providers.py) running as a process.

A worker and ``journeys gateway --rcs rbm --sms twilio`` run as child processes; events
go in on ``journey.user-events``; the fakes call the gateway's webhook server back, signed
as Google and Twilio sign; outcomes are read from ``journey.outcomes``.
"""

from __future__ import annotations

import asyncio
import base64
import subprocess
import sys
import time
import uuid
from collections import Counter
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import urlencode

import aiohttp
import orjson
import pytest

from engine.channels.providers import rbm, twilio
from engine.durations import format_ts
from engine.stream.devtools.harness import Service, StreamEnv, free_port
from tests.fakes.process import CLIENT_TOKEN, FakeProcess
from tests.fakes.providers import DEFAULT_AUTH_TOKEN, agent_message_problems

JOURNEY = """
id: gw-real
version: 1
name: The real adapters against the fakes
entry: {event: signed_up}
start: card
nodes:
  card:
    type: send
    channel: rcs
    marketing: false
    rich_card:
      title: "Order confirmed"
      description: "We'll tell you when it ships."
      suggestions:
        - reply: {text: "Track", postback: track}
    fallback: {sms: "Order confirmed. Reply STOP to stop.", after: 60s}
    next: read_it
  read_it:
    type: wait_for
    paths:
      - {read: card, next: tap_it}
    timeout: 60s
    on_timeout: done
  tap_it:
    type: wait_for
    paths:
      - {click: track, of: card, next: thanks}
    timeout: 60s
    on_timeout: done
  thanks: {type: send, channel: rcs, marketing: false, text: "Here it is.", next: done}
  done: {type: exit}
"""

CAPABLE = "+14155550101"
NOT_CAPABLE = "+14155550102"
FAILING = "+14155550103"
RETRIED = "+14155550104"


@dataclass
class Stack:
    env: StreamEnv
    fake: FakeProcess
    worker: Service
    gateway: Service

    @property
    def webhooks(self) -> str:
        return self.fake.webhook_base

    async def signed_up(self, user: str, phone: str) -> None:
        event = {
            "event_id": f"{user}-in",
            "user_id": user,
            "name": "signed_up",
            "ts": format_ts(int(time.time() * 1000)),
            "profile": {"phone": phone},
        }
        topic = self.env.settings().topics.user_events
        await self.env.produce([(topic, user.encode(), orjson.dumps(event))])

    async def outcomes(self, user: str) -> list[dict[str, Any]]:
        seen: dict[str, dict[str, Any]] = {}
        for o in await self.env.read_json(self.env.settings().topics.outcomes):
            if o["user_id"] == user:
                seen.setdefault(o["outcome_id"], o)
        return list(seen.values())

    async def outcome(self, user: str, kind: str, timeout: float = 60.0, **match: Any) -> Any:
        async def find() -> Any:
            for o in await self.outcomes(user):
                if o["type"] == kind and all(o.get(k) == v for k, v in match.items()):
                    return o
            return None

        return await until(find, timeout, f"{user}: no {kind} {match}")

    async def receipts(self) -> Counter[tuple[str, str]]:
        return Counter((r["status"], r["message_id"]) for r in await self.topic("channel_receipts"))

    async def topic(self, name: str) -> list[dict[str, Any]]:
        return await self.env.read_json(getattr(self.env.settings().topics, name))


async def until(find: Callable[[], Any], timeout: float, what: str) -> Any:
    deadline = time.monotonic() + timeout
    while True:
        found = await find()
        if found:
            return found
        if time.monotonic() > deadline:
            raise AssertionError(what)
        await asyncio.sleep(0.3)


@pytest.fixture
async def stack(kafka_bootstrap: str, tmp_path: Path) -> AsyncIterator[Stack]:
    jdir = tmp_path / "journeys"
    jdir.mkdir()
    (jdir / "gw-real.yaml").write_text(JOURNEY)
    env = StreamEnv(kafka_bootstrap, tmp_path, jdir)
    fake = FakeProcess(tmp_path, free_port())
    try:
        await fake.start()
        worker = env.start_worker()
        gateway = env.start_gateway(rcs="rbm", sms="twilio", **fake.gateway_env())
        await worker.wait_for("worker_ready", 60)
        await gateway.wait_for("gateway_ids_loaded", 60)
        yield Stack(env, fake, worker, gateway)
    finally:
        await env.aclose()
        await fake.stop()


async def post(url: str, body: bytes, headers: dict[str, str]) -> int:
    async with (
        aiohttp.ClientSession() as session,
        session.post(url, data=body, headers=headers) as resp,
    ):
        return resp.status


@pytest.mark.timeout(240)
async def test_a_journey_runs_end_to_end_on_the_real_adapters(stack: Stack) -> None:
    fake = stack.fake
    await fake.script(unreachable=[NOT_CAPABLE])
    await stack.signed_up("capable", CAPABLE)
    await stack.signed_up("fallback", NOT_CAPABLE)

    # A capable user gets one rich card: exactly one POST, a valid AgentMessage.
    async def card() -> Any:
        return [m for m, v in (await fake.messages())["rbm"].items() if v["phone"] == CAPABLE]

    [mid] = await until(card, 60, "no rich card reached RBM")
    counts = await fake.counts()
    assert counts["rbm"]["posts"][mid] == 1
    payload = (await fake.messages())["rbm"][mid]["payload"]
    assert agent_message_problems(payload) is None
    assert payload["contentMessage"]["richCard"]["standaloneCard"]["cardContent"]["title"] == (
        "Order confirmed"
    )
    assert counts["tokens"]["minted"] >= 1  # from the service-account key, at the fake

    # Signed DELIVERED, READ and a tap move the user on to the next send.
    assert await fake.post(f"/_fake/deliver/{mid}?read=1") == {"posted": [200, 200]}
    await stack.outcome("capable", "message_read", message_id=mid)
    tapped = await fake.post("/_fake/rbm/tap", {"phone": CAPABLE, "postback": "track"})
    assert tapped == {"status": 200}
    await stack.outcome("capable", "journey_exited")
    kinds = {o["type"] for o in await stack.outcomes("capable")}
    assert {"message_delivered", "message_read", "message_clicked"} <= kinds

    async def both() -> Any:
        ids = (await fake.counts())["rbm"]["accepted_by_phone"][CAPABLE]
        return ids if len(ids) >= 2 else None

    assert len(await until(both, 30, "no second send")) == 2  # the card, then "Here it is."

    # Not RCS-capable (404): one SMS, whose signed status callback says delivered.
    async def sms() -> Any:
        return (await fake.counts())["twilio"]["by_phone"].get(NOT_CAPABLE)

    [sms_id] = await until(sms, 60, "no SMS reached Twilio")
    assert (await fake.counts())["twilio"]["accepted"] == {sms_id: 1}
    assert await fake.post(f"/_fake/deliver/{sms_id}") == {"posted": [200, 200]}
    await stack.outcome("fallback", "message_delivered", channel="sms", message_id=sms_id)
    assert (await fake.counts())["rbm"]["accepted_by_phone"].get(NOT_CAPABLE) is None

    # An inbound STOP opts the user out.
    stop = await fake.post("/_fake/twilio/inbound", {"from": NOT_CAPABLE, "body": "STOP"})
    assert stop == {"status": 200}
    await stack.outcome("fallback", "user_opted_out")

    # Tampered or missing signatures are refused; nothing is produced for them.
    receipts_before = await stack.receipts()
    event = {"senderPhoneNumber": CAPABLE, "eventType": "READ", "eventId": "EV-x", "messageId": mid}
    body = rbm.encode_envelope(event)
    tampered = rbm.encode_envelope({**event, "eventType": "DELIVERED"})
    rbm_url = stack.webhooks + "/webhooks/rbm"
    assert await post(rbm_url, tampered, {"X-Goog-Signature": rbm.sign(CLIENT_TOKEN, body)}) == 401
    assert await post(rbm_url, body, {}) == 401
    fields = {"MessageSid": "SMx", "MessageStatus": "delivered", "To": NOT_CAPABLE}
    twilio_url = f"{stack.webhooks}/webhooks/twilio?mid={sms_id}"
    signature = twilio.twilio_signature(DEFAULT_AUTH_TOKEN, twilio_url, fields)
    form = {"Content-Type": "application/x-www-form-urlencoded"}
    forged = urlencode({**fields, "MessageStatus": "failed"}).encode()
    assert await post(twilio_url, forged, {**form, "X-Twilio-Signature": signature}) == 403

    # A replayed event: 200 both times, one receipt. Malformed: 400 and a dead letter.
    # An unknown message id: a dead letter with its reason.
    signed = {"X-Goog-Signature": rbm.sign(CLIENT_TOKEN, body)}
    assert [await post(rbm_url, body, signed) for _ in range(2)] == [200, 200]
    broken = b'{"message": {"data": "%%%"}}'
    assert await post(rbm_url, broken, {"X-Goog-Signature": rbm.sign(CLIENT_TOKEN, broken)}) == 400
    stray = rbm.encode_envelope({**event, "eventId": "EV-y", "messageId": str(uuid.uuid4())})
    assert await post(rbm_url, stray, {"X-Goog-Signature": rbm.sign(CLIENT_TOKEN, stray)}) == 200

    async def dead() -> Any:
        found = [d for d in await stack.topic("dead_letters") if d["stage"] == "webhook"]
        return found if len(found) >= 2 else None

    letters = await until(dead, 30, "no webhook dead letters")
    assert sorted(d["reason"] for d in letters) == ["malformed_webhook", "unknown_message"]
    assert base64.b64decode(letters[0]["value_b64"]) in (broken, stray)
    new = await stack.receipts() - receipts_before  # partitions come back in any order
    assert new == Counter({("read", mid): 1})
    health = await asyncio.to_thread(_get, stack.webhooks + "/healthz")
    assert health == 200


def _get(url: str) -> int:
    import urllib.request

    with urllib.request.urlopen(url, timeout=10) as resp:
        return int(resp.status)


@pytest.mark.timeout(240)
async def test_429s_and_500s_are_retried_and_a_run_out_budget_fails_the_send(
    stack: Stack,
) -> None:
    fake = stack.fake
    # RBM: a 429 (Retry-After: 1) and a 500, then it takes the card (same messageId).
    await fake.script(rbm_send=[429, 500])
    await stack.signed_up("retried", RETRIED)

    async def card() -> Any:
        return [m for m, v in (await fake.messages())["rbm"].items() if v["phone"] == RETRIED]

    [mid] = await until(card, 60, "the card never got through")
    assert (await fake.counts())["rbm"]["posts"][mid] == 1  # 429 and 500 took nothing
    retried = [c for c in stack.gateway.events("provider_send") if c["message_id"] == mid]
    assert [c["attempts"] for c in retried] == [3]

    # Twilio: 500s to the end of the budget: each looked up (nothing there), then failed.
    await fake.script(unreachable=[FAILING], twilio_send=[500] * 5)
    await stack.signed_up("failing", FAILING)
    failed = await stack.outcome("failing", "message_failed", 90, channel="sms")
    assert failed["attributes"]["reason"] == "provider_unavailable:500"
    assert (await fake.counts())["twilio"]["by_phone"].get(FAILING) is None

    # A clean stop: the last checkpoint after the calls in flight, the webhooks closed.
    assert await asyncio.to_thread(stack.gateway.stop, 30) == 0
    assert stack.gateway.count("gateway_sender_stopped") == 1
    assert stack.gateway.count("gateway_stopped") == 1


@pytest.mark.timeout(60)
async def test_a_missing_setting_stops_the_gateway_at_start_naming_it(tmp_path: Path) -> None:
    env = {
        "PATH": "/usr/bin:/bin",
        "PYTHONPATH": str(Path(__file__).resolve().parents[2]),
        "JOURNEYS_BOOTSTRAP": "127.0.0.1:1",  # never reached: it stops before
        "JOURNEYS_RBM_AGENT_ID": "agent",
        "JOURNEYS_RBM_SERVICE_ACCOUNT": str(tmp_path / "missing.json"),
        "JOURNEYS_WEBHOOK_PUBLIC_URL": "https://hooks.example.com",
    }
    proc = await asyncio.to_thread(
        subprocess.run,
        [sys.executable, "-m", "engine.stream.gateway", "--rcs", "rbm", "--sms", "twilio"],
        env=env,
        capture_output=True,
        text=True,
        timeout=50,
    )
    assert proc.returncode == 2
    for var in (
        "JOURNEYS_RBM_SERVICE_ACCOUNT",
        "JOURNEYS_RBM_WEBHOOK_TOKEN",
        "JOURNEYS_TWILIO_ACCOUNT_SID",
        "JOURNEYS_TWILIO_AUTH_TOKEN",
        "JOURNEYS_TWILIO_FROM",
    ):
        assert var in proc.stderr, (var, proc.stderr)
    assert "gateway_starting" not in proc.stderr  # nothing started, nothing consumed
