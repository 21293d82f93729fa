"""Webhook parsing (RBM events, SMS callbacks) and the receiver's HTTP handling."""

from __future__ import annotations

import base64
import hashlib
import json
from collections.abc import AsyncIterator
from typing import Any
from urllib.parse import urlencode

import pytest
from aiohttp.test_utils import TestClient, TestServer

from engine.channels.gateway import InMemoryDirectory, SentMessage
from engine.channels.providers import rbm, twilio
from engine.channels.providers.base import Ignored, InboundEvent, ReceiptEvent
from engine.channels.webhooks import RBM_PATH, SMS_PATH, WebhookReceiver
from engine.core.inputs import Inbound, Receipt

TOKEN = "client-token"
SMS_TOKEN = "sms-auth-token"
PHONE = "+14155550123"
MID = "00000000-0000-8000-8000-000000000001"
NOW = 1_800_000_000_000


# --------------------------------------------------------------------------- parsing


@pytest.mark.parametrize(
    ("event_type", "status"),
    [
        ("DELIVERED", "delivered"),
        ("READ", "read"),
        ("TTL_EXPIRATION_REVOKED", "revoked"),
        ("TTL_EXPIRATION_REVOKE_FAILED", "revoke_failed"),
    ],
)
def test_rbm_receipt_events(event_type: str, status: str) -> None:
    event = {
        "senderPhoneNumber": PHONE,
        "eventType": event_type,
        "eventId": "E1",
        "messageId": MID,
        "sendTime": "2026-11-29T10:00:00.123456Z",
    }
    parsed = rbm.parse_event(event)
    assert parsed == ReceiptEvent(
        status,
        "E1",
        message_id=MID,
        phone=PHONE,  # type: ignore[arg-type]
        ts=1795946400123,
    )


def test_rbm_ttl_event_uses_phone_number_field() -> None:
    event = {
        "phoneNumber": PHONE,
        "messageId": MID,
        "eventType": "TTL_EXPIRATION_REVOKED",
        "eventId": "E2",
        "sendTime": "2026-11-29T10:00:00Z",
    }
    parsed = rbm.parse_event(event)
    assert isinstance(parsed, ReceiptEvent) and parsed.phone == PHONE


def test_rbm_user_messages() -> None:
    tap = rbm.parse_event(
        {
            "senderPhoneNumber": PHONE,
            "messageId": "U1",
            "suggestionResponse": {"postbackData": "track", "text": "Track", "type": "REPLY"},
        }
    )
    assert tap == InboundEvent(PHONE, "message:U1", postback="track", message_id="U1")
    text = rbm.parse_event({"senderPhoneNumber": PHONE, "messageId": "U2", "text": " stop "})
    assert isinstance(text, InboundEvent) and text.keyword == "opt_out" and text.text == " stop "
    chat = rbm.parse_event({"senderPhoneNumber": PHONE, "messageId": "U3", "text": "stop it"})
    assert isinstance(chat, InboundEvent) and chat.keyword is None
    unsub = rbm.parse_event(
        {"senderPhoneNumber": PHONE, "eventType": "UNSUBSCRIBE", "eventId": "E3"}
    )
    assert isinstance(unsub, InboundEvent) and unsub.keyword == "opt_out"
    typing = rbm.parse_event(
        {"senderPhoneNumber": PHONE, "eventType": "IS_TYPING", "eventId": "E4"}
    )
    assert isinstance(typing, Ignored) and not typing.dead_letter
    location = rbm.parse_event(
        {"senderPhoneNumber": PHONE, "messageId": "U5", "location": {"latitude": 1, "longitude": 2}}
    )
    assert isinstance(location, Ignored) and location.dead_letter


@pytest.mark.parametrize(
    ("stat", "status"),
    [
        ("DELIVRD", "delivered"),
        ("UNDELIV", "failed"),
        ("REJECTD", "failed"),
        ("EXPIRED", "failed"),
        ("DELETED", "failed"),
        ("ENROUTE", None),
        ("ACCEPTD", None),
        ("UNKNOWN", None),
    ],
)
def test_sms_dlr_stat_mapping(stat: str, status: str | None) -> None:
    parsed = twilio.parse_callback({"id": "P1", "stat": stat, "err": "000"})
    if status is None:
        assert isinstance(parsed, Ignored) and not parsed.dead_letter
    else:
        assert isinstance(parsed, ReceiptEvent) and parsed.status == status
        assert parsed.dedupe_key == f"dlr:P1:{stat}"
        if status == "failed":
            assert parsed.reason == f"sms.{stat}"


@pytest.mark.parametrize(
    ("status", "mapped"),
    [
        ("delivered", "delivered"),
        ("undelivered", "failed"),
        ("failed", "failed"),
        ("read", "read"),
        ("queued", None),
        ("sent", None),
    ],
)
def test_sms_twilio_status_mapping(status: str, mapped: str | None) -> None:
    parsed = twilio.parse_callback(
        {"MessageSid": "SM1", "MessageStatus": status, "ErrorCode": "30003"}, MID
    )
    if mapped is None:
        assert isinstance(parsed, Ignored)
    else:
        assert isinstance(parsed, ReceiptEvent) and parsed.status == mapped
        assert parsed.message_id == MID and parsed.provider_id == "SM1"
        if mapped == "failed":
            assert parsed.reason == f"sms.{status}:30003"


def test_sms_inbound_and_bad_callbacks() -> None:
    inbound = twilio.parse_callback(
        {"MessageSid": "SM9", "From": PHONE, "Body": "HELP", "SmsStatus": "received"}
    )
    assert inbound == InboundEvent(PHONE, "in:SM9", text="HELP", keyword="help")
    assert isinstance(twilio.parse_callback({"stat": "DELIVRD"}), Ignored)
    weird = twilio.parse_callback({"id": "P1", "stat": "BOGUS"})
    assert isinstance(weird, Ignored) and weird.dead_letter


# --------------------------------------------------------------------------- receiver


class Harness:
    def __init__(self) -> None:
        self.emitted: list[Receipt | Inbound] = []
        self.dead: list[tuple[str, Any]] = []
        self.directory = InMemoryDirectory()
        self.fail_sink = False

        async def sink(item: Receipt | Inbound) -> None:
            if self.fail_sink:
                raise RuntimeError("kafka is down")
            self.emitted.append(item)

        async def dead_letter(reason: str, raw: Any) -> None:
            self.dead.append((reason, raw))

        self.receiver = WebhookReceiver(
            sink=sink,
            directory=self.directory,
            rbm_client_token=TOKEN,
            sms_auth_token=SMS_TOKEN,
            dead_letter=dead_letter,
            now_ms=lambda: NOW,
        )


@pytest.fixture
async def harness() -> AsyncIterator[tuple[Harness, TestClient[Any, Any]]]:
    h = Harness()
    await h.directory.remember(SentMessage(MID, "u-1", PHONE, "rcs", "rbm"))
    await h.directory.remember(SentMessage("sms-1", "u-1", PHONE, "sms", "twilio", "SM1"))
    async with TestClient(TestServer(h.receiver.app())) as client:
        yield h, client


def envelope(event: dict[str, Any]) -> tuple[bytes, dict[str, str]]:
    body = rbm.encode_envelope(event)
    return body, {"X-Goog-Signature": rbm.sign(TOKEN, body), "Content-Type": "application/json"}


DELIVERED = {
    "senderPhoneNumber": PHONE,
    "eventType": "DELIVERED",
    "eventId": "EV-1",
    "messageId": MID,
    "agentId": "agent",
}


async def test_signed_rbm_event_becomes_a_receipt(
    harness: tuple[Harness, TestClient[Any, Any]],
) -> None:
    h, client = harness
    body, headers = envelope(DELIVERED)
    resp = await client.post(RBM_PATH, data=body, headers=headers)
    assert resp.status == 200
    assert h.emitted == [Receipt("u-1", NOW, "delivered", MID)]


async def test_bad_or_missing_signature_is_401_and_emits_nothing(
    harness: tuple[Harness, TestClient[Any, Any]],
) -> None:
    h, client = harness
    body, _ = envelope(DELIVERED)
    wrong = base64.b64encode(hashlib.sha512(b"x").digest()).decode()
    for headers in (
        {"X-Goog-Signature": wrong},
        {},
        {"X-Goog-Signature": rbm.sign("other-token", body)},
    ):
        resp = await client.post(RBM_PATH, data=body, headers=headers)
        assert resp.status == 401
    # a body altered after signing fails too
    _, headers = envelope(DELIVERED)
    tampered = rbm.encode_envelope({**DELIVERED, "eventType": "READ"})
    assert (await client.post(RBM_PATH, data=tampered, headers=headers)).status == 401
    assert h.emitted == [] and h.dead == []


async def test_event_id_dedupe(harness: tuple[Harness, TestClient[Any, Any]]) -> None:
    h, client = harness
    body, headers = envelope(DELIVERED)
    for _ in range(3):
        assert (await client.post(RBM_PATH, data=body, headers=headers)).status == 200
    assert len(h.emitted) == 1


async def test_sink_failure_answers_500_and_the_retry_is_not_deduped(
    harness: tuple[Harness, TestClient[Any, Any]],
) -> None:
    h, client = harness
    body, headers = envelope(DELIVERED)
    h.fail_sink = True
    assert (await client.post(RBM_PATH, data=body, headers=headers)).status == 500
    h.fail_sink = False
    assert (await client.post(RBM_PATH, data=body, headers=headers)).status == 200
    assert len(h.emitted) == 1


async def test_inbound_tap_text_and_unsubscribe(
    harness: tuple[Harness, TestClient[Any, Any]],
) -> None:
    h, client = harness
    events = [
        {
            "senderPhoneNumber": PHONE,
            "messageId": "U1",
            "sendTime": "2026-11-29T10:00:00Z",
            "suggestionResponse": {"postbackData": "track", "text": "Track", "type": "REPLY"},
        },
        {"senderPhoneNumber": PHONE, "messageId": "U2", "text": "START"},
        {"senderPhoneNumber": PHONE, "eventType": "UNSUBSCRIBE", "eventId": "E9"},
    ]
    for event in events:
        body, headers = envelope(event)
        assert (await client.post(RBM_PATH, data=body, headers=headers)).status == 200
    tap, text, unsub = h.emitted
    assert isinstance(tap, Inbound) and tap.postback == "track" and tap.user_id == "u-1"
    assert tap.ts == 1795946400000 and tap.event_id == "rbm:message:U1"
    assert isinstance(text, Inbound) and text.keyword == "opt_in"
    assert isinstance(unsub, Inbound) and unsub.keyword == "opt_out"


async def test_unknown_sender_is_dead_lettered(
    harness: tuple[Harness, TestClient[Any, Any]],
) -> None:
    h, client = harness
    body, headers = envelope(
        {"senderPhoneNumber": "+442071838750", "messageId": "U7", "text": "hi"}
    )
    assert (await client.post(RBM_PATH, data=body, headers=headers)).status == 200
    assert h.emitted == [] and h.dead[0][0].startswith("unknown_recipient")


async def test_unreadable_envelope_is_dead_lettered(
    harness: tuple[Harness, TestClient[Any, Any]],
) -> None:
    h, client = harness
    body = b'{"message": {"data": "not base64!"}}'
    resp = await client.post(
        RBM_PATH, data=body, headers={"X-Goog-Signature": rbm.sign(TOKEN, body)}
    )
    assert resp.status == 200 and h.dead and h.dead[0][0].startswith("bad_webhook")


async def test_rbm_webhook_verification_handshake(
    harness: tuple[Harness, TestClient[Any, Any]],
) -> None:
    _, client = harness
    ok = await client.post(RBM_PATH, json={"clientToken": TOKEN, "secret": "s3"})
    assert ok.status == 200 and await ok.json() == {"secret": "s3"}
    bad = await client.post(RBM_PATH, json={"clientToken": "nope", "secret": "s3"})
    assert bad.status == 401


def twilio_post(
    client: TestClient[Any, Any], path: str, fields: dict[str, str]
) -> tuple[str, bytes, dict[str, str]]:
    url = str(client.make_url(path))
    headers = {
        "X-Twilio-Signature": twilio.twilio_signature(SMS_TOKEN, url, fields),
        "Content-Type": "application/x-www-form-urlencoded",
    }
    return path, urlencode(fields).encode(), headers


async def test_sms_status_callback_with_twilio_signature(
    harness: tuple[Harness, TestClient[Any, Any]],
) -> None:
    h, client = harness
    fields = {
        "MessageSid": "SM1",
        "MessageStatus": "undelivered",
        "ErrorCode": "30003",
        "To": PHONE,
    }
    path, body, headers = twilio_post(client, f"{SMS_PATH}?mid=sms-1", fields)
    assert (await client.post(path, data=body, headers=headers)).status == 200
    assert h.emitted == [Receipt("u-1", NOW, "failed", "sms-1", reason="sms.undelivered:30003")]
    # repeated callback: deduped; unsigned: refused
    assert (await client.post(path, data=body, headers=headers)).status == 200
    assert (await client.post(path, data=body)).status == 401
    assert len(h.emitted) == 1


async def test_sms_json_dlr_and_inbound(harness: tuple[Harness, TestClient[Any, Any]]) -> None:
    h, client = harness
    payload = json.dumps({"id": "SM1", "stat": "DELIVRD", "err": "000"}).encode()
    digest = hashlib.sha256(payload).hexdigest()
    path = f"{SMS_PATH}?bodySHA256={digest}"
    signature = twilio.twilio_signature(SMS_TOKEN, str(client.make_url(path)), {})
    resp = await client.post(
        path,
        data=payload,
        headers={"Content-Type": "application/json", "X-Twilio-Signature": signature},
    )
    assert resp.status == 200
    assert h.emitted == [Receipt("u-1", NOW, "delivered", "sms-1")]
    fields = {"MessageSid": "SM77", "From": PHONE, "Body": "Stop", "SmsStatus": "received"}
    path, body, headers = twilio_post(client, SMS_PATH, fields)
    assert (await client.post(path, data=body, headers=headers)).status == 200
    inbound = h.emitted[-1]
    assert isinstance(inbound, Inbound) and inbound.keyword == "opt_out"
    assert inbound.text == "Stop" and inbound.event_id == "sms:in:SM77"


async def test_json_dlr_with_wrong_body_hash_is_refused(
    harness: tuple[Harness, TestClient[Any, Any]],
) -> None:
    h, client = harness
    payload = json.dumps({"id": "SM1", "stat": "DELIVRD"}).encode()
    path = f"{SMS_PATH}?bodySHA256={'0' * 64}"
    signature = twilio.twilio_signature(SMS_TOKEN, str(client.make_url(path)), {})
    resp = await client.post(
        path,
        data=payload,
        headers={"Content-Type": "application/json", "X-Twilio-Signature": signature},
    )
    assert resp.status == 401 and h.emitted == []


async def test_unconfigured_rbm_token_refuses_everything() -> None:
    async def sink(item: Receipt | Inbound) -> None:
        raise AssertionError("nothing may be emitted")

    receiver = WebhookReceiver(sink=sink, directory=InMemoryDirectory())
    async with TestClient(TestServer(receiver.app())) as client:
        body = rbm.encode_envelope(DELIVERED)
        resp = await client.post(
            RBM_PATH, data=body, headers={"X-Goog-Signature": rbm.sign("", body)}
        )
        assert resp.status == 401
