"""The fake Google + RBM + Twilio (tests/fakes/providers.py) as a child process, driven
through its control API, and the settings that point ``journeys gateway`` at it.

The fakes outlive any number of gateway restarts (``kill -9`` tests): what reached the
"users" is counted there, not in the process under test.
"""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import aiohttp

from tests.fakes.providers import DEFAULT_ACCOUNT_SID, DEFAULT_AUTH_TOKEN

ROOT = Path(__file__).resolve().parents[2]
AGENT_ID = "test-agent"
CLIENT_TOKEN = "client-token"
SENDER = "+15005550006"


class FakeProcess:
    def __init__(self, workdir: Path, webhook_port: int, *args: str) -> None:
        """``webhook_port``: where the gateway's webhook server will listen; ``args``:
        more flags (``--auto-deliver-ms 500``...)."""
        self.workdir = workdir
        self.webhook_port = webhook_port
        self.key = workdir / "service-account.json"
        self.args = args
        self.base_url = ""
        self.proc: subprocess.Popen[str] | None = None
        self._session: aiohttp.ClientSession | None = None

    @property
    def webhook_base(self) -> str:
        return f"http://127.0.0.1:{self.webhook_port}"

    async def start(self) -> FakeProcess:
        cmd = [
            sys.executable,
            "-m",
            "tests.fakes.providers",
            "--port",
            "0",
            "--webhook-base",
            self.webhook_base,
            "--service-account",
            str(self.key),
            "--agent-id",
            AGENT_ID,
            "--client-token",
            CLIENT_TOKEN,
            *self.args,
        ]
        env = {**os.environ, "PYTHONPATH": str(ROOT)}
        log = open(self.workdir / "fake-providers.log", "ab")  # noqa: SIM115  # the child's
        self.proc = subprocess.Popen(
            cmd, cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=log, text=True
        )
        log.close()
        assert self.proc.stdout is not None
        line = await asyncio.get_running_loop().run_in_executor(None, self.proc.stdout.readline)
        self.base_url = f"http://127.0.0.1:{int(line)}"  # printed once it listens
        self._session = aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=30))
        return self

    def gateway_env(self) -> dict[str, str]:
        """Every setting ``journeys gateway --rcs rbm --sms twilio`` needs, at the fakes."""
        return {
            "JOURNEYS_RBM_AGENT_ID": AGENT_ID,
            "JOURNEYS_RBM_SERVICE_ACCOUNT": str(self.key),
            "JOURNEYS_RBM_BASE_URL": self.base_url,
            "JOURNEYS_RBM_WEBHOOK_TOKEN": CLIENT_TOKEN,
            "JOURNEYS_TWILIO_ACCOUNT_SID": DEFAULT_ACCOUNT_SID,
            "JOURNEYS_TWILIO_AUTH_TOKEN": DEFAULT_AUTH_TOKEN,
            "JOURNEYS_TWILIO_FROM": SENDER,
            "JOURNEYS_TWILIO_BASE_URL": self.base_url,
            "JOURNEYS_WEBHOOK_PORT": str(self.webhook_port),
            "JOURNEYS_WEBHOOK_PUBLIC_URL": self.webhook_base,
        }

    async def get(self, path: str) -> Any:
        assert self._session is not None, "start() first"
        async with self._session.get(self.base_url + path) as resp:
            assert resp.status == 200, f"GET {path}: {resp.status} {await resp.text()}"
            return await resp.json()

    async def post(self, path: str, body: Any = None) -> Any:
        assert self._session is not None, "start() first"
        async with self._session.post(self.base_url + path, json=body) as resp:
            assert resp.status == 200, f"POST {path}: {resp.status} {await resp.text()}"
            return await resp.json()

    async def counts(self) -> dict[str, Any]:
        counts: dict[str, Any] = await self.get("/_fake/counts")
        return counts

    async def messages(self) -> dict[str, Any]:
        messages: dict[str, Any] = await self.get("/_fake/messages")
        return messages

    async def script(self, **spec: Any) -> Any:
        return await self.post("/_fake/script", spec)

    async def stop(self) -> None:
        if self._session is not None:
            await self._session.close()
        if self.proc is not None:
            self.proc.kill()
            self.proc.wait(timeout=10)
            if self.proc.stdout is not None:
                self.proc.stdout.close()
