"""Twilio-shaped SMS adapter + gateway + status callbacks against the fake SMS API."""

from __future__ import annotations

import time
import uuid
from dataclasses import replace
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
    assert await stack.send(req) == []
    [sid] = stack.fake.sms.messages
    form = stack.fake.sms.messages[sid]
    assert form["To"] == PHONE and form["From"] == "+15005550006"
    assert form["Body"] == "Shipped! https://t.example/A1"
    callback = urlsplit(form["StatusCallback"])
    assert callback.path == "/webhooks/twilio"
    assert parse_qs(callback.query) == {"mid": [req.message_id]}
    [call] = stack.fake.calls_to("POST", "/Messages.json")
    assert call.path == "/2010-04-01/Accounts/AC0001/Messages.json"
    assert call.headers["Authorization"].startswith("Basic ")
    sent = stack.directory.by_provider_id(sid)
    assert sent is not None and sent.message_id == req.message_id


async def test_status_callbacks_become_receipts(stack: Stack) -> None:
    req = sms()
    await stack.send(req)
    [sid] = stack.fake.sms.messages
    assert await stack.fake.sms_status(sid, "queued") == 200
    assert await stack.fake.sms_status(sid, "sent") == 200
    assert await stack.fake.sms_status(sid, "delivered") == 200
    assert await stack.fake.sms_status(sid, "delivered") == 200  # repeated: deduped
    assert stack.emitted == [Receipt("u-1", NOW_MS, "delivered", req.message_id)]


async def test_undelivered_callback_is_failed_with_the_error_code(stack: Stack) -> None:
    req = sms()
    await stack.send(req)
    [sid] = stack.fake.sms.messages
    await stack.fake.sms_status(sid, "undelivered", "30003")
    assert stack.emitted == [
        Receipt("u-1", NOW_MS, "failed", req.message_id, reason="sms.undelivered:30003")
    ]


async def test_429_is_retried_honouring_retry_after(stack: Stack) -> None:
    stack.fake.sms.send_script = [429, 503]
    assert await stack.send(sms()) == []
    assert len(stack.fake.calls_to("POST", "/Messages.json")) == 3
    assert len(stack.fake.sms.messages) == 1
    assert stack.sleeps[0] >= 2.0  # Retry-After: 2


async def test_a_500_is_looked_up_and_sent_again_only_if_nothing_was_created(
    stack: Stack,
) -> None:
    """A plain SMS API has no idempotency key: after a 500 the message may be out, so the
    gateway asks Twilio first. Nothing for that number and text: it sends again."""
    stack.fake.sms.send_script = [500]
    assert await stack.send(sms()) == []
    assert len(stack.fake.calls_to("POST", "/Messages.json")) == 2
    [lookup] = stack.fake.calls_to("GET", "/Messages.json")
    assert lookup.query["To"] == PHONE and "DateSent>" not in lookup.query
    assert len(stack.fake.sms.messages) == 1


async def test_500s_to_the_end_fail_the_send_with_a_reason(stack: Stack) -> None:
    stack.fake.sms.send_script = [500] * 10
    [receipt] = await stack.send(sms())
    assert (receipt.status, receipt.reason) == ("failed", "provider_unavailable:500")
    assert len(stack.fake.calls_to("POST", "/Messages.json")) == 4
    assert stack.fake.sms.messages == {}


async def test_after_a_crash_a_claimed_sms_is_found_by_lookup_not_sent_again(
    stack: Stack,
) -> None:
    req = sms()
    assert await stack.send(req) == []
    [sid] = stack.fake.sms.messages
    # the claim's time on the fake's clock (the wall clock), not the tests' NOW_MS
    claim = replace(stack.claims.claims[req.message_id], at_ms=int(time.time() * 1000) - 500)
    outcome = await stack.gateway.resume(req, claim)
    assert (outcome.status, outcome.provider_id, outcome.looked_up) == ("sent", sid, True)
    assert len(stack.fake.calls_to("POST", "/Messages.json")) == 1


async def test_after_a_crash_a_claimed_sms_not_found_is_unknown_never_sent(
    stack: Stack,
) -> None:
    req = sms()
    assert await stack.send(req) == []
    other = sms(2, text="Another text")
    claim = replace(
        stack.claims.claims[req.message_id],
        message_id=other.message_id,
        body="Another text",
        at_ms=int(time.time() * 1000) - 500,
    )
    outcome = await stack.gateway.resume(other, claim)
    [receipt] = outcome.receipts
    assert (receipt.status, receipt.reason) == ("unknown", "claimed_before_restart:not_found")
    assert receipt.message_id == other.message_id
    assert len(stack.fake.calls_to("POST", "/Messages.json")) == 1


async def test_400_gives_failed_with_the_provider_code(stack: Stack) -> None:
    stack.fake.sms.send_script = [400]
    [receipt] = await stack.send(sms())
    assert (receipt.status, receipt.reason) == ("failed", "provider_rejected:21211")
    assert len(stack.fake.calls_to("POST", "/Messages.json")) == 1 and stack.sleeps == []


async def test_segment_cap_refuses_before_calling_the_provider(stack: Stack) -> None:
    [receipt] = await stack.send(sms(text="a" * 1531))
    assert (receipt.status, receipt.reason) == ("failed", "sms.segments")
    assert stack.fake.calls_to("POST", "/Messages.json") == []


async def test_inbound_sms_arrives_as_text_for_the_core_to_classify(stack: Stack) -> None:
    await stack.send(sms())
    assert await stack.fake.sms_inbound(PHONE, "STOP") == 200
    assert await stack.fake.sms_inbound(PHONE, "where is my order?") == 200
    stop, question = stack.emitted
    assert isinstance(stop, Inbound) and (stop.user_id, stop.text) == ("u-1", "STOP")
    assert stop.keyword is None and stop.event_id is not None
    assert isinstance(question, Inbound) and question.text == "where is my order?"


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
    [receipt] = await stack.send(original)
    assert receipt.status == "not_capable"
    fallback = sms(
        2,
        content={"channel": "sms", "derive_from": original.message_id},
        purpose="fallback",
        fallback_of=original.message_id,
    )
    assert await stack.send(fallback) == []
    [form] = stack.fake.sms.messages.values()
    assert form["Body"].startswith("Order A1 confirmed\nWe'll tell you when it ships.")
    assert "https://shop.example.com/t/A1" in form["Body"]
