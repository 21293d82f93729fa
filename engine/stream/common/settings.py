"""Settings of the stream runtime: command-line flags over environment variables over defaults.

Every setting has an environment variable (``JOURNEYS_*``) and most have a flag; a flag
that was given wins over the variable, and the variable wins over the default.
:func:`add_arguments` adds the flags to an argparse parser;
:meth:`Settings.from_env_and_args` reads them back (unknown or ``None`` attributes are
ignored, so any subset of flags works).

This module imports neither faust nor aiokafka: the CLI can build settings cheaply.
"""

from __future__ import annotations

import argparse
import os
import ssl
from collections.abc import Mapping
from dataclasses import dataclass, field, fields, replace
from functools import cached_property
from pathlib import Path
from typing import Any

from engine.core.wire import TimeWindow
from engine.durations import format_duration, parse_duration_ms, parse_iso_instant
from engine.errors import ConfigError

DEFAULT_BOOTSTRAP = "127.0.0.1:9092"

#: Contract topic names (docs/streaming.md): extend them, never rename them.
DEFAULT_TOPICS: dict[str, str] = {
    "user_events": "journey.user-events",
    "channel_receipts": "journey.channel-receipts",
    "inbound": "journey.inbound",
    "timers": "journey.timers",
    "send_requests": "journey.send-requests",
    "outcomes": "journey.outcomes",
    "dead_letters": "journey.dead-letters",
    "control": "journey.control",  # compacted: splits' winners (engine.stream.decider)
    "traces": "journey.traces",  # trace records of traced users (`journeys explain`)
    # the gateway's message-id map, compacted (engine/stream/gateway/idmap.py)
    "gateway_ids": "journey.gateway-ids",
}

SECURITY_PROTOCOLS = ("PLAINTEXT", "SSL", "SASL_PLAINTEXT", "SASL_SSL")
SASL_MECHANISMS = ("PLAIN", "SCRAM-SHA-256", "SCRAM-SHA-512")


@dataclass(frozen=True)
class Topics:
    """The topics. All are created with the same partition count and keyed by user_id
    (dead letters: by the original key; the gateway's id map: by id), so a user's inputs,
    timers, sends and receipts share one partition number everywhere."""

    user_events: str = DEFAULT_TOPICS["user_events"]
    channel_receipts: str = DEFAULT_TOPICS["channel_receipts"]
    inbound: str = DEFAULT_TOPICS["inbound"]
    timers: str = DEFAULT_TOPICS["timers"]
    send_requests: str = DEFAULT_TOPICS["send_requests"]
    outcomes: str = DEFAULT_TOPICS["outcomes"]
    dead_letters: str = DEFAULT_TOPICS["dead_letters"]
    control: str = DEFAULT_TOPICS["control"]
    traces: str = DEFAULT_TOPICS["traces"]
    gateway_ids: str = DEFAULT_TOPICS["gateway_ids"]

    def engine_inputs(self) -> tuple[str, str, str, str]:
        """What the engine worker consumes (co-partitioned)."""
        return (self.user_events, self.channel_receipts, self.inbound, self.timers)

    def all(self) -> tuple[str, ...]:
        return tuple(getattr(self, f.name) for f in fields(self))


@dataclass(frozen=True)
class Security:
    """SASL / TLS options, passed to faust and aiokafka alike."""

    protocol: str = "PLAINTEXT"
    sasl_mechanism: str = "PLAIN"
    sasl_username: str | None = None
    sasl_password: str | None = field(default=None, repr=False)
    ssl_cafile: str | None = None
    ssl_certfile: str | None = None
    ssl_keyfile: str | None = None
    ssl_check_hostname: bool = True

    def ssl_context(self) -> ssl.SSLContext | None:
        if "SSL" not in self.protocol:
            return None
        ctx = ssl.create_default_context(cafile=self.ssl_cafile)
        ctx.check_hostname = self.ssl_check_hostname
        if self.ssl_certfile:
            ctx.load_cert_chain(self.ssl_certfile, self.ssl_keyfile)
        return ctx

    def aiokafka_kwargs(self) -> dict[str, Any]:
        """Keyword arguments for AIOKafkaProducer / AIOKafkaConsumer / AIOKafkaAdminClient."""
        kw: dict[str, Any] = {"security_protocol": self.protocol}
        ctx = self.ssl_context()
        if ctx is not None:
            kw["ssl_context"] = ctx
        if self.protocol.startswith("SASL"):
            kw["sasl_mechanism"] = self.sasl_mechanism
            kw["sasl_plain_username"] = self.sasl_username
            kw["sasl_plain_password"] = self.sasl_password
        return kw

    def faust_credentials(self) -> Any:
        """faust ``broker_credentials`` (None for PLAINTEXT). Imports faust lazily."""
        if self.protocol == "PLAINTEXT":
            return None
        import faust

        ctx = self.ssl_context()
        if self.protocol == "SSL":
            return faust.SSLCredentials(ctx)
        # SASL_SSL when an SSL context is given, SASL_PLAINTEXT otherwise.
        return faust.SASLCredentials(
            username=self.sasl_username,
            password=self.sasl_password,
            ssl_context=ctx,
            mechanism=self.sasl_mechanism,
        )


@dataclass(frozen=True)
class Settings:
    bootstrap: str = DEFAULT_BOOTSTRAP
    partitions: int = 8
    replication_factor: int = 1
    store: str = "memory://"  # or rocksdb:// (needs the rocksdict package)
    # Consumer group and table namespace of `journeys run` / `journeys gateway`. Unless set
    # explicitly, both start with the topic prefix (``namespace``): everything a run
    # creates -- topics, groups, changelogs (``{app_id}-<table>-changelog``) -- derives
    # from that one namespace, so runs with different prefixes never share state.
    app_id: str = "journeys-engine"
    gateway_app_id: str = "journeys-gateway"
    namespace: str = ""  # JOURNEYS_TOPIC_PREFIX
    topics: Topics = field(default_factory=Topics)
    security: Security = field(default_factory=Security)
    journeys: str | None = None  # directory or file of journeys (worker only)
    data_dir: str = ".journeys-data"  # faust datadir: RocksDB tables live here
    standby_replicas: int = 1
    commit_interval_ms: int = 1000  # how often the checkpoint commits (at most)
    commit_every: int = 2000  # ... or after this many inputs, whichever comes first
    tick_ms: int = 100  # timer ticker resolution
    # Replays only (0 = off): fire a partition's timers only once no input has arrived on it
    # for this long, so a backlog and its receipts are handled before timers that are
    # already due on the wall clock (a file replayed from the past). See docs/streaming.md.
    timer_settle_ms: int = 0
    # A dead worker's partitions wait this long for it (without static membership, a
    # restarted one too): 10 s, not Kafka's 30-45 s (docs/operations.md, recovery).
    session_timeout_ms: int = 8_000  # a dead member is noticed this fast (docs/operations.md)
    heartbeat_interval_ms: int = 1_000
    sim_delivery_ms: int = 5_000  # simulated provider: delivered this long after a send
    # gateway: forget a message's dedupe record this long after its claim (0: never). Keep
    # it above the retention of journey.send-requests, so no replay can outlive it.
    dedupe_retention_h: float = 24 * 14
    log_level: str = "INFO"
    stats_interval_s: float = 10.0  # a `stats` log line this often (0: never)
    trace_inputs: bool = False  # an `input` log line per consumed message (debugging)
    recovery_stall_s: float = 60.0  # fail-stop when table recovery stalls this long (0: never)
    # Input timestamps outside [ts_earliest, min(ts_latest, wall clock + ts_max_future_ms)]
    # are dead-lettered as bad_timestamp (docs/operations.md).
    ts_earliest: str = "2000-01-01T00:00:00Z"
    ts_latest: str = "2100-01-01T00:00:00Z"
    ts_max_future_ms: int = 3_600_000
    # An agent that crashes this many times within 5 minutes stops the process (exit 70).
    agent_max_crashes: int = 2
    # Static group membership (KIP-345): a stable id per worker instance lets a restarted
    # worker take its partitions back without a rebalance (unset: dynamic membership).
    group_instance_id: str | None = None
    # /metrics, /healthz, /readyz (engine/stream/common/ops.py): "" is the service's own
    # default port (worker 9464, gateway 9465), "0" any free port, "off" none.
    metrics_port: str = ""
    metrics_host: str = "127.0.0.1"
    # Trace records to journey.traces (`journeys explain`): for these users, and for this
    # share (0..1) of all users, picked by a hash of the user id. Off by default.
    trace_users: frozenset[str] = field(default_factory=frozenset)
    trace_sample: float = 0.0

    # ------------------------------------------------------------------ building

    @classmethod
    def from_env_and_args(
        cls,
        args: argparse.Namespace | Mapping[str, Any] | None = None,
        env: Mapping[str, str] | None = None,
        **overrides: Any,
    ) -> Settings:
        """Defaults, then ``JOURNEYS_*`` variables from ``env`` (default ``os.environ``),
        then the attributes of ``args`` that are set (not None), then ``overrides``.

        Raises :class:`~engine.errors.ConfigError` for values that don't parse.
        """
        env = os.environ if env is None else env
        values: dict[str, Any] = {}
        for name, var, conv in _ENV:
            raw = env.get(var)
            if raw is not None and raw.strip() != "":
                values[name] = _convert(var, raw.strip(), conv)
        arg_map: Mapping[str, Any]
        if args is None:
            arg_map = {}
        elif isinstance(args, Mapping):
            arg_map = args
        else:
            arg_map = vars(args)
        for name, _var, conv in _ENV:
            v = arg_map.get(name)
            if v is not None:
                values[name] = _convert(f"--{name.replace('_', '-')}", v, conv)
        values.update({k: v for k, v in overrides.items() if v is not None})
        return cls._assemble(values)

    @classmethod
    def _assemble(cls, values: dict[str, Any]) -> Settings:
        prefix = values.pop("topic_prefix", "") or ""
        for name in ("app_id", "gateway_app_id"):
            # The default groups derive from the prefix; a group named explicitly is used
            # as given (a collision with another run is refused at start: namespace.py).
            if not values.get(name):
                values[name] = prefix + getattr(cls, name)
        values["namespace"] = prefix
        topic_kw = {
            key: values.pop(f"topic_{key}", None) or prefix + default
            for key, default in DEFAULT_TOPICS.items()
        }
        sec_kw = {
            f.name: values.pop(f"sec_{f.name}")
            for f in fields(Security)
            if f"sec_{f.name}" in values
        }
        topics = values.pop("topics", None) or Topics(**topic_kw)
        security = values.pop("security", None) or Security(**sec_kw)
        s = cls(topics=topics, security=security, **values)
        s.validate()
        return s

    def validate(self) -> None:
        if self.partitions < 1:
            raise ConfigError(f"partitions must be >= 1, got {self.partitions}")
        if self.replication_factor < 1:
            raise ConfigError(f"replication factor must be >= 1, got {self.replication_factor}")
        if not (self.store.startswith("memory://") or self.store.startswith("rocksdb://")):
            raise ConfigError(
                f"store {self.store!r}: use memory:// (default) or rocksdb:// (JOURNEYS_STORE)"
            )
        if self.security.protocol not in SECURITY_PROTOCOLS:
            raise ConfigError(
                f"security protocol {self.security.protocol!r}: "
                f"use one of {', '.join(SECURITY_PROTOCOLS)}"
            )
        if self.security.sasl_mechanism not in SASL_MECHANISMS:
            raise ConfigError(
                f"SASL mechanism {self.security.sasl_mechanism!r}: "
                f"use one of {', '.join(SASL_MECHANISMS)}"
            )
        if self.security.protocol.startswith("SASL") and not (
            self.security.sasl_username and self.security.sasl_password
        ):
            raise ConfigError("SASL needs JOURNEYS_SASL_USERNAME and JOURNEYS_SASL_PASSWORD")
        names = self.topics.all()
        if len(set(names)) != len(names):
            raise ConfigError(f"topic names must differ: {names}")
        if not 0.0 <= self.trace_sample <= 1.0:
            raise ConfigError(f"JOURNEYS_TRACE_SAMPLE must be 0..1, got {self.trace_sample}")
        if self.session_timeout_ms < 3 * self.heartbeat_interval_ms:
            raise ConfigError("session timeout must be at least 3 heartbeat intervals")
        try:
            earliest = parse_iso_instant(self.ts_earliest)
            latest = parse_iso_instant(self.ts_latest)
        except ValueError as exc:
            raise ConfigError(f"JOURNEYS_TS_EARLIEST / JOURNEYS_TS_LATEST: {exc}") from exc
        if earliest >= latest:
            raise ConfigError(
                f"JOURNEYS_TS_EARLIEST ({self.ts_earliest}) must be before "
                f"JOURNEYS_TS_LATEST ({self.ts_latest})"
            )
        if self.agent_max_crashes < 1:
            raise ConfigError("JOURNEYS_AGENT_MAX_CRASHES must be >= 1")
        if self.metrics_port not in ("", "off") and not (
            self.metrics_port.isdigit() and int(self.metrics_port) <= 65535
        ):
            raise ConfigError(
                f"JOURNEYS_METRICS_PORT must be a port number, 0 (any free port) or off; "
                f"got {self.metrics_port!r}"
            )

    def metrics_bind(self, default_port: int) -> tuple[str, int] | None:
        """Where the operations endpoint listens, or None when it is off."""
        if self.metrics_port == "off":
            return None
        return self.metrics_host, int(self.metrics_port) if self.metrics_port else default_port

    @cached_property
    def _ts_bounds(self) -> tuple[int, int]:
        return parse_iso_instant(self.ts_earliest), parse_iso_instant(self.ts_latest)

    def ts_window(self, now_ms: int) -> TimeWindow:
        """The timestamps an input may carry when the wall clock says ``now_ms``: the
        configured window, cut at ``now_ms`` plus the allowed skew into the future."""
        earliest, latest = self._ts_bounds
        return TimeWindow(earliest, min(latest, now_ms + self.ts_max_future_ms))

    def with_(self, **changes: Any) -> Settings:
        return replace(self, **changes)

    @property
    def bootstrap_servers(self) -> list[str]:
        return [h.strip() for h in self.bootstrap.split(",") if h.strip()]

    def journeys_path(self) -> Path:
        if not self.journeys:
            raise ConfigError("no journeys: pass --journeys DIR (or set JOURNEYS_DIR)")
        p = Path(self.journeys)
        if not p.exists():
            raise ConfigError(f"{p}: no such file or directory (--journeys / JOURNEYS_DIR)")
        return p

    def describe(self) -> dict[str, Any]:
        """For the startup log line (no secrets)."""
        return {
            "bootstrap": self.bootstrap,
            "partitions": self.partitions,
            "replication_factor": self.replication_factor,
            "store": self.store,
            "namespace": self.namespace,
            "app_id": self.app_id,
            "gateway_app_id": self.gateway_app_id,
            "group_instance_id": self.group_instance_id,
            "topics": dict(zip(DEFAULT_TOPICS, self.topics.all(), strict=True)),
            "security_protocol": self.security.protocol,
            "commit_interval_ms": self.commit_interval_ms,
            "tick_ms": self.tick_ms,
            "session_timeout_ms": self.session_timeout_ms,
            "ts_window": [self.ts_earliest, self.ts_latest],
            "ts_max_future": format_duration(self.ts_max_future_ms),
            "traced_users": len(self.trace_users),
            "trace_sample": self.trace_sample,
        }


def _bool(raw: Any) -> bool:
    if isinstance(raw, bool):
        return raw
    s = str(raw).strip().lower()
    if s in ("1", "true", "yes", "on"):
        return True
    if s in ("0", "false", "no", "off"):
        return False
    raise ValueError(f"{raw!r} is not a boolean (use true or false)")


def _convert(where: str, raw: Any, conv: Any) -> Any:
    try:
        return conv(raw)
    except (TypeError, ValueError) as exc:
        raise ConfigError(f"{where}={raw!r}: {exc}") from exc


def _upper(raw: Any) -> str:
    return str(raw).strip().upper()


def _names(raw: Any) -> frozenset[str]:
    """A comma-separated list (``u1,u2``), or an iterable of names."""
    items = raw.split(",") if isinstance(raw, str) else raw
    return frozenset(s.strip() for s in items if s.strip())


# (Settings attribute / pseudo-attribute, environment variable, converter)
_ENV: list[tuple[str, str, Any]] = [
    ("bootstrap", "JOURNEYS_BOOTSTRAP", str),
    ("partitions", "JOURNEYS_PARTITIONS", int),
    ("replication_factor", "JOURNEYS_REPLICATION_FACTOR", int),
    ("store", "JOURNEYS_STORE", str),
    ("app_id", "JOURNEYS_APP_ID", str),
    ("gateway_app_id", "JOURNEYS_GATEWAY_APP_ID", str),
    ("journeys", "JOURNEYS_DIR", str),
    ("data_dir", "JOURNEYS_DATA_DIR", str),
    ("standby_replicas", "JOURNEYS_STANDBY_REPLICAS", int),
    ("commit_interval_ms", "JOURNEYS_COMMIT_INTERVAL_MS", int),
    ("commit_every", "JOURNEYS_COMMIT_EVERY", int),
    ("tick_ms", "JOURNEYS_TICK_MS", int),
    ("timer_settle_ms", "JOURNEYS_TIMER_SETTLE_MS", int),
    ("session_timeout_ms", "JOURNEYS_SESSION_TIMEOUT_MS", int),
    ("heartbeat_interval_ms", "JOURNEYS_HEARTBEAT_INTERVAL_MS", int),
    ("sim_delivery_ms", "JOURNEYS_SIM_DELIVERY_MS", int),
    ("dedupe_retention_h", "JOURNEYS_DEDUPE_RETENTION_H", float),
    ("log_level", "JOURNEYS_LOG_LEVEL", _upper),
    ("stats_interval_s", "JOURNEYS_STATS_INTERVAL_S", float),
    ("trace_inputs", "JOURNEYS_TRACE_INPUTS", _bool),
    ("recovery_stall_s", "JOURNEYS_RECOVERY_STALL_S", float),
    ("ts_earliest", "JOURNEYS_TS_EARLIEST", str),
    ("ts_latest", "JOURNEYS_TS_LATEST", str),
    ("ts_max_future_ms", "JOURNEYS_TS_MAX_FUTURE", parse_duration_ms),
    ("agent_max_crashes", "JOURNEYS_AGENT_MAX_CRASHES", int),
    ("group_instance_id", "JOURNEYS_GROUP_INSTANCE_ID", str),
    ("metrics_port", "JOURNEYS_METRICS_PORT", str),
    ("metrics_host", "JOURNEYS_METRICS_HOST", str),
    ("trace_users", "JOURNEYS_TRACE_USERS", _names),
    ("trace_sample", "JOURNEYS_TRACE_SAMPLE", float),
    ("topic_prefix", "JOURNEYS_TOPIC_PREFIX", str),
    *[(f"topic_{k}", f"JOURNEYS_TOPIC_{k.upper()}", str) for k in DEFAULT_TOPICS],
    ("sec_protocol", "JOURNEYS_SECURITY_PROTOCOL", _upper),
    ("sec_sasl_mechanism", "JOURNEYS_SASL_MECHANISM", _upper),
    ("sec_sasl_username", "JOURNEYS_SASL_USERNAME", str),
    ("sec_sasl_password", "JOURNEYS_SASL_PASSWORD", str),
    ("sec_ssl_cafile", "JOURNEYS_SSL_CAFILE", str),
    ("sec_ssl_certfile", "JOURNEYS_SSL_CERTFILE", str),
    ("sec_ssl_keyfile", "JOURNEYS_SSL_KEYFILE", str),
    ("sec_ssl_check_hostname", "JOURNEYS_SSL_CHECK_HOSTNAME", _bool),
]

ENV_VARS: tuple[str, ...] = tuple(var for _n, var, _c in _ENV)


def add_arguments(parser: argparse.ArgumentParser, *, journeys: bool = False) -> None:
    """Add the common stream flags to ``parser``. Every flag defaults to None, so that
    :meth:`Settings.from_env_and_args` can tell "not given" from a value."""
    g = parser.add_argument_group("Kafka (flags override JOURNEYS_* environment variables)")
    g.add_argument(
        "--bootstrap",
        metavar="HOST:PORT",
        help=f"broker list (default: {DEFAULT_BOOTSTRAP}; JOURNEYS_BOOTSTRAP)",
    )
    g.add_argument(
        "--partitions",
        metavar="N",
        type=int,
        help=f"partitions of created topics (default: {Settings.partitions}; JOURNEYS_PARTITIONS)",
    )
    g.add_argument(
        "--replication-factor",
        metavar="N",
        dest="replication_factor",
        type=int,
        help="replication of created topics "
        f"(default: {Settings.replication_factor}; JOURNEYS_REPLICATION_FACTOR)",
    )
    g.add_argument(
        "--store",
        metavar="URL",
        help=f"table store: memory:// or rocksdb:// (default: {Settings.store}; JOURNEYS_STORE)",
    )
    g.add_argument(
        "--app-id",
        metavar="ID",
        dest="app_id",
        help=f"engine app id / consumer group (default: {Settings.app_id}; JOURNEYS_APP_ID)",
    )
    g.add_argument(
        "--gateway-app-id",
        metavar="ID",
        dest="gateway_app_id",
        help="gateway app id / consumer group "
        f"(default: {Settings.gateway_app_id}; JOURNEYS_GATEWAY_APP_ID)",
    )
    g.add_argument(
        "--topic-prefix",
        metavar="PREFIX",
        dest="topic_prefix",
        help="prefix for every default topic name (default: none; JOURNEYS_TOPIC_PREFIX)",
    )
    g.add_argument(
        "--data-dir",
        metavar="DIR",
        dest="data_dir",
        help=f"local state directory (default: {Settings.data_dir}; JOURNEYS_DATA_DIR)",
    )
    g.add_argument(
        "--security-protocol",
        metavar="PROTOCOL",
        dest="sec_protocol",
        help="PLAINTEXT | SSL | SASL_PLAINTEXT | SASL_SSL "
        f"(default: {Security.protocol}; JOURNEYS_SECURITY_PROTOCOL)",
    )
    g.add_argument(
        "--sasl-mechanism",
        metavar="MECHANISM",
        dest="sec_sasl_mechanism",
        help="PLAIN | SCRAM-SHA-256 | SCRAM-SHA-512 "
        f"(default: {Security.sasl_mechanism}; JOURNEYS_SASL_MECHANISM)",
    )
    g.add_argument(
        "--log-level",
        metavar="LEVEL",
        dest="log_level",
        help=f"DEBUG | INFO | WARNING (default: {Settings.log_level}; JOURNEYS_LOG_LEVEL)",
    )
    if journeys:
        g.add_argument(
            "--journeys",
            metavar="DIR",
            help="directory (or file) of journeys (no default: pass it or set JOURNEYS_DIR)",
        )
