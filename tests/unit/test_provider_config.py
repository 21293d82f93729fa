"""Provider settings from JOURNEYS_* variables: every wrong one named, secrets never shown,
and the factories build the adapters the settings describe."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from engine.channels.providers.config import (
    ProviderSettings,
    RbmConfig,
    TwilioConfig,
    WebhookConfig,
    build_providers,
)
from engine.channels.providers.google_token import ServiceAccountTokenSource
from engine.channels.providers.rbm import RBM_BASE_URL, RbmProvider
from engine.channels.providers.simulated import SimulatedProvider
from engine.channels.providers.twilio import TWILIO_BASE_URL, TwilioSmsProvider
from engine.errors import ConfigError, EngineError
from tests.fakes.providers import make_service_account

SID = "AC" + "0123456789abcdef" * 2
SERVICE_SID = "MG" + "fedcba9876543210" * 2
AUTH_TOKEN = "s3cr3t-auth-token-0123456789abcd"
WEBHOOK_TOKEN = "rbm-client-token-do-not-show"


@pytest.fixture(scope="module")
def key_path(tmp_path_factory: pytest.TempPathFactory) -> str:
    path = tmp_path_factory.mktemp("keys") / "key.json"
    make_service_account("https://oauth2.googleapis.com/token").write(path)
    return str(path)


@pytest.fixture
def env(key_path: str) -> dict[str, str]:
    return {
        "JOURNEYS_RBM_AGENT_ID": "acme-orders_7rjq2kbe_agent",
        "JOURNEYS_RBM_SERVICE_ACCOUNT": key_path,
        "JOURNEYS_RBM_WEBHOOK_TOKEN": WEBHOOK_TOKEN,
        "JOURNEYS_TWILIO_ACCOUNT_SID": SID,
        "JOURNEYS_TWILIO_AUTH_TOKEN": AUTH_TOKEN,
        "JOURNEYS_TWILIO_FROM": "+15005550006",
        "JOURNEYS_WEBHOOK_PUBLIC_URL": "https://hooks.example.com/",
    }


def problem(env: dict[str, str], *, rcs: str = "rbm", sms: str = "twilio") -> str:
    with pytest.raises(ConfigError) as err:
        ProviderSettings.from_env(env, rcs=rcs, sms=sms)
    assert isinstance(err.value, EngineError)
    return str(err.value)


def test_a_complete_environment_gives_checked_settings(env: dict[str, str]) -> None:
    s = ProviderSettings.from_env(env, rcs="rbm", sms="twilio")
    assert s.rbm == RbmConfig(
        "acme-orders_7rjq2kbe_agent", env["JOURNEYS_RBM_SERVICE_ACCOUNT"], WEBHOOK_TOKEN
    )
    assert s.rbm.base_url == RBM_BASE_URL and s.rbm.rate_per_s is None
    assert s.twilio == TwilioConfig(SID, AUTH_TOKEN, "+15005550006")
    assert s.twilio.base_url == TWILIO_BASE_URL
    assert (s.twilio.from_number, s.twilio.messaging_service_sid) == ("+15005550006", None)
    assert s.webhook == WebhookConfig(8088, "https://hooks.example.com")
    assert s.webhook.url("/webhooks/twilio") == "https://hooks.example.com/webhooks/twilio"


def test_secrets_are_not_in_repr(env: dict[str, str]) -> None:
    s = ProviderSettings.from_env(env, rcs="rbm", sms="twilio")
    text = repr(s)
    assert AUTH_TOKEN not in text and WEBHOOK_TOKEN not in text
    assert SID in text  # not a secret: helps to see which account is used


def test_simulated_needs_nothing(env: dict[str, str]) -> None:
    s = ProviderSettings.from_env({})
    assert (s.rcs, s.sms, s.rbm, s.twilio) == ("simulated", "simulated", None, None)
    assert s.webhook == WebhookConfig(8088, None)


@pytest.mark.parametrize(
    "var",
    [
        "JOURNEYS_RBM_AGENT_ID",
        "JOURNEYS_RBM_SERVICE_ACCOUNT",
        "JOURNEYS_RBM_WEBHOOK_TOKEN",
        "JOURNEYS_TWILIO_ACCOUNT_SID",
        "JOURNEYS_TWILIO_AUTH_TOKEN",
        "JOURNEYS_TWILIO_FROM",
        "JOURNEYS_WEBHOOK_PUBLIC_URL",
    ],
)
def test_a_missing_or_empty_variable_is_named(env: dict[str, str], var: str) -> None:
    assert f"{var}: not set" in problem({k: v for k, v in env.items() if k != var})
    if var != "JOURNEYS_WEBHOOK_PUBLIC_URL":  # an empty public URL is the same as none
        assert f"{var}: empty" in problem({**env, var: "  "})


@pytest.mark.parametrize(
    ("var", "value", "says"),
    [
        ("JOURNEYS_TWILIO_ACCOUNT_SID", "AC123", "32 hex digits"),
        ("JOURNEYS_TWILIO_ACCOUNT_SID", "SK" + "0" * 32, "32 hex digits"),
        ("JOURNEYS_TWILIO_FROM", "5005550006", "E.164"),
        ("JOURNEYS_TWILIO_FROM", "MG123", "messaging service SID"),
        ("JOURNEYS_TWILIO_BASE_URL", "api.twilio.com", "http(s) URL"),
        ("JOURNEYS_TWILIO_BASE_URL", "ftp://api.twilio.com", "http(s) URL"),
        ("JOURNEYS_RBM_BASE_URL", "rcsbusinessmessaging.googleapis.com", "http(s) URL"),
        ("JOURNEYS_WEBHOOK_PUBLIC_URL", "hooks.example.com", "http(s) URL"),
        ("JOURNEYS_WEBHOOK_PUBLIC_URL", "https://hooks.example.com/?a=1", "no query"),
        ("JOURNEYS_RBM_RATE", "0", "positive"),
        ("JOURNEYS_RBM_RATE", "-5", "positive"),
        ("JOURNEYS_RBM_RATE", "inf", "positive"),
        ("JOURNEYS_TWILIO_RATE", "fast", "not a number"),
        ("JOURNEYS_WEBHOOK_PORT", "http", "not a port"),
        ("JOURNEYS_WEBHOOK_PORT", "70000", "0..65535"),
        ("JOURNEYS_RBM_AGENT_ID", "my agent", "not an agent id"),
    ],
)
def test_a_wrong_shape_is_named(env: dict[str, str], var: str, value: str, says: str) -> None:
    text = problem({**env, var: value})
    assert var in text and says in text


def test_a_bad_auth_token_is_not_echoed(env: dict[str, str]) -> None:
    text = problem({**env, "JOURNEYS_TWILIO_AUTH_TOKEN": "abc def-secret"})
    assert "JOURNEYS_TWILIO_AUTH_TOKEN" in text and "secret" not in text


@pytest.mark.parametrize(
    ("content", "says"),
    [
        (None, "no such file"),
        ("not json", "not JSON"),
        (json.dumps({"type": "authorized_user", "client_id": "x"}), "service_account"),
        (json.dumps({"type": "service_account"}), "lacks client_email, private_key, token_uri"),
    ],
)
def test_a_bad_key_file_is_named(
    env: dict[str, str], tmp_path: Path, content: str | None, says: str
) -> None:
    path = tmp_path / "key.json"
    if content is not None:
        path.write_text(content)
    text = problem({**env, "JOURNEYS_RBM_SERVICE_ACCOUNT": str(path)}, sms="simulated")
    assert "JOURNEYS_RBM_SERVICE_ACCOUNT" in text and says in text


def test_every_problem_is_reported_at_once(env: dict[str, str]) -> None:
    broken = {
        **env,
        "JOURNEYS_TWILIO_ACCOUNT_SID": "AC1",
        "JOURNEYS_RBM_RATE": "0",
        "JOURNEYS_WEBHOOK_PORT": "x",
    }
    del broken["JOURNEYS_RBM_AGENT_ID"]
    text = problem(broken)
    for var in (
        "JOURNEYS_TWILIO_ACCOUNT_SID",
        "JOURNEYS_RBM_RATE",
        "JOURNEYS_WEBHOOK_PORT",
        "JOURNEYS_RBM_AGENT_ID",
    ):
        assert var in text
    assert len(text.splitlines()) == 5  # a heading and one line each


def test_the_public_url_is_required_only_with_a_real_provider(env: dict[str, str]) -> None:
    no_url = {k: v for k, v in env.items() if k != "JOURNEYS_WEBHOOK_PUBLIC_URL"}
    assert "JOURNEYS_WEBHOOK_PUBLIC_URL" in problem(no_url, rcs="simulated", sms="twilio")
    assert "JOURNEYS_WEBHOOK_PUBLIC_URL" in problem(no_url, rcs="rbm", sms="simulated")
    assert ProviderSettings.from_env(no_url).webhook.public_url is None


def test_an_unknown_kind_names_the_option() -> None:
    text = problem({}, rcs="sinch", sms="vonage")
    assert "--rcs: 'sinch'" in text and "--sms: 'vonage'" in text


def test_the_sender_shape_decides_number_or_messaging_service(env: dict[str, str]) -> None:
    cfg = TwilioConfig.from_env({**env, "JOURNEYS_TWILIO_FROM": SERVICE_SID})
    assert (cfg.from_number, cfg.messaging_service_sid) == (None, SERVICE_SID)


def test_rates_become_token_buckets(env: dict[str, str]) -> None:
    env = {**env, "JOURNEYS_RBM_RATE": "50", "JOURNEYS_TWILIO_RATE": "0.5"}
    limits = ProviderSettings.from_env(env, rcs="rbm", sms="twilio").rate_limits()
    assert (limits["rbm"].per_second, limits["rbm"].burst) == (50.0, 50.0)
    assert (limits["twilio"].per_second, limits["twilio"].burst) == (0.5, 1.0)


async def test_factories_build_the_adapters(env: dict[str, str]) -> None:
    settings = ProviderSettings.from_env(
        {**env, "JOURNEYS_TWILIO_FROM": SERVICE_SID}, rcs="rbm", sms="twilio"
    )
    rcs, sms = build_providers(settings)
    try:
        assert isinstance(rcs, RbmProvider) and rcs.agent_id == env["JOURNEYS_RBM_AGENT_ID"]
        assert isinstance(rcs._token, ServiceAccountTokenSource)
        assert isinstance(sms, TwilioSmsProvider) and not sms.idempotent
        assert sms.status_callback == "https://hooks.example.com/webhooks/twilio"
        assert (sms.messaging_service_sid, sms.from_number) == (SERVICE_SID, None)
        assert AUTH_TOKEN not in repr(sms)
    finally:
        await rcs.close()
        await sms.close()
    with pytest.raises(ConfigError, match="JOURNEYS_TWILIO_ACCOUNT_SID"):
        ProviderSettings.from_env(
            {"JOURNEYS_WEBHOOK_PUBLIC_URL": "https://x.example"}, sms="twilio"
        )


def test_gateway_settings_from_the_environment() -> None:
    s = ProviderSettings.from_env({})
    assert (s.concurrency, s.capability_ttl_s, s.webhook.port) == (32, 3600.0, 8088)
    s = ProviderSettings.from_env(
        {"JOURNEYS_GATEWAY_CONCURRENCY": "4", "JOURNEYS_CAPABILITY_TTL_S": "60"}
    )
    assert (s.concurrency, s.capability_ttl_s) == (4, 60.0)
    with pytest.raises(ConfigError) as exc:
        ProviderSettings.from_env(
            {"JOURNEYS_GATEWAY_CONCURRENCY": "0", "JOURNEYS_CAPABILITY_TTL_S": "soon"}
        )
    assert "JOURNEYS_GATEWAY_CONCURRENCY" in str(exc.value)
    assert "JOURNEYS_CAPABILITY_TTL_S" in str(exc.value)


def test_simulated_rcs_and_sms_share_one_provider() -> None:
    rcs, sms = build_providers(ProviderSettings.from_env({}), seed=7)
    assert rcs is sms and isinstance(rcs, SimulatedProvider) and rcs.seed == 7
    assert rcs.plan(_request())[0].ts == _request().ts + 5_000  # the contract's


def _request() -> Any:
    from engine.core.effects import SendRequest

    return SendRequest(
        "m", 1_000, "u", "+14155550123", "sms", {"text": "hi"}, None, None, None, None
    )
