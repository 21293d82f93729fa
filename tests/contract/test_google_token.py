"""Service-account tokens (google-auth) against the fake Google token endpoint, and the
RBM adapter using them."""

from __future__ import annotations

import asyncio
import json
import uuid
from collections.abc import AsyncIterator
from pathlib import Path
from urllib.parse import parse_qs

import pytest

from engine.channels.prepare import Prepared
from engine.channels.providers.google_token import (
    RBM_SCOPE,
    SERVICE_ACCOUNT_VAR,
    ServiceAccountTokenSource,
    load_credentials,
)
from engine.channels.providers.rbm import RbmProvider
from engine.core.effects import SendRequest
from engine.errors import ConfigError, PermanentProviderError, RetryableProviderError
from tests.fakes.providers import FakeProviders, make_service_account

PHONE = "+14155550123"


@pytest.fixture
async def fake() -> AsyncIterator[FakeProviders]:
    fake = FakeProviders()
    await fake.start()
    try:
        yield fake
    finally:
        await fake.stop()


@pytest.fixture
def key_file(fake: FakeProviders, tmp_path: Path) -> Path:
    return fake.new_service_account().write(tmp_path / "key.json")


async def test_mints_a_token_at_the_keys_token_uri_and_reuses_it(
    fake: FakeProviders, key_file: Path
) -> None:
    source = ServiceAccountTokenSource.from_file(key_file)
    try:
        assert source.token_uri == fake.token_uri  # a local fake, not Google
        token = await source()
        assert fake.token_valid(token)
        assert await source() == token  # still valid: no second request
        [call] = fake.calls_to("POST", "/token")
        form = parse_qs(call.body.decode())
        assert form["grant_type"] == ["urn:ietf:params:oauth:grant-type:jwt-bearer"]
        claims = json.loads(_b64(form["assertion"][0].split(".")[1]))
        assert claims["scope"] == RBM_SCOPE
        assert claims["iss"] == json.loads(key_file.read_text())["client_email"]
        assert fake.google.minted == 1 and source.refreshes == 1
    finally:
        await source.close()


def _b64(part: str) -> bytes:
    import base64

    return base64.urlsafe_b64decode(part + "=" * (-len(part) % 4))


async def test_a_token_about_to_expire_is_refreshed(fake: FakeProviders, key_file: Path) -> None:
    """google-auth calls a token expired 3 min 45 s before its expiry: with a 1 s lifetime
    every call mints; with 226 s the token is good for about one second."""
    source = ServiceAccountTokenSource.from_file(key_file)
    try:
        fake.google.expires_in = 1
        first, second = await source(), await source()
        assert first != second and fake.google.minted == 2
        fake.google.expires_in = 225 + 1
        third = await source()
        assert await source() == third and fake.google.minted == 3
        await asyncio.sleep(1.2)
        fourth = await source()
        assert fourth != third and fake.google.minted == 4
        assert fake.token_valid(fourth)
    finally:
        await source.close()


async def test_one_refresh_at_a_time(fake: FakeProviders, key_file: Path) -> None:
    source = ServiceAccountTokenSource.from_file(key_file)
    try:
        tokens = await asyncio.gather(*(source() for _ in range(20)))
        assert len(set(tokens)) == 1 and fake.google.minted == 1
    finally:
        await source.close()


async def test_a_refusing_token_endpoint_is_retryable_and_shows_no_secret(
    fake: FakeProviders, key_file: Path
) -> None:
    source = ServiceAccountTokenSource.from_file(key_file)
    try:
        fake.google.script = [400]
        with pytest.raises(RetryableProviderError) as err:
            await source()
        assert "invalid_grant" in str(err.value)
        assert "PRIVATE KEY" not in str(err.value)
        token = await source()  # the next attempt succeeds
        assert token not in str(err.value)
    finally:
        await source.close()


async def test_an_untrusted_key_is_refused(fake: FakeProviders, tmp_path: Path) -> None:
    """The fake checks the assertion's RS256 signature against the trusted public key."""
    stranger = make_service_account(fake.token_uri).write(tmp_path / "stranger.json")
    source = ServiceAccountTokenSource.from_file(stranger)
    try:
        with pytest.raises(RetryableProviderError, match="unknown service account"):
            await source()
        # same email and key id, another key: the signature doesn't verify
        trusted = fake.new_service_account()
        forged = make_service_account(fake.token_uri, email=trusted.email)
        forged.info["private_key_id"] = trusted.info["private_key_id"]
        source2 = ServiceAccountTokenSource.from_file(forged.write(tmp_path / "forged.json"))
        with pytest.raises(RetryableProviderError, match="Signature"):
            await source2()
        await source2.close()
        assert fake.google.minted == 0 and fake.google.refused == 2
    finally:
        await source.close()


async def test_an_unreachable_token_endpoint_is_retryable(tmp_path: Path) -> None:
    key = make_service_account("http://127.0.0.1:9/token").write(tmp_path / "key.json")
    source = ServiceAccountTokenSource.from_file(key, timeout_s=2)
    try:
        with pytest.raises(RetryableProviderError, match="unreachable"):
            await source()
    finally:
        await source.close()


@pytest.mark.parametrize(
    ("content", "problem"),
    [
        (None, "no such file"),
        ("{not json", "not JSON"),
        ("[1, 2]", "not a JSON object"),
        (json.dumps({"type": "authorized_user"}), "service_account"),
        (json.dumps({"type": "service_account", "client_email": "a@b"}), "private_key"),
    ],
)
def test_a_bad_key_file_is_a_config_error_naming_the_variable(
    tmp_path: Path, content: str | None, problem: str
) -> None:
    path = tmp_path / "key.json"
    if content is not None:
        path.write_text(content)
    with pytest.raises(ConfigError) as err:
        load_credentials(path)
    assert SERVICE_ACCOUNT_VAR in str(err.value) and problem in str(err.value)


def test_an_unusable_private_key_is_a_config_error_without_the_key(tmp_path: Path) -> None:
    info = make_service_account("http://127.0.0.1:9/token").info
    secret_part = info["private_key"].splitlines()[5]
    info["private_key"] = info["private_key"].replace(secret_part, "A" * len(secret_part))
    path = tmp_path / "key.json"
    path.write_text(json.dumps(info))
    with pytest.raises(ConfigError) as err:
        load_credentials(path)
    assert SERVICE_ACCOUNT_VAR in str(err.value) and "private key" in str(err.value)
    assert secret_part not in str(err.value) and "AAAA" not in str(err.value)


def _prepared(n: int = 1) -> tuple[Prepared, SendRequest]:
    mid = str(uuid.UUID(int=n))
    req = SendRequest(
        message_id=mid,
        ts=0,
        user_id=f"u-{n}",
        to=PHONE,
        channel="rcs",
        content={"channel": "rcs", "text": "hi"},
        journey_id="j",
        journey_version=1,
        instance_id="i",
        node_id="n",
    )
    payload = {"contentMessage": {"text": "hi"}, "ttl": "600s"}
    return Prepared(mid, "rcs", PHONE, payload), req


async def test_rbm_sends_with_the_minted_token_and_refuses_a_bad_one(
    fake: FakeProviders, key_file: Path
) -> None:
    source = ServiceAccountTokenSource.from_file(key_file)
    good = RbmProvider(agent_id=fake.agent_id, token=source, base_url=fake.base_url)
    bad = RbmProvider(agent_id=fake.agent_id, token="ya29.forged", base_url=fake.base_url)
    try:
        msg, req = _prepared()
        result = await good.send(msg, req)
        assert result.provider_id == f"phones/{PHONE}/agentMessages/{msg.message_id}"
        with pytest.raises(PermanentProviderError) as err:
            await bad.send(*_prepared(2))
        assert err.value.status == 401
        assert list(fake.rbm.messages) == [msg.message_id]
        assert repr(source).startswith("ServiceAccountTokenSource(") and "ya29" not in repr(source)
    finally:
        await good.close()  # closes the token source too
        await bad.close()


async def test_an_expired_token_is_refused_by_rbm(fake: FakeProviders, key_file: Path) -> None:
    fake.google.expires_in = 1
    source = ServiceAccountTokenSource.from_file(key_file)
    try:
        token = await source()
        await asyncio.sleep(1.1)
        stale = RbmProvider(agent_id=fake.agent_id, token=token, base_url=fake.base_url)
        with pytest.raises(PermanentProviderError):
            await stale.capability(PHONE)
        await stale.close()
        fresh = RbmProvider(agent_id=fake.agent_id, token=source, base_url=fake.base_url)
        assert (await fresh.capability(PHONE)).reachable
        await fresh.close()
    finally:
        await source.close()
