"""RBM adapter + gateway + webhook receiver against the fake RBM server."""

from __future__ import annotations

import json
import uuid
from typing import Any

from fake_provider import NOW_MS, Stack

from engine.core.effects import Revoke, SendRequest
from engine.core.inputs import Inbound, Receipt

PHONE = "+14155550123"
CARD = {
    "channel": "rcs",
    "rich_card": {
        "title": "Order A1 confirmed",
        "suggestions": [
            {"kind": "reply", "text": "Track", "postback": "track"},
            {"kind": "dial", "text": "Call us", "postback": "call", "phone": "+14155552671"},
        ],
    },
}


def rcs(n: int = 1, *, to: str = PHONE, ttl_ms: int | None = 600_000, **kw: Any) -> SendRequest:
    return SendRequest(
        message_id=str(uuid.UUID(int=n)),
        ts=NOW_MS - 1000,
        user_id=f"u-{n}",
        to=to,
        channel="rcs",
        content=kw.pop("content", CARD),
        journey_id="order-updates",
        journey_version=3,
        instance_id="i-1",
        node_id="confirm",
        ttl_ms=ttl_ms,
        **kw,
    )


async def test_send_checks_capability_then_posts_the_agent_message(stack: Stack) -> None:
    req = rcs()
    assert await stack.send(req) == []
    [cap] = stack.fake.calls_to("GET", "/capabilities")
    assert cap.path == f"/v1/phones/{PHONE}/capabilities"
    assert cap.query["agentId"] == "test-agent" and uuid.UUID(cap.query["requestId"])
    [post] = stack.fake.calls_to("POST", "/agentMessages")
    assert post.path == f"/v1/phones/{PHONE}/agentMessages"
    assert post.query == {"messageId": req.message_id, "agentId": "test-agent"}
    assert post.headers["Authorization"] == "Bearer test-token"
    payload = json.loads(post.body)
    assert payload["ttl"] == "600s"
    card = payload["contentMessage"]["richCard"]["standaloneCard"]["cardContent"]
    assert card["title"] == "Order A1 confirmed"
    assert stack.fake.rbm.messages[req.message_id]["state"] == "pending"


async def test_a_claim_left_by_a_crash_is_sent_again_with_the_same_id(stack: Stack) -> None:
    """RBM ignores a repeated messageId: resuming the claim reaches the user once."""
    req = rcs()
    assert await stack.send(req) == []
    outcome = await stack.gateway.resume(req, stack.claims.claims[req.message_id])
    assert outcome.status == "sent" and not outcome.looked_up
    posts = stack.fake.calls_to("POST", "/agentMessages")
    assert [p.query["messageId"] for p in posts] == [req.message_id] * 2
    assert list(stack.fake.rbm.messages) == [req.message_id]  # one message for the user


async def test_platform_ignores_a_repeated_message_id(stack: Stack) -> None:
    from engine.channels.prepare import Prepared, prepare

    req = rcs()
    prepared = prepare(req)
    assert isinstance(prepared, Prepared)
    await stack.rbm.send(prepared, req)
    await stack.rbm.send(prepared, req)
    assert len(stack.fake.calls_to("POST", "/agentMessages")) == 2
    assert list(stack.fake.rbm.messages) == [req.message_id]


async def test_capability_404_is_not_capable_and_nothing_is_sent(stack: Stack) -> None:
    stack.fake.rbm.unreachable.add(PHONE)
    [receipt] = await stack.send(rcs())
    assert (receipt.status, receipt.reason, receipt.user_id) == ("not_capable", None, "u-1")
    assert stack.fake.calls_to("POST", "/agentMessages") == []


async def test_send_404_is_not_capable(stack: Stack) -> None:
    stack.gateway.check_capability = False
    stack.fake.rbm.unreachable.add(PHONE)
    [receipt] = await stack.send(rcs())
    assert receipt.status == "not_capable"
    assert len(stack.fake.calls_to("POST", "/agentMessages")) == 1


async def test_missing_feature_is_not_capable(stack: Stack) -> None:
    stack.fake.rbm.features[PHONE] = ["RICHCARD_STANDALONE"]
    [receipt] = await stack.send(rcs())
    assert (receipt.status, receipt.reason) == ("not_capable", "missing_features:ACTION_DIAL")


async def test_429_and_500_are_retried_then_succeed(stack: Stack) -> None:
    stack.fake.rbm.send_script = [429, 500, 503]
    req = rcs()
    assert await stack.send(req) == []
    assert len(stack.fake.calls_to("POST", "/agentMessages")) == 4
    assert list(stack.fake.rbm.messages) == [req.message_id]
    assert len(stack.sleeps) == 3
    assert stack.sleeps[0] >= 1.0  # the 429's Retry-After: 1
    assert 0.2 <= stack.sleeps[1] <= 0.4 and 0.4 <= stack.sleeps[2] <= 0.8


async def test_4xx_is_not_retried(stack: Stack) -> None:
    stack.fake.rbm.send_script = [401]
    [receipt] = await stack.send(rcs())
    assert (receipt.status, receipt.reason) == ("failed", "provider_rejected:401")
    assert len(stack.fake.calls_to("POST", "/agentMessages")) == 1 and stack.sleeps == []


async def test_retries_exhausted_fail_the_send(stack: Stack) -> None:
    stack.fake.rbm.send_script = [503] * 10
    [receipt] = await stack.send(rcs())
    assert (receipt.status, receipt.reason) == ("failed", "provider_unavailable:503")
    assert len(stack.fake.calls_to("POST", "/agentMessages")) == 4


async def test_ambiguous_answers_to_the_end_leave_the_fate_unknown(stack: Stack) -> None:
    """A 500 may have been carried out: possibly delivered, so no fallback on it."""
    stack.fake.rbm.send_script = [500] * 10
    [receipt] = await stack.send(rcs())
    assert (receipt.status, receipt.reason) == ("unknown", "provider_outcome_unknown:500")
    assert len(stack.fake.calls_to("POST", "/agentMessages")) == 4


async def test_delivered_and_read_webhooks_become_receipts(stack: Stack) -> None:
    req = rcs()
    await stack.send(req)
    await stack.fake.deliver(req.message_id, read=True)
    ts = 1795946400000  # the events' sendTime
    assert stack.emitted == [
        Receipt("u-1", ts, "delivered", req.message_id),
        Receipt("u-1", ts, "read", req.message_id),
    ]


async def test_revoke_before_delivery_reports_revoked_from_the_ttl_event(stack: Stack) -> None:
    req = rcs()
    await stack.send(req)
    out = await stack.revoke(Revoke(req.message_id, req.user_id, NOW_MS))
    assert out == []  # DELETE's 200 proves nothing; the event says what happened
    [delete] = stack.fake.calls_to("DELETE", "/agentMessages/")
    assert delete.path == f"/v1/phones/{PHONE}/agentMessages/{req.message_id}"
    assert [(r.status, r.message_id) for r in stack.emitted if isinstance(r, Receipt)] == [
        ("revoked", req.message_id)
    ]
    await stack.fake.deliver(req.message_id)  # too late: it was revoked
    assert len(stack.emitted) == 1


async def test_revoke_failed_event(stack: Stack) -> None:
    stack.fake.rbm.revoke_fails = True
    req = rcs()
    await stack.send(req)
    assert await stack.revoke(Revoke(req.message_id, req.user_id, NOW_MS)) == []
    assert [r.status for r in stack.emitted if isinstance(r, Receipt)] == ["revoke_failed"]


async def test_revoke_after_delivery_changes_nothing(stack: Stack) -> None:
    req = rcs()
    await stack.send(req)
    await stack.fake.deliver(req.message_id)
    assert await stack.revoke(Revoke(req.message_id, req.user_id, NOW_MS)) == []
    assert [r.status for r in stack.emitted if isinstance(r, Receipt)] == ["delivered"]


async def test_delete_that_keeps_failing_is_revoke_failed(stack: Stack) -> None:
    req = rcs()
    await stack.send(req)
    stack.fake.rbm.revoke_script = [503] * 10
    [receipt] = await stack.revoke(Revoke(req.message_id, req.user_id, NOW_MS))
    assert (receipt.status, receipt.reason) == ("revoke_failed", "provider_unavailable:503")
    assert stack.emitted == []


async def test_user_tap_and_reply_arrive_as_inbound(stack: Stack) -> None:
    req = rcs()
    await stack.send(req)
    tap = {"suggestionResponse": {"postbackData": "track", "text": "Track", "type": "REPLY"}}
    assert await stack.fake.push_rbm(PHONE, "user-msg-1", None, **tap) == 200
    assert await stack.fake.push_rbm(PHONE, "user-msg-2", None, text="STOP") == 200
    assert await stack.fake.push_rbm(PHONE, None, "UNSUBSCRIBE") == 200
    tap_in, stop, unsub = stack.emitted
    assert isinstance(tap_in, Inbound) and (tap_in.user_id, tap_in.postback) == ("u-1", "track")
    # keywords are the core's to classify
    assert isinstance(stop, Inbound) and stop.keyword is None and stop.text == "STOP"
    assert isinstance(unsub, Inbound) and unsub.text == "UNSUBSCRIBE"


async def test_bad_signature_is_refused_and_nothing_emitted(stack: Stack) -> None:
    req = rcs()
    await stack.send(req)
    from engine.channels.providers import rbm

    body = rbm.encode_envelope(
        {
            "senderPhoneNumber": PHONE,
            "eventType": "DELIVERED",
            "eventId": "X",
            "messageId": req.message_id,
        }
    )
    assert await stack.fake.post_rbm_raw(body, signature=rbm.sign("wrong-token", body)) == 401
    assert await stack.fake.post_rbm_raw(body) == 200
    assert await stack.fake.post_rbm_raw(body) == 200  # same eventId: deduped
    assert [r.status for r in stack.emitted if isinstance(r, Receipt)] == ["delivered"]


async def test_adapter_closes_cleanly_and_reopens(stack: Stack) -> None:
    await stack.rbm.close()
    cap = await stack.rbm.capability(PHONE)
    assert cap.reachable and cap.features and "ACTION_DIAL" in cap.features
