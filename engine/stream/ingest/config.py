"""The settings of ``journeys ingest`` that are not Kafka's: write keys, where to listen,
the profile event. Secrets from the environment (or a file it names), never the command
line; a missing write key stops the server before it listens, naming the variable."""

from __future__ import annotations

import argparse
import hmac
import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path

from engine.errors import ConfigError
from engine.stream.ingest.segment import DEFAULT_PROFILE_EVENT

WRITE_KEY_VAR = "JOURNEYS_INGEST_WRITE_KEY"
WRITE_KEY_FILE_VAR = "JOURNEYS_INGEST_WRITE_KEY_FILE"
PROFILE_EVENT_VAR = "JOURNEYS_PROFILE_EVENT"
PORT_VAR = "JOURNEYS_INGEST_PORT"
BIND_VAR = "JOURNEYS_INGEST_BIND"
DEFAULT_PORT = 8089  # the gateway's webhook server has 8088, the dashboard 8090
DEFAULT_BIND = "127.0.0.1"


@dataclass(frozen=True)
class WriteKeys:
    """The accepted write keys (several during a rotation). ``repr`` never shows them."""

    keys: tuple[str, ...] = field(repr=False)

    def accepts(self, candidate: str | None) -> bool:
        if not candidate:
            return False
        given = candidate.encode()
        # Every key compared, in constant time: the answer's timing says nothing.
        return any([hmac.compare_digest(given, k.encode()) for k in self.keys])

    def redact(self, raw: bytes) -> bytes:
        """``raw`` with every key replaced: the body of a dead letter must not carry one."""
        for k in self.keys:
            raw = raw.replace(k.encode(), b"[write key]")
        return raw


def _split(text: str) -> tuple[str, ...]:
    """Keys separated by commas or new lines (a file may hold one per line)."""
    parts = text.replace("\n", ",").split(",")
    return tuple(dict.fromkeys(p.strip() for p in parts if p.strip()))


def write_keys(env: Mapping[str, str]) -> WriteKeys:
    """The write keys from ``JOURNEYS_INGEST_WRITE_KEY`` (comma-separated) or the file
    ``JOURNEYS_INGEST_WRITE_KEY_FILE`` names (one per line); ConfigError when there are
    none, or both are set."""
    value, path = env.get(WRITE_KEY_VAR, "").strip(), env.get(WRITE_KEY_FILE_VAR, "").strip()
    if value and path:
        raise ConfigError(f"set {WRITE_KEY_VAR} or {WRITE_KEY_FILE_VAR}, not both")
    if path:
        try:
            value = Path(path).read_text(encoding="utf-8")
        except OSError as exc:
            raise ConfigError(
                f"{WRITE_KEY_FILE_VAR}={path}: can't read it ({exc.strerror}); point it at a "
                "file with one write key per line"
            ) from exc
        if not _split(value):
            raise ConfigError(f"{WRITE_KEY_FILE_VAR}={path}: the file holds no write key")
    keys = _split(value)
    if not keys:
        raise ConfigError(
            f"{WRITE_KEY_VAR} is not set: set it to the write key your Segment or RudderStack "
            f"source sends (several: comma-separated), or {WRITE_KEY_FILE_VAR} to a file "
            "holding it"
        )
    return WriteKeys(keys)


def _port(raw: str, where: str) -> int:
    if not (raw.isascii() and raw.isdigit()) or int(raw) > 65535:
        raise ConfigError(f"{where}={raw!r} is not a TCP port: use 1 to 65535, or 0 (any free)")
    return int(raw)


@dataclass(frozen=True)
class IngestConfig:
    keys: WriteKeys
    port: int = DEFAULT_PORT
    bind: str = DEFAULT_BIND
    profile_event: str = DEFAULT_PROFILE_EVENT

    @classmethod
    def from_env(
        cls,
        env: Mapping[str, str] | None = None,
        *,
        port: int | None = None,
        bind: str | None = None,
    ) -> IngestConfig:
        """From ``env`` (default ``os.environ``); ``port`` / ``bind`` (the flags) win over
        ``JOURNEYS_INGEST_PORT`` / ``JOURNEYS_INGEST_BIND``."""
        env = os.environ if env is None else env
        keys = write_keys(env)
        if port is None:
            raw = env.get(PORT_VAR, "").strip()
            port = _port(raw, PORT_VAR) if raw else DEFAULT_PORT
        elif not 0 <= port <= 65535:
            raise ConfigError(f"--port {port}: use 1 to 65535, or 0 (any free port)")
        bind = bind or env.get(BIND_VAR, "").strip() or DEFAULT_BIND
        profile_event = env.get(PROFILE_EVENT_VAR, "").strip() or DEFAULT_PROFILE_EVENT
        return cls(keys, port, bind, profile_event)


def add_ingest_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--port",
        type=int,
        metavar="PORT",
        help=f"port to listen on, 0: any free one (default: {DEFAULT_PORT}; {PORT_VAR})",
    )
    parser.add_argument(
        "--bind",
        metavar="ADDRESS",
        help=f"address to listen on (default: {DEFAULT_BIND}; {BIND_VAR})",
    )
