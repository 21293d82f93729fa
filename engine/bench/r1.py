"""R1: throughput on the broker, as a ratio to a raw aiokafka passthrough.

On the same generated events (:mod:`engine.bench.events`):

* ``passthrough``: the ceiling. The events are put on a topic first; then one aiokafka
  consumer reads them in batches (``getmany``), and for each record decodes the JSON,
  encodes it again and produces one record (acks=all, as the engine's producer); then
  it awaits the batch's sends and commits the batch's offsets.
* ``worker``: the engine worker alone (no gateway: the send requests stay on their topic).
* ``worker_gateway``: the worker and the gateway with the simulated providers (the
  receipts come back to the worker as inputs).
* ``two_workers``: the worker figure with two worker processes in one consumer group.

Every rate is counted between the broker timestamps of the first and the last output
record (:mod:`engine.bench.topic_span`): a process's start and the table recovery do not
count. For the engine, the services are started (and ready, the partitions assigned)
before the events are produced, so that two workers do not rebalance in the middle of a
measurement; the events are then produced at full speed, far faster than a worker takes
them, so the worker always has a backlog, as with events put on the topic first. Inputs
per user: the event and the wake-up (due at once: the events have historic timestamps),
plus the two receipts with the gateway.
"""

from __future__ import annotations

import asyncio
import os
import time
from pathlib import Path
from typing import Any

import orjson
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer

from engine.bench import events as bench_events
from engine.bench.options import BenchOptions
from engine.bench.profile import summarize
from engine.bench.profiled import TOGGLE as PROFILE_TOGGLE
from engine.bench.topic_span import span, volumes, wait_for_records
from engine.stream.common.topics import ensure_topics
from engine.stream.devtools.harness import Service, StreamEnv

TARGET_WORKER = 0.30
TARGET_WORKER_GATEWAY = 0.20
# A stage that has not produced every expected record after this long has failed.
STAGE_TIMEOUT_S = 900.0


def run(opts: BenchOptions) -> dict[str, Any]:
    return asyncio.run(measure(opts))


async def measure(opts: BenchOptions) -> dict[str, Any]:
    records = bench_events.user_events(opts)
    opts.note(f"r1: {len(records)} events, {opts.partitions} partitions")
    passthrough = await _passthrough(opts, records)
    opts.note(f"r1: passthrough {passthrough['records_per_s']:,.0f} records/s")
    worker = await _engine(opts, records, workers=1, gateway=False, name="worker")
    opts.note(f"r1: worker {worker['inputs_per_s']:,.0f} inputs/s")
    with_gateway = await _engine(opts, records, workers=1, gateway=True, name="worker_gateway")
    opts.note(f"r1: worker + gateway {with_gateway['inputs_per_s']:,.0f} inputs/s")
    two = await _engine(opts, records, workers=2, gateway=False, name="two_workers")
    opts.note(f"r1: two workers {two['inputs_per_s']:,.0f} inputs/s")
    profiled: dict[str, Any] | None = None
    if opts.profile:
        try:
            profiled = await _engine(
                opts, records, workers=1, gateway=False, name="worker_profile", profile=True
            )
            opts.note(f"r1: worker profiled ({profiled['us_per_input']} us per input)")
        except Exception as exc:  # the figures above stand without their profile
            profiled = {"error": f"{type(exc).__name__}: {exc}"}
            opts.note(f"r1: the profiled run failed: {profiled['error']}")
    ceiling = passthrough["records_per_s"]
    worker_ratio = worker["inputs_per_s"] / ceiling
    gateway_ratio = with_gateway["inputs_per_s"] / ceiling
    scaling = two["inputs_per_s"] / worker["inputs_per_s"]
    return {
        "users": opts.users,
        "partitions": opts.partitions,
        "event_bytes": passthrough["bytes"] // max(passthrough["records"], 1),
        "passthrough": passthrough,
        "worker": worker,
        "worker_gateway": with_gateway,
        "two_workers": two,
        **({"worker_profile": profiled} if profiled is not None else {}),
        "ratios": {
            "worker": round(worker_ratio, 3),
            "worker_gateway": round(gateway_ratio, 3),
            "two_workers_over_one": round(scaling, 2),
        },
        "figures": [
            _figure("R1 passthrough", ceiling, "records/s"),
            _figure("R1 worker", worker["inputs_per_s"], "inputs/s"),
            _figure(
                "R1 worker / passthrough",
                round(worker_ratio, 3),
                "ratio",
                f">= {TARGET_WORKER:.2f}",
                worker_ratio >= TARGET_WORKER,
            ),
            _figure("R1 worker + gateway", with_gateway["inputs_per_s"], "inputs/s"),
            _figure(
                "R1 worker + gateway / passthrough",
                round(gateway_ratio, 3),
                "ratio",
                f">= {TARGET_WORKER_GATEWAY:.2f}",
                gateway_ratio >= TARGET_WORKER_GATEWAY,
            ),
            _figure(
                "R1 broker writes per user (worker + gateway)",
                with_gateway["traffic"]["bytes_per_user"],
                "B",
            ),
            _figure("R1 worker per CPU second", worker["inputs_per_worker_cpu_s"], "inputs"),
            _figure(
                "R1 gateway per CPU second",
                with_gateway.get("sends_per_gateway_cpu_s"),
                "sends",
            ),
            _figure(
                "R1 worker / passthrough, per CPU second",
                _ratio(worker["inputs_per_worker_cpu_s"], passthrough["records_per_cpu_s"]),
                "ratio",
            ),
            _figure("R1 two workers", two["inputs_per_s"], "inputs/s"),
            _figure("R1 two workers / one", round(scaling, 2), "ratio"),
            *(
                _figure(f"R1 worker profile: {a['area']}", round(a["share"] * 100, 1), "%")
                for a in (profiled or {}).get("by_area", [])[:5]
            ),
        ],
    }


def _ratio(a: float | None, b: float | None) -> float | None:
    return round(a / b, 3) if a and b else None


def _figure(
    name: str, value: float | None, unit: str, target: str | None = None, met: bool | None = None
) -> dict[str, Any]:
    return {"figure": name, "value": value, "unit": unit, "target": target, "met": met}


# ---------------------------------------------------------------------------- passthrough


PASSTHROUGH_RUNS = 3


async def _passthrough(opts: BenchOptions, records: list[tuple[bytes, bytes]]) -> dict[str, Any]:
    """The median of three passes over the same records (each a consumer group and an
    output topic of its own): one pass is short, and a moment of load elsewhere on the
    machine would otherwise move the ceiling every ratio divides by."""
    jdir = opts.workdir / "passthrough"
    jdir.mkdir(parents=True, exist_ok=True)
    env = StreamEnv(opts.bootstrap, jdir, jdir, partitions=opts.partitions)
    try:
        s = env.settings()
        source = f"{env.prefix}passthrough.in"
        sinks = [f"{env.prefix}passthrough.out{i}" for i in range(PASSTHROUGH_RUNS)]
        await ensure_topics(s, [source, *sinks])
        await _produce(env, source, records)
        passes = [await _passthrough_pass(env, source, sink, len(records)) for sink in sinks]
        passes.sort(key=lambda p: float(p["records_per_s"]))
        return {
            **passes[len(passes) // 2],
            "passes_records_per_s": [p["records_per_s"] for p in passes],
        }
    finally:
        await env.aclose()


async def _passthrough_pass(env: StreamEnv, source: str, sink: str, n: int) -> dict[str, Any]:
    s = env.settings()
    consumer = AIOKafkaConsumer(
        source,
        bootstrap_servers=s.bootstrap_servers,
        group_id=f"it-{env.run_id}-{sink.rsplit('.', 1)[1]}",
        enable_auto_commit=False,
        auto_offset_reset="earliest",
        **s.security.aiokafka_kwargs(),
    )
    producer = AIOKafkaProducer(
        bootstrap_servers=s.bootstrap_servers,
        acks="all",
        linger_ms=2,
        **s.security.aiokafka_kwargs(),
    )
    await consumer.start()
    await producer.start()
    moved = 0
    size = 0
    deadline = time.monotonic() + STAGE_TIMEOUT_S
    cpu_start = time.process_time()
    try:
        while moved < n and time.monotonic() < deadline:
            batch = await consumer.getmany(timeout_ms=500)
            sends = []
            for recs in batch.values():
                for r in recs:
                    value = orjson.dumps(orjson.loads(r.value))
                    size += len(value)
                    sends.append(await producer.send(sink, value, key=r.key))
            if sends:
                await asyncio.gather(*sends)
                await consumer.commit()
                moved += len(sends)
        cpu = time.process_time() - cpu_start
    finally:
        await producer.stop()
        await consumer.stop()
    out = await span(s, sink)
    return {
        "records": out.records,
        "bytes": size,
        "seconds": round(out.seconds, 3),
        "records_per_s": round(out.records / out.seconds, 1),
        "mb_per_s": round(size / out.seconds / 1e6, 2),
        # this process's CPU over the pass: the client side of the ceiling, per core
        "cpu_s": round(cpu, 3),
        "records_per_cpu_s": round(out.records / max(cpu, 1e-3), 1),
    }


async def _produce(env: StreamEnv, topic: str, records: list[tuple[bytes, bytes]]) -> None:
    s = env.settings()
    producer = AIOKafkaProducer(
        bootstrap_servers=s.bootstrap_servers,
        acks="all",
        linger_ms=20,
        **s.security.aiokafka_kwargs(),
    )
    await producer.start()
    try:
        sends = [await producer.send(topic, value, key=key) for key, value in records]
        await asyncio.gather(*sends)
    finally:
        await producer.stop()


# ---------------------------------------------------------------------------- the engine


async def _engine(
    opts: BenchOptions,
    records: list[tuple[bytes, bytes]],
    *,
    workers: int,
    gateway: bool,
    name: str,
    profile: bool = False,
) -> dict[str, Any]:
    """One engine run; with ``profile``, its one worker runs under cProfile and the result
    is the profile's summary (the rate of a profiled process is not a figure)."""
    workdir = opts.workdir / name
    jdir = workdir / "journeys"
    jdir.mkdir(parents=True, exist_ok=True)
    (jdir / f"{bench_events.JOURNEY_ID}.yaml").write_text(bench_events.JOURNEY)
    env = StreamEnv(
        opts.bootstrap,
        workdir,
        jdir,
        partitions=opts.partitions,
        extra_env={"JOURNEYS_STATS_INTERVAL_S": "5"},
    )
    try:
        s = env.settings()
        await ensure_topics(s, s.topics.all())
        prof = (workdir / "worker.prof").resolve()
        services: list[Service] = (
            [env.start("engine.bench.profiled", "worker", str(prof), "engine.stream.worker")]
            if profile
            else [
                env.start_worker(f"worker{i}" if workers > 1 else "worker") for i in range(workers)
            ]
        )
        gw = env.start_gateway() if gateway else None  # starting at the same time
        ready = [await w.wait_for("worker_ready", 120) for w in services]
        if gw is not None:
            await gw.wait_for("gateway_ready", 120)
        if workers > 1:
            await _wait_group_stable(env, s.app_id, workers)
        expected = len(records) * bench_events.OUTCOMES_PER_USER[gateway]
        everyone = [*services, *([gw] if gw is not None else [])]
        cpu_before = {svc.name: cpu_seconds(svc.proc.pid) for svc in everyone}
        if profile:
            os.kill(services[0].proc.pid, PROFILE_TOGGLE)  # on: the events start now
        await _produce(env, s.topics.user_events, records)
        n = await wait_for_records(s, s.topics.outcomes, expected, STAGE_TIMEOUT_S)
        cpu = {
            svc.name: _delta(cpu_seconds(svc.proc.pid), cpu_before[svc.name]) for svc in everyone
        }
        if profile:
            os.kill(services[0].proc.pid, PROFILE_TOGGLE)  # off: writes the file
        if n < expected:
            tail = "\n".join(svc.tail(15) for svc in services)
            raise RuntimeError(
                f"{name}: {n} of {expected} outcomes after {STAGE_TIMEOUT_S:.0f} s\n{tail}"
            )
        out = await span(s, s.topics.outcomes)
        traffic = await _traffic(env, len(records)) if gateway else None
        inputs = len(records) * bench_events.INPUTS_PER_USER[gateway]
        if profile:
            deadline = time.monotonic() + 60
            while not prof.exists() and time.monotonic() < deadline:
                await asyncio.sleep(0.2)
            if not prof.exists():
                raise RuntimeError(f"{name}: the worker wrote no profile\n{services[0].tail(15)}")
            return {"inputs": inputs, "file": prof.name, **summarize(prof, inputs=inputs)}
        stats = [list(w.events("stats")) for w in services]
        worker_cpu = [cpu[w.name] for w in services]
        per_cpu = (
            round(inputs / sum(c for c in worker_cpu if c is not None), 1)
            if all(c for c in worker_cpu)
            else None
        )
        gateway_cpu = cpu.get("gateway")
        sends = len(records) * bench_events.SENDS_PER_USER
        return {
            "workers": workers,
            "gateway": gateway,
            "outcomes": out.records,
            "expected_outcomes": expected,
            "seconds": round(out.seconds, 3),
            "inputs_per_s": round(inputs / out.seconds, 1),
            "users_per_s": round(len(records) / out.seconds, 1),
            "outcomes_per_s": round(out.records / out.seconds, 1),
            "partitions_per_worker": [r.get("partitions") for r in ready],
            # CPU seconds of each service from the first event produced to the last
            # outcome: the rate per core, whatever else the machine was doing.
            "cpu_s": cpu,
            "inputs_per_worker_cpu_s": per_cpu,
            **({"sends_per_gateway_cpu_s": round(sends / gateway_cpu, 1)} if gateway_cpu else {}),
            **({"traffic": traffic} if traffic is not None else {}),
            "worker_stats": [st[-1] if st else None for st in stats],
        }
    finally:
        await env.aclose()


def cpu_seconds(pid: int) -> float | None:
    """User + system CPU time of a process so far (Linux /proc; None elsewhere)."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except (OSError, IndexError):
        return None
    ticks = os.sysconf("SC_CLK_TCK")
    return (int(fields[11]) + int(fields[12])) / ticks  # utime, stime (fields 14 and 15)


def _delta(after: float | None, before: float | None) -> float | None:
    return None if after is None or before is None else round(after - before, 2)


async def _traffic(env: StreamEnv, users: int) -> dict[str, Any]:
    """What the run wrote to the broker, per topic and per user: records and bytes (key +
    value; the broker's batch overhead and replication come on top). For sizing brokers
    (docs/scaling.md)."""
    from engine.stream.common.topics import admin_client

    s = env.settings()
    admin = admin_client(s, f"it-{env.run_id}-bench-admin")
    await admin.start()
    try:
        mine = sorted(t for t in await admin.list_topics() if env.run_id in t)
    finally:
        await admin.close()
    topics: dict[str, Any] = {}
    total = 0.0
    for topic, (n, mean) in (await volumes(s, mine)).items():
        if not n:
            continue
        name = topic.replace(env.prefix, "").replace(f"it-{env.run_id}-", "{app}-")
        topics[name] = {
            "records_per_user": round(n / users, 2),
            "mean_bytes": round(mean),
            "bytes_per_user": round(n * mean / users),
        }
        total += n * mean
    return {"topics": topics, "bytes_per_user": round(total / users)}


async def _wait_group_stable(
    env: StreamEnv, group: str, members: int, timeout_s: float = 60
) -> None:
    """Until the consumer group has ``members`` members and has been Stable for two looks
    in a row: the first worker's ready line may come before the second joined."""
    from engine.stream.common.topics import admin_client

    admin = admin_client(env.settings(), f"it-{env.run_id}-bench-admin")
    await admin.start()
    try:
        deadline = time.monotonic() + timeout_s
        stable = 0
        while time.monotonic() < deadline:
            (resp,) = await admin.describe_consumer_groups([group])
            _err, _gid, state, _ptype, _proto, found, *_ = resp.groups[0]
            stable = stable + 1 if state == "Stable" and len(found) == members else 0
            if stable >= 2:
                return
            await asyncio.sleep(0.5)
        raise RuntimeError(f"group {group} not stable with {members} members after {timeout_s} s")
    finally:
        await admin.close()
