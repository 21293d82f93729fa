"""A secured cluster: SASL (SCRAM-SHA-512) over TLS, on a second local broker that this
module starts with ``deploy/local-kafka.sh`` (``KAFKA_SECURE=1``: a keytool-made
certificate, SCRAM users made when the storage is formatted).

Every client passes the settings through (worker, gateway, ``journeys produce``,
``journeys outcomes``, ``journeys stats``, the stats service); a wrong password stops each
one at start with a message naming the variables; the password never reaches a log.
"""

from __future__ import annotations

import asyncio
import os
import secrets
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import orjson
import pytest

from engine.durations import format_ts
from engine.stats.service import ServiceConfig, StatsService
from engine.stream.common.settings import Settings
from engine.stream.devtools.harness import StreamEnv

ROOT = Path(__file__).resolve().parents[2]
USER = "journeys-it"

JOURNEY = """
id: secured-it
version: 1
entry: {event: signed_up}
start: hello
nodes:
  hello: {type: send, channel: sms, marketing: false, text: "Hi", next: done}
  done: {type: exit}
"""


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class SecuredBroker:
    def __init__(self, run_dir: Path, password: str) -> None:
        self.run_dir = run_dir
        self.password = password
        self.port = _free_port()
        self.controller_port = _free_port()
        users = run_dir.parent / "scram-users"
        users.write_text(f"{USER}:{password}\n")
        users.chmod(0o600)
        self.script_env = {
            **os.environ,
            "KAFKA_SECURE": "1",
            "KAFKA_PORT": str(self.port),
            "KAFKA_CONTROLLER_PORT": str(self.controller_port),
            "KAFKA_RUN_DIR": str(run_dir),
            "KAFKA_SCRAM_USERS_FILE": str(users),
        }

    def script(self, action: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            ["bash", str(ROOT / "deploy" / "local-kafka.sh"), action],
            env=self.script_env,
            capture_output=True,
            text=True,
            timeout=180,
        )

    def env(self, password: str | None = None) -> dict[str, str]:
        return {
            "JOURNEYS_BOOTSTRAP": f"127.0.0.1:{self.port}",
            "JOURNEYS_SECURITY_PROTOCOL": "SASL_SSL",
            "JOURNEYS_SASL_MECHANISM": "SCRAM-SHA-512",
            "JOURNEYS_SASL_USERNAME": USER,
            "JOURNEYS_SASL_PASSWORD": password if password is not None else self.password,
            "JOURNEYS_SSL_CAFILE": str(self.run_dir / "tls" / "ca.pem"),
        }


@pytest.fixture(scope="module")
def secured(tmp_path_factory: pytest.TempPathFactory) -> Iterator[SecuredBroker]:
    base = tmp_path_factory.mktemp("secured-kafka")
    broker = SecuredBroker(base / "run", "pw-" + secrets.token_urlsafe(18))
    started = broker.script("start")
    assert started.returncode == 0, f"secured broker did not start:\n{started.stderr[-3000:]}"
    try:
        yield broker
    finally:
        broker.script("stop")


def _cli(env: dict[str, str], *args: str, timeout: float = 90) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "engine.cli", *args],
        env={**os.environ, **env},
        capture_output=True,
        text=True,
        timeout=timeout,
    )


def _events(path: Path, n: int) -> list[str]:
    now = int(time.time() * 1000)
    users = [f"s{i:02d}" for i in range(n)]
    lines = [
        {
            "event_id": f"e-{u}",
            "user_id": u,
            "name": "signed_up",
            "ts": format_ts(now + i),
            "profile": {"phone": "+14155550100"},
        }
        for i, u in enumerate(users)
    ]
    path.write_bytes(b"".join(orjson.dumps(d) + b"\n" for d in lines))
    return users


@pytest.mark.timeout(240)
async def test_every_client_works_on_a_secured_cluster(
    secured: SecuredBroker, tmp_path: Path
) -> None:
    jdir = tmp_path / "journeys"
    jdir.mkdir()
    (jdir / "secured.yaml").write_text(JOURNEY)
    env = StreamEnv(secured.env()["JOURNEYS_BOOTSTRAP"], tmp_path, jdir, partitions=2)
    env.extra_env.update(secured.env())
    try:
        worker, gateway = env.start_worker(), env.start_gateway()
        await worker.wait_for("worker_ready", 90)
        await gateway.wait_for("gateway_ready", 90)

        users = _events(tmp_path / "events.jsonl", 5)
        produced = _cli(env.env(), "produce", str(tmp_path / "events.jsonl"))
        assert produced.returncode == 0, produced.stderr[-2000:]

        done: set[str] = set()
        deadline = time.monotonic() + 90
        while time.monotonic() < deadline and done != set(users):
            out = _cli(env.env(), "outcomes")
            assert out.returncode == 0, out.stderr[-2000:]
            outcomes = [orjson.loads(line) for line in out.stdout.splitlines() if line.strip()]
            done = {o["user_id"] for o in outcomes if o["type"] == "message_delivered"}
            await asyncio.sleep(1)
        assert done == set(users), f"delivered to {sorted(done)} of {users}"

        stats = _cli(env.env(), "stats", "--json")
        assert stats.returncode == 0, stats.stderr[-2000:]
        assert "secured-it" in stats.stdout

        settings = Settings.from_env_and_args(env=env.env())
        service = StatsService(
            ServiceConfig(
                settings.bootstrap,
                settings.topics.outcomes,
                str(jdir),
                port=0,
                group_id=f"it-{env.run_id}-stats",
                kafka=settings.security.aiokafka_kwargs(),
            )
        )
        await service.start()
        try:
            deadline = time.monotonic() + 60
            while time.monotonic() < deadline and not service.stats.journeys():
                await asyncio.sleep(0.5)
            assert ("secured-it", 1) in service.stats.journeys()
        finally:
            await service.stop()
    finally:
        await env.aclose()
    logs = b"".join(p.read_bytes() for p in tmp_path.glob("*.log"))
    assert logs, "the services wrote no logs: the secrets check below proves nothing"
    assert secured.password.encode() not in logs


@pytest.mark.timeout(240)
async def test_a_wrong_password_stops_every_client_at_start(
    secured: SecuredBroker, tmp_path: Path
) -> None:
    jdir = tmp_path / "journeys"
    jdir.mkdir()
    (jdir / "secured.yaml").write_text(JOURNEY)
    wrong = "wrong-" + secrets.token_urlsafe(12)
    env = StreamEnv(secured.env()["JOURNEYS_BOOTSTRAP"], tmp_path, jdir, partitions=2)
    env.extra_env.update(secured.env(wrong))
    _events(tmp_path / "events.jsonl", 1)
    try:
        for svc in (env.start_worker(), env.start_gateway()):
            deadline = time.monotonic() + 60
            while svc.proc.poll() is None and time.monotonic() < deadline:
                await asyncio.sleep(0.2)
            assert svc.proc.poll() not in (None, 0), f"{svc.name} kept running"
            log = svc.log_path.read_text()
            assert "JOURNEYS_SASL_PASSWORD" in log, log[-2000:]
            assert wrong not in log
        for args in (["produce", str(tmp_path / "events.jsonl")], ["outcomes"], ["stats"]):
            res = _cli(env.env(), *args)
            assert res.returncode != 0, args
            assert "JOURNEYS_SASL_PASSWORD" in res.stderr, (args, res.stderr[-2000:])
            assert "Traceback" not in res.stderr, (args, res.stderr[-2000:])
            assert wrong not in res.stdout + res.stderr
    finally:
        env.close()
