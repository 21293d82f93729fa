"""Provider settings from the environment, and the factories that build the adapters.

``journeys gateway --rcs simulated|rbm --sms simulated|twilio`` picks the providers;
everything else (secrets included) comes from ``JOURNEYS_*`` variables, never from the
command line. :meth:`ProviderSettings.from_env` checks every variable the chosen
providers need *before* anything starts and raises one :class:`~engine.errors.ConfigError`
that names each wrong variable (one line each), so the gateway can exit non-zero having
consumed nothing.

========================================  ===========================================
``JOURNEYS_RBM_AGENT_ID``                 the RBM agent id (``--rcs rbm``)
``JOURNEYS_RBM_SERVICE_ACCOUNT``          path of the service-account JSON key
``JOURNEYS_RBM_BASE_URL``                 default ``https://rcsbusinessmessaging.googleapis.com``
``JOURNEYS_RBM_WEBHOOK_TOKEN``            the webhook's client token (``X-Goog-Signature``)
``JOURNEYS_RBM_RATE``                     sends per second, all instances together (optional)
``JOURNEYS_TWILIO_ACCOUNT_SID``           ``AC`` + 32 hex digits (``--sms twilio``)
``JOURNEYS_TWILIO_AUTH_TOKEN``            the account's auth token
``JOURNEYS_TWILIO_FROM``                  an E.164 number or a messaging service SID ``MG...``
``JOURNEYS_TWILIO_BASE_URL``              default ``https://api.twilio.com``
``JOURNEYS_TWILIO_RATE``                  sends per second, all instances together (optional)
``JOURNEYS_WEBHOOK_PORT``                 the webhook server's port, default 8088
``JOURNEYS_WEBHOOK_PUBLIC_URL``           its public base URL (required with rbm or twilio)
``JOURNEYS_GATEWAY_CONCURRENCY``          provider calls in flight at once, default 32
``JOURNEYS_CAPABILITY_TTL_S``             how long an RCS capability answer is kept, 3600
========================================  ===========================================

Secrets (auth token, webhook token) are left out of the dataclasses' ``repr`` and out of
every error message.
"""

from __future__ import annotations

import math
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Final, TypeVar
from urllib.parse import urlsplit

from engine.channels.providers.base import RcsProvider, SmsProvider
from engine.channels.providers.google_token import (
    SERVICE_ACCOUNT_VAR,
    ServiceAccountTokenSource,
    load_credentials,
)
from engine.channels.providers.rbm import RBM_BASE_URL, RbmProvider
from engine.channels.providers.simulated import CONTRACT_DELIVERY_MS, SimulatedProvider
from engine.channels.providers.twilio import TWILIO_BASE_URL, TwilioSmsProvider, sender_fields
from engine.channels.ratelimit import RateLimit
from engine.errors import ConfigError

Env = Mapping[str, str]
T = TypeVar("T")

RCS_KINDS: Final = ("simulated", "rbm")
SMS_KINDS: Final = ("simulated", "twilio")
RBM_WEBHOOK_PATH: Final = "/webhooks/rbm"
TWILIO_WEBHOOK_PATH: Final = "/webhooks/twilio"
DEFAULT_WEBHOOK_PORT: Final = 8088
DEFAULT_CONCURRENCY: Final = 32
DEFAULT_CAPABILITY_TTL_S: Final = 3600.0

AGENT_ID: Final = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]*$")
ACCOUNT_SID: Final = re.compile(r"^AC[0-9a-fA-F]{32}$")


class _Problems:
    """Every wrong variable, collected so the operator fixes them in one go."""

    def __init__(self) -> None:
        self.lines: list[str] = []

    def add(self, var: str, problem: str) -> None:
        self.lines.append(f"{var}: {problem}")

    def check(self, var: str, parse: Callable[[], T]) -> T | None:
        """``parse()``, or ``None`` with its ConfigError / ValueError recorded."""
        try:
            return parse()
        except ConfigError as exc:
            self.lines.append(str(exc))
        except ValueError as exc:
            self.add(var, str(exc))
        return None

    def raise_if_any(self) -> None:
        if self.lines:
            raise ConfigError("provider settings:\n  " + "\n  ".join(self.lines))


def _required(env: Env, var: str, problems: _Problems, what: str) -> str | None:
    value = env.get(var)
    if value is None:
        problems.add(var, f"not set ({what})")
        return None
    if not value.strip():
        problems.add(var, f"empty ({what})")
        return None
    return value.strip()


def _url(value: str) -> str:
    """An http(s) base URL without query or fragment, trailing ``/`` removed."""
    parts = urlsplit(value)
    if parts.scheme not in ("http", "https") or not parts.netloc:
        raise ValueError(f"not an http(s) URL with a host: {value!r}")
    if parts.query or parts.fragment:
        raise ValueError(f"a base URL has no query or fragment: {value!r}")
    return value.rstrip("/")


def _optional_url(env: Env, var: str, default: str, problems: _Problems) -> str:
    value = env.get(var, "").strip()
    if not value:
        return default
    return problems.check(var, lambda: _url(value)) or default


def _rate(value: str) -> float:
    try:
        rate = float(value)
    except ValueError:
        raise ValueError(f"not a number of sends per second: {value!r}") from None
    if not math.isfinite(rate) or rate <= 0:
        raise ValueError(f"must be a positive number of sends per second, got {value!r}")
    return rate


def _optional_rate(env: Env, var: str, problems: _Problems) -> float | None:
    value = env.get(var, "").strip()
    return problems.check(var, lambda: _rate(value)) if value else None


def _count(value: str) -> int:
    try:
        n = int(value)
    except ValueError:
        raise ValueError(f"not a whole number: {value!r}") from None
    if not 1 <= n <= 10_000:
        raise ValueError(f"must be 1..10000, got {n}")
    return n


def _seconds(value: str) -> float:
    try:
        s = float(value)
    except ValueError:
        raise ValueError(f"not a number of seconds: {value!r}") from None
    if not math.isfinite(s) or s < 0:
        raise ValueError(f"must be a number of seconds >= 0, got {value!r}")
    return s


def _port(value: str) -> int:
    try:
        port = int(value)
    except ValueError:
        raise ValueError(f"not a port number: {value!r}") from None
    if not 0 <= port <= 65535:
        raise ValueError(f"a port is 0..65535, got {port}")
    return port


# --------------------------------------------------------------------------- settings


@dataclass(frozen=True, slots=True)
class RbmConfig:
    agent_id: str
    service_account: str  # the key's path; the key itself is read by the token source
    webhook_token: str = field(repr=False)
    base_url: str = RBM_BASE_URL
    rate_per_s: float | None = None

    @classmethod
    def from_env(cls, env: Env) -> RbmConfig:
        return _parsed(lambda problems: cls._parse(env, problems))

    @classmethod
    def _parse(cls, env: Env, problems: _Problems) -> RbmConfig | None:
        agent = _required(env, "JOURNEYS_RBM_AGENT_ID", problems, "the RBM agent id")
        if agent is not None and not AGENT_ID.match(agent):
            problems.add("JOURNEYS_RBM_AGENT_ID", f"not an agent id: {agent!r}")
            agent = None
        key = _required(env, SERVICE_ACCOUNT_VAR, problems, "path of the service-account key")
        if key is not None:
            # read and parse the key now, so a bad one stops the start, not the first send
            path = key
            if problems.check(SERVICE_ACCOUNT_VAR, lambda: load_credentials(path)) is None:
                key = None
        token = _required(
            env, "JOURNEYS_RBM_WEBHOOK_TOKEN", problems, "the client token of the RBM webhook"
        )
        base = _optional_url(env, "JOURNEYS_RBM_BASE_URL", RBM_BASE_URL, problems)
        rate = _optional_rate(env, "JOURNEYS_RBM_RATE", problems)
        if agent is None or key is None or token is None:
            return None
        return cls(agent, key, token, base, rate)


def _parsed(parse: Callable[[_Problems], T | None]) -> T:
    """Parse one provider's settings; every problem at once in one ConfigError."""
    problems = _Problems()
    cfg = parse(problems)
    problems.raise_if_any()
    assert cfg is not None  # no problem, so the parse gave a value
    return cfg


@dataclass(frozen=True, slots=True)
class TwilioConfig:
    account_sid: str
    auth_token: str = field(repr=False)
    sender: str  # JOURNEYS_TWILIO_FROM: a number or a messaging service SID
    base_url: str = TWILIO_BASE_URL
    rate_per_s: float | None = None

    @property
    def from_number(self) -> str | None:
        return sender_fields(self.sender).get("from_number")

    @property
    def messaging_service_sid(self) -> str | None:
        return sender_fields(self.sender).get("messaging_service_sid")

    @classmethod
    def from_env(cls, env: Env) -> TwilioConfig:
        return _parsed(lambda problems: cls._parse(env, problems))

    @classmethod
    def _parse(cls, env: Env, problems: _Problems) -> TwilioConfig | None:
        var = "JOURNEYS_TWILIO_ACCOUNT_SID"
        sid = _required(env, var, problems, "the Account SID, AC...")
        if sid is not None and not ACCOUNT_SID.match(sid):
            problems.add(var, f"an Account SID is AC followed by 32 hex digits, got {sid!r}")
            sid = None
        var = "JOURNEYS_TWILIO_AUTH_TOKEN"
        token = _required(env, var, problems, "the account's auth token")
        if token is not None and re.search(r"\s", token):
            problems.add(var, "contains white space")  # never echo a secret
            token = None
        var = "JOURNEYS_TWILIO_FROM"
        sender = _required(env, var, problems, "a sender number or messaging service SID")
        if sender is not None:
            given = sender
            if problems.check(var, lambda: sender_fields(given)) is None:
                sender = None
        base = _optional_url(env, "JOURNEYS_TWILIO_BASE_URL", TWILIO_BASE_URL, problems)
        rate = _optional_rate(env, "JOURNEYS_TWILIO_RATE", problems)
        if sid is None or token is None or sender is None:
            return None
        return cls(sid, token, sender, base, rate)


@dataclass(frozen=True, slots=True)
class WebhookConfig:
    port: int = DEFAULT_WEBHOOK_PORT
    public_url: str | None = None  # e.g. https://hooks.example.com (no trailing /)

    def url(self, path: str) -> str:
        """The public URL of ``path`` (``/webhooks/twilio``...)."""
        if self.public_url is None:
            raise ConfigError("JOURNEYS_WEBHOOK_PUBLIC_URL is not set")
        return self.public_url + path

    @classmethod
    def from_env(cls, env: Env, *, public_url_required: bool = False) -> WebhookConfig:
        problems = _Problems()
        cfg = cls._parse(env, problems, public_url_required)
        problems.raise_if_any()
        return cfg

    @classmethod
    def _parse(cls, env: Env, problems: _Problems, public_url_required: bool) -> WebhookConfig:
        var = "JOURNEYS_WEBHOOK_PORT"
        raw_port = env.get(var, "").strip()
        port = problems.check(var, lambda: _port(raw_port)) if raw_port else None
        var = "JOURNEYS_WEBHOOK_PUBLIC_URL"
        raw_url = env.get(var, "").strip()
        public: str | None = None
        if raw_url:
            public = problems.check(var, lambda: _url(raw_url))
        elif public_url_required:
            problems.add(
                var,
                "not set: the externally visible base URL of the webhook server, needed "
                "for the status callbacks and the signatures of a real provider",
            )
        return cls(DEFAULT_WEBHOOK_PORT if port is None else port, public)


@dataclass(frozen=True, slots=True)
class ProviderSettings:
    """The chosen providers and the checked settings they need."""

    rcs: str = "simulated"
    sms: str = "simulated"
    rbm: RbmConfig | None = None
    twilio: TwilioConfig | None = None
    webhook: WebhookConfig = field(default_factory=WebhookConfig)
    concurrency: int = DEFAULT_CONCURRENCY
    capability_ttl_s: float = DEFAULT_CAPABILITY_TTL_S

    @classmethod
    def from_env(
        cls, env: Env, *, rcs: str = "simulated", sms: str = "simulated"
    ) -> ProviderSettings:
        """Every problem at once, in one ConfigError (``--rcs`` / ``--sms`` for a bad kind)."""
        problems = _Problems()
        if rcs not in RCS_KINDS:
            problems.add("--rcs", f"{rcs!r} is not one of {', '.join(RCS_KINDS)}")
        if sms not in SMS_KINDS:
            problems.add("--sms", f"{sms!r} is not one of {', '.join(SMS_KINDS)}")
        rbm = RbmConfig._parse(env, problems) if rcs == "rbm" else None
        twilio = TwilioConfig._parse(env, problems) if sms == "twilio" else None
        real = rcs == "rbm" or sms == "twilio"
        webhook = WebhookConfig._parse(env, problems, public_url_required=real)
        var = "JOURNEYS_GATEWAY_CONCURRENCY"
        raw = env.get(var, "").strip()
        concurrency = problems.check(var, lambda: _count(raw)) if raw else None
        var = "JOURNEYS_CAPABILITY_TTL_S"
        raw_ttl = env.get(var, "").strip()
        ttl = problems.check(var, lambda: _seconds(raw_ttl)) if raw_ttl else None
        problems.raise_if_any()
        return cls(
            rcs,
            sms,
            rbm,
            twilio,
            webhook,
            DEFAULT_CONCURRENCY if concurrency is None else concurrency,
            DEFAULT_CAPABILITY_TTL_S if ttl is None else ttl,
        )

    def rate_limits(self) -> dict[str, RateLimit]:
        """Token-bucket limits by provider name, for ``ChannelGateway(rate_limits=...)``.
        The rates are for the whole deployment: each instance takes its share
        (:meth:`ChannelGateway.set_share`)."""
        limits: dict[str, RateLimit] = {}
        for name, cfg in (("rbm", self.rbm), ("twilio", self.twilio)):
            if cfg is not None and cfg.rate_per_s is not None:
                limits[name] = RateLimit(cfg.rate_per_s, burst=max(1.0, cfg.rate_per_s))
        return limits


# --------------------------------------------------------------------------- factories


def rbm_provider(cfg: RbmConfig) -> RbmProvider:
    token = ServiceAccountTokenSource.from_file(cfg.service_account)
    return RbmProvider(agent_id=cfg.agent_id, token=token, base_url=cfg.base_url)


def twilio_provider(cfg: TwilioConfig, webhook: WebhookConfig) -> TwilioSmsProvider:
    return TwilioSmsProvider(
        account_sid=cfg.account_sid,
        auth_token=cfg.auth_token,
        from_number=cfg.from_number,
        messaging_service_sid=cfg.messaging_service_sid,
        status_callback=webhook.url(TWILIO_WEBHOOK_PATH),
        base_url=cfg.base_url,
    )


def build_providers(
    settings: ProviderSettings, *, seed: int = 0, delivery_ms: int = CONTRACT_DELIVERY_MS
) -> tuple[RcsProvider, SmsProvider]:
    """Both adapters for checked settings. A simulated RCS and SMS share one instance of
    the contract's simulated provider (one memory of message ids, one ``close``)."""
    shared = SimulatedProvider.contract(delivery_ms, seed)
    rcs: RcsProvider = rbm_provider(settings.rbm) if settings.rbm is not None else shared
    sms: SmsProvider = (
        twilio_provider(settings.twilio, settings.webhook)
        if settings.twilio is not None
        else shared
    )
    return rcs, sms
