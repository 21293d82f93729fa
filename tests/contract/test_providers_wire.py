"""The real adapters, built from JOURNEYS_* settings, against the fake Google / RBM / Twilio
servers: Twilio's StatusCallback and lookup, RBM's repeated messageId, the signatures of
what the fakes post back, and the fakes' counts."""

from __future__ import annotations

import asyncio
import base64
import hashlib
import hmac
import json
import time
import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from webhook_sink import WebhookSink

from engine.channels.prepare import Prepared
from engine.channels.providers import rbm, twilio
from engine.channels.providers.base import OutcomeUnknown, SendResult, UnsupportedFeature
from engine.channels.providers.config import ProviderSettings, build_providers
from engine.channels.providers.http import Answer
from engine.channels.providers.rbm import RbmProvider
from engine.channels.providers.twilio import TwilioSmsProvider
from engine.channels.rcs import build_and_validate
from engine.core.effects import SendRequest
from engine.errors import RetryableProviderError
from engine.journey.render import RenderedMessage
from tests.fakes.providers import FakeProviders, agent_message_problems

PHONE = "+14155550123"
OTHER = "+14155550199"
SERVICE_SID = "MG" + "ab" * 16


@dataclass
class Wire:
    fake: FakeProviders
    sink: WebhookSink
    rbm: RbmProvider
    sms: TwilioSmsProvider
    env: dict[str, str]


def env_for(fake: FakeProviders, sink: WebhookSink, key: Path) -> dict[str, str]:
    return {
        "JOURNEYS_RBM_AGENT_ID": fake.agent_id,
        "JOURNEYS_RBM_SERVICE_ACCOUNT": str(key),
        "JOURNEYS_RBM_BASE_URL": fake.base_url,
        "JOURNEYS_RBM_WEBHOOK_TOKEN": fake.client_token,
        "JOURNEYS_TWILIO_ACCOUNT_SID": fake.account_sid,
        "JOURNEYS_TWILIO_AUTH_TOKEN": fake.auth_token,
        "JOURNEYS_TWILIO_FROM": "+15005550006",
        "JOURNEYS_TWILIO_BASE_URL": fake.base_url,
        "JOURNEYS_WEBHOOK_PUBLIC_URL": sink.base_url,
    }


@pytest.fixture
async def wire(tmp_path: Path) -> AsyncIterator[Wire]:
    sink = WebhookSink()
    await sink.start()
    fake = FakeProviders(webhook_base=sink.base_url)
    await fake.start()
    key = fake.new_service_account().write(tmp_path / "key.json")
    env = env_for(fake, sink, key)
    rcs, sms = build_providers(ProviderSettings.from_env(env, rcs="rbm", sms="twilio"))
    assert isinstance(rcs, RbmProvider) and isinstance(sms, TwilioSmsProvider)
    try:
        yield Wire(fake, sink, rcs, sms, env)
    finally:
        await rcs.close()
        await sms.close()
        await fake.stop()
        await sink.stop()


def request(n: int, channel: str = "rcs", to: str = PHONE) -> SendRequest:
    return SendRequest(
        message_id=str(uuid.UUID(int=n)),
        ts=0,
        user_id=f"u-{n}",
        to=to,
        channel=channel,
        content={"channel": channel, "text": "x"},
        journey_id="j",
        journey_version=1,
        instance_id="i",
        node_id="n",
    )


def sms(n: int, body: str = "Your order shipped", to: str = PHONE) -> tuple[Prepared, SendRequest]:
    req = request(n, "sms", to)
    return Prepared(req.message_id, "sms", to, {"body": body}, 1), req


CARD = RenderedMessage.from_dict(
    {
        "channel": "rcs",
        "rich_card": {
            "title": "Order A1 confirmed",
            "description": "We'll tell you when it ships.",
            "media": {"url": "https://cdn.example.com/a1.png", "height": "MEDIUM"},
            "suggestions": [
                {"kind": "reply", "text": "Track", "postback": "track"},
                {"kind": "dial", "text": "Call us", "postback": "call", "phone": "+14155552671"},
                {
                    "kind": "open_url",
                    "text": "Open",
                    "postback": "open",
                    "url": "https://shop.example.com/o/A1",
                },
            ],
        },
        "suggestions": [{"kind": "reply", "text": "Stop", "postback": "stop"}],
    }
)


def card(n: int) -> tuple[Prepared, SendRequest]:
    req = request(n)
    payload = build_and_validate(CARD, req.message_id, 600_000)
    return Prepared(req.message_id, "rcs", PHONE, payload), req


# --------------------------------------------------------------------------- Twilio


async def test_every_sms_carries_the_status_callback(wire: Wire) -> None:
    msg, req = sms(1)
    result = await wire.sms.send(msg, req)
    [sid] = wire.fake.sms.messages
    assert result == SendResult(sid)
    form = wire.fake.sms.messages[sid]
    callback = f"{wire.sink.base_url}/webhooks/twilio?mid={req.message_id}"
    assert form["StatusCallback"] == callback
    assert form["From"] == "+15005550006" and "MessagingServiceSid" not in form
    assert await wire.fake.sms_status(sid, "delivered") == 200
    [posted] = wire.sink.to("/webhooks/twilio")
    assert posted.query == {"mid": req.message_id}
    assert posted.form["MessageStatus"] == "delivered" and posted.form["MessageSid"] == sid
    # X-Twilio-Signature is over the public URL (with its query) and the sorted form
    expected = twilio.twilio_signature(wire.fake.auth_token, callback, posted.form)
    assert posted.headers["X-Twilio-Signature"] == expected
    assert twilio.parse_callback(posted.form, posted.query["mid"]).message_id == req.message_id


async def test_a_messaging_service_sender(wire: Wire) -> None:
    env = {**wire.env, "JOURNEYS_TWILIO_FROM": SERVICE_SID}
    _, sender = build_providers(ProviderSettings.from_env(env, sms="twilio"))
    assert isinstance(sender, TwilioSmsProvider)
    try:
        await sender.send(*sms(1))
    finally:
        await sender.close()
    [form] = wire.fake.sms.messages.values()
    assert form["MessagingServiceSid"] == SERVICE_SID and "From" not in form


async def test_inbound_sms_goes_to_the_twilio_webhook_signed(wire: Wire) -> None:
    assert await wire.fake.sms_inbound(PHONE, "STOP") == 200
    [posted] = wire.sink.to("/webhooks/twilio")
    url = f"{wire.sink.base_url}/webhooks/twilio"
    assert posted.form["Body"] == "STOP" and posted.form["From"] == PHONE
    expected = twilio.twilio_signature(wire.fake.auth_token, url, posted.form)
    assert posted.headers["X-Twilio-Signature"] == expected


async def test_lookup_finds_a_message_sent_before_a_crash(wire: Wire) -> None:
    since = int(time.time() * 1000)
    msg, req = sms(1, "Your code is 1234")
    sent = await wire.sms.send(msg, req)
    await wire.sms.send(*sms(2, "Something else"))
    await wire.sms.send(*sms(3, "Your code is 1234", to=OTHER))
    assert await wire.sms.lookup(PHONE, "Your code is 1234", since) == sent
    found = await wire.sms.lookup_message(PHONE, "Your code is 1234", since)
    assert found is not None and found.sid == sent.provider_id and found.status == "queued"
    [call] = [c for c in wire.fake.calls_to("GET", "/Messages.json")][:1]
    # no DateSent filter: a message still queued at Twilio has no date_sent yet
    assert call.query == {"To": PHONE, "PageSize": "100"}
    assert await wire.sms.lookup(PHONE, "Not sent", since) is None
    assert await wire.sms.lookup("+14155550100", "Your code is 1234", since) is None
    # created before the claim: not ours
    assert await wire.sms.lookup(PHONE, "Your code is 1234", since + 60_000) is None


async def test_lookup_follows_pages_and_stops_at_older_messages(wire: Wire) -> None:
    since = int(time.time() * 1000)
    for n in range(100, 100 + 150):  # older than the claim: where the listing stops
        await wire.sms.send(*sms(n, "Old news" if n == 100 else f"Old {n}"))
    for sid in wire.fake.sms.meta:
        wire.fake.sms.meta[sid]["created"] -= 3 * 86400  # three days ago
    target = await wire.sms.send(*sms(2, "Needle"))
    for n in range(3, 3 + 130):  # newer ones push it to the second page (100 a page)
        await wire.sms.send(*sms(n, f"Hay {n}"))
    wire.fake.calls.clear()
    assert await wire.sms.lookup(PHONE, "Old news", since) is None  # before the claim
    pages = wire.fake.calls_to("GET", "/Messages.json")
    assert len(pages) == 2  # of 3: the old ones begin on the second page
    wire.fake.calls.clear()
    assert await wire.sms.lookup(PHONE, "Needle", since) == target
    pages = wire.fake.calls_to("GET", "/Messages.json")
    assert len(pages) == 2 and pages[-1].query["Page"] == "1"


async def test_lookup_matches_a_body_twilio_extended(wire: Wire) -> None:
    since = int(time.time() * 1000)
    await wire.sms.send(*sms(1, "Hi there\nReply STOP to opt out"))
    assert await wire.sms.lookup(PHONE, "Hi there", since) is not None


async def test_lookup_errors_raise_like_sends(wire: Wire) -> None:
    wire.fake.sms.list_script = [500]
    with pytest.raises(OutcomeUnknown):
        await wire.sms.lookup(PHONE, "x", 0)
    wire.fake.sms.list_script = [429]
    with pytest.raises(RetryableProviderError):
        await wire.sms.lookup(PHONE, "x", 0)


async def test_the_fake_counts_sms_per_message_id(wire: Wire) -> None:
    msg, req = sms(1)
    await wire.sms.send(msg, req)
    await wire.sms.send(msg, req)  # what a blind resend after a crash would do
    await wire.sms.send(*sms(2))
    counts = wire.fake.counts()["twilio"]
    assert counts["accepted"] == {req.message_id: 2, str(uuid.UUID(int=2)): 1}
    assert counts["by_phone"] == {PHONE: [req.message_id, req.message_id, str(uuid.UUID(int=2))]}


# --------------------------------------------------------------------------- RBM


async def test_the_adapters_payloads_are_valid_agent_messages() -> None:
    assert agent_message_problems(card(1)[0].payload) is None
    assert agent_message_problems({"contentMessage": {"text": "hi"}, "ttl": "10s"}) is None
    assert "exactly one" in str(agent_message_problems({"contentMessage": {}}))
    assert "ttl" in str(agent_message_problems({"contentMessage": {"text": "a"}, "ttl": "10"}))
    bad_chip = {"contentMessage": {"text": "a", "suggestions": [{"reply": {"text": "x" * 26}}]}}
    assert "25" in str(agent_message_problems(bad_chip))


async def test_a_malformed_agent_message_is_a_400(wire: Wire) -> None:
    req = request(1)
    bad = Prepared(req.message_id, "rcs", PHONE, {"contentMessage": {"text": ""}})
    with pytest.raises(UnsupportedFeature) as err:
        await wire.rbm.send(bad, req)
    assert err.value.status == 400 and wire.fake.rbm.messages == {}


async def test_a_repeated_message_id_is_accepted_and_reaches_the_user_once(wire: Wire) -> None:
    msg, req = card(1)
    first = await wire.rbm.send(msg, req)
    again = await wire.rbm.send(msg, req)  # the platform answers 409 ALREADY_EXISTS
    assert first == again == SendResult(f"phones/{PHONE}/agentMessages/{msg.message_id}")
    wire.fake.rbm.duplicate_status = 200  # the other answer Google might give
    assert await wire.rbm.send(msg, req) == first
    counts = wire.fake.counts()["rbm"]
    assert counts["posts"] == {msg.message_id: 3}
    assert counts["accepted_by_phone"] == {PHONE: [msg.message_id]}
    assert wire.fake.google.minted == 1  # one token for the three calls


def test_409_already_exists_is_accepted_and_aborted_is_not() -> None:
    def answer(status: int, body: Any) -> Answer:
        return Answer(status, {}, json.dumps(body).encode())

    exists = {"error": {"code": 409, "status": "ALREADY_EXISTS"}}
    aborted = {"error": {"code": 409, "status": "ABORTED"}}
    assert rbm._accepted(answer(409, exists)) and rbm._accepted(answer(200, {}))
    assert not rbm._accepted(answer(409, aborted))
    with pytest.raises(RetryableProviderError):
        rbm._raise(answer(409, aborted), "rbm send")


async def test_rbm_events_are_signed_over_the_decoded_event(wire: Wire) -> None:
    msg, req = card(1)
    await wire.rbm.send(msg, req)
    assert await wire.fake.deliver(msg.message_id, read=True) == [200, 200]
    delivered, read = wire.sink.to("/webhooks/rbm")
    event_bytes = base64.b64decode(json.loads(delivered.body)["message"]["data"])
    event = json.loads(event_bytes)
    assert (event["eventType"], event["messageId"]) == ("DELIVERED", msg.message_id)
    digest = hmac.new(wire.fake.client_token.encode(), event_bytes, hashlib.sha512).digest()
    assert delivered.headers["X-Goog-Signature"] == base64.b64encode(digest).decode()
    signature = delivered.headers["X-Goog-Signature"]
    assert rbm.verify_signature(wire.fake.client_token, delivered.body, signature)
    assert not rbm.verify_signature("other", delivered.body, signature)
    assert (
        json.loads(base64.b64decode(json.loads(read.body)["message"]["data"]))["eventType"]
        == "READ"
    )
    assert wire.fake.counts()["rbm"]["states"] == {msg.message_id: "read"}


async def test_rbm_webhooks_are_retried_until_accepted(wire: Wire) -> None:
    msg, req = card(1)
    await wire.rbm.send(msg, req)
    wire.sink.status = 503  # our gateway is down
    assert await wire.fake.deliver(msg.message_id, retry=True) == [503]
    wire.sink.status = 200
    for _ in range(100):
        if wire.fake.webhooks["posted"]:
            break
        await asyncio.sleep(0.05)
    first, *again = wire.sink.to("/webhooks/rbm")
    assert again and again[-1].body == first.body  # the same event, now accepted
    assert wire.fake.webhooks["retried"] >= 1


async def test_unreachable_and_scripted_answers(wire: Wire) -> None:
    wire.fake.script({"unreachable": [OTHER], "rbm_send": [429]})
    assert not (await wire.rbm.capability(OTHER)).reachable
    with pytest.raises(RetryableProviderError) as err:
        await wire.rbm.send(*card(1))
    assert err.value.status == 429
    await wire.rbm.send(*card(1))
    assert list(wire.fake.rbm.messages) == [str(uuid.UUID(int=1))]
