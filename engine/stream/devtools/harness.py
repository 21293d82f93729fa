"""Run the stream services as child processes, for integration tests and benchmarks.

Each :class:`StreamEnv` has its own topic prefix, app ids and data directory, so runs never
share state on a long-lived broker. Services are started as ``python -m
engine.stream.worker`` / ``python -m engine.stream.gateway`` with the settings in
their environment; their JSON logs go to files that :meth:`Service.events` parses.
"""

from __future__ import annotations

import asyncio
import os
import signal
import socket
import subprocess
import sys
import time
import uuid
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import orjson
from aiokafka import AIOKafkaProducer

from engine.stream.common.checkpoint import EXIT_FAIL_STOP
from engine.stream.common.settings import Settings
from engine.stream.devtools.outcomes import read_topic


def free_port() -> int:
    """A TCP port nobody listens on now (for a child's server)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@dataclass
class Service:
    """A child process. Like a process supervisor would, the harness starts it again when it
    exits with the fail-stop code (75): a fail-stop is a planned exit, a restart resumes
    from the last checkpoint. ``restarts`` counts them."""

    name: str
    proc: subprocess.Popen[bytes]
    log_path: Path
    argv: list[str] = field(default_factory=list)
    env: dict[str, str] = field(default_factory=dict)
    cwd: Path | None = None
    restarts: int = 0

    def spawn(self) -> None:
        with open(self.log_path, "ab") as fh:
            self.proc = subprocess.Popen(
                self.argv, env=self.env, stdout=fh, stderr=subprocess.STDOUT, cwd=self.cwd
            )

    def supervise(self) -> None:
        if self.proc.poll() == EXIT_FAIL_STOP:
            self.restarts += 1
            with open(self.log_path, "ab") as fh:
                fh.write(b'{"event": "harness_restart", "after": "fail_stop"}\n')
            self.spawn()

    def events(self, name: str | None = None) -> Iterator[dict[str, Any]]:
        """Our structured log lines (optionally only those with ``event == name``)."""
        try:
            data = self.log_path.read_bytes()
        except FileNotFoundError:
            return
        for line in data.splitlines():
            if not line.startswith(b"{"):
                continue
            try:
                d = orjson.loads(line)
            except orjson.JSONDecodeError:
                continue
            if name is None or d.get("event") == name:
                yield d

    def count(self, name: str) -> int:
        return sum(1 for _ in self.events(name))

    async def wait_for(self, name: str, timeout: float = 60.0, n: int = 1) -> dict[str, Any]:
        deadline = time.monotonic() + timeout
        while True:
            found = list(self.events(name))
            if len(found) >= n:
                return found[n - 1]
            self.supervise()
            if self.proc.poll() is not None:
                raise AssertionError(
                    f"{self.name} exited with {self.proc.returncode} before {name!r}:\n"
                    + self.tail()
                )
            if time.monotonic() > deadline:
                raise AssertionError(f"{self.name}: no {name!r} after {timeout} s:\n" + self.tail())
            await asyncio.sleep(0.1)

    def tail(self, n: int = 40) -> str:
        try:
            return "\n".join(self.log_path.read_text(errors="replace").splitlines()[-n:])
        except FileNotFoundError:
            return "(no log)"

    def kill(self) -> None:
        """SIGKILL: no shutdown, no final commit."""
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGKILL)
            self.proc.wait(10)

    def stop(self, timeout: float = 20.0) -> int | None:
        """SIGTERM, then SIGKILL after ``timeout``."""
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(10)
        return self.proc.returncode


@dataclass
class StreamEnv:
    bootstrap: str
    workdir: Path
    journeys: Path
    partitions: int = 4
    run_id: str = field(default_factory=lambda: uuid.uuid4().hex[:10])
    extra_env: dict[str, str] = field(default_factory=dict)
    services: list[Service] = field(default_factory=list)
    _supervisor: asyncio.Future[None] | None = None

    @property
    def prefix(self) -> str:
        return f"it.{self.run_id}."

    def env(self) -> dict[str, str]:
        # These pass through, so the suite can run on rocksdb:// as well, or traced.
        keep = ("JOURNEYS_STORE", "JOURNEYS_TRACE_INPUTS", "JOURNEYS_LOG_LEVEL")
        env = {k: v for k, v in os.environ.items() if not k.startswith("JOURNEYS_") or k in keep}
        env.update(
            {
                "JOURNEYS_BOOTSTRAP": self.bootstrap,
                "JOURNEYS_TOPIC_PREFIX": self.prefix,
                "JOURNEYS_APP_ID": f"it-{self.run_id}-engine",
                "JOURNEYS_GATEWAY_APP_ID": f"it-{self.run_id}-gateway",
                "JOURNEYS_PARTITIONS": str(self.partitions),
                "JOURNEYS_DIR": str(self.journeys),
                "JOURNEYS_SESSION_TIMEOUT_MS": "6000",
                "JOURNEYS_HEARTBEAT_INTERVAL_MS": "1000",
                "JOURNEYS_COMMIT_INTERVAL_MS": "500",
                "JOURNEYS_STATS_INTERVAL_S": "2",
                "JOURNEYS_RECOVERY_STALL_S": "15",
                "PYTHONUNBUFFERED": "1",
                # Several services on one host: each takes any free port for /metrics.
                "JOURNEYS_METRICS_PORT": "0",
            }
        )
        env.update(self.extra_env)
        return env

    def settings(self) -> Settings:
        return Settings.from_env_and_args(env=self.env())

    def start(self, module: str, name: str, *args: str, **env: str) -> Service:
        svc = Service(
            name,
            proc=None,  # type: ignore[arg-type]  # spawn() sets it
            log_path=self.workdir / f"{name}.log",
            argv=[sys.executable, "-m", module, *args],
            # One data directory per service, as if each ran on its own host (RocksDB
            # locks its files); a restart passes the old one to get its local state back.
            # Static group membership, as in production: one instance id per service
            # name, so a service restarted under its name takes its partitions back.
            env={
                **self.env(),
                "JOURNEYS_DATA_DIR": str(self.workdir / f"data-{name}"),
                "JOURNEYS_GROUP_INSTANCE_ID": f"it-{self.run_id}-{name}",
                **env,
            },
            cwd=self.workdir,
        )
        svc.spawn()
        self.services.append(svc)
        if self._supervisor is None:
            self._supervisor = asyncio.ensure_future(self._supervise())
        return svc

    async def _supervise(self) -> None:
        while True:
            for svc in self.services:
                svc.supervise()
            await asyncio.sleep(0.2)

    def start_worker(self, name: str = "worker", **env: str) -> Service:
        return self.start("engine.stream.worker", name, **env)

    def start_gateway(
        self, name: str = "gateway", *, rcs: str = "simulated", sms: str = "simulated", **env: str
    ) -> Service:
        """A gateway with these providers (their settings in ``env``), its webhook server
        on a free port unless ``JOURNEYS_WEBHOOK_PORT`` is given (``Service.env`` has it;
        a restart keeps it)."""
        env.setdefault("JOURNEYS_WEBHOOK_PORT", str(free_port()))
        return self.start("engine.stream.gateway", name, "--rcs", rcs, "--sms", sms, **env)

    def close(self) -> None:
        if self._supervisor is not None:
            self._supervisor.cancel()
            self._supervisor = None
        for svc in self.services:
            if svc.proc.poll() is None:
                svc.kill()

    async def aclose(self) -> None:
        """Kill the services and delete every topic of this run (a long-lived broker
        would otherwise collect thousands)."""
        self.close()
        from engine.stream.common.topics import admin_client

        admin = admin_client(self.settings(), f"it-{self.run_id}-cleanup")
        await admin.start()
        try:
            mine = [t for t in await admin.list_topics() if self.run_id in t]
            if mine:
                await admin.delete_topics(mine)
        finally:
            await admin.close()

    # ------------------------------------------------------------------ Kafka helpers

    async def produce(
        self,
        records: Iterable[tuple[str, bytes | None, bytes | None]],
        *,
        at: Iterable[float] | None = None,
    ) -> None:
        """Produce (topic, key, value) records; with ``at`` (epoch seconds per record),
        each is produced when its time comes."""
        s = self.settings()
        producer = AIOKafkaProducer(
            bootstrap_servers=s.bootstrap_servers, acks="all", max_request_size=2 * 1024 * 1024
        )
        await producer.start()
        try:
            times = list(at) if at is not None else None
            for i, (topic, key, value) in enumerate(records):
                if times is not None:
                    wait = times[i] - time.time()
                    if wait > 0:
                        await asyncio.sleep(wait)
                await producer.send_and_wait(topic, value, key=key)
        finally:
            await producer.stop()

    async def read(self, topic: str) -> list[tuple[bytes | None, bytes]]:
        return [kv async for kv in read_topic(self.settings(), topic, follow=False)]

    async def read_json(self, topic: str) -> list[dict[str, Any]]:
        return [orjson.loads(v) for _k, v in await self.read(topic)]
