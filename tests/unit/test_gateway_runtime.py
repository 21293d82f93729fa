"""The Kafka gateway's runtime without Kafka: a fake backend (store, changelog, produce),
the real checkpoint, claim table, sender and id map, and the library with scripted
providers. What a crash leaves behind is built by hand: a table holding ``queued`` and
``claimed`` records, as the changelog would after a ``kill -9``."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Mapping
from dataclasses import replace
from typing import Any

import orjson
import pytest

from engine.channels.gateway import ChannelGateway, Claim
from engine.channels.prepare import Prepared
from engine.channels.providers.base import Capability, SendResult
from engine.channels.providers.simulated import SimulatedProvider
from engine.core import wire
from engine.core.effects import Revoke, SendRequest
from engine.stream.common.checkpoint import Checkpoint
from engine.stream.common.dead_letters import DeadLetters
from engine.stream.common.settings import Settings
from engine.stream.common.timers import TimerIndex
from engine.stream.gateway import idmap
from engine.stream.gateway.runtime import GatewayRuntime
from engine.stream.gateway.sender import Job, Sender

PHONE = "+14155550123"
REQUESTS = "journey.send-requests"


class Backend:
    """The faust side: a store, a changelog and a producer whose writes are acknowledged
    at once."""

    def __init__(self) -> None:
        self.store: dict[bytes, bytes] = {}
        self.changelog: list[tuple[bytes, bytes | None]] = []
        self.produced: list[tuple[str, bytes | None, bytes | None, int | None]] = []

    def _done(self) -> asyncio.Future[Any]:
        fut: asyncio.Future[Any] = asyncio.get_running_loop().create_future()
        fut.set_result(None)
        return fut

    def store_put(self, partition: int, key: bytes, value: bytes | None) -> None:
        if value is None:
            self.store.pop(key, None)
        else:
            self.store[key] = value

    async def send_changelog(self, partition: int, key: bytes, value: bytes | None) -> Any:
        self.changelog.append((key, value))
        return self._done()

    async def commit_offsets(self, offsets: dict[tuple[str, int], int]) -> bool:
        return True

    def assigned(self) -> set[tuple[str, int]]:
        return {(REQUESTS, 0)}

    async def send(self, topic: str, key: bytes | None, value: Any, partition: int | None) -> Any:
        self.produced.append((topic, key, value, partition))
        return self._done()

    def get(self, key: bytes) -> bytes | None:
        return self.store.get(key)

    def items(self) -> Any:
        return list(self.store.items())

    def records(self, topic: str) -> list[dict[str, Any]]:
        return [orjson.loads(v) for t, _k, v, _p in self.produced if t == topic and v]


class Provider:
    """An RCS or SMS provider that answers at once, or waits for ``release``."""

    def __init__(self, name: str, idempotent: bool, *, found: SendResult | None = None) -> None:
        self.name, self.idempotent, self.found = name, idempotent, found
        self.sent: list[str] = []
        self.lookups: list[tuple[str, str]] = []
        self.release: asyncio.Event | None = None

    async def send(self, msg: Prepared, req: SendRequest) -> SendResult:
        if self.release is not None:
            await self.release.wait()
        self.sent.append(req.message_id)
        return SendResult(f"P-{req.message_id}")

    async def capability(self, phone: str, profile: Mapping[str, Any] | None = None) -> Capability:
        return Capability(reachable=True)

    async def revoke(self, phone: str, rev: Revoke) -> None:
        self.sent.append(f"revoke {rev.message_id}")

    async def lookup(self, to: str, body: str, since_ms: int) -> SendResult | None:
        self.lookups.append((to, body))
        return self.found

    async def close(self) -> None:
        return None


def request(n: int, channel: str = "rcs", user: str = "u1", **kw: Any) -> SendRequest:
    content = {"channel": "rcs", "text": "Hi"} if channel == "rcs" else {"text": f"SMS {n}"}
    return SendRequest(
        message_id=str(uuid.UUID(int=n)),
        ts=kw.pop("ts", 1_000),
        user_id=user,
        to=PHONE,
        channel=channel,
        content=content,
        journey_id="j",
        journey_version=1,
        instance_id="i",
        node_id=f"n{n}",
        **kw,
    )


class World:
    def __init__(self, rcs: Any = None, sms: Any = None, backend: Backend | None = None) -> None:
        self.settings = Settings(partitions=1)
        self.backend = backend or Backend()
        self.checkpoint = Checkpoint(backend=self.backend)
        self.rcs = rcs or Provider("rbm", True)
        self.sms = sms or Provider("twilio", False)
        self.gateway = ChannelGateway(rcs=self.rcs, sms=self.sms, lookup_settle_s=0)
        self.ids = idmap.IdMap()
        t = self.settings.topics
        self.runtime = GatewayRuntime(
            self.settings,
            self.gateway,
            self.backend,
            self.checkpoint,
            TimerIndex(),
            DeadLetters(self.backend.send, self.checkpoint, t.dead_letters, "gateway"),
            self.ids,
            concurrency=4,
        )
        self.runtime.recovered({0})
        self.offset = 0

    async def feed(self, item: SendRequest | Revoke) -> None:
        value = (
            wire.send_request_value(item)
            if isinstance(item, SendRequest)
            else wire.revoke_value(item)
        )
        async with self.checkpoint.lock:
            await self.runtime.handle(REQUESTS, 0, self.offset, b"u", value, None)
            self.checkpoint.processed(REQUESTS, 0, self.offset)
        self.offset += 1

    async def idle(self) -> None:
        for _ in range(200):
            await asyncio.sleep(0)
            if not self.runtime.sender.pending and not self.runtime.sender.tasks:
                return
        raise AssertionError("the sender never went idle")

    def record(self, n: int) -> dict[str, Any] | None:
        return self.runtime.claims.get(str(uuid.UUID(int=n)).encode())

    def receipts(self) -> list[tuple[str, str]]:
        topic = self.settings.topics.channel_receipts
        return [(r["status"], r["message_id"]) for r in self.backend.records(topic)]


async def test_a_send_is_queued_claimed_then_sent_and_its_ids_mapped() -> None:
    w = World()
    await w.feed(request(1, "sms"))
    assert w.record(1)["st"] == "queued"  # type: ignore[index]  # durable at the checkpoint
    await w.idle()
    rec = w.record(1)
    assert rec is not None and rec["st"] == "sent" and rec["pid"] == f"P-{uuid.UUID(int=1)}"
    assert "req" not in rec and rec["cl"]["body"] == "SMS 1" and rec["cl"]["to"] == PHONE
    # the claim went to the changelog at once, before the provider call
    [(key, value)] = w.backend.changelog
    assert value is not None and orjson.loads(value)["st"] == "claimed"
    sent = w.ids.by_provider_id(f"P-{uuid.UUID(int=1)}")
    assert sent is not None and (sent.user_id, sent.partition) == ("u1", 0)
    assert w.ids.latest_for_phone(PHONE) == sent
    await w.checkpoint.commit("test")
    assert orjson.loads(w.backend.store[key])["st"] == "sent"


async def test_a_replayed_request_is_not_sent_again() -> None:
    w = World()
    await w.feed(request(1))
    await w.idle()
    await w.feed(request(1))
    await w.idle()
    assert w.rcs.sent == [str(uuid.UUID(int=1))]
    assert w.runtime.stats.duplicates == 1


async def test_a_users_sends_keep_their_order_while_others_go_ahead() -> None:
    w = World()
    w.rcs.release = asyncio.Event()
    await w.feed(request(1, user="slow"))
    await w.feed(request(2, user="slow"))
    await w.feed(request(3, "sms", user="quick"))
    for _ in range(50):
        await asyncio.sleep(0)
    assert w.sms.sent == [str(uuid.UUID(int=3))] and w.rcs.sent == []
    w.rcs.release.set()
    await w.idle()
    assert w.rcs.sent == [str(uuid.UUID(int=1)), str(uuid.UUID(int=2))]


async def test_a_revoke_of_a_send_still_waiting_cancels_it() -> None:
    w = World()
    w.rcs.release = asyncio.Event()
    await w.feed(request(1))  # in the provider call
    await w.feed(request(2))  # waits behind it
    await w.feed(Revoke(str(uuid.UUID(int=2)), "u1", 5_000))
    w.rcs.release.set()
    await w.idle()
    assert w.rcs.sent == [str(uuid.UUID(int=1))]
    assert ("revoked", str(uuid.UUID(int=2))) in w.receipts()
    assert w.record(2)["revoked"] is True  # type: ignore[index]


async def test_a_revoke_of_a_sent_rbm_message_goes_to_the_provider_after_the_send() -> None:
    w = World()
    w.rcs.release = asyncio.Event()
    await w.feed(request(1))
    for _ in range(20):  # let it reach the provider
        await asyncio.sleep(0)
    await w.feed(Revoke(str(uuid.UUID(int=1)), "u1", 5_000))
    w.rcs.release.set()
    await w.idle()
    assert w.rcs.sent == [str(uuid.UUID(int=1)), f"revoke {uuid.UUID(int=1)}"]
    await w.feed(Revoke(str(uuid.UUID(int=1)), "u1", 5_000))  # replayed: done already
    await w.idle()
    assert len(w.rcs.sent) == 2


def crashed(records: dict[int, dict[str, Any]]) -> Backend:
    """A store as recovered from the changelog after a kill -9."""
    backend = Backend()
    for n, rec in records.items():
        backend.store[str(uuid.UUID(int=n)).encode()] = orjson.dumps(rec)
    return backend


def left(req: SendRequest, st: str, claim: Claim | None = None) -> dict[str, Any]:
    rec: dict[str, Any] = {
        "p": 0,
        "o": int(req.node_id[1:]) if req.node_id else 0,
        "u": req.user_id,
        "ch": req.channel,
        "ts": req.ts,
        "st": st,
        "at": 1,
        "req": wire.send_request_wire(req),
    }
    if claim is not None:
        rec["cl"] = claim.to_wire()
    return rec


async def test_after_a_crash_queued_sends_go_out_and_claimed_ones_by_provider_kind() -> None:
    rbm_req, sms_found, sms_lost, queued = (
        request(1),
        request(2, "sms", user="u2"),
        request(3, "sms", user="u3"),
        request(4, user="u4"),
    )

    def claim(req: SendRequest, provider: str, body: str | None) -> Claim:
        return Claim(req.message_id, req.channel, provider, provider == "rbm", PHONE, body, 1)

    backend = crashed(
        {
            1: left(rbm_req, "claimed", claim(rbm_req, "rbm", None)),
            2: left(sms_found, "claimed", claim(sms_found, "twilio", "SMS 2")),
            3: left(sms_lost, "claimed", claim(sms_lost, "twilio", "SMS 3")),
            4: left(queued, "queued"),
        }
    )

    class Twilio(Provider):
        async def lookup(self, to: str, body: str, since_ms: int) -> SendResult | None:
            self.lookups.append((to, body))
            return SendResult("SM-2") if body == "SMS 2" else None

    w = World(backend=backend, sms=Twilio("twilio", False))
    await w.idle()
    # RBM: the same id again, counted as a retry; a queued one: sent as new
    assert w.rcs.sent == [rbm_req.message_id, queued.message_id]
    assert w.runtime.stats.retries_after_restart == 1 and w.runtime.stats.sends == 1
    # Twilio: never sent again; looked up with the exact number and text
    assert w.sms.sent == [] and sorted(w.sms.lookups) == [(PHONE, "SMS 2"), (PHONE, "SMS 3")]
    assert w.record(2)["pid"] == "SM-2"  # type: ignore[index]
    assert ("unknown", sms_lost.message_id) in w.receipts()
    assert w.record(3)["unknown"] is True  # type: ignore[index]
    assert w.runtime.stats.unknown_outcome == 1 and w.runtime.stats.lookups == 2


async def test_a_send_held_over_a_second_by_a_rate_limit_is_accepted_at_the_hand_over() -> None:
    from engine.channels.ratelimit import RateLimit

    w = World()
    w.gateway = ChannelGateway(
        rcs=w.rcs, sms=w.sms, rate_limits={"rbm": RateLimit(0.5, 2)}, lookup_settle_s=0
    )
    w.runtime.gateway = w.gateway
    w.gateway.claims = w.runtime.store
    now = w.gateway._now_ms()
    await w.feed(request(1, ts=now))
    await w.feed(request(2, user="u2", ts=now))
    for _ in range(100):
        await asyncio.sleep(0.05)
        if len(w.rcs.sent) == 2:
            break
    await asyncio.sleep(0.05)
    statuses = w.receipts()
    assert ("accepted", str(uuid.UUID(int=2))) in statuses  # waited for its tokens
    assert ("accepted", str(uuid.UUID(int=1))) not in statuses  # the normal path: nothing


async def test_the_simulated_provider_schedules_its_delivery_and_a_revoke_cancels_it() -> None:
    sim = SimulatedProvider.contract()
    w = World(rcs=sim, sms=sim)
    req = request(1, ts=w.gateway._now_ms())
    await w.feed(req)
    await w.idle()
    rec = w.record(1)
    assert rec is not None and rec["sched"][0][1]["status"] == "delivered"
    await w.feed(Revoke(req.message_id, "u1", req.ts + 1_000))
    await w.idle()
    assert w.receipts() == [("revoked", req.message_id)]
    assert "sched" not in w.record(1)  # type: ignore[operator]


async def test_the_sender_keeps_a_journeys_send_rate_in_order() -> None:
    clock = [0.0]

    async def sleep(s: float) -> None:
        clock[0] += s
        await asyncio.sleep(0)

    ran: list[tuple[str, float, float]] = []

    async def run(job: Job, waited: float) -> None:
        ran.append((job.message_id, clock[0], waited))

    sender = Sender(run, 8, monotonic=lambda: clock[0], sleep=sleep)
    for n in range(5):
        base = request(n, user=f"u{n}")
        rated = replace(base, send_rate={"max": 2, "per_ms": 60_000})
        sender.submit(Job("send", rated.user_id, rated.message_id, 0, req=rated))
    for _ in range(100):
        await asyncio.sleep(0)
    assert [(m[-1], t) for m, t, _ in ran] == [
        ("0", 0.0), ("1", 0.0), ("2", 60.0), ("3", 60.0), ("4", 120.0)
    ]  # fmt: skip


async def test_the_id_map_reads_back_what_it_writes() -> None:
    from engine.channels.webhooks import SentMessage

    ids = idmap.IdMap()
    sent = SentMessage("m1", "u1", PHONE, "sms", "twilio", "j", "n", 2, "SM1")
    ids.apply_all(idmap.message_records(sent, 5))
    ids.apply(*idmap.event_record("twilio:dlr:SM1:delivered", 5))
    assert ids.by_message_id("m1") == sent and ids.by_provider_id("SM1") == sent
    assert ids.latest_for_phone(PHONE) == sent and ids.seen("twilio:dlr:SM1:delivered")
    ids.apply_all(idmap.forget_records("m1", "SM1"))
    assert ids.by_message_id("m1") is None and ids.by_provider_id("SM1") is None
    assert ids.old_events(5 + idmap.EVENT_RETENTION_MS + 1) == ["twilio:dlr:SM1:delivered"]


@pytest.mark.parametrize("raw", [None, {"max": 0, "per_ms": 10}, {"max": 1}])
def test_a_missing_or_invalid_send_rate_is_no_rate(raw: Any) -> None:
    from engine.stream.gateway.sender import send_rate

    class R:
        send_rate = raw

    assert send_rate(R()) is None  # type: ignore[arg-type]


async def test_a_shutdown_fails_the_claims_not_yet_written_and_they_stay_queued() -> None:
    from engine.stream.gateway.claims import Closing

    w = World()
    req = request(1, "sms")
    claim = Claim(req.message_id, "sms", "twilio", False, PHONE, "SMS 1", 1)
    async with w.checkpoint.lock:  # a checkpoint in progress: the claim waits for it
        waiting = asyncio.ensure_future(w.runtime.store.claim(req, claim))
        for _ in range(5):
            await asyncio.sleep(0)
        w.runtime.store.close()  # what the shutdown's drain does
    with pytest.raises(Closing):
        await waiting
    assert w.backend.changelog == []  # never claimed: a restart sends it as new
    with pytest.raises(Closing):
        await w.runtime.store.claim(request(2, "sms"), claim)
