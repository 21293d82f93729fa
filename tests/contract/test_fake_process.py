"""The fakes as a process of their own, driven through the control API, as a kill -9 test
of the gateway will use them."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import uuid
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import aiohttp
import pytest
from webhook_sink import WebhookSink

from engine.channels.prepare import Prepared
from engine.channels.providers import rbm
from engine.channels.providers.config import ProviderSettings, build_providers
from engine.channels.providers.rbm import RbmProvider
from engine.channels.providers.twilio import TwilioSmsProvider
from engine.core.effects import SendRequest

ROOT = Path(__file__).resolve().parents[2]
PHONE = "+14155550123"


@pytest.fixture
async def sink() -> AsyncIterator[WebhookSink]:
    sink = WebhookSink()
    await sink.start()
    yield sink
    await sink.stop()


@pytest.fixture
def fake_process(sink: WebhookSink, tmp_path: Path) -> Iterator[tuple[str, Path]]:
    key = tmp_path / "key.json"
    cmd = [
        sys.executable,
        "-m",
        "tests.fakes.providers",
        "--port",
        "0",
        "--webhook-base",
        sink.base_url,
        "--service-account",
        str(key),
    ]
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    proc = subprocess.Popen(
        cmd, cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True
    )
    try:
        assert proc.stdout is not None
        port = int(proc.stdout.readline())  # printed once it listens
        yield f"http://127.0.0.1:{port}", key
    finally:
        proc.kill()
        proc.wait(timeout=10)
        if proc.stdout is not None:
            proc.stdout.close()


def _request(n: int, channel: str) -> SendRequest:
    return SendRequest(
        message_id=str(uuid.UUID(int=n)),
        ts=0,
        user_id=f"u-{n}",
        to=PHONE,
        channel=channel,
        content={},
        journey_id="j",
        journey_version=1,
        instance_id="i",
        node_id="n",
    )


async def test_a_fake_in_another_process(sink: WebhookSink, fake_process: tuple[str, Path]) -> None:
    base, key = fake_process
    env = {
        "JOURNEYS_RBM_AGENT_ID": "test-agent",
        "JOURNEYS_RBM_SERVICE_ACCOUNT": str(key),
        "JOURNEYS_RBM_BASE_URL": base,
        "JOURNEYS_RBM_WEBHOOK_TOKEN": "client-token",
        "JOURNEYS_TWILIO_ACCOUNT_SID": "AC" + "0" * 31 + "1",
        "JOURNEYS_TWILIO_AUTH_TOKEN": "f" * 32,
        "JOURNEYS_TWILIO_FROM": "+15005550006",
        "JOURNEYS_TWILIO_BASE_URL": base,
        "JOURNEYS_WEBHOOK_PUBLIC_URL": sink.base_url,
    }
    assert json.loads(key.read_text())["token_uri"] == f"{base}/token"
    rcs, sms = build_providers(ProviderSettings.from_env(env, rcs="rbm", sms="twilio"))
    assert isinstance(rcs, RbmProvider) and isinstance(sms, TwilioSmsProvider)
    async with aiohttp.ClientSession() as http:

        async def control(method: str, path: str, body: object = None) -> dict[str, object]:
            async with http.request(method, base + path, json=body) as resp:
                assert resp.status == 200, await resp.text()
                answer = await resp.json()
                assert isinstance(answer, dict)
                return answer

        try:
            rcs_req, sms_req = _request(1, "rcs"), _request(2, "sms")
            rcs_msg = Prepared(rcs_req.message_id, "rcs", PHONE, {"contentMessage": {"text": "hi"}})
            await control("POST", "/_fake/script", {"rbm_send": [500]})
            with pytest.raises(Exception, match="500"):
                await rcs.send(rcs_msg, rcs_req)
            await rcs.send(rcs_msg, rcs_req)  # the retry, same messageId
            await rcs.send(rcs_msg, rcs_req)
            await sms.send(Prepared(sms_req.message_id, "sms", PHONE, {"body": "hi"}), sms_req)

            counts = await control("GET", "/_fake/counts")
            assert counts["rbm"] == {
                "accepted_by_phone": {PHONE: [rcs_req.message_id]},
                "posts": {rcs_req.message_id: 2},
                "states": {rcs_req.message_id: "pending"},
                "revokes": {},
            }
            assert counts["twilio"]["accepted"] == {sms_req.message_id: 1}  # type: ignore[index]
            assert counts["rcs_and_sms"] == [PHONE]
            assert counts["tokens"] == {"minted": 1, "refused": 0}

            delivered = await control("POST", f"/_fake/deliver/{rcs_req.message_id}?read=1")
            assert delivered == {"posted": [200, 200]}
            sms_done = await control("POST", f"/_fake/deliver/{sms_req.message_id}")
            assert sms_done == {"posted": [200, 200]}
            tap = await control("POST", "/_fake/rbm/tap", {"phone": PHONE, "postback": "track"})
            assert tap == {"status": 200}
            stop = await control("POST", "/_fake/twilio/inbound", {"from": PHONE, "body": "STOP"})
            assert stop == {"status": 200}

            events = [rbm.decode_envelope(p.body) for p in sink.to("/webhooks/rbm")]
            assert [e.get("eventType") for e in events] == ["DELIVERED", "READ", None]
            assert events[2]["suggestionResponse"]["postbackData"] == "track"
            twilio_posts = sink.to("/webhooks/twilio")
            assert [p.form.get("MessageStatus") or p.form["Body"] for p in twilio_posts] == [
                "sent",
                "delivered",
                "STOP",
            ]
            assert twilio_posts[0].query == {"mid": sms_req.message_id}

            await control("POST", "/_fake/reset")
            assert (await control("GET", "/_fake/counts"))["rcs_and_sms"] == []
        finally:
            await rcs.close()
            await sms.close()
