"""Twilio-shaped SMS adapter + gateway + status callbacks against the fake SMS API."""

from __future__ import annotations

import uuid
from typing import Any
from urllib.parse import parse_qs, urlsplit

from fake_provider import NOW_MS, Stack

from engine.core.effects import SendRequest
from engine.core.inputs import Inbound, Receipt

PHONE = "+14155550123"


def sms(n: int = 1, text: str | None = "Shipped! https://t.example/A1", **kw: Any) -> SendRequest:
    content = kw.pop("content", {"channel": "sms", "text": text})
    return SendRequest(
        message_id=str(uuid.UUID(int=n)),
        ts=NOW_MS - 1000,
        user_id=f"u-{n}",
        to=kw.pop("to", PHONE),
        channel="sms",
        content=content,
        journey_id="order-updates",
        journey_version=3,
        instance_id="i-1",
        node_id="shipped",
        **kw,
    )


async def test_send_posts_the_twilio_form(stack: Stack) -> None:
    req = sms()
    assert await stack.gateway.handle_send(req) == []
    [sid] = stack.fake.sms.messages
    form = stack.fake.sms.messages[sid]
    assert form["To"] == PHONE and form["From"] == "+15005550006"
    assert form["Body"] == "Shipped! https://t.example/A1"
    callback = urlsplit(form["StatusCallback"])
    assert callback.path == "/webhooks/sms"
    assert parse_qs(callback.query) == {"mid": [req.message_id]}
    [call] = stack.fake.calls_to("POST", "/Messages.json")
    assert call.path == "/2010-04-01/Accounts/AC0001/Messages.json"
    assert call.headers["Authorization"].startswith("Basic ")
    sent = await stack.gateway.directory.by_provider_id(sid)
    assert sent is not None and sent.message_id == req.message_id


async def test_status_callbacks_become_receipts(stack: Stack) -> None:
    req = sms()
    await stack.gateway.handle_send(req)
    [sid] = stack.fake.sms.messages
    assert await stack.fake.sms_status(sid, "queued") == 200
    assert await stack.fake.sms_status(sid, "sent") == 200
    assert await stack.fake.sms_status(sid, "delivered") == 200
    assert await stack.fake.sms_status(sid, "delivered") == 200  # repeated: deduped
    assert stack.emitted == [Receipt("u-1", NOW_MS, "delivered", req.message_id)]


async def test_undelivered_callback_is_failed_with_the_error_code(stack: Stack) -> None:
    req = sms()
    await stack.gateway.handle_send(req)
    [sid] = stack.fake.sms.messages
    await stack.fake.sms_status(sid, "undelivered", "30003")
    assert stack.emitted == [
        Receipt("u-1", NOW_MS, "failed", req.message_id, reason="sms.undelivered:30003")
    ]


async def test_429_is_retried_honouring_retry_after(stack: Stack) -> None:
    stack.fake.sms.send_script = [429, 503]
    assert await stack.gateway.handle_send(sms()) == []
    assert len(stack.fake.calls_to("POST", "/Messages.json")) == 3
    assert len(stack.fake.sms.messages) == 1
    assert stack.sleeps[0] >= 2.0  # Retry-After: 2


async def test_500_is_not_retried_for_sms(stack: Stack) -> None:
    """A plain SMS API has no idempotency key: after a 500 the message may be out."""
    stack.fake.sms.send_script = [500]
    [receipt] = await stack.gateway.handle_send(sms())
    assert (receipt.status, receipt.reason) == ("failed", "provider_outcome_unknown:500")
    assert len(stack.fake.calls_to("POST", "/Messages.json")) == 1


async def test_400_gives_failed_with_the_provider_code(stack: Stack) -> None:
    stack.fake.sms.send_script = [400]
    [receipt] = await stack.gateway.handle_send(sms())
    assert (receipt.status, receipt.reason) == ("failed", "provider_rejected:21211")
    assert len(stack.fake.calls_to("POST", "/Messages.json")) == 1 and stack.sleeps == []


async def test_segment_cap_refuses_before_calling_the_provider(stack: Stack) -> None:
    [receipt] = await stack.gateway.handle_send(sms(text="a" * 1531))
    assert (receipt.status, receipt.reason) == ("failed", "sms.segments")
    assert stack.fake.calls_to("POST", "/Messages.json") == []


async def test_inbound_sms_keywords(stack: Stack) -> None:
    await stack.gateway.handle_send(sms())
    assert await stack.fake.sms_inbound(PHONE, "STOP") == 200
    assert await stack.fake.sms_inbound(PHONE, "where is my order?") == 200
    stop, question = stack.emitted
    assert isinstance(stop, Inbound) and (stop.user_id, stop.keyword) == ("u-1", "opt_out")
    assert isinstance(question, Inbound) and question.keyword is None


async def test_rcs_not_capable_then_sms_fallback_with_derived_text(stack: Stack) -> None:
    """Spec fallback step 1: capability 404 -> not_capable at once; the engine then asks for
    the SMS, whose text is derived from the RCS card (no text in the journey)."""
    stack.fake.rbm.unreachable.add(PHONE)
    original = SendRequest(
        message_id=str(uuid.UUID(int=100)),
        ts=NOW_MS - 2000,
        user_id="u-1",
        to=PHONE,
        channel="rcs",
        content={
            "channel": "rcs",
            "rich_card": {
                "title": "Order A1 confirmed",
                "description": "We'll tell you when it ships.",
                "suggestions": [
                    {
                        "kind": "open_url",
                        "text": "Track",
                        "postback": "track",
                        "url": "https://shop.example.com/t/A1",
                    },
                ],
            },
        },
        journey_id="order-updates",
        journey_version=3,
        instance_id="i-1",
        node_id="confirm",
        ttl_ms=600_000,
    )
    [receipt] = await stack.gateway.handle_send(original)
    assert receipt.status == "not_capable"
    fallback = sms(
        2,
        content={"channel": "sms", "derive_from": original.message_id},
        purpose="fallback",
        fallback_of=original.message_id,
    )
    assert await stack.gateway.handle_send(fallback) == []
    [form] = stack.fake.sms.messages.values()
    assert form["Body"].startswith("Order A1 confirmed\nWe'll tell you when it ships.")
    assert "https://shop.example.com/t/A1" in form["Body"]
