"""``journeys explain`` from Kafka gives the reasons the simulation gives, and so does the
dashboard's user search.

A worker traces three users (``JOURNEYS_TRACE_USERS``) and a gateway with the simulated
provider runs beside it, on the real broker. Their events (built here) hit every reason a
user may not enter a journey or not get a message: an entry condition false, a cooldown, a
frequency cap, quiet hours, an opt-out, no RCS capability. Then:

* ``journeys explain USER`` (a child process, reading the user's partition of every topic
  and the state changelog) names the same journeys not entered and messages not received,
  with the same reasons, as ``journeys explain USER --events`` (the simulator);
* a user who was not traced gets the outcomes, and a note naming JOURNEYS_TRACE_USERS;
* ``/api/users/{id}`` of the stats service returns that report, and its page, rendered by
  headless Chromium, shows it.
"""

from __future__ import annotations

import asyncio
import os
import sys
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import orjson
import pytest
from test_dashboard import ARTIFACTS, PNG, Texts, browse
from test_stats_service import get, running

from engine.durations import format_ts
from engine.explain.sources import from_events, from_kafka
from engine.lint.linter import load_journeys
from engine.stream.devtools.harness import StreamEnv

TRACED = ("ann", "bob", "cat")
PHONE = "+14155550123"


def journeys(now: datetime) -> dict[str, str]:
    # Quiet hours around the wall clock now (UTC): whatever the time of the test run.
    start, end = (now - timedelta(hours=1)).strftime("%H:%M"), (now + timedelta(hours=3))
    quiet = f'{{from: "{start}", to: "{end.strftime("%H:%M")}", action: skip}}'
    return {
        "cart.yaml": """
id: cart
version: 1
entry:
  event: cart_updated
  when: event.total >= 50 and user.tier == 'gold'
  reentry: always
  cooldown: 1h
settings: {default_timezone: UTC}
start: offer
nodes:
  offer:
    type: send
    channel: rcs
    text: "Your cart is waiting. Reply STOP to opt out."
    fallback: {sms: "Your cart is waiting. Reply STOP to opt out.", after: 30s}
    next: done
  done: {type: exit}
""",
        "news.yaml": """
id: news
version: 1
entry: {event: newsletter_ready}
settings:
  default_timezone: UTC
  frequency_cap: {max: 1, per: 1d}
start: letter
nodes:
  letter: {type: send, channel: sms, text: "News! Reply STOP to opt out.", next: done}
  done: {type: exit}
""",
        "late.yaml": f"""
id: late
version: 1
entry: {{event: late_offer}}
settings:
  default_timezone: UTC
  quiet_hours: {quiet}
start: offer
nodes:
  offer: {{type: send, channel: sms, text: "Late deal. Reply STOP to opt out.", next: done}}
  done: {{type: exit}}
""",
        "survey.yaml": """
id: survey
version: 1
entry: {event: visit}
start: ask
nodes:
  ask: {type: wait_for, paths: [{event: answered, next: done}], timeout: 1h, on_timeout: done}
  done: {type: exit}
""",
    }


def lines(base: int) -> list[dict[str, Any]]:
    """The users' lines, a second apart, in the future (receipts made meanwhile by the
    gateway, stamped with the wall clock, don't move the users' clocks)."""
    out: list[dict[str, Any]] = []

    def ev(user: str, name: str, **extra: Any) -> None:
        n = len(out)
        out.append({"event_id": f"{user}-{n}", "user_id": user, "name": name,
                    "ts": format_ts(base + n * 1000), **extra})  # fmt: skip

    ev("ann", "cart_updated", properties={"total": 30},
       profile={"phone": PHONE, "tier": "gold", "rcs_capable": False})  # fmt: skip
    ev("ann", "cart_updated", properties={"total": 80})  # entered; not RCS-capable: SMS
    ev("ann", "cart_updated", properties={"total": 90})  # cooldown
    ev("ann", "newsletter_ready")  # frequency cap: the cart's send counts
    ev("bob", "late_offer", profile={"phone": PHONE})  # quiet hours
    ev("bob", "visit")  # waits in the survey
    ev("cat", "newsletter_ready", profile={"phone": PHONE})
    out.append({"type": "inbound", "user_id": "cat", "ts": format_ts(base + len(out) * 1000),
                "text": "STOP"})  # fmt: skip
    ev("cat", "late_offer")  # opted out
    ev("zed", "newsletter_ready", profile={"phone": PHONE})  # not traced
    return out


def reasons(report: dict[str, Any]) -> tuple[set[tuple[str, str]], set[tuple[str, str, str]]]:
    entered = {(r["journey_id"], r["reason"]) for r in report["not_entered"]}
    received = {(r["journey_id"], r["node_id"], r["reason"]) for r in report["not_received"]}
    return entered, received


async def cli(env: StreamEnv, *args: str) -> str:
    proc = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "engine.cli", "explain", *args,
        env={**env.env(), "PYTHONPATH": os.environ.get("PYTHONPATH", "")},
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE,
    )  # fmt: skip
    out, err = await asyncio.wait_for(proc.communicate(), 120)
    assert proc.returncode == 0, err.decode()
    return out.decode()


@pytest.mark.timeout(300)
async def test_explain_from_kafka_gives_the_simulations_reasons(
    kafka_bootstrap: str, tmp_path: Path
) -> None:
    jdir = tmp_path / "journeys"
    jdir.mkdir()
    for name, text in journeys(datetime.now(UTC)).items():
        (jdir / name).write_text(text)
    defined = load_journeys([jdir])
    env = StreamEnv(kafka_bootstrap, tmp_path, jdir)
    try:
        worker = env.start_worker(JOURNEYS_TRACE_USERS=",".join(TRACED))
        gateway = env.start_gateway()
        await worker.wait_for("worker_ready", 60)
        await gateway.wait_for("gateway_ready", 60)
        settings = env.settings()
        base = int(time.time() * 1000) + 20_000
        script = lines(base)
        events = tmp_path / "events.jsonl"
        events.write_bytes(b"".join(orjson.dumps(x) + b"\n" for x in script))
        # One topic for every line: each user's lines keep their order (journeys produce).
        await env.produce(
            (settings.topics.user_events, x["user_id"].encode(), orjson.dumps(x)) for x in script
        )

        # The simulation as far as the test runs (the survey's 1 h timeout is not up).
        soon = base + 60_000
        simulated = {u: from_events(defined, events, u, until=soon) for u in (*TRACED, "zed")}

        async def settled(user: str) -> dict[str, Any]:
            """The user's report once Kafka holds what the simulation has (outcomes, and
            the state at its checkpoint)."""
            want = simulated[user]
            deadline = time.monotonic() + 90
            while True:
                got = await from_kafka(settings, user, journeys=defined)
                runs = [r["journey_id"] for r in got["now"]["runs"]]
                if (
                    reasons(got) == reasons(want)
                    and runs == [r["journey_id"] for r in want["now"]["runs"]]
                    and got["now"].get("opted_out") == want["now"].get("opted_out")
                ):
                    return got
                if time.monotonic() > deadline:
                    raise AssertionError(
                        f"{user}: Kafka says {reasons(got)}, {runs}; the simulation "
                        f"{reasons(want)}\n{worker.tail(20)}"
                    )
                await asyncio.sleep(1.0)

        ann = await settled("ann")
        assert reasons(ann) == (
            {("cart", "when_false"), ("cart", "cooldown"), ("late", "no_entry_event"),
             ("survey", "no_entry_event")},
            {("cart", "offer", "undeliverable"), ("news", "letter", "frequency_cap")},
        )  # fmt: skip
        when_false = next(r for r in ann["not_entered"] if r["reason"] == "when_false")
        assert when_false["values"]["operands"] == {"event.total": 30, "user.tier": "gold"}
        cooldown = next(r for r in ann["not_entered"] if r["reason"] == "cooldown")
        assert cooldown["values"]["time_left_ms"] == 3_600_000 - 1000
        fallback = next(r for r in ann["not_received"] if r["reason"] == "undeliverable")
        assert fallback["values"]["receipt"] == "not_capable" and "then" in fallback
        bob = await settled("bob")
        assert ("late", "offer", "quiet_hours") in reasons(bob)[1]
        (run,) = bob["now"]["runs"]
        assert (run["journey_id"], run["node_id"], run["node_type"]) == (
            "survey",
            "ask",
            "wait_for",
        )
        assert bob["now"]["next_timer"]["at"] == format_ts(base + 5000 + 3_600_000)
        cat = await settled("cat")
        assert ("late", "offer", "opted_out") in reasons(cat)[1] and cat["now"]["opted_out"]
        for user in TRACED:
            assert (await from_kafka(settings, user))["traced"], user

        # The command line, from Kafka, says the same.
        text = await cli(env, "ann", "--journeys", str(jdir))
        for want in (
            "NOT entered: the entry condition `event.total >= 50 and user.tier == 'gold'` is "
            "false (event.total = 30, user.tier = 'gold'",
            "NOT entered: cooldown 1h since the last entry",
            "not RCS-capable (receipt not_capable): falls back to SMS",
            "NOT sent: frequency cap reached: 1 of at most 1 sends in the last 1d",
        ):
            assert want in text, want
        untraced = await cli(env, "zed")
        assert "outcomes only" in untraced and "JOURNEYS_TRACE_USERS=zed" in untraced
        assert "sent [sms]" in untraced  # the outcomes' story

        # The dashboard's user search: the same report, on the page.
        async with running(bootstrap=kafka_bootstrap, topic=settings.topics.outcomes,
                           journeys_dir=str(jdir), group_id=f"it-{env.run_id}-stats",
                           stream=settings) as svc:  # fmt: skip
            api = await get(f"{svc.url}/api/users/ann")
            assert reasons(api) == reasons(ann) and api["traced"]
            only = await get(f"{svc.url}/api/users/ann?journey=news")
            assert reasons(only) == (set(), {("news", "letter", "frequency_cap")})
            page = Texts(await browse(f"{svc.url}/users?id=ann", tmp_path / "chrome"))
            shown = {k.split("=", 1)[1] for k in page.texts if k.startswith("data-not-entered=")}
            assert {"cart:when_false", "cart:cooldown"} <= shown
            held = {k.split("=", 1)[1] for k in page.texts if k.startswith("data-not-received=")}
            assert held == {"cart:offer:undeliverable", "news:letter:frequency_cap"}
            assert any("event.total = 30" in t for t in page.text("data-step=entry.when_false"))
            ARTIFACTS.mkdir(parents=True, exist_ok=True)
            shot = ARTIFACTS / "dashboard-user.png"
            shot.unlink(missing_ok=True)
            await browse(f"{svc.url}/users?id=ann", tmp_path / "chrome", screenshot=shot)
            assert shot.read_bytes().startswith(PNG)
            page = Texts(await browse(f"{svc.url}/users?id=bob", tmp_path / "chrome"))
            assert "at ask (wait_for)" in " ".join(page.text("data-run=survey"))
            page = Texts(await browse(f"{svc.url}/users?id=zed", tmp_path / "chrome"))
            assert any("JOURNEYS_TRACE_USERS=zed" in t for t in page.text("data-note="))
        assert worker.count("dead_letter") == 0
    finally:
        await env.aclose()
