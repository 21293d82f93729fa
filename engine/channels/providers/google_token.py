"""OAuth2 access tokens for the RBM API, minted from a Google service-account key.

:class:`ServiceAccountTokenSource` is the async ``token`` callable
:class:`~engine.channels.providers.rbm.RbmProvider` takes. Minting and refreshing are left
to ``google-auth`` (Google advises against hand-written expiry handling):

* the key's own ``token_uri`` is where the signed JWT assertion (RS256, grant type
  ``urn:ietf:params:oauth:grant-type:jwt-bearer``) is posted; google-auth honours it
  (``service_account.Credentials`` keeps ``token_uri`` from the key), which is also how
  the tests point it at a local fake token endpoint;
* a token is reused while google-auth calls it ``valid``: it counts a token as expired
  ``REFRESH_THRESHOLD`` (3 min 45 s) before its real expiry, so a refresh happens before
  Google would refuse the old token.

google-auth's HTTP transport is synchronous, so a refresh runs in a thread executor, and
one at a time (an :class:`asyncio.Lock`): a burst of sends during a refresh waits for the
one refresh instead of starting its own.

Errors: a key that can't be read or used is a :class:`~engine.errors.ConfigError` naming
``JOURNEYS_RBM_SERVICE_ACCOUNT`` (found at start, before anything is consumed); a token
endpoint that fails or can't be reached is a
:class:`~engine.errors.RetryableProviderError` (no message was sent, so trying again is
safe). Neither the token nor the key ever appears in a message, a log line or a repr.
"""

from __future__ import annotations

import asyncio
import json
import logging
import os
from collections.abc import Sequence
from concurrent.futures import Executor
from pathlib import Path
from typing import Any, Final

import google.auth.exceptions
import google.auth.transport
import google.auth.transport.requests
from google.auth.credentials import TokenState
from google.oauth2 import service_account

from engine.errors import ConfigError, RetryableProviderError

log = logging.getLogger(__name__)

RBM_SCOPE: Final = "https://www.googleapis.com/auth/rcsbusinessmessaging"
SERVICE_ACCOUNT_VAR: Final = "JOURNEYS_RBM_SERVICE_ACCOUNT"
#: fields google-auth needs from the key (``private_key_id`` becomes the JWT's ``kid``)
REQUIRED_FIELDS: Final = ("client_email", "private_key", "token_uri")
DEFAULT_TOKEN_TIMEOUT_S: Final = 10.0


def read_service_account(path: str | os.PathLike[str]) -> dict[str, Any]:
    """The key file's JSON, checked to be a service-account key; ConfigError otherwise.

    The messages name the variable and the file, never the key's content."""
    where = f"{SERVICE_ACCOUNT_VAR}={os.fspath(path)!r}"
    try:
        text = Path(path).read_text(encoding="utf-8")
    except FileNotFoundError as exc:
        raise ConfigError(f"{where}: no such file (the service-account JSON key)") from exc
    except (OSError, UnicodeError) as exc:
        raise ConfigError(f"{where}: can't read the key file ({type(exc).__name__})") from exc
    try:
        info = json.loads(text)
    except ValueError as exc:
        raise ConfigError(f"{where}: not JSON (expected a service-account key file)") from exc
    if not isinstance(info, dict):
        raise ConfigError(f"{where}: not a JSON object (expected a service-account key)")
    if info.get("type") != "service_account":
        raise ConfigError(
            f'{where}: "type" is {info.get("type")!r}, not "service_account" '
            "(create a JSON key for a service account in the Google Cloud console)"
        )
    missing = [k for k in REQUIRED_FIELDS if not isinstance(info.get(k), str) or not info[k]]
    if missing:
        raise ConfigError(f"{where}: the key lacks {', '.join(missing)}")
    token_uri = str(info["token_uri"])
    if not token_uri.startswith(("https://", "http://")):
        raise ConfigError(f"{where}: token_uri is not an http(s) URL")
    return info


def load_credentials(
    path: str | os.PathLike[str], *, scopes: Sequence[str] = (RBM_SCOPE,)
) -> service_account.Credentials:
    """google-auth credentials for the key at ``path``, scoped for RBM."""
    info = read_service_account(path)
    try:
        make = service_account.Credentials.from_service_account_info
        creds: service_account.Credentials = make(info, scopes=list(scopes))  # type: ignore[no-untyped-call]
        return creds
    except (ValueError, TypeError, KeyError) as exc:
        # a private key that doesn't parse; the exception text may quote it: leave it out
        raise ConfigError(
            f"{SERVICE_ACCOUNT_VAR}={os.fspath(path)!r}: the private key can't be used "
            f"({type(exc).__name__})"
        ) from None


class _TimedRequest(google.auth.transport.Request):
    """google-auth's requests transport with our timeout (its default is 120 s)."""

    def __init__(self, inner: google.auth.transport.requests.Request, timeout_s: float) -> None:
        self._inner = inner
        self._timeout_s = timeout_s

    def __call__(  # type: ignore[no-untyped-def]
        self, url, method="GET", body=None, headers=None, timeout=None, **kwargs
    ):
        return self._inner(
            url,
            method=method,
            body=body,
            headers=headers,
            timeout=self._timeout_s if timeout is None else timeout,
            **kwargs,
        )


class ServiceAccountTokenSource:
    """``await source()`` -> a current access token for the service account."""

    def __init__(
        self,
        credentials: service_account.Credentials,
        *,
        timeout_s: float = DEFAULT_TOKEN_TIMEOUT_S,
        executor: Executor | None = None,
    ) -> None:
        self._credentials = credentials
        self._transport = google.auth.transport.requests.Request()
        self._request = _TimedRequest(self._transport, timeout_s)
        self._executor = executor
        self._lock = asyncio.Lock()
        self.refreshes = 0  # how many tokens were minted (for logs and tests)

    @classmethod
    def from_file(
        cls,
        path: str | os.PathLike[str],
        *,
        scopes: Sequence[str] = (RBM_SCOPE,),
        timeout_s: float = DEFAULT_TOKEN_TIMEOUT_S,
    ) -> ServiceAccountTokenSource:
        return cls(load_credentials(path, scopes=scopes), timeout_s=timeout_s)

    @property
    def service_account_email(self) -> str:
        return str(self._credentials.service_account_email)

    @property
    def token_uri(self) -> str:
        """Where tokens are minted: the key's ``token_uri``."""
        return str(self._credentials._token_uri)

    def __repr__(self) -> str:
        return f"ServiceAccountTokenSource({self.service_account_email!r})"

    async def __call__(self) -> str:
        token = self._current()
        if token is not None:
            return token
        async with self._lock:
            token = self._current()  # another caller may have refreshed meanwhile
            if token is None:
                loop = asyncio.get_running_loop()
                await loop.run_in_executor(self._executor, self._refresh)
                self.refreshes += 1
                token = self._just_minted()
        return token

    def _current(self) -> str | None:
        """The token while google-auth calls it valid (not within its refresh margin)."""
        creds = self._credentials
        return str(creds.token) if creds.valid else None

    def _just_minted(self) -> str:
        """The new token. One that lives less than the refresh margin is not ``valid``
        even now, yet usable until its real expiry: use it (the next call mints again)."""
        creds = self._credentials
        if creds.token is None or creds.token_state == TokenState.INVALID:
            raise RetryableProviderError("rbm token: the token endpoint gave an expired token")
        return str(creds.token)

    def _refresh(self) -> None:
        """In the executor thread: one exchange with the token endpoint."""
        try:
            self._credentials.refresh(self._request)  # type: ignore[no-untyped-call]
        except google.auth.exceptions.RefreshError as exc:
            # ``error: error_description`` from the endpoint: no secrets in it
            raise RetryableProviderError(
                f"rbm token: {self.token_uri} refused ({_first_arg(exc)})"
            ) from None
        except google.auth.exceptions.GoogleAuthError as exc:  # TransportError and the rest
            raise RetryableProviderError(
                f"rbm token: {self.token_uri} unreachable ({type(exc).__name__})"
            ) from None
        log.info(
            "rbm token minted for %s at %s (expires %s)",
            self.service_account_email,
            self.token_uri,
            self._credentials.expiry,
        )

    async def close(self) -> None:
        session = getattr(self._transport, "session", None)
        if session is not None:
            session.close()


def _first_arg(exc: BaseException) -> str:
    arg = exc.args[0] if exc.args else ""
    text = arg if isinstance(arg, str) else type(exc).__name__
    return text[:200]
