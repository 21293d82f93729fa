"""Local fakes of Google (OAuth2 token endpoint + RBM API) and Twilio, on the real wire formats.

One aiohttp server plays all three, in the test's process (``await FakeProviders().start()``)
or as a process of its own, for tests that kill the gateway::

    python -m tests.fakes.providers --port 0 --webhook-base http://127.0.0.1:8088 \\
        --service-account /tmp/key.json

prints its port on the first line of stdout once it listens (then logs to stderr), and
writes a throwaway service-account key whose ``token_uri`` is this server's ``/token``.

**Google token endpoint** ``POST /token`` (form ``grant_type=urn:ietf:params:oauth:
grant-type:jwt-bearer``, ``assertion=<JWT>``): the assertion's RS256 signature is checked
with the public key of a trusted service account (:meth:`FakeProviders.trust`), and its
``iss``, ``aud``, ``scope``, ``iat``/``exp``; the answer is Google's
``{"access_token", "expires_in", "token_type": "Bearer"}`` or ``400 {"error":
"invalid_grant"}``. Tokens expire after ``token_expires_in`` seconds.

**RBM** (``/v1/phones/{E164}/...``): every call needs a current token (else ``401
UNAUTHENTICATED``) and ``agentId``.

* ``POST agentMessages?messageId=<uuid>&agentId=``: the body must be an ``AgentMessage``
  (:func:`agent_message_problems`, else ``400 INVALID_ARGUMENT``); an unreachable phone is
  ``404 NOT_FOUND``; a repeated ``messageId`` is ignored like Google does and answered
  ``409 ALREADY_EXISTS`` (``duplicate_status``); scripted statuses come first.
* ``GET capabilities?requestId=&agentId=`` -> ``{"features": [...]}`` or 404.
* ``DELETE agentMessages/{id}`` -> 200 always; a pending message is revoked and a
  ``TTL_EXPIRATION_REVOKED`` (or ``..._REVOKE_FAILED``) event is pushed.
* Events (DELIVERED, READ, taps, text, TTL) go to ``rbm_webhook_url`` in the Pub/Sub
  envelope, ``X-Goog-Signature`` = HMAC-SHA512 of the decoded event with the client token;
  in the background they are retried with backoff until a 200, like Google's webhooks.

**Twilio** (``/2010-04-01/Accounts/{AC...}/Messages...``, HTTP basic auth):

* ``POST Messages.json`` (form ``To``, ``From`` | ``MessagingServiceSid``, ``Body``,
  ``StatusCallback``) -> ``201`` message resource; error codes 21211 / 21602 / 21603 /
  21604; the ``mid`` in the StatusCallback's query is counted per message id.
* ``GET Messages.json?To=&From=&DateSent>=YYYY-MM-DD&PageSize=`` -> ``{"messages": [...],
  "next_page_uri": ...}``, most recent first, ``date_created`` in RFC 2822.
* ``GET Messages/{sid}.json``.
* Status callbacks and inbound SMS are form posts signed with ``X-Twilio-Signature``
  (posted once: Twilio doesn't retry them by default).

**Control API** for a test in another process (JSON in and out):

* ``GET /_fake/counts``: what reached the "user" (see :meth:`FakeProviders.counts`);
* ``GET /_fake/messages``: every message with its state;
* ``POST /_fake/script``: scripted statuses and behaviour (:meth:`FakeProviders.script`;
  ``latency_ms``: RBM and Twilio sends take that long, half of it before the message
  exists and half after, so a client killed mid-request may or may not have sent it);
* ``POST /_fake/deliver/{message_id}`` (``?read=1``; Twilio: ``?status=undelivered&
  error_code=30003``): signed DELIVERED (+READ) events, or Twilio status callbacks;
* ``POST /_fake/expire/{message_id}``: the RBM TTL ran out (TTL_EXPIRATION_REVOKED);
* ``POST /_fake/rbm/event`` ``{"phone", "message_id"?, "event_type"?, ...}``,
  ``POST /_fake/rbm/tap`` ``{"phone", "postback", "text"?}``, ``POST /_fake/rbm/text``
  ``{"phone", "text"}``, ``POST /_fake/twilio/inbound`` ``{"from", "body"}``: user
  actions, answered with the webhook's status;
* ``GET /_fake/service-account``: a new trusted key for this token endpoint;
* ``POST /_fake/reset``: forget messages, counts and scripts (keys stay trusted).
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import binascii
import contextlib
import itertools
import json
import logging
import re
import sys
import time
import uuid
from collections import Counter
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from email.utils import format_datetime
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlencode, urlsplit

import aiohttp
from aiohttp import web
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import padding, rsa

from engine.channels.providers import rbm, twilio

log = logging.getLogger("tests.fakes.providers")

JWT_GRANT = "urn:ietf:params:oauth:grant-type:jwt-bearer"
RBM_SCOPE = "https://www.googleapis.com/auth/rcsbusinessmessaging"
#: google-auth always puts Google's token endpoint in ``aud``, whatever the ``token_uri``
GOOGLE_TOKEN_AUDIENCE = "https://oauth2.googleapis.com/token"
DEFAULT_ACCOUNT_SID = "AC" + "0" * 31 + "1"
DEFAULT_AUTH_TOKEN = "f" * 32
DEFAULT_FEATURES = [
    "RICHCARD_STANDALONE",
    "RICHCARD_CAROUSEL",
    "ACTION_DIAL",
    "ACTION_OPEN_URL",
    "ACTION_VIEW_LOCATION",
    "ACTION_SHARE_LOCATION",
    "ACTION_CREATE_CALENDAR_EVENT",
]
E164 = re.compile(r"^\+[1-9]\d{1,14}$")
_RBM_STATUS = {
    400: "INVALID_ARGUMENT",
    401: "UNAUTHENTICATED",
    403: "PERMISSION_DENIED",
    404: "NOT_FOUND",
    409: "ALREADY_EXISTS",
    429: "RESOURCE_EXHAUSTED",
    500: "INTERNAL",
    503: "UNAVAILABLE",
}


# --------------------------------------------------------------------------- service accounts


@dataclass(frozen=True)
class ServiceAccount:
    """A throwaway service-account key (the JSON Google's console hands out)."""

    info: dict[str, str]

    @property
    def email(self) -> str:
        return self.info["client_email"]

    def write(self, path: str | Path) -> Path:
        path = Path(path)
        path.write_text(json.dumps(self.info, indent=2))
        path.chmod(0o600)
        return path


def make_service_account(
    token_uri: str, *, email: str = "journeys-test@fake-project.iam.gserviceaccount.com"
) -> ServiceAccount:
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    pem = key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    ).decode()
    return ServiceAccount(
        {
            "type": "service_account",
            "project_id": "fake-project",
            "private_key_id": uuid.uuid4().hex,
            "private_key": pem,
            "client_email": email,
            "client_id": "1" * 21,
            "auth_uri": "https://accounts.google.com/o/oauth2/auth",
            "token_uri": token_uri,
            "universe_domain": "googleapis.com",
        }
    )


@dataclass(frozen=True)
class TrustedKey:
    key_id: str | None
    public_key: rsa.RSAPublicKey


def _b64url(part: str) -> bytes:
    return base64.urlsafe_b64decode(part + "=" * (-len(part) % 4))


def verify_assertion(
    assertion: str, keys: Mapping[str, TrustedKey], audiences: set[str], now: float
) -> dict[str, Any]:
    """The claims of a valid JWT-bearer assertion; ValueError saying what is wrong."""
    try:
        head_b64, body_b64, sig_b64 = assertion.split(".")
        header = json.loads(_b64url(head_b64))
        claims = json.loads(_b64url(body_b64))
        signature = _b64url(sig_b64)
    except (ValueError, binascii.Error) as exc:
        raise ValueError(f"not a JWT: {exc}") from None
    if not isinstance(header, dict) or not isinstance(claims, dict):
        raise ValueError("not a JWT")
    if header.get("alg") != "RS256":
        raise ValueError(f"alg {header.get('alg')!r}, not RS256")
    trusted = keys.get(str(claims.get("iss")))
    if trusted is None:
        raise ValueError(f"unknown service account {claims.get('iss')!r}")
    if trusted.key_id and header.get("kid") not in (None, trusted.key_id):
        raise ValueError("kid is not the key's private_key_id")
    try:
        trusted.public_key.verify(
            signature, f"{head_b64}.{body_b64}".encode(), padding.PKCS1v15(), hashes.SHA256()
        )
    except InvalidSignature:
        raise ValueError("Invalid JWT Signature.") from None
    if claims.get("aud") not in audiences:
        raise ValueError(f"aud {claims.get('aud')!r} is not this token endpoint")
    iat, exp = claims.get("iat"), claims.get("exp")
    if not isinstance(iat, int | float) or not isinstance(exp, int | float):
        raise ValueError("iat / exp missing")
    if iat > now + 300 or exp < now - 300 or exp - iat > 3600 + 60:
        raise ValueError(
            "Invalid JWT: Token must be a short-lived token and in a reasonable timeframe"
        )
    if RBM_SCOPE not in str(claims.get("scope", "")).split():
        raise ValueError(f"scope does not include {RBM_SCOPE}")
    return claims


# --------------------------------------------------------------------------- AgentMessage shape


def _one_of(obj: Mapping[str, Any], keys: tuple[str, ...], where: str) -> str | None:
    present = [k for k in keys if k in obj]
    if len(present) != 1:
        raise ValueError(f"{where}: exactly one of {', '.join(keys)} (got {present or 'none'})")
    return present[0]


def _suggestion(s: Any, where: str) -> None:
    if not isinstance(s, dict):
        raise ValueError(f"{where}: not an object")
    kind = _one_of(s, ("reply", "action"), where)
    body = s[kind]
    if not isinstance(body, dict) or not isinstance(body.get("text"), str) or not body["text"]:
        raise ValueError(f"{where}.{kind}.text is required")
    if len(body["text"]) > 25:
        raise ValueError(f"{where}.{kind}.text longer than 25 characters")
    if not isinstance(body.get("postbackData"), str) or len(body["postbackData"]) > 2048:
        raise ValueError(f"{where}.{kind}.postbackData is required (at most 2048 characters)")
    if kind == "action":
        actions = (
            "dialAction",
            "viewLocationAction",
            "createCalendarEventAction",
            "openUrlAction",
            "shareLocationAction",
            "composeAction",
        )
        action = _one_of(body, actions, f"{where}.action")
        if action == "dialAction" and not E164.match(str(body[action].get("phoneNumber"))):
            raise ValueError(f"{where}.action.dialAction.phoneNumber is not E.164")
        if action == "openUrlAction" and not str(body[action].get("url", "")).startswith(
            ("https://", "http://")
        ):
            raise ValueError(f"{where}.action.openUrlAction.url is not a URL")


def _card_content(c: Any, where: str) -> None:
    if not isinstance(c, dict):
        raise ValueError(f"{where}: not an object")
    if not any(k in c for k in ("title", "description", "media")):
        raise ValueError(f"{where}: a card needs a title, description or media")
    media = c.get("media")
    if media is not None:
        if media.get("height") not in ("SHORT", "MEDIUM", "TALL", None):
            raise ValueError(f"{where}.media.height is not SHORT, MEDIUM or TALL")
        kind = _one_of(media, ("contentInfo", "fileName", "uploadedRbmFile"), f"{where}.media")
        if kind == "contentInfo" and not str(media[kind].get("fileUrl", "")).startswith("https://"):
            raise ValueError(f"{where}.media.contentInfo.fileUrl must be https")
    suggestions = c.get("suggestions", [])
    if not isinstance(suggestions, list) or len(suggestions) > 4:
        raise ValueError(f"{where}.suggestions: at most 4 on a card")
    for i, s in enumerate(suggestions):
        _suggestion(s, f"{where}.suggestions[{i}]")


def agent_message_problems(payload: Any) -> str | None:
    """Why ``payload`` is not an RBM ``AgentMessage`` (None when it is one).

    Written from the API reference, independently of engine/channels/rcs.py, so the
    adapter's payloads are checked against the wire format rather than against itself."""
    try:
        if not isinstance(payload, dict):
            raise ValueError("the body is not a JSON object")
        unknown = set(payload) - {"contentMessage", "ttl", "expireTime", "messageTrafficType"}
        if unknown:
            raise ValueError(f"unknown AgentMessage fields {sorted(unknown)}")
        if "ttl" in payload and "expireTime" in payload:
            raise ValueError("ttl and expireTime are exclusive")
        if "ttl" in payload and not re.fullmatch(r"\d+(\.\d{1,9})?s", str(payload["ttl"])):
            raise ValueError(f"ttl {payload['ttl']!r} is not a duration like '600s'")
        content = payload.get("contentMessage")
        if not isinstance(content, dict):
            raise ValueError("contentMessage is required")
        kind = _one_of(
            content,
            ("text", "fileName", "uploadedRbmFile", "richCard", "contentInfo"),
            "contentMessage",
        )
        if kind == "text" and not (0 < len(str(content["text"])) <= 3072):
            raise ValueError("contentMessage.text: 1 to 3072 characters")
        if kind == "richCard":
            card = content["richCard"]
            which = _one_of(card, ("standaloneCard", "carouselCard"), "richCard")
            if which == "standaloneCard":
                standalone = card[which]
                if standalone.get("cardOrientation") not in ("HORIZONTAL", "VERTICAL"):
                    raise ValueError("standaloneCard.cardOrientation: HORIZONTAL or VERTICAL")
                _card_content(standalone.get("cardContent"), "standaloneCard.cardContent")
            else:
                carousel = card[which]
                if carousel.get("cardWidth") not in ("SMALL", "MEDIUM"):
                    raise ValueError("carouselCard.cardWidth: SMALL or MEDIUM")
                cards = carousel.get("cardContents")
                if not isinstance(cards, list) or not 2 <= len(cards) <= 10:
                    raise ValueError("carouselCard.cardContents: 2 to 10 cards")
                for i, c in enumerate(cards):
                    _card_content(c, f"carouselCard.cardContents[{i}]")
        suggestions = content.get("suggestions", [])
        if not isinstance(suggestions, list) or len(suggestions) > 11:
            raise ValueError("contentMessage.suggestions: at most 11")
        for i, s in enumerate(suggestions):
            _suggestion(s, f"contentMessage.suggestions[{i}]")
    except (ValueError, AttributeError, TypeError) as exc:
        return str(exc)
    return None


# --------------------------------------------------------------------------- state


@dataclass
class Call:
    method: str
    path: str
    query: dict[str, str]
    headers: dict[str, str]
    body: bytes


@dataclass
class GoogleState:
    keys: dict[str, TrustedKey] = field(default_factory=dict)  # client_email -> key
    tokens: dict[str, float] = field(default_factory=dict)  # access token -> expiry (epoch s)
    expires_in: int = 3600
    script: list[int] = field(default_factory=list)  # statuses for the next token requests
    minted: int = 0
    refused: int = 0


@dataclass
class RbmState:
    send_script: list[int] = field(default_factory=list)  # statuses for the next POSTs
    capability_script: list[int] = field(default_factory=list)
    revoke_script: list[int] = field(default_factory=list)
    unreachable: set[str] = field(default_factory=set)  # phones: 404 on send + capability
    features: dict[str, list[str]] = field(default_factory=dict)  # phone -> features
    revoke_fails: bool = False
    duplicate_status: int = 409  # the answer to a repeated messageId (409 or 200)
    auto_deliver_ms: int | None = None  # DELIVERED this long after an accepted send
    auto_read: bool = False
    latency_ms: int = 0  # a send takes this long: half before the message exists, half after
    messages: dict[str, dict[str, Any]] = field(default_factory=dict)  # first send only
    posts: Counter[str] = field(default_factory=Counter)  # messageId -> POSTs that got a 2xx/409
    revokes: Counter[str] = field(default_factory=Counter)


@dataclass
class SmsState:
    send_script: list[int] = field(default_factory=list)
    list_script: list[int] = field(default_factory=list)
    messages: dict[str, dict[str, str]] = field(default_factory=dict)  # sid -> form
    meta: dict[str, dict[str, Any]] = field(default_factory=dict)  # sid -> resource fields
    accepted: Counter[str] = field(default_factory=Counter)  # our mid -> messages created
    auto_status_ms: int | None = None  # sent + delivered callbacks this long after a send
    latency_ms: int = 0  # a send takes this long: half before the message exists, half after


class FakeProviders:
    def __init__(
        self,
        *,
        agent_id: str = "test-agent",
        client_token: str = "client-token",
        account_sid: str = DEFAULT_ACCOUNT_SID,
        auth_token: str = DEFAULT_AUTH_TOKEN,
        bearer: str | None = None,
        webhook_base: str | None = None,
        rbm_webhook_path: str = "/webhooks/rbm",
        twilio_inbound_path: str = "/webhooks/twilio",
        webhook_retry_s: float = 60.0,
    ) -> None:
        """``bearer``: a fixed access token RBM accepts besides the minted ones (for tests
        that don't exercise the token endpoint). ``webhook_base`` is our receiver, e.g.
        ``http://127.0.0.1:8088``; events go to it plus the two paths."""
        self.agent_id, self.client_token = agent_id, client_token
        self.account_sid, self.auth_token = account_sid, auth_token
        self.bearer = bearer
        self.webhook_base = webhook_base
        self.rbm_webhook_path = rbm_webhook_path
        self.twilio_inbound_path = twilio_inbound_path
        self.rbm_webhook_override: str | None = None
        self.twilio_inbound_override: str | None = None
        self.webhook_retry_s = webhook_retry_s
        self.event_time: str | None = None  # a fixed sendTime for events (else now)
        self.google = GoogleState()
        self.rbm = RbmState()
        self.sms = SmsState()
        self.calls: list[Call] = []
        self.webhooks: Counter[str] = Counter()  # "posted", "failed", "retried"
        self.base_url = ""
        self._sids = itertools.count(1)
        self._events = itertools.count(1)
        self._seq = itertools.count(1)
        self._runner: web.AppRunner | None = None
        self._client: aiohttp.ClientSession | None = None
        self._tasks: set[asyncio.Task[Any]] = set()

    # -- lifecycle

    def app(self) -> web.Application:
        app = web.Application()
        r = app.router
        r.add_post("/token", self._token)
        r.add_post("/v1/phones/{phone}/agentMessages", self._rbm_send)
        r.add_get("/v1/phones/{phone}/capabilities", self._rbm_capability)
        r.add_delete("/v1/phones/{phone}/agentMessages/{mid}", self._rbm_revoke)
        r.add_post("/2010-04-01/Accounts/{sid}/Messages.json", self._sms_send)
        r.add_get("/2010-04-01/Accounts/{sid}/Messages.json", self._sms_list)
        r.add_get("/2010-04-01/Accounts/{sid}/Messages/{msid}.json", self._sms_fetch)
        r.add_get("/_fake/counts", self._ctl_counts)
        r.add_get("/_fake/messages", self._ctl_messages)
        r.add_post("/_fake/script", self._ctl_script)
        r.add_post("/_fake/deliver/{mid}", self._ctl_deliver)
        r.add_post("/_fake/expire/{mid}", self._ctl_expire)
        r.add_post("/_fake/rbm/event", self._ctl_rbm_event)
        r.add_post("/_fake/rbm/tap", self._ctl_rbm_tap)
        r.add_post("/_fake/rbm/text", self._ctl_rbm_text)
        r.add_post("/_fake/twilio/inbound", self._ctl_twilio_inbound)
        r.add_get("/_fake/service-account", self._ctl_service_account)
        r.add_post("/_fake/reset", self._ctl_reset)
        return app

    async def start(self, host: str = "127.0.0.1", port: int = 0) -> str:
        self._runner = web.AppRunner(self.app(), access_log=None)
        await self._runner.setup()
        site = web.TCPSite(self._runner, host, port)
        await site.start()
        bound_host, bound_port = self._runner.addresses[0][:2]
        self.base_url = f"http://{bound_host}:{bound_port}"
        self._client = aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=10))
        return self.base_url

    @property
    def port(self) -> int:
        return int(self.base_url.rsplit(":", 1)[1])

    @property
    def token_uri(self) -> str:
        return f"{self.base_url}/token"

    async def stop(self) -> None:
        for task in list(self._tasks):
            task.cancel()
        if self._tasks:
            await asyncio.gather(*self._tasks, return_exceptions=True)
        if self._client is not None:
            await self._client.close()
        if self._runner is not None:
            await self._runner.cleanup()

    def _spawn(self, coro: Any) -> None:
        task = asyncio.get_running_loop().create_task(coro)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    def calls_to(self, method: str, fragment: str) -> list[Call]:
        return [c for c in self.calls if c.method == method and fragment in c.path]

    async def _record(self, request: web.Request) -> Call:
        call = Call(
            request.method,
            request.path,
            dict(request.query),
            dict(request.headers),
            await request.read(),
        )
        self.calls.append(call)
        return call

    def reset(self) -> None:
        self.google = GoogleState(keys=self.google.keys, tokens=self.google.tokens)
        self.rbm = RbmState()
        self.sms = SmsState()
        self.calls.clear()
        self.webhooks.clear()

    # -- the Google token endpoint

    def trust(self, account: ServiceAccount | Mapping[str, str]) -> ServiceAccount:
        """Accept assertions signed by this service account's key."""
        info = dict(account.info if isinstance(account, ServiceAccount) else account)
        key = serialization.load_pem_private_key(info["private_key"].encode(), password=None)
        assert isinstance(key, rsa.RSAPrivateKey)
        self.google.keys[info["client_email"]] = TrustedKey(
            info.get("private_key_id"), key.public_key()
        )
        return ServiceAccount(info)

    def new_service_account(self) -> ServiceAccount:
        """A fresh key whose ``token_uri`` is this fake, already trusted."""
        return self.trust(make_service_account(self.token_uri))

    def _token_error(self, status: int, error: str, description: str) -> web.Response:
        self.google.refused += 1
        return web.json_response({"error": error, "error_description": description}, status=status)

    async def _token(self, request: web.Request) -> web.Response:
        await self._record(request)
        if self.google.script and (status := self.google.script.pop(0)) != 200:
            error = "internal_failure" if status >= 500 else "invalid_grant"
            return self._token_error(status, error, f"scripted {status}")
        form = await request.post()
        if form.get("grant_type") != JWT_GRANT:
            return self._token_error(400, "unsupported_grant_type", "Invalid grant_type")
        audiences = {GOOGLE_TOKEN_AUDIENCE, self.token_uri}
        try:
            verify_assertion(
                str(form.get("assertion", "")), self.google.keys, audiences, time.time()
            )
        except ValueError as exc:
            return self._token_error(400, "invalid_grant", str(exc))
        token = f"ya29.fake-{next(self._seq)}-{uuid.uuid4().hex}"
        self.google.tokens[token] = time.time() + self.google.expires_in
        self.google.minted += 1
        return web.json_response(
            {"access_token": token, "expires_in": self.google.expires_in, "token_type": "Bearer"}
        )

    def token_valid(self, token: str) -> bool:
        if self.bearer is not None and token == self.bearer:
            return True
        expiry = self.google.tokens.get(token)
        return expiry is not None and time.time() < expiry

    # -- RBM

    def _rbm_error(self, status: int, message: str | None = None) -> web.Response:
        body = {
            "error": {
                "code": status,
                "message": message or f"fake {status}",
                "status": _RBM_STATUS.get(status, "UNKNOWN"),
            }
        }
        headers = {"Retry-After": "1"} if status == 429 else None
        return web.json_response(body, status=status, headers=headers)

    def _rbm_refusal(self, request: web.Request) -> web.Response | None:
        auth = request.headers.get("Authorization", "")
        if not auth.startswith("Bearer ") or not self.token_valid(auth[len("Bearer ") :]):
            return self._rbm_error(401, "Request had invalid authentication credentials.")
        if request.query.get("agentId") != self.agent_id:
            return self._rbm_error(401, "unknown agentId")
        return None

    @property
    def rbm_webhook_url(self) -> str | None:
        if self.rbm_webhook_override:
            return self.rbm_webhook_override
        return None if self.webhook_base is None else self.webhook_base + self.rbm_webhook_path

    async def _rbm_send(self, request: web.Request) -> web.Response:
        await self._record(request)
        if (refused := self._rbm_refusal(request)) is not None:
            return refused
        if self.rbm.send_script and (status := self.rbm.send_script.pop(0)) != 200:
            return self._rbm_error(status)
        phone, mid = request.match_info["phone"], request.query.get("messageId", "")
        try:
            uuid.UUID(mid)
        except ValueError:
            return self._rbm_error(400, f"messageId {mid!r} is not a UUID")
        if not E164.match(phone):
            return self._rbm_error(400, f"{phone!r} is not an E.164 number")
        if phone in self.rbm.unreachable:
            return self._rbm_error(404, "Requested entity was not found.")
        try:
            payload = await request.json()
        except ValueError:
            return self._rbm_error(400, "the body is not JSON")
        problem = agent_message_problems(payload)
        if problem is not None:
            return self._rbm_error(400, problem)
        if self.rbm.latency_ms:
            await asyncio.sleep(self.rbm.latency_ms / 2000)
        self.rbm.posts[mid] += 1
        if mid in self.rbm.messages:  # ignored, as the platform does with a repeated id
            if self.rbm.duplicate_status == 409:
                return self._rbm_error(409, "Requested entity already exists")
        else:
            self.rbm.messages[mid] = {"phone": phone, "payload": payload, "state": "pending"}
            if self.rbm.auto_deliver_ms is not None:
                self._spawn(self._auto_deliver(mid, self.rbm.auto_deliver_ms))
        if self.rbm.latency_ms:
            await asyncio.sleep(self.rbm.latency_ms / 2000)
        return web.json_response(
            {
                "name": f"phones/{phone}/agentMessages/{mid}",
                "sendTime": _rfc3339(time.time()),
                **payload,
            }
        )

    async def _auto_deliver(self, mid: str, after_ms: int) -> None:
        await asyncio.sleep(after_ms / 1000)
        await self.deliver(mid, read=self.rbm.auto_read, retry=True)

    async def _rbm_capability(self, request: web.Request) -> web.Response:
        await self._record(request)
        if (refused := self._rbm_refusal(request)) is not None:
            return refused
        if self.rbm.capability_script and (s := self.rbm.capability_script.pop(0)) != 200:
            return self._rbm_error(s)
        if not request.query.get("requestId"):
            return self._rbm_error(400, "requestId is required")
        phone = request.match_info["phone"]
        if phone in self.rbm.unreachable:
            return self._rbm_error(404, "Requested entity was not found.")
        return web.json_response({"features": self.rbm.features.get(phone, DEFAULT_FEATURES)})

    async def _rbm_revoke(self, request: web.Request) -> web.Response:
        await self._record(request)
        if (refused := self._rbm_refusal(request)) is not None:
            return refused
        if self.rbm.revoke_script and (s := self.rbm.revoke_script.pop(0)) != 200:
            return self._rbm_error(s)
        mid = request.match_info["mid"]
        self.rbm.revokes[mid] += 1
        message = self.rbm.messages.get(mid)
        if message is not None and message["state"] == "pending":
            if self.rbm.revoke_fails:
                await self.push_rbm(message["phone"], mid, "TTL_EXPIRATION_REVOKE_FAILED")
            else:
                message["state"] = "revoked"
                await self.push_rbm(message["phone"], mid, "TTL_EXPIRATION_REVOKED")
        return web.json_response({})  # 200 whatever happened: the events tell

    async def deliver(self, mid: str, *, read: bool = False, retry: bool = False) -> list[int]:
        """The device got the message: DELIVERED (and READ) events; the webhook's answers."""
        message = self.rbm.messages[mid]
        if message["state"] != "pending":
            return []
        message["state"] = "delivered"
        out = [await self.push_rbm(message["phone"], mid, "DELIVERED", retry=retry)]
        if read:
            message["state"] = "read"
            out.append(await self.push_rbm(message["phone"], mid, "READ", retry=retry))
        return out

    async def expire(self, mid: str, *, retry: bool = False) -> list[int]:
        """The message's TTL ran out before delivery: the platform revokes it."""
        message = self.rbm.messages[mid]
        if message["state"] != "pending":
            return []
        message["state"] = "expired"
        return [await self.push_rbm(message["phone"], mid, "TTL_EXPIRATION_REVOKED", retry=retry)]

    async def push_rbm(
        self,
        phone: str,
        mid: str | None,
        event_type: str | None,
        *,
        retry: bool = False,
        **extra: Any,
    ) -> int:
        """Post one event the way RBM does; returns the webhook's status (0: unreachable).
        ``retry``: keep trying in the background until a 200, like Google."""
        send_time = self.event_time or _rfc3339(time.time())
        event: dict[str, Any] = {"agentId": self.agent_id, "sendTime": send_time}
        if mid is None and event_type is None:
            mid = str(uuid.uuid4())  # a user message has an id of its own
        ttl_event = bool(event_type and event_type.startswith("TTL"))
        event["phoneNumber" if ttl_event else "senderPhoneNumber"] = phone
        if mid is not None:
            event["messageId"] = mid
        if event_type is not None:
            event["eventType"] = event_type
            event["eventId"] = f"EV-{next(self._events)}"
        event.update(extra)
        return await self.post_rbm_raw(rbm.encode_envelope(event), retry=retry)

    async def post_rbm_raw(
        self, body: bytes, signature: str | None = None, *, retry: bool = False
    ) -> int:
        url = self.rbm_webhook_url
        assert url is not None, "no webhook URL: set webhook_base"
        sig = rbm.sign(self.client_token, body) if signature is None else signature
        headers = {"X-Goog-Signature": sig, "Content-Type": "application/json"}
        return await self._post(url, body, headers, retry=retry)

    # -- Twilio

    def _twilio_error(self, status: int, code: int, message: str) -> web.Response:
        headers = {"Retry-After": "2"} if status == 429 else None
        body = {"code": code, "message": message, "more_info": "", "status": status}
        return web.json_response(body, status=status, headers=headers)

    def _twilio_refusal(self, request: web.Request) -> web.Response | None:
        basic = base64.b64encode(f"{self.account_sid}:{self.auth_token}".encode()).decode()
        if (
            request.headers.get("Authorization") != f"Basic {basic}"
            or request.match_info["sid"] != self.account_sid
        ):
            return self._twilio_error(401, 20003, "Authenticate")
        return None

    @property
    def twilio_inbound_url(self) -> str | None:
        if self.twilio_inbound_override:
            return self.twilio_inbound_override
        return None if self.webhook_base is None else self.webhook_base + self.twilio_inbound_path

    async def _sms_send(self, request: web.Request) -> web.Response:
        await self._record(request)
        if (refused := self._twilio_refusal(request)) is not None:
            return refused
        if self.sms.send_script and (status := self.sms.send_script.pop(0)) != 201:
            code = {400: 21211, 429: 20429}.get(status, 20500)
            return self._twilio_error(status, code, f"fake {status}")
        form = {k: str(v) for k, v in (await request.post()).items()}
        to = form.get("To", "")
        if not to:
            return self._twilio_error(400, 21604, "A 'To' phone number is required.")
        if not E164.match(to):
            return self._twilio_error(400, 21211, f"Invalid 'To' Phone Number: {to}")
        if not form.get("Body"):
            return self._twilio_error(400, 21602, "Message body is required.")
        if not (form.get("From") or form.get("MessagingServiceSid")):
            return self._twilio_error(400, 21603, "A 'From' phone number is required.")
        if self.sms.latency_ms:
            await asyncio.sleep(self.sms.latency_ms / 2000)
        sid = f"SM{next(self._sids):032x}"
        now = time.time()
        callback = form.get("StatusCallback")
        mid = parse_qs(urlsplit(callback).query).get("mid", [None])[0] if callback else None
        self.sms.messages[sid] = form
        self.sms.meta[sid] = {
            "mid": mid,
            "created": now,
            "seq": next(self._seq),
            "status": "queued",
            "error_code": None,
        }
        if mid is not None:
            self.sms.accepted[mid] += 1
        if self.sms.auto_status_ms is not None:
            self._spawn(self._auto_status(sid, self.sms.auto_status_ms))
        if self.sms.latency_ms:
            await asyncio.sleep(self.sms.latency_ms / 2000)
        return web.json_response(self._resource(sid, created=True), status=201)

    def _resource(self, sid: str, *, created: bool = False) -> dict[str, Any]:
        form, meta = self.sms.messages[sid], self.sms.meta[sid]
        stamp = format_datetime(datetime.fromtimestamp(meta["created"], tz=UTC))
        return {
            "sid": sid,
            "account_sid": self.account_sid,
            "messaging_service_sid": form.get("MessagingServiceSid"),
            "to": form["To"],
            "from": form.get("From"),
            "body": form["Body"],
            "status": "queued" if created else meta["status"],
            "direction": "outbound-api",
            "num_segments": "1",
            "date_created": stamp,
            "date_updated": stamp,
            # handed to the carrier at once: sent the moment it was created
            "date_sent": None if created else stamp,
            "error_code": meta["error_code"],
            "error_message": None,
            "price": None,
            "api_version": "2010-04-01",
            "uri": f"/2010-04-01/Accounts/{self.account_sid}/Messages/{sid}.json",
        }

    async def _sms_list(self, request: web.Request) -> web.Response:
        await self._record(request)
        if (refused := self._twilio_refusal(request)) is not None:
            return refused
        if self.sms.list_script and (status := self.sms.list_script.pop(0)) != 200:
            return self._twilio_error(status, 20500, f"fake {status}")
        q = request.query
        try:
            size = min(1000, max(1, int(q.get("PageSize", "50"))))
            page = max(0, int(q.get("Page", "0")))
        except ValueError:
            return self._twilio_error(400, 20001, "bad paging parameters")

        def sent_day(sid: str) -> str:
            return datetime.fromtimestamp(self.sms.meta[sid]["created"], tz=UTC).strftime(
                "%Y-%m-%d"
            )

        sids = [
            sid
            for sid, form in self.sms.messages.items()
            if q.get("To") in (None, form["To"])
            and q.get("From") in (None, form.get("From"))
            and q.get("DateSent") in (None, sent_day(sid))
            and ("DateSent>" not in q or sent_day(sid) >= q["DateSent>"])
            and ("DateSent<" not in q or sent_day(sid) <= q["DateSent<"])
        ]
        sids.sort(
            key=lambda s: (self.sms.meta[s]["created"], self.sms.meta[s]["seq"]), reverse=True
        )
        chunk = sids[page * size : (page + 1) * size]
        base = f"/2010-04-01/Accounts/{self.account_sid}/Messages.json"
        keep = {k: v for k, v in q.items() if k not in ("Page", "PageToken")}

        def uri(n: int) -> str:
            return (
                f"{base}?{urlencode({**keep, 'PageSize': size, 'Page': n, 'PageToken': f'PA{n}'})}"
            )

        more = (page + 1) * size < len(sids)
        return web.json_response(
            {
                "messages": [self._resource(sid) for sid in chunk],
                "page": page,
                "page_size": size,
                "uri": uri(page),
                "first_page_uri": uri(0),
                "next_page_uri": uri(page + 1) if more else None,
                "previous_page_uri": uri(page - 1) if page else None,
                "start": page * size,
                "end": page * size + len(chunk) - 1,
            }
        )

    async def _sms_fetch(self, request: web.Request) -> web.Response:
        await self._record(request)
        if (refused := self._twilio_refusal(request)) is not None:
            return refused
        sid = request.match_info["msid"]
        if sid not in self.sms.messages:
            return self._twilio_error(
                404, 20404, f"The requested resource {request.path} was not found"
            )
        return web.json_response(self._resource(sid))

    async def _auto_status(self, sid: str, after_ms: int) -> None:
        await asyncio.sleep(after_ms / 1000)
        await self.sms_status(sid, "sent")
        await self.sms_status(sid, "delivered")

    async def sms_status(self, sid: str, status: str, error_code: str | None = None) -> int:
        """Call the message's StatusCallback like Twilio: a signed form post."""
        form, meta = self.sms.messages[sid], self.sms.meta[sid]
        meta["status"] = status
        if error_code:
            meta["error_code"] = int(error_code)
        callback = form.get("StatusCallback")
        if not callback:
            return 0
        fields = {
            "MessageSid": sid,
            "SmsSid": sid,
            "MessageStatus": status,
            "SmsStatus": status,
            "To": form["To"],
            "AccountSid": self.account_sid,
            "ApiVersion": "2010-04-01",
        }
        if form.get("From"):
            fields["From"] = form["From"]
        if form.get("MessagingServiceSid"):
            fields["MessagingServiceSid"] = form["MessagingServiceSid"]
        if error_code:
            fields["ErrorCode"] = error_code
        return await self._twilio_post(callback, fields)

    async def sms_inbound(self, from_phone: str, body: str, to: str = "+15005550006") -> int:
        url = self.twilio_inbound_url
        assert url is not None, "no webhook URL: set webhook_base"
        sid = f"SM{next(self._sids):032x}"
        fields = {
            "MessageSid": sid,
            "SmsSid": sid,
            "SmsMessageSid": sid,
            "AccountSid": self.account_sid,
            "From": from_phone,
            "To": to,
            "Body": body,
            "NumMedia": "0",
            "NumSegments": "1",
            "SmsStatus": "received",
            "ApiVersion": "2010-04-01",
        }
        return await self._twilio_post(url, fields)

    async def _twilio_post(self, url: str, fields: dict[str, str]) -> int:
        signature = twilio.twilio_signature(self.auth_token, url, fields)
        return await self._post(url, fields, {"X-Twilio-Signature": signature}, retry=False)

    # -- webhooks out

    async def _post(
        self, url: str, data: bytes | dict[str, str], headers: dict[str, str], *, retry: bool
    ) -> int:
        status = await self._post_once(url, data, headers)
        if status != 200 and retry:
            self._spawn(self._retry(url, data, headers))
        return status

    async def _post_once(
        self, url: str, data: bytes | dict[str, str], headers: dict[str, str]
    ) -> int:
        assert self._client is not None, "start() first"
        try:
            async with self._client.post(url, data=data, headers=headers) as resp:
                await resp.read()
                self.webhooks["posted" if resp.status == 200 else "refused"] += 1
                return resp.status
        except (aiohttp.ClientError, TimeoutError) as exc:
            self.webhooks["failed"] += 1
            log.info("webhook %s unreachable: %s", url, exc)
            return 0

    async def _retry(self, url: str, data: bytes | dict[str, str], headers: dict[str, str]) -> None:
        """Google retries a webhook that didn't answer 200, with backoff (for days)."""
        delay, deadline = 0.1, time.monotonic() + self.webhook_retry_s
        while time.monotonic() < deadline:
            await asyncio.sleep(delay)
            self.webhooks["retried"] += 1
            if await self._post_once(url, data, headers) == 200:
                return
            delay = min(delay * 2, 2.0)
        log.warning("webhook %s: gave up", url)

    # -- counts and scripts

    def counts(self) -> dict[str, Any]:
        """What reached the "user", for at-most-once checks.

        * ``rbm.accepted_by_phone``: distinct messageIds the platform took, per phone (a
          repeated id is ignored, as Google does); ``rbm.posts``: POSTs per messageId that
          were answered 200 or 409, repeats included;
        * ``twilio.accepted``: messages created per our message id (the StatusCallback's
          ``mid``): more than 1 means the user got the SMS twice; ``twilio.by_phone``;
        * ``rcs_and_sms``: phones that got an RCS message (not revoked or expired) and an
          SMS: whether the SMS was that RCS message's fallback is for the test to judge.
        """
        rbm_by_phone: dict[str, list[str]] = {}
        for mid, m in self.rbm.messages.items():
            rbm_by_phone.setdefault(m["phone"], []).append(mid)
        sms_by_phone: dict[str, list[str]] = {}
        for sid, form in self.sms.messages.items():
            sms_by_phone.setdefault(form["To"], []).append(self.sms.meta[sid]["mid"] or sid)
        live_rcs = {
            m["phone"]
            for m in self.rbm.messages.values()
            if m["state"] not in ("revoked", "expired")
        }
        return {
            "rbm": {
                "accepted_by_phone": rbm_by_phone,
                "posts": dict(self.rbm.posts),
                "states": {mid: m["state"] for mid, m in self.rbm.messages.items()},
                "revokes": dict(self.rbm.revokes),
            },
            "twilio": {
                "accepted": dict(self.sms.accepted),
                "by_phone": sms_by_phone,
                "sids": {mid: sid for sid, meta in self.sms.meta.items() if (mid := meta["mid"])},
            },
            "rcs_and_sms": sorted(live_rcs & set(sms_by_phone)),
            "tokens": {"minted": self.google.minted, "refused": self.google.refused},
            "webhooks": dict(self.webhooks),
        }

    def script(self, spec: Mapping[str, Any]) -> dict[str, Any]:
        """Apply a script (keys as in the control API; lists of statuses are appended)."""
        lists = {
            "rbm_send": self.rbm.send_script,
            "rbm_capability": self.rbm.capability_script,
            "rbm_revoke": self.rbm.revoke_script,
            "twilio_send": self.sms.send_script,
            "twilio_list": self.sms.list_script,
            "token": self.google.script,
        }
        for key, value in spec.items():
            if key in lists:
                lists[key].extend(int(s) for s in value)
            elif key == "unreachable":
                self.rbm.unreachable.update(value)
            elif key == "reachable":
                self.rbm.unreachable.difference_update(value)
            elif key == "features":
                self.rbm.features.update(value)
            elif key == "revoke_fails":
                self.rbm.revoke_fails = bool(value)
            elif key == "duplicate_status":
                self.rbm.duplicate_status = int(value)
            elif key == "auto_deliver_ms":
                self.rbm.auto_deliver_ms = None if value is None else int(value)
            elif key == "auto_read":
                self.rbm.auto_read = bool(value)
            elif key == "twilio_auto_status_ms":
                self.sms.auto_status_ms = None if value is None else int(value)
            elif key == "latency_ms":  # RBM and Twilio sends
                self.rbm.latency_ms = self.sms.latency_ms = int(value)
            elif key == "token_expires_in":
                self.google.expires_in = int(value)
            elif key == "webhook_base":
                self.webhook_base = str(value).rstrip("/")
            elif key == "rbm_webhook_url":
                self.rbm_webhook_override = value
            elif key == "twilio_inbound_url":
                self.twilio_inbound_override = value
            else:
                raise ValueError(f"unknown script key {key!r}")
        return {
            "rbm_send": self.rbm.send_script,
            "twilio_send": self.sms.send_script,
            "token": self.google.script,
            "unreachable": sorted(self.rbm.unreachable),
            "auto_deliver_ms": self.rbm.auto_deliver_ms,
            "twilio_auto_status_ms": self.sms.auto_status_ms,
        }

    # -- control API

    async def _json(self, request: web.Request) -> dict[str, Any]:
        if not request.can_read_body:
            return {}
        body = await request.json()
        if not isinstance(body, dict):
            raise web.HTTPBadRequest(text="a JSON object, please")
        return body

    async def _ctl_counts(self, request: web.Request) -> web.Response:
        return web.json_response(self.counts())

    async def _ctl_messages(self, request: web.Request) -> web.Response:
        return web.json_response(
            {
                "rbm": self.rbm.messages,
                "twilio": {
                    sid: {**self._resource(sid), "mid": m["mid"]}
                    for sid, m in self.sms.meta.items()
                },
            }
        )

    async def _ctl_script(self, request: web.Request) -> web.Response:
        try:
            return web.json_response(self.script(await self._json(request)))
        except (ValueError, TypeError) as exc:
            return web.json_response({"error": str(exc)}, status=400)

    async def _ctl_deliver(self, request: web.Request) -> web.Response:
        mid = request.match_info["mid"]
        if mid in self.rbm.messages:
            read = request.query.get("read") in ("1", "true")
            return web.json_response({"posted": await self.deliver(mid, read=read, retry=True)})
        sids = [sid for sid, meta in self.sms.meta.items() if meta["mid"] == mid]
        if not sids:
            return web.json_response({"error": f"no message {mid}"}, status=404)
        status = request.query.get("status", "delivered")
        error = request.query.get("error_code")
        posted = []
        for sid in sids:
            posted.append(await self.sms_status(sid, "sent"))
            posted.append(await self.sms_status(sid, status, error))
        return web.json_response({"posted": posted})

    async def _ctl_expire(self, request: web.Request) -> web.Response:
        mid = request.match_info["mid"]
        if mid not in self.rbm.messages:
            return web.json_response({"error": f"no RBM message {mid}"}, status=404)
        return web.json_response({"posted": await self.expire(mid, retry=True)})

    async def _ctl_rbm_event(self, request: web.Request) -> web.Response:
        spec = await self._json(request)
        phone = str(spec.pop("phone"))
        mid, event_type = spec.pop("message_id", None), spec.pop("event_type", None)
        status = await self.push_rbm(phone, mid, event_type, retry=True, **spec)
        return web.json_response({"status": status})

    async def _ctl_rbm_tap(self, request: web.Request) -> web.Response:
        spec = await self._json(request)
        postback = str(spec["postback"])
        response = {"postbackData": postback, "text": spec.get("text", postback), "type": "REPLY"}
        status = await self.push_rbm(
            str(spec["phone"]), None, None, retry=True, suggestionResponse=response
        )
        return web.json_response({"status": status})

    async def _ctl_rbm_text(self, request: web.Request) -> web.Response:
        spec = await self._json(request)
        status = await self.push_rbm(
            str(spec["phone"]), None, None, retry=True, text=str(spec["text"])
        )
        return web.json_response({"status": status})

    async def _ctl_twilio_inbound(self, request: web.Request) -> web.Response:
        spec = await self._json(request)
        status = await self.sms_inbound(str(spec["from"]), str(spec["body"]))
        return web.json_response({"status": status})

    async def _ctl_service_account(self, request: web.Request) -> web.Response:
        return web.json_response(self.new_service_account().info)

    async def _ctl_reset(self, request: web.Request) -> web.Response:
        self.reset()
        return web.json_response({})


def _rfc3339(epoch_s: float) -> str:
    return (
        datetime.fromtimestamp(epoch_s, tz=UTC)
        .isoformat(timespec="microseconds")
        .replace("+00:00", "Z")
    )


# --------------------------------------------------------------------------- as a process


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(
        prog="python -m tests.fakes.providers",
        description="fake Google token endpoint + RBM + Twilio for tests; prints its port",
    )
    p.add_argument("--host", default="127.0.0.1")
    p.add_argument("--port", type=int, default=0, help="0: any free port")
    p.add_argument("--webhook-base", help="our webhook server, e.g. http://127.0.0.1:8088")
    p.add_argument("--rbm-webhook-url", help="default: <webhook-base>/webhooks/rbm")
    p.add_argument("--twilio-inbound-url", help="default: <webhook-base>/webhooks/twilio")
    p.add_argument("--agent-id", default="test-agent")
    p.add_argument("--client-token", default="client-token")
    p.add_argument("--account-sid", default=DEFAULT_ACCOUNT_SID)
    p.add_argument("--auth-token", default=DEFAULT_AUTH_TOKEN)
    p.add_argument("--service-account", help="write a new trusted key (token_uri: this fake) here")
    p.add_argument("--trust-service-account", action="append", default=[], help="trust this key")
    p.add_argument("--token-expires-in", type=int, default=3600)
    p.add_argument("--auto-deliver-ms", type=int, help="RBM: DELIVERED this long after a send")
    p.add_argument("--twilio-auto-status-ms", type=int, help="Twilio: sent+delivered after this")
    p.add_argument("--latency-ms", type=int, default=0, help="RBM and Twilio sends take this long")
    return p.parse_args(argv)


async def serve(args: argparse.Namespace) -> None:
    fake = FakeProviders(
        agent_id=args.agent_id,
        client_token=args.client_token,
        account_sid=args.account_sid,
        auth_token=args.auth_token,
        webhook_base=args.webhook_base.rstrip("/") if args.webhook_base else None,
    )
    fake.rbm_webhook_override = args.rbm_webhook_url
    fake.twilio_inbound_override = args.twilio_inbound_url
    fake.google.expires_in = args.token_expires_in
    fake.rbm.auto_deliver_ms = args.auto_deliver_ms
    fake.sms.auto_status_ms = args.twilio_auto_status_ms
    fake.rbm.latency_ms = fake.sms.latency_ms = args.latency_ms
    await fake.start(args.host, args.port)
    for path in args.trust_service_account:
        fake.trust(json.loads(Path(path).read_text()))
    if args.service_account:
        fake.new_service_account().write(args.service_account)
    print(fake.port, flush=True)  # the parent waits for this line
    log.info("fake providers at %s (token_uri %s)", fake.base_url, fake.token_uri)
    try:
        await asyncio.Event().wait()
    finally:
        await fake.stop()


def main(argv: list[str] | None = None) -> None:
    logging.basicConfig(level=logging.INFO, stream=sys.stderr, format="fake: %(message)s")
    with contextlib.suppress(KeyboardInterrupt):  # ^C ends it quietly
        asyncio.run(serve(parse_args(argv)))


if __name__ == "__main__":
    main()
