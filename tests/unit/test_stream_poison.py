"""Poison input on the worker's per-input path (issue 11), without a broker: whatever one
record does, it ends processed or dead-lettered with a reason, and the next one goes on.

The runtime is the real :class:`EngineRuntime` over the in-memory backend of
``engine.stream.devtools.memory`` (the same handler the faust agent calls).
"""

from __future__ import annotations

import base64
import io
import logging
import random
from typing import Any

import orjson
import pytest
import yaml

from engine.core import wire
from engine.durations import (
    MAX_INSTANT_MS,
    clamp_instant,
    format_ts,
    parse_iso_instant,
)
from engine.errors import ConfigError, InputError
from engine.journey.model import Journey
from engine.stream.common.crashes import EXIT_CRASH_LOOP, CrashGuard
from engine.stream.common.logs import JsonFormatter, RateLimitedHandler
from engine.stream.common.namespace import foreign_topics, legacy_group
from engine.stream.common.settings import Settings
from engine.stream.devtools.memory import MemoryBackend, memory_feed, memory_runtime, message
from engine.stream.devtools.produce import Progress, transient

NOW = parse_iso_instant("2026-11-30T12:00:00Z")

JOURNEY = """
id: poison
version: 1
name: Poison test journey
entry: {event: signed_up}
start: hello
nodes:
  hello: {type: send, channel: sms, marketing: false, text: "Hi", next: until}
  until: {type: wait, until_property: entry.due, offset: 1w, next: bye}
  bye: {type: send, channel: sms, marketing: false, text: "Bye", next: done}
  done: {type: exit}
"""


def journey(text: str) -> Journey:
    return Journey.model_validate(yaml.safe_load(text))


def journeys() -> list[Journey]:
    return [journey(JOURNEY)]


def event(user: str, ts: Any, eid: str | None = None, **properties: Any) -> bytes:
    return orjson.dumps(
        {
            "event_id": eid or f"{user}-{ts}",
            "user_id": user,
            "name": "signed_up",
            "ts": ts,
            "properties": properties,
            "profile": {"phone": "+14155550100"},
        }
    )


def letters(backend: MemoryBackend, settings: Settings) -> list[dict[str, Any]]:
    return [orjson.loads(v) for v in backend.on(settings.topics.dead_letters)]


@pytest.fixture
def settings() -> Settings:
    return Settings.from_env_and_args(env={})


# --------------------------------------------------------------------------- timestamps


@pytest.mark.parametrize(
    "ts",
    [
        1e17,
        -1e17,
        1e300,
        9e18,
        -5,
        0,
        1764504000,
        "9999-12-31T23:59:59Z",
        "1970-01-01",
        "1970-01-01T00:00:00Z",
        "1999-12-31T23:59:59Z",
        "2100-01-01T00:00:00.001Z",
        "2026-11-30T14:00:00Z",  # two hours ahead of the wall clock (skew: 1 h)
        "2026-11-30",
        "2026-W48-1",
        "2026-11-30 12:00:00Z",
        "2026-11-30T12:00:00+25:00",
        True,
        [],
        {},
    ],
)
async def test_a_timestamp_outside_the_window_or_form_is_dead_lettered_and_the_next_goes_on(
    settings: Settings, ts: Any
) -> None:
    runtime, backend = memory_runtime(journeys(), settings, clock=lambda: NOW)
    t = settings.topics
    await runtime.handle(t.user_events, 0, 0, b"bad", event("bad", ts))
    await runtime.handle(t.user_events, 0, 1, b"good", event("good", format_ts(NOW)))
    [letter] = letters(backend, settings)
    assert letter["reason"] == "bad_timestamp"
    assert letter["offset"] == 0
    assert any(b'"message_sent"' in v for v in backend.on(t.outcomes))
    assert b"bad" not in backend.store and runtime.checkpoint.get_dirty(b"bad") is None


@pytest.mark.parametrize(
    "ts", ["2000-01-01T00:00:00Z", "2026-11-30T12:59:59Z", "2024-02-29T23:59:59.999999+14:00"]
)
async def test_timestamps_inside_the_window_are_processed(settings: Settings, ts: str) -> None:
    runtime, backend = memory_runtime(journeys(), settings, clock=lambda: NOW)
    await runtime.handle(settings.topics.user_events, 0, 0, b"u", event("u", ts))
    assert letters(backend, settings) == []
    assert backend.on(settings.topics.outcomes)


def test_the_window_settings_are_read_and_checked() -> None:
    s = Settings.from_env_and_args(
        env={
            "JOURNEYS_TS_EARLIEST": "2020-01-01T00:00:00Z",
            "JOURNEYS_TS_LATEST": "2030-01-01T00:00:00Z",
            "JOURNEYS_TS_MAX_FUTURE": "5m",
        }
    )
    w = s.ts_window(NOW)
    assert (w.earliest, w.latest) == (parse_iso_instant("2020-01-01T00:00:00Z"), NOW + 300_000)
    assert s.ts_window(parse_iso_instant("2031-01-01T00:00:00Z")).latest == parse_iso_instant(
        "2030-01-01T00:00:00Z"
    )
    with pytest.raises(InputError, match="bad_timestamp"):
        w.check(NOW + 300_001)
    with pytest.raises(ConfigError, match="JOURNEYS_TS_EARLIEST"):
        Settings.from_env_and_args(env={"JOURNEYS_TS_EARLIEST": "2000-01-01"})
    with pytest.raises(ConfigError, match="before"):
        Settings.from_env_and_args(env={"JOURNEYS_TS_LATEST": "1999-01-01T00:00:00Z"})


def test_format_ts_is_total_on_the_writable_range_and_says_so_outside() -> None:
    assert format_ts(MAX_INSTANT_MS) == "9999-12-31T23:59:59.999Z"
    assert format_ts(clamp_instant(10**30)) == "9999-12-31T23:59:59.999Z"
    assert format_ts(clamp_instant(-(10**30))) == "0001-01-01T00:00:00Z"
    with pytest.raises(ValueError, match="years 1 to 9999"):
        format_ts(MAX_INSTANT_MS + 1)


def test_a_dead_letter_with_an_unwritable_kafka_timestamp_is_still_written() -> None:
    raw = wire.dead_letter(
        reason="bad_json",
        detail="x",
        stage="engine",
        topic="t",
        partition=0,
        offset=1,
        key=None,
        value=b"{",
        dead_lettered_at=NOW,
        timestamp_ms=2**62,
    )
    assert orjson.loads(raw)["timestamp"] is None


# --------------------------------------------------------------------------- computed times


@pytest.mark.parametrize(
    "due", ["9999-12-31T23:59:59Z", 1e300, 9e18, -1e17, "0001-01-01T00:00:00Z", "soon"]
)
async def test_a_wait_until_a_property_far_away_is_clamped_not_a_crash(
    settings: Settings, due: Any
) -> None:
    runtime, backend = memory_runtime(journeys(), settings, clock=lambda: NOW)
    await runtime.handle(
        settings.topics.user_events, 0, 0, b"u", event("u", format_ts(NOW), due=due)
    )
    assert letters(backend, settings) == []
    _, value = runtime.checkpoint.get_dirty(b"u") or (0, None)
    assert value is not None
    wake_at = wire.state_wake_at(value)[1]
    assert wake_at is None or wake_at <= MAX_INSTANT_MS


async def test_the_core_refuses_a_timer_it_could_not_write(settings: Settings) -> None:
    """Waits clamp their times; any other timer past the year 9999 (here an absurd RCS
    fallback window) refuses the input instead of a state that can't be written."""
    absurd = JOURNEY.replace(
        'hello: {type: send, channel: sms, marketing: false, text: "Hi", next: until}',
        'hello: {type: send, channel: rcs, marketing: false, text: "Hi", next: until,'
        ' fallback: {sms: "Hi", after: 99999999999w}}',
    )
    runtime, backend = memory_runtime([journey(absurd)], settings, clock=lambda: NOW)
    await runtime.handle(settings.topics.user_events, 0, 0, b"u", event("u", format_ts(NOW)))
    assert [d["reason"] for d in letters(backend, settings)] == ["bad_timestamp"]
    assert runtime.checkpoint.get_dirty(b"u") is None
    assert backend.on(settings.topics.outcomes) == []


# --------------------------------------------------------------------------- effects, core


CONCURRENT = """
id: concurrent
version: 1
entry: {event: signed_up, reentry: always}
start: pause
nodes:
  pause: {type: wait, duration: 1w, next: done}
  done: {type: exit}
"""


async def test_a_state_too_large_for_the_changelog_is_dead_lettered(settings: Settings) -> None:
    """Runs keep their entry properties in the user's state: a state past the broker's
    record limit would fail at every checkpoint, after every restart. The input that would
    make it is dead-lettered instead, and the user goes on with the state they had."""
    runtime, backend = memory_runtime([journey(CONCURRENT)], settings, clock=lambda: NOW)
    t = settings.topics
    for i in range(8):
        # Text that does not compress (the table value is compact: engine.core.wire).
        noise = base64.b64encode(random.Random(i).randbytes(150_000)).decode()
        value = event("u", format_ts(NOW + i), f"e{i}", blob=noise)
        await runtime.handle(t.user_events, 0, i, b"u", value)
    reasons = [d["reason"] for d in letters(backend, settings)]
    assert reasons and set(reasons) == {"state_too_large"}
    _, kept = runtime.checkpoint.get_dirty(b"u") or (0, b"")
    assert kept is not None and 0 < len(kept) <= 900 * 1024


async def test_a_profile_past_its_limits_is_dead_lettered(settings: Settings) -> None:
    """A profile is bounded (engine.core.profile): an event whose profile would break a
    limit is dead-lettered with reason profile_limit, whole; the state stays as it was."""
    runtime, backend = memory_runtime(journeys(), settings, clock=lambda: NOW)
    t = settings.topics
    for i in range(3):
        value = orjson.dumps(
            {
                "event_id": f"e{i}",
                "user_id": "u",
                "name": "signed_up",
                "ts": format_ts(NOW + i),
                "profile": {f"k{i}": "x" * (200 if i == 0 else 200_000), "phone": "+14155550100"},
            }
        )
        await runtime.handle(t.user_events, 0, i, b"u", value)
    dead = letters(backend, settings)
    assert [d["reason"] for d in dead] == ["profile_limit", "profile_limit"]
    assert "at most 2048" in dead[0]["detail"]
    _, kept = runtime.checkpoint.get_dirty(b"u") or (0, b"")
    attrs = orjson.loads(wire.state_json(kept))["s"]["a"]
    assert sorted(attrs) == ["k0", "phone"]


async def test_a_core_error_is_dead_lettered_and_the_state_kept(
    settings: Settings, monkeypatch: pytest.MonkeyPatch
) -> None:
    runtime, backend = memory_runtime(journeys(), settings, clock=lambda: NOW)

    def boom(*a: Any, **k: Any) -> Any:
        raise ZeroDivisionError("a bug")

    monkeypatch.setattr(runtime.engine, "advance", boom)
    await runtime.handle(settings.topics.user_events, 0, 0, b"u", event("u", format_ts(NOW)))
    [letter] = letters(backend, settings)
    assert letter["reason"] == "processing_error" and "ZeroDivisionError" in letter["detail"]
    assert runtime.checkpoint.get_dirty(b"u") is None


async def test_an_effect_that_does_not_encode_is_dead_lettered_before_anything_is_produced(
    settings: Settings, monkeypatch: pytest.MonkeyPatch
) -> None:
    runtime, backend = memory_runtime(journeys(), settings, clock=lambda: NOW)

    def overflow(*a: Any, **k: Any) -> Any:
        raise OverflowError("date value out of range")

    monkeypatch.setattr(wire, "send_request_value", overflow)
    await runtime.handle(settings.topics.user_events, 0, 0, b"u", event("u", format_ts(NOW)))
    assert [d["reason"] for d in letters(backend, settings)] == ["processing_error"]
    assert backend.on(settings.topics.outcomes) == []  # nothing of the input went out


# --------------------------------------------------------------------------- the feed


async def test_a_record_the_handler_raises_on_twice_is_dead_lettered_once(
    settings: Settings,
) -> None:
    runtime, backend = memory_runtime(journeys(), settings, clock=lambda: NOW)
    feed = memory_feed(runtime, backend)
    calls: list[int] = []
    handle = feed.handle

    async def flaky(topic: str, partition: int, offset: int, *rest: Any) -> None:
        calls.append(offset)
        if offset == 0:
            raise ConnectionError("the broker went away")
        await handle(topic, partition, offset, *rest)

    feed.handle = flaky
    t = settings.topics.user_events
    await feed.feed(message(t, 0, 0, b"a", event("a", format_ts(NOW))))
    await feed.feed(message(t, 0, 1, b"b", event("b", format_ts(NOW))))
    assert calls == [0, 0, 1]
    [letter] = letters(backend, settings)
    assert letter["reason"] == "processing_error" and letter["offset"] == 0
    assert "failed 2 times" in letter["detail"]
    assert runtime.checkpoint.offsets[(t, 0)] == 2
    assert feed.failures == {}


async def test_a_passing_hiccup_is_retried_once_and_not_dead_lettered(settings: Settings) -> None:
    runtime, backend = memory_runtime(journeys(), settings, clock=lambda: NOW)
    feed = memory_feed(runtime, backend)
    handle, failed = feed.handle, []

    async def once(*args: Any) -> None:
        if not failed:
            failed.append(1)
            raise TimeoutError("slow broker")
        await handle(*args)

    feed.handle = once
    await feed.feed(message(settings.topics.user_events, 0, 0, b"a", event("a", format_ts(NOW))))
    assert letters(backend, settings) == []
    assert backend.on(settings.topics.outcomes)


def test_an_agent_crash_that_repeats_stops_the_process() -> None:
    stops: list[tuple[str, int]] = []
    clock = iter([0.0, 10.0, 400.0, 401.0]).__next__
    guard = CrashGuard(
        "agent", 2, window_s=300, on_loop=lambda r, code, **f: stops.append((r, code)), clock=clock
    )
    guard.crashed(RuntimeError("one"))
    assert stops == []
    guard.crashed(RuntimeError("two"))
    assert stops == [("agent_crash_loop", EXIT_CRASH_LOOP)]
    stops.clear()
    guard.crashed(RuntimeError("much later"))  # the earlier ones are out of the window
    assert stops == []


# --------------------------------------------------------------------------- namespace


def test_groups_and_changelogs_derive_from_the_topic_prefix() -> None:
    a = Settings.from_env_and_args(env={"JOURNEYS_TOPIC_PREFIX": "run1."})
    b = Settings.from_env_and_args(env={"JOURNEYS_TOPIC_PREFIX": "run2."})
    assert (a.app_id, a.gateway_app_id) == ("run1.journeys-engine", "run1.journeys-gateway")
    assert a.app_id != b.app_id and a.topics.user_events != b.topics.user_events
    assert Settings.from_env_and_args(env={}).app_id == "journeys-engine"  # no prefix: as before
    given = Settings.from_env_and_args(
        env={"JOURNEYS_TOPIC_PREFIX": "run1.", "JOURNEYS_APP_ID": "g"}
    )
    assert given.app_id == "g"  # named explicitly: as given (a collision is refused at start)
    assert legacy_group(a, a.app_id) == "journeys-engine"
    assert legacy_group(a, a.gateway_app_id) == "journeys-gateway"
    assert legacy_group(given, "g") is None


def test_a_group_with_offsets_on_other_topics_is_foreign() -> None:
    inputs = ("p.journey.user-events", "p.journey.timers")
    assert foreign_topics("p.g", inputs, inputs) == []
    assert foreign_topics("p.g", inputs, ["p.g-__assignor-__leader"]) == []
    assert foreign_topics("p.g", inputs, ["q.journey.user-events", *inputs]) == [
        "q.journey.user-events"
    ]


# --------------------------------------------------------------------------- logs, produce


def test_repeated_warnings_are_collapsed_with_a_count() -> None:
    out = io.StringIO()
    now = [0.0]
    handler = RateLimitedHandler(out, burst=3, window_s=10, clock=lambda: now[0])
    handler.setFormatter(JsonFormatter("t"))
    log = logging.getLogger("test.poison.repeats")
    log.propagate = False
    log.addHandler(handler)
    log.setLevel(logging.DEBUG)
    try:
        for i in range(1000):
            log.warning("Unable connect to node with id %s", i % 3)
            log.info("info is never held back")
        now[0] = 11.0
        log.warning("Unable connect to node with id %s", 1)
        for i in range(10):
            log.error(f"node {i} failed")  # formatted before: numbers are blurred to match
        handler.flush_repeats()
    finally:
        log.removeHandler(handler)
    lines = [orjson.loads(x) for x in out.getvalue().splitlines()]
    warnings = [x for x in lines if x["level"] == "warning"]
    # 3 written, 997 counted (told once their window is over), then a new window.
    assert [x.get("event") for x in warnings] == [None, None, None, "log_repeated", None]
    assert warnings[3]["suppressed"] == 997
    assert sum(1 for x in lines if x["level"] == "info") == 1000
    errors = [x for x in lines if x["level"] == "error"]
    assert len(errors) == 4 and errors[-1]["event"] == "log_repeated"
    assert errors[-1]["suppressed"] == 7


def test_produce_retries_only_transient_errors_and_draws_a_bar_on_terminals() -> None:
    from aiokafka.errors import LeaderNotAvailableError, MessageSizeTooLargeError

    assert transient(LeaderNotAvailableError()) and transient(ConnectionResetError())
    assert not transient(MessageSizeTooLargeError()) and not transient(ValueError())
    out = io.StringIO()
    bar = Progress(10, out, enabled=True)
    bar.advance(10)
    bar.close()
    assert "10/10 lines" in out.getvalue()
    quiet = io.StringIO()
    Progress(10, quiet).advance(10)  # StringIO is no terminal
    assert quiet.getvalue() == ""


# --------------------------------------------------------------------------- the corpus


async def test_every_kind_of_the_broker_corpus_gets_its_reason_in_memory(
    settings: Settings,
) -> None:
    """The corpus the real-broker test produces, through the same handler without a
    broker: each kind is dead-lettered with the reason the corpus says."""
    from engine.stream.devtools.corpus import bad_records

    runtime, backend = memory_runtime(journeys(), settings, clock=lambda: NOW)
    corpus = bad_records(settings.topics, 60, NOW, oversized_every=30)
    assert len({r.kind for r in corpus}) >= 15
    for offset, r in enumerate(corpus):
        await runtime.handle(r.topic, 0, offset, r.key, r.value, r.timestamp_ms)
    got = [(d["offset"], d["reason"]) for d in letters(backend, settings)]
    assert got == [(i, r.reason) for i, r in enumerate(corpus)]


class FlakyProducer:
    """A producer whose ``send`` fails with LeaderNotAvailable at the sends listed."""

    def __init__(self, sent: list[bytes], fail_at: set[int], counter: list[int]) -> None:
        self.sent, self.fail_at, self.counter = sent, fail_at, counter

    async def start(self) -> None:
        pass

    async def stop(self) -> None:
        pass

    async def send(self, topic: str, value: bytes, key: bytes | None = None) -> Any:
        from aiokafka.errors import LeaderNotAvailableError

        self.counter[0] += 1
        if self.counter[0] in self.fail_at:
            raise LeaderNotAvailableError()
        self.sent.append(value)
        return MemoryBackend._done()


def _lines(settings: Settings, n: int) -> list[Any]:
    from engine.stream.devtools.produce import Line

    return [
        Line(i + 1, f"line {i + 1}".encode(), settings.topics.user_events, b"u", NOW + i, {})
        for i in range(n)
    ]


async def test_produce_goes_on_after_a_leader_election_from_the_first_line_not_acknowledged(
    settings: Settings,
) -> None:
    from engine.stream.devtools.produce import Retry, produce_lines

    sent: list[bytes] = []
    counter = [0]
    lines = _lines(settings, 450)  # three windows of 200
    counts = await produce_lines(
        settings,
        lines,
        False,
        retry=Retry(attempts=3, first_s=0.0),
        producer=lambda: FlakyProducer(sent, {250, 251}, counter),
    )
    assert counts == {settings.topics.user_events: 450}
    # The second window failed twice in its middle and was produced again, whole.
    assert sent[:200] == [ln.raw for ln in lines[:200]]
    assert sorted(set(sent)) == sorted(ln.raw for ln in lines)
    assert len(sent) == 450 + 49  # 49 lines of the broken window went out twice


async def test_produce_gives_up_with_the_line_to_resume_from(settings: Settings) -> None:
    from engine.errors import ProduceError
    from engine.stream.devtools.produce import Retry, produce_lines

    sent: list[bytes] = []
    counter = [0]  # every send after the 200th fails, whatever the producer
    with pytest.raises(ProduceError, match="--from-line 201"):
        await produce_lines(
            settings,
            _lines(settings, 450),
            False,
            retry=Retry(attempts=3, first_s=0.0),
            producer=lambda: FlakyProducer(sent, set(range(201, 10_000)), counter),
        )
    assert len(sent) == 200
