"""How fast ``journeys ingest`` takes calls, acknowledged by the broker (a script that
prints figures, not a test).

Run: ``.venv/bin/python benchmarks/bench_ingest.py [--batches 200] [--batch-size 100]
[--calls 500] [--concurrency 8]`` (a broker on ``JOURNEYS_BOOTSTRAP``, default
127.0.0.1:9092).

Starts the server in this process on topics of its own (deleted at the end), then:

* ``/v1/batch``: ``--batches`` batches of ``--batch-size`` track calls, ``--concurrency``
  at a time: events per second, each answered only after Kafka acknowledged it;
* ``/v1/track``: ``--calls`` single calls, ``--concurrency`` at a time: calls per second
  and the latency of a call (p50, p99), the broker's acknowledgement included.

The client runs in the same process and on the same cores: the figures are a floor.
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import os
import statistics
import tempfile
import time
import uuid
from pathlib import Path

import aiohttp
import orjson

from engine.stream.devtools.harness import StreamEnv
from engine.stream.ingest.config import IngestConfig, WriteKeys
from engine.stream.ingest.service import IngestService

KEY = "bench-key"
HEADERS = {
    "Authorization": "Basic " + base64.b64encode(f"{KEY}:".encode()).decode(),
    "Content-Type": "application/json",
}


def _track(user: int, n: int) -> dict[str, object]:
    return {
        "type": "track",
        "userId": f"user-{user}",
        "messageId": uuid.uuid4().hex,
        "event": "Order Completed",
        "properties": {"order_id": f"o-{n}", "revenue": 42.5, "items": [{"sku": "A-1"}]},
        "context": {"traits": {"first_name": "Asha", "plan": "premium"}},
    }


async def _run_all(jobs: list[bytes], url: str, concurrency: int) -> list[float]:
    """POST every body, ``concurrency`` at a time; the latency of each, in seconds."""
    queue: asyncio.Queue[bytes] = asyncio.Queue()
    for body in jobs:
        queue.put_nowait(body)
    latencies: list[float] = []

    async def worker(session: aiohttp.ClientSession) -> None:
        while not queue.empty():
            body = queue.get_nowait()
            t0 = time.perf_counter()
            async with session.post(url, data=body, headers=HEADERS) as r:
                assert r.status == 200, await r.text()
                await r.read()
            latencies.append(time.perf_counter() - t0)

    async with aiohttp.ClientSession() as session:
        await asyncio.gather(*(worker(session) for _ in range(concurrency)))
    return latencies


async def bench(args: argparse.Namespace) -> None:
    bootstrap = os.environ.get("JOURNEYS_BOOTSTRAP", "127.0.0.1:9092")
    with tempfile.TemporaryDirectory() as tmp:
        env = StreamEnv(bootstrap, Path(tmp), Path(tmp), partitions=4)
        service = IngestService(env.settings(), IngestConfig(WriteKeys((KEY,)), port=0))
        try:
            port = await service.start()
            base = f"http://127.0.0.1:{port}"
            batches = [
                orjson.dumps(
                    {"batch": [_track(i * args.batch_size + j, j) for j in range(args.batch_size)]}
                )
                for i in range(args.batches)
            ]
            t0 = time.perf_counter()
            await _run_all(batches, base + "/v1/batch", args.concurrency)
            elapsed = time.perf_counter() - t0
            events = args.batches * args.batch_size
            print(
                f"/v1/batch: {events} events in {args.batches} batches of {args.batch_size}, "
                f"{args.concurrency} concurrent: {events / elapsed:,.0f} events/s"
            )
            singles = [orjson.dumps(_track(n, n)) for n in range(args.calls)]
            t0 = time.perf_counter()
            lat = await _run_all(singles, base + "/v1/track", args.concurrency)
            elapsed = time.perf_counter() - t0
            q = statistics.quantiles(lat, n=100)
            print(
                f"/v1/track: {args.calls} calls, {args.concurrency} concurrent: "
                f"{args.calls / elapsed:,.0f} calls/s, latency p50 {q[49] * 1000:.1f} ms, "
                f"p99 {q[98] * 1000:.1f} ms"
            )
        finally:
            await service.stop()
            await env.aclose()


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--batches", type=int, default=200)
    parser.add_argument("--batch-size", type=int, default=100)
    parser.add_argument("--calls", type=int, default=500)
    parser.add_argument("--concurrency", type=int, default=8)
    asyncio.run(bench(parser.parse_args()))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
