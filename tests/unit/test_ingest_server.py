"""The HTTP side of ``journeys ingest`` (engine/stream/ingest/server.py) on a fake sink:
authentication, the status of every kind of call, dead letters, size limits, gzip, the
200 only after the acknowledgements, and the write-key settings."""

from __future__ import annotations

import asyncio
import base64
import gzip
from collections.abc import AsyncIterator, Awaitable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import aiohttp
import orjson
import pytest
from aiohttp import web
from pydantic import TypeAdapter

from engine.core import schema, wire
from engine.errors import ConfigError
from engine.stream.common.settings import Settings
from engine.stream.ingest import config as ingest_config
from engine.stream.ingest.config import IngestConfig, WriteKeys
from engine.stream.ingest.server import IngestServer, basic_username
from engine.stream.ingest.service import main as ingest_main
from tests.fakes import tracking_calls as calls

KEY = "wk-test-1Xk5DChfJAol3xtW7qNnK1apo5p"
OLD_KEY = "wk-old-rotating-out"
NOW = 1_796_040_000_000  # 2026-11-30T...: inside the accepted window
SETTINGS = Settings.from_env_and_args(env={})
EVENTS, DEAD = SETTINGS.topics.user_events, SETTINGS.topics.dead_letters


@dataclass
class FakeSink:
    """Records what is produced; ``hold`` keeps every acknowledgement pending until set,
    ``fail`` makes them fail."""

    records: list[tuple[str, bytes | None, bytes]] = field(default_factory=list)
    hold: asyncio.Event | None = None
    fail: Exception | None = None

    async def enqueue(self, topic: str, key: bytes | None, value: bytes) -> Awaitable[Any]:
        self.records.append((topic, key, value))
        return self._ack()

    async def _ack(self) -> None:
        if self.hold is not None:
            await self.hold.wait()
        if self.fail is not None:
            raise self.fail

    def on(self, topic: str) -> list[dict[str, Any]]:
        return [orjson.loads(v) for t, _k, v in self.records if t == topic]


@dataclass
class Client:
    session: aiohttp.ClientSession
    base: str
    sink: FakeSink
    server: IngestServer

    async def post(
        self, path: str, body: Any, *, key: str | None = KEY, raw: bytes | None = None,
        headers: dict[str, str] | None = None,
    ) -> tuple[int, dict[str, Any]]:  # fmt: skip
        headers = dict(headers or {})
        if key is not None:  # as Segment's libraries send it: the key, a colon, no password
            headers["Authorization"] = "Basic " + base64.b64encode(f"{key}:".encode()).decode()
        data = raw if raw is not None else orjson.dumps(body)
        async with self.session.post(self.base + path, data=data, headers=headers) as r:
            return r.status, await r.json()


@pytest.fixture
async def client() -> AsyncIterator[Client]:
    sink = FakeSink()
    server = IngestServer(
        SETTINGS, IngestConfig(WriteKeys((KEY, OLD_KEY))), sink, clock=lambda: NOW
    )
    runner = web.AppRunner(server.app())
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = runner.addresses[0][1]
    async with aiohttp.ClientSession() as session:
        yield Client(session, f"http://127.0.0.1:{port}", sink, server)
    await runner.cleanup()


# ---------------------------------------------------------------- authentication


async def test_a_wrong_or_missing_key_is_401_and_writes_nothing(client: Client) -> None:
    for key in ("not-the-key", ""):
        status, body = await client.post("/v1/track", calls.SEGMENT_TRACK, key=key)
        assert (status, body["reason"]) == (401, "unauthorized")
        assert "HTTP Basic username" in body["error"]
    # No header: the body's writeKey ("YOUR_WRITE_KEY" in the docs' example) decides.
    assert (await client.post("/v1/track", calls.SEGMENT_TRACK, key=None))[0] == 401
    # Unauthenticated garbage leaves no dead letter either.
    assert (await client.post("/v1/track", None, key=None, raw=b"{nope"))[0] == 401
    assert (await client.post("/v1/batch", None, key="x", raw=b"x" * 600_000))[0] == 401
    assert client.sink.records == []


async def test_the_key_in_the_body_and_a_rotating_key_are_accepted(client: Client) -> None:
    status, _ = await client.post("/v1/track", {**calls.SEGMENT_TRACK, "writeKey": KEY}, key=None)
    assert status == 200
    status, _ = await client.post(
        "/v1/batch", {**calls.RUDDERSTACK_BATCH, "writeKey": KEY}, key=None
    )
    assert status == 200
    assert (await client.post("/v1/track", calls.SEGMENT_TRACK, key=OLD_KEY))[0] == 200
    # Segment's OAuth senders: a Bearer token, and the write key in the body.
    bearer = {"Authorization": "Bearer eyJhbGciOi"}
    status, _ = await client.post(
        "/v1/track", {**calls.SEGMENT_TRACK, "writeKey": KEY}, key=None, headers=bearer
    )
    assert status == 200
    assert len(client.sink.on(EVENTS)) == 5


def test_basic_header_forms() -> None:
    def header(text: str) -> str:
        return "Basic " + base64.b64encode(text.encode()).decode()

    assert basic_username(header("abc123:")) == "abc123"
    assert basic_username(header('abc123:""')) == "abc123"  # RudderStack's docs show this one
    assert basic_username(header("abc123")) == "abc123"  # no colon: Segment still accepts it
    assert basic_username("Bearer abc123") is None
    assert basic_username("Basic !!!") is None


# ---------------------------------------------------------------- calls


async def test_track_identify_and_the_ignored_types(client: Client) -> None:
    assert await client.post("/v1/track", calls.RUDDERSTACK_TRACK) == (200, {"success": True})
    assert await client.post("/v1/identify", calls.SEGMENT_IDENTIFY) == (200, {"success": True})
    ignored = [
        ("/v1/page", calls.SEGMENT_PAGE),
        ("/v1/group", calls.SEGMENT_GROUP),
        ("/v1/alias", calls.SEGMENT_ALIAS),
        ("/v1/screen", calls.SEGMENT_PAGE),
    ]
    for path, msg in ignored:
        status, body = await client.post(path, msg)
        assert (status, body) == (200, {"success": True, "ignored": path.rsplit("/", 1)[1]})
    events = client.sink.on(EVENTS)
    assert [(e["user_id"], e["name"]) for e in events] == [
        ("identified user id", "Product Purchased new"),
        ("019mr8mf4r", "profile_updated"),
    ]
    assert [k for t, k, _v in client.sink.records] == [b"identified user id", b"019mr8mf4r"]
    text = client.server.metrics.exposition().decode()
    assert 'journeys_ingest_records_total{type="track"} 1.0' in text
    assert 'journeys_ingest_ignored_total{type="alias"} 1.0' in text


async def test_the_webhook_endpoint_dispatches_on_type(client: Client) -> None:
    assert (await client.post("/v1/webhook", {**calls.SEGMENT_TRACK, "type": "track"}))[0] == 200
    assert await client.post("/v1/webhook", {**calls.SEGMENT_PAGE, "type": "page"}) == (
        200,
        {"success": True, "ignored": "page"},
    )
    status, body = await client.post("/v1/webhook", calls.SEGMENT_TRACK)  # no type
    assert (status, body["reason"]) == (400, "missing_field")
    assert [e["name"] for e in client.sink.on(EVENTS)] == ["Item Purchased"]


async def test_a_malformed_call_is_400_with_a_dead_letter(client: Client) -> None:
    sent = {"anonymousId": "507f191e810c19729de860ea", "event": "Signed Up", "writeKey": KEY}
    status, body = await client.post("/v1/track", sent)
    assert status == 400
    assert body["success"] is False and body["reason"] == "missing_user_id"
    assert "anonymousId" in body["error"]
    (dl,) = client.sink.on(DEAD)
    assert (dl["reason"], dl["stage"], dl["topic"]) == ("missing_user_id", "ingest", "/v1/track")
    assert "anonymousId" in dl["detail"]
    raw = wire.decode_dead_letter(orjson.dumps(dl)).value
    TypeAdapter(schema.DeadLetter).validate_json(orjson.dumps(dl), strict=True)  # the schema
    assert raw is not None and b"Signed Up" in raw
    assert KEY.encode() not in raw and b"[write key]" in raw  # never the key
    assert client.sink.on(EVENTS) == []


async def test_bad_json_is_400_with_a_dead_letter(client: Client) -> None:
    status, body = await client.post("/v1/identify", None, raw=b'{"userId": "u", ')
    assert (status, body["reason"]) == (400, "bad_json")
    (dl,) = client.sink.on(DEAD)
    assert dl["reason"] == "bad_json"
    assert base64.b64decode(dl["value_b64"]) == b'{"userId": "u", '


async def test_a_timestamp_outside_the_window_is_400(client: Client) -> None:
    status, body = await client.post(
        "/v1/track", {**calls.SEGMENT_TRACK, "timestamp": "2030-01-01T00:00:00Z"}
    )
    assert (status, body["reason"]) == (400, "bad_timestamp")
    assert "outside the accepted window" in body["error"]
    assert [d["reason"] for d in client.sink.on(DEAD)] == ["bad_timestamp"]
    assert client.sink.on(EVENTS) == []


# ---------------------------------------------------------------- sizes, gzip


async def test_size_limits(client: Client) -> None:
    pad = {"userId": "u", "event": "E", "properties": {"pad": "x" * (32 * 1024)}}
    status, body = await client.post("/v1/track", pad)
    assert (status, body["reason"]) == (413, "oversized")
    (dl,) = client.sink.on(DEAD)
    assert dl["reason"] == "oversized" and dl["size"] == 32 * 1024  # the body, bounded
    # In a batch, the same call is one rejected item; the batch itself may be 500 KB.
    batch = {"batch": [{**pad, "type": "track"}, {**calls.SEGMENT_TRACK, "type": "track"}]}
    status, body = await client.post("/v1/batch", batch)
    assert status == 200
    assert (body["accepted"], [r["reason"] for r in body["rejected"]]) == (1, ["oversized"])
    huge = {"batch": [{**calls.SEGMENT_TRACK, "type": "track"}] * 3000}
    status, body = await client.post("/v1/batch", huge)
    assert (status, body["reason"]) == (413, "oversized")
    assert len(client.sink.on(EVENTS)) == 1


async def test_a_gzipped_body_is_read(client: Client) -> None:
    raw = gzip.compress(orjson.dumps(calls.RUDDERSTACK_BATCH))
    status, body = await client.post(
        "/v1/batch", None, raw=raw, headers={"Content-Encoding": "gzip"}
    )
    assert status == 200 and body["accepted"] == 2


# ---------------------------------------------------------------- batches, acks


async def test_a_batch_produces_the_valid_items_and_dead_letters_the_others(
    client: Client,
) -> None:
    status, body = await client.post("/v1/batch", calls.SEGMENT_BATCH)
    assert status == 200
    assert (body["accepted"], body["ignored"]) == (2, 0)
    assert [(r["index"], r["reason"]) for r in body["rejected"]] == [
        (2, "bad_timestamp"),
        (3, "bad_timestamp"),
    ]
    events = client.sink.on(EVENTS)
    assert [(e["name"], e["ts"]) for e in events] == [
        ("profile_updated", "2012-12-02T00:30:08.276Z"),
        ("Song Played", "2012-12-02T00:30:12.984Z"),
    ]
    dls = client.sink.on(DEAD)
    assert [(d["key"], d["reason"]) for d in dls] == [
        ("971mj8mk7p", "bad_timestamp"),
        ("971mj8mk7p", "bad_timestamp"),
    ]
    assert dls[0]["detail"].startswith("batch item 2: ")
    assert orjson.loads(base64.b64decode(dls[0]["value_b64"]))["traits"]["name"] == "Cindy Gonzalez"


async def test_the_answer_waits_for_every_acknowledgement(client: Client) -> None:
    client.sink.hold = asyncio.Event()
    answer = asyncio.ensure_future(client.post("/v1/batch", calls.RUDDERSTACK_BATCH))
    for _ in range(1000):  # up to 10 s on a busy machine
        if len(client.sink.records) == 2:
            break
        await asyncio.sleep(0.01)
    await asyncio.sleep(0.1)
    assert len(client.sink.records) == 2 and not answer.done()
    client.sink.hold.set()
    assert (await answer)[0] == 200


async def test_a_broker_failure_is_503_so_the_sender_retries(client: Client) -> None:
    client.sink.fail = TimeoutError("no leader")
    status, body = await client.post("/v1/track", calls.SEGMENT_TRACK)
    assert (status, body["reason"]) == (503, "kafka_unavailable")
    status, body = await client.post("/v1/batch", calls.SEGMENT_BATCH)
    assert status == 503


async def test_healthz_and_metrics(client: Client) -> None:
    await client.post("/v1/track", {"userId": "u"})
    async with client.session.get(client.base + "/healthz") as r:
        assert (r.status, await r.json()) == (200, {"status": "ok"})
    async with client.session.get(client.base + "/metrics") as r:
        text = await r.text()
    assert 'journeys_ingest_rejected_total{reason="missing_field"} 1.0' in text
    assert 'journeys_ingest_requests_total{path="/v1/track",status="400"} 1.0' in text


# ---------------------------------------------------------------- settings


def test_write_keys_from_the_environment_or_a_file(tmp_path: Path) -> None:
    keys = ingest_config.write_keys({"JOURNEYS_INGEST_WRITE_KEY": " a1, b2 ,a1"})
    assert keys.keys == ("a1", "b2")
    assert keys.accepts("b2") and not keys.accepts("b") and not keys.accepts(None)
    assert "a1" not in repr(keys)
    f = tmp_path / "keys"
    f.write_text("k-one\nk-two\n")
    assert ingest_config.write_keys({"JOURNEYS_INGEST_WRITE_KEY_FILE": str(f)}).keys == (
        "k-one",
        "k-two",
    )
    for env, says in [
        ({}, "JOURNEYS_INGEST_WRITE_KEY is not set"),
        ({"JOURNEYS_INGEST_WRITE_KEY": "  "}, "JOURNEYS_INGEST_WRITE_KEY is not set"),
        ({"JOURNEYS_INGEST_WRITE_KEY": "a", "JOURNEYS_INGEST_WRITE_KEY_FILE": str(f)}, "not both"),
        ({"JOURNEYS_INGEST_WRITE_KEY_FILE": str(tmp_path / "none")}, "can't read it"),
    ]:
        with pytest.raises(ConfigError, match=says):
            ingest_config.write_keys(env)


def test_config_from_the_environment() -> None:
    env = {"JOURNEYS_INGEST_WRITE_KEY": "k", "JOURNEYS_PROFILE_EVENT": "traits_set",
           "JOURNEYS_INGEST_PORT": "9000"}  # fmt: skip
    cfg = IngestConfig.from_env(env)
    assert (cfg.port, cfg.bind, cfg.profile_event) == (9000, "127.0.0.1", "traits_set")
    assert IngestConfig.from_env(env, port=0, bind="0.0.0.0").port == 0
    with pytest.raises(ConfigError, match="JOURNEYS_INGEST_PORT"):
        IngestConfig.from_env({**env, "JOURNEYS_INGEST_PORT": "http"})
    with pytest.raises(ConfigError, match="--port"):
        IngestConfig.from_env(env, port=70000)


def test_no_write_key_refuses_to_start_naming_the_variable(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.delenv("JOURNEYS_INGEST_WRITE_KEY", raising=False)
    monkeypatch.delenv("JOURNEYS_INGEST_WRITE_KEY_FILE", raising=False)
    assert ingest_main(["--port", "0"]) == 2
    assert "JOURNEYS_INGEST_WRITE_KEY is not set" in capsys.readouterr().err


async def test_the_key_never_reaches_the_logs(
    client: Client, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level("DEBUG")
    await client.post("/v1/track", {"anonymousId": "a", "writeKey": KEY}, key=None)
    await client.post("/v1/batch", {"batch": [{"type": "track"}], "writeKey": KEY}, key=None)
    await client.post("/v1/track", calls.SEGMENT_TRACK, key=KEY + "x")
    assert [r for r in caplog.records if r.getMessage() == "ingest_rejected"]
    logged = " ".join(f"{r.getMessage()} {getattr(r, 'fields', '')}" for r in caplog.records)
    assert KEY not in logged


def test_the_command_line_refuses_to_start_without_a_key(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    from engine.cli import main as journeys

    monkeypatch.delenv("JOURNEYS_INGEST_WRITE_KEY", raising=False)
    monkeypatch.delenv("JOURNEYS_INGEST_WRITE_KEY_FILE", raising=False)
    assert journeys(["ingest", "--port", "0"]) == 2
    assert "JOURNEYS_INGEST_WRITE_KEY is not set" in capsys.readouterr().err
