"""Webhook parsing (RBM events, SMS callbacks) and the receiver's HTTP handling."""

from __future__ import annotations

import asyncio
import base64
import hashlib
from collections.abc import AsyncIterator
from typing import Any
from urllib.parse import urlencode

import pytest
from aiohttp.test_utils import TestClient, TestServer

from engine.channels.providers import rbm, twilio
from engine.channels.providers.base import Ignored, InboundEvent, ReceiptEvent
from engine.channels.webhooks import (
    HEALTH_PATH,
    RBM_PATH,
    TWILIO_PATH,
    SentMessage,
    WebhookReceiver,
)
from engine.core.inputs import Inbound, Receipt
from tests.fakes.gateway import MemoryDirectory, MemoryEvents

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
    assert isinstance(text, InboundEvent) and text.text == " stop "  # the core classifies
    unsub = rbm.parse_event(
        {"senderPhoneNumber": PHONE, "eventType": "UNSUBSCRIBE", "eventId": "E3"}
    )
    assert isinstance(unsub, InboundEvent) and unsub.text == "UNSUBSCRIBE"
    typing = rbm.parse_event(
        {"senderPhoneNumber": PHONE, "eventType": "IS_TYPING", "eventId": "E4"}
    )
    assert isinstance(typing, Ignored) and not typing.dead_letter
    location = rbm.parse_event(
        {
            "senderPhoneNumber": PHONE,
            "messageId": "U5",
            "location": {"latitude": 48.85, "longitude": 2.35},
        }
    )
    assert location == InboundEvent(PHONE, "message:U5", text="geo:48.85,2.35", message_id="U5")
    file = rbm.parse_event({"senderPhoneNumber": PHONE, "messageId": "U6", "userFile": {}})
    assert isinstance(file, Ignored) and file.dead_letter


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
    assert inbound == InboundEvent(PHONE, "in:SM9", text="HELP")
    assert isinstance(twilio.parse_callback({"stat": "DELIVRD"}), Ignored)
    weird = twilio.parse_callback({"id": "P1", "stat": "BOGUS"})
    assert isinstance(weird, Ignored) and weird.dead_letter


# --------------------------------------------------------------------------- receiver


class Harness:
    def __init__(self, *, ready: bool = True) -> None:
        self.emitted: list[tuple[Receipt | Inbound, SentMessage]] = []
        self.dead: list[tuple[str, str, str, bytes]] = []
        self.directory = MemoryDirectory()
        self.events = MemoryEvents()
        self.fail_sink = False
        self.ready = ready

        async def sink(item: Receipt | Inbound, sent: SentMessage) -> None:
            if self.fail_sink:
                raise RuntimeError("kafka is down")
            self.emitted.append((item, sent))

        async def dead_letter(reason: str, detail: str, path: str, body: bytes) -> None:
            self.dead.append((reason, detail, path, body))

        self.receiver = WebhookReceiver(
            sink=sink,
            directory=self.directory,
            events=self.events,
            dead_letter=dead_letter,
            rbm_client_token=TOKEN,
            twilio_auth_token=SMS_TOKEN,
            lookup_wait_s=0.2,
            ready=lambda: self.ready,
            now_ms=lambda: NOW,
        )

    @property
    def items(self) -> list[Receipt | Inbound]:
        return [item for item, _ in self.emitted]


@pytest.fixture
async def harness() -> AsyncIterator[tuple[Harness, TestClient[Any, Any]]]:
    h = Harness()
    h.directory.remember(SentMessage(MID, "u-1", PHONE, "rcs", "rbm", "j", "n", 3))
    h.directory.remember(SentMessage("sms-1", "u-1", PHONE, "sms", "twilio", "j", "n", 3, "SM1"))
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


async def test_signed_rbm_event_becomes_a_receipt_routed_to_the_users_partition(
    harness: tuple[Harness, TestClient[Any, Any]],
) -> None:
    h, client = harness
    body, headers = envelope(DELIVERED)
    resp = await client.post(RBM_PATH, data=body, headers=headers)
    assert resp.status == 200
    [(receipt, sent)] = h.emitted
    assert receipt == Receipt("u-1", NOW, "delivered", MID) and sent.partition == 3
    assert h.events.keys == {"rbm:EV-1"}


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
    assert h.emitted == [] and h.dead == [] and h.events.keys == set()


async def test_a_replayed_event_is_200_and_produced_once(
    harness: tuple[Harness, TestClient[Any, Any]],
) -> None:
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
    assert h.events.keys == set()  # not marked: the provider's retry goes through
    h.fail_sink = False
    assert (await client.post(RBM_PATH, data=body, headers=headers)).status == 200
    assert len(h.emitted) == 1


async def test_inbound_tap_text_location_and_unsubscribe(
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
        {
            "senderPhoneNumber": PHONE,
            "messageId": "U3",
            "location": {"latitude": 1, "longitude": 2},
        },
        {"senderPhoneNumber": PHONE, "eventType": "UNSUBSCRIBE", "eventId": "E9"},
        {"senderPhoneNumber": PHONE, "eventType": "IS_TYPING", "eventId": "E10"},
    ]
    for event in events:
        body, headers = envelope(event)
        assert (await client.post(RBM_PATH, data=body, headers=headers)).status == 200
    tap, text, where, unsub = h.items
    assert isinstance(tap, Inbound) and tap.postback == "track" and tap.user_id == "u-1"
    assert tap.ts == 1795946400000 and tap.event_id == "rbm:message:U1"
    assert isinstance(text, Inbound) and text.text == "START" and text.keyword is None
    assert isinstance(where, Inbound) and where.text == "geo:1,2"
    assert isinstance(unsub, Inbound) and unsub.text == "UNSUBSCRIBE"


async def test_unknown_sender_or_message_is_dead_lettered_with_its_reason(
    harness: tuple[Harness, TestClient[Any, Any]],
) -> None:
    h, client = harness
    body, headers = envelope(
        {"senderPhoneNumber": "+442071838750", "messageId": "U7", "text": "hi"}
    )
    assert (await client.post(RBM_PATH, data=body, headers=headers)).status == 200
    body2, headers2 = envelope({**DELIVERED, "eventId": "EV-2", "messageId": "nobody-sent-it"})
    assert (await client.post(RBM_PATH, data=body2, headers=headers2)).status == 200
    assert h.emitted == []
    assert [(d[0], d[2], d[3]) for d in h.dead] == [
        ("unknown_recipient", RBM_PATH, body),
        ("unknown_message", RBM_PATH, body2),
    ]


async def test_a_lookup_that_misses_waits_for_the_map_to_catch_up(
    harness: tuple[Harness, TestClient[Any, Any]],
) -> None:
    h, client = harness
    body, headers = envelope({**DELIVERED, "eventId": "EV-3", "messageId": "late"})

    async def learn_soon() -> None:
        await asyncio.sleep(0.05)
        h.directory.remember(SentMessage("late", "u-2", PHONE, "rcs", "rbm", "j", "n", 1))

    learning = asyncio.ensure_future(learn_soon())
    assert (await client.post(RBM_PATH, data=body, headers=headers)).status == 200
    await learning
    assert h.items == [Receipt("u-2", NOW, "delivered", "late")] and h.dead == []


async def test_unreadable_envelope_is_400_and_dead_lettered(
    harness: tuple[Harness, TestClient[Any, Any]],
) -> None:
    h, client = harness
    body = b'{"message": {"data": "not base64!"}}'
    resp = await client.post(
        RBM_PATH, data=body, headers={"X-Goog-Signature": rbm.sign(TOKEN, body)}
    )
    assert resp.status == 400 and h.emitted == []
    [(reason, _detail, path, raw)] = h.dead
    assert (reason, path, raw) == ("malformed_webhook", RBM_PATH, body)


async def test_rbm_webhook_verification_answers_the_secret_as_plain_text(
    harness: tuple[Harness, TestClient[Any, Any]],
) -> None:
    _, client = harness
    ok = await client.post(RBM_PATH, json={"clientToken": TOKEN, "secret": "s3"})
    assert ok.status == 200 and await ok.text() == "s3"
    bad = await client.post(RBM_PATH, json={"clientToken": "nope", "secret": "s3"})
    assert bad.status == 401


async def test_not_ready_until_the_map_is_loaded() -> None:
    h = Harness(ready=False)
    h.directory.remember(SentMessage(MID, "u-1", PHONE, "rcs", "rbm"))
    async with TestClient(TestServer(h.receiver.app())) as client:
        assert (await client.get(HEALTH_PATH)).status == 503
        body, headers = envelope(DELIVERED)
        assert (await client.post(RBM_PATH, data=body, headers=headers)).status == 503
        h.ready = True
        assert (await client.get(HEALTH_PATH)).status == 200
        assert (await client.post(RBM_PATH, data=body, headers=headers)).status == 200
    assert len(h.emitted) == 1


def twilio_post(
    client: TestClient[Any, Any], path: str, fields: dict[str, str]
) -> tuple[str, bytes, dict[str, str]]:
    url = str(client.make_url(path))
    headers = {
        "X-Twilio-Signature": twilio.twilio_signature(SMS_TOKEN, url, fields),
        "Content-Type": "application/x-www-form-urlencoded",
    }
    return path, urlencode(fields).encode(), headers


async def test_twilio_status_callback_with_its_signature(
    harness: tuple[Harness, TestClient[Any, Any]],
) -> None:
    h, client = harness
    fields = {
        "MessageSid": "SM1",
        "MessageStatus": "undelivered",
        "ErrorCode": "30003",
        "To": PHONE,
    }
    path, body, headers = twilio_post(client, f"{TWILIO_PATH}?mid=sms-1", fields)
    resp = await client.post(path, data=body, headers=headers)
    assert resp.status == 200 and resp.content_type == "text/xml"
    assert h.items == [Receipt("u-1", NOW, "failed", "sms-1", reason="sms.undelivered:30003")]
    # repeated callback: deduped; unsigned or tampered: refused
    assert (await client.post(path, data=body, headers=headers)).status == 200
    assert (await client.post(path, data=body)).status == 403
    tampered = body.replace(b"undelivered", b"delivered")
    assert (await client.post(path, data=tampered, headers=headers)).status == 403
    assert len(h.emitted) == 1


async def test_twilio_callback_found_by_sid_without_our_id(
    harness: tuple[Harness, TestClient[Any, Any]],
) -> None:
    h, client = harness
    fields = {"MessageSid": "SM1", "MessageStatus": "delivered", "To": PHONE}
    path, body, headers = twilio_post(client, TWILIO_PATH, fields)
    assert (await client.post(path, data=body, headers=headers)).status == 200
    assert h.items == [Receipt("u-1", NOW, "delivered", "sms-1")]


async def test_twilio_inbound_sms_goes_to_the_phones_latest_user(
    harness: tuple[Harness, TestClient[Any, Any]],
) -> None:
    h, client = harness
    fields = {"MessageSid": "SM77", "From": PHONE, "Body": "Stop", "SmsStatus": "received"}
    path, body, headers = twilio_post(client, TWILIO_PATH, fields)
    assert (await client.post(path, data=body, headers=headers)).status == 200
    [(inbound, sent)] = h.emitted
    assert isinstance(inbound, Inbound) and inbound.text == "Stop" and inbound.keyword is None
    assert inbound.user_id == "u-1" and inbound.event_id == "twilio:in:SM77"
    assert sent.partition == 3


async def test_twilio_malformed_or_unusable_is_400_and_dead_lettered(
    harness: tuple[Harness, TestClient[Any, Any]],
) -> None:
    h, client = harness
    url = str(client.make_url(TWILIO_PATH))
    raw = b"\xff\xfe=%%"
    signed = {"X-Twilio-Signature": twilio.twilio_signature(SMS_TOKEN, url, {})}
    assert (await client.post(TWILIO_PATH, data=raw, headers=signed)).status == 400
    path, body, headers = twilio_post(client, TWILIO_PATH, {"AccountSid": "AC1"})
    assert (await client.post(path, data=body, headers=headers)).status == 400
    assert [d[0] for d in h.dead] == ["malformed_webhook", "unusable_webhook"]
    assert h.emitted == []


async def test_a_provider_not_configured_has_no_webhook() -> None:
    h = Harness()
    h.receiver.rbm_client_token = None
    h.receiver.twilio_auth_token = None
    async with TestClient(TestServer(h.receiver.app())) as client:
        body, headers = envelope(DELIVERED)
        assert (await client.post(RBM_PATH, data=body, headers=headers)).status == 404
        assert (await client.post(TWILIO_PATH, data=b"a=b")).status == 404
    assert h.emitted == []
