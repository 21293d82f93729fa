"""Google RBM (RCS Business Messaging API v1) payloads: build, validate, feature needs.

:func:`build_agent_message` turns a :class:`RenderedMessage` into the JSON body of
``POST phones/{E164}/agentMessages?messageId={id}`` (an ``AgentMessage``); the message
id goes in the query string, not the body, and must be a UUID (the platform ignores a
repeated id, which makes retries safe). :func:`validate_agent_message` checks every RCS
limit of ``docs/channels.md`` on the *rendered* payload and raises
:class:`PayloadLimitError` whose ``limit`` is a stable short name (``rcs.*``, listed in
:data:`LIMITS`). :func:`required_features` lists the capability features the device must
report (``GET phones/{E164}/capabilities``) for the message to be accepted.

How lengths are counted: message text, suggestion text, postbacks, URLs and calendar
fields in characters (code points); card title and description in UTF-8 bytes (the safe
reading of sources that disagree); the whole message as compact UTF-8 JSON, at most 250,000 bytes.

Media files must be on a public https host (no loopback, private, link-local or
``.local``-style names) and of an allowed type: the ``content_type`` the journey declares
(passed as ``content_types``, since RBM's ``contentInfo`` has no such field), else the URL
path's extension. Dial numbers must be E.164 *and* valid for libphonenumber. Not checked
here: the 100 kB thumbnail size and the served Content-Type (they need the file).
"""

from __future__ import annotations

import ipaddress
import json
import re
import uuid
from collections.abc import Iterator, Mapping
from datetime import UTC, datetime
from typing import Any
from urllib.parse import urlsplit

from engine.channels.phone import normalize_phone
from engine.errors import PayloadLimitError
from engine.journey.render import RenderedCard, RenderedMessage, RenderedSuggestion

TEXT_MAX_CHARS = 3072
PAYLOAD_MAX_BYTES = 250_000
MESSAGE_SUGGESTIONS_MAX = 11
CARD_SUGGESTIONS_MAX = 4
CARD_TITLE_MAX_BYTES = 200
CARD_DESCRIPTION_MAX_BYTES = 2000
CAROUSEL_MIN_CARDS, CAROUSEL_MAX_CARDS = 2, 10
SUGGESTION_TEXT_MAX = 25
POSTBACK_MAX = 2048
URL_MAX = 2048
CALENDAR_TITLE_MAX = 100
CALENDAR_DESCRIPTION_MAX = 500

IMAGE_EXTENSIONS = frozenset({"jpeg", "jpg", "gif", "png"})
MEDIA_EXTENSIONS = IMAGE_EXTENSIONS | {
    "mp4",
    "m4v",
    "mpeg",
    "webm",
    "h263",
    "aac",
    "mp3",
    "ogg",
    "3gpp",
    "pdf",
}
IMAGE_CONTENT_TYPES = frozenset({"image/jpeg", "image/jpg", "image/gif", "image/png"})
MEDIA_CONTENT_TYPES = IMAGE_CONTENT_TYPES | {
    "video/mp4",
    "video/m4v",
    "video/x-m4v",
    "video/mpeg",
    "video/webm",
    "video/h263",
    "audio/aac",
    "audio/mp3",
    "audio/mpeg",
    "audio/ogg",
    "application/ogg",
    "audio/3gpp",
    "video/3gpp",
    "application/pdf",
}

#: every ``limit`` name :func:`validate_agent_message` and :func:`build_agent_message` raise
LIMITS = (
    "rcs.content",
    "rcs.text_length",
    "rcs.text_empty",
    "rcs.payload_size",
    "rcs.message_suggestions",
    "rcs.card_suggestions",
    "rcs.card_orientation",
    "rcs.horizontal_alignment",
    "rcs.card_title_length",
    "rcs.card_description_length",
    "rcs.card_empty",
    "rcs.media_height",
    "rcs.carousel_cards",
    "rcs.carousel_width",
    "rcs.carousel_tall_media",
    "rcs.media_url",
    "rcs.media_type",
    "rcs.suggestion_kind",
    "rcs.suggestion_text_length",
    "rcs.postback_length",
    "rcs.url_length",
    "rcs.url",
    "rcs.dial_phone",
    "rcs.view_location",
    "rcs.calendar_title_length",
    "rcs.calendar_description_length",
    "rcs.calendar_time",
    "rcs.expiry",
    "rcs.message_id",
)

_TTL = re.compile(r"^\d+(\.\d{1,9})?s$")
_PRIVATE_SUFFIXES = (".localhost", ".local", ".internal", ".lan", ".home.arpa", ".intranet")
_ACTION_FEATURES = {
    "openUrlAction": "ACTION_OPEN_URL",
    "dialAction": "ACTION_DIAL",
    "viewLocationAction": "ACTION_VIEW_LOCATION",
    "shareLocationAction": "ACTION_SHARE_LOCATION",
    "createCalendarEventAction": "ACTION_CREATE_CALENDAR_EVENT",
}


# --------------------------------------------------------------------------- build


def build_agent_message(
    msg: RenderedMessage, *, message_id: str, ttl_ms: int | None
) -> dict[str, Any]:
    """The RBM ``AgentMessage`` body for ``msg``; ``ttl_ms`` (usually ``msg.rcs_ttl_ms``)
    becomes ``"ttl": "600s"``, ``None`` leaves expiry out. Calendar times are normalized to
    UTC ``...Z`` when they parse. Raises ``rcs.message_id`` / ``rcs.content`` /
    ``rcs.expiry`` errors; the limits are checked by :func:`validate_agent_message`."""
    try:
        uuid.UUID(message_id)
    except (ValueError, TypeError) as exc:
        raise PayloadLimitError("rcs.message_id", f"{message_id!r} is not a UUID") from exc
    if msg.channel != "rcs":
        raise PayloadLimitError("rcs.content", f"a {msg.channel} message has no RCS form")
    content: dict[str, Any] = {}
    if msg.rich_card is not None:
        card = msg.rich_card
        standalone: dict[str, Any] = {"cardOrientation": card.orientation}
        if card.orientation == "HORIZONTAL" and card.thumbnail_alignment is not None:
            standalone["thumbnailImageAlignment"] = card.thumbnail_alignment
        standalone["cardContent"] = _card_content(card)
        content["richCard"] = {"standaloneCard": standalone}
    elif msg.carousel is not None:
        content["richCard"] = {
            "carouselCard": {
                "cardWidth": msg.carousel.width,
                "cardContents": [_card_content(c) for c in msg.carousel.cards],
            }
        }
    elif msg.text is not None:
        content["text"] = msg.text
    if msg.suggestions:
        content["suggestions"] = [suggestion_json(s) for s in msg.suggestions]
    payload: dict[str, Any] = {"contentMessage": content}
    if ttl_ms is not None:
        if ttl_ms <= 0:
            raise PayloadLimitError("rcs.expiry", f"ttl must be positive, got {ttl_ms} ms")
        payload["ttl"] = _duration(ttl_ms)
    return payload


def build_and_validate(msg: RenderedMessage, message_id: str, ttl_ms: int | None) -> dict[str, Any]:
    """:func:`build_agent_message` then :func:`validate_agent_message` (with declared media
    content types)."""
    payload = build_agent_message(msg, message_id=message_id, ttl_ms=ttl_ms)
    validate_agent_message(payload, content_types=declared_content_types(msg))
    return payload


def declared_content_types(msg: RenderedMessage) -> dict[str, str]:
    """fileUrl -> content_type given in the journey (RBM's ``contentInfo`` has no such field)."""
    return {
        c.media.url: c.media.content_type
        for c in msg.cards
        if c.media is not None and c.media.content_type
    }


def _duration(ms: int) -> str:
    seconds, rest = divmod(ms, 1000)
    return f"{seconds}s" if rest == 0 else f"{seconds}.{rest:03d}s"


def _some(**fields: Any) -> dict[str, Any]:
    """The fields that are set (not ``None``, not an empty list), in order."""
    return {k: v for k, v in fields.items() if v is not None and v != []}


def _card_content(card: RenderedCard) -> dict[str, Any]:
    media = card.media
    return _some(
        title=card.title,
        description=card.description,
        media=None
        if media is None
        else {
            "height": media.height,
            "contentInfo": _some(
                fileUrl=media.url, thumbnailUrl=media.thumbnail_url, forceRefresh=False
            ),
        },
        suggestions=[suggestion_json(s) for s in card.suggestions],
    )


def suggestion_json(s: RenderedSuggestion) -> dict[str, Any]:
    """One RBM ``Suggestion``: ``{"reply": {...}}`` or ``{"action": {...}}``."""
    if s.kind == "reply":
        return {"reply": {"text": s.text, "postbackData": s.postback}}
    kind: dict[str, Any] = {}
    match s.kind:
        case "open_url":
            kind = {"openUrlAction": {"url": s.url}}
        case "dial":
            kind = {"dialAction": {"phoneNumber": s.phone}}
        case "view_location" if s.lat is not None and s.long is not None:
            latlong = {"latitude": s.lat, "longitude": s.long}
            kind = {"viewLocationAction": _some(latLong=latlong, label=s.label)}
        case "view_location":
            kind = {"viewLocationAction": {"query": s.query}}
        case "share_location":
            kind = {"shareLocationAction": {}}
        case "calendar":
            event = _some(
                startTime=_utc(s.start),
                endTime=_utc(s.end),
                title=s.title,
                description=s.description,
            )
            kind = {"createCalendarEventAction": event}
    action = _some(text=s.text, postbackData=s.postback, fallbackUrl=s.fallback_url)
    return {"action": {**action, **kind}}


def _parse_time(value: object) -> datetime | None:
    if not isinstance(value, str):
        return None
    try:
        t = datetime.fromisoformat(value)
    except ValueError:
        return None
    return t if t.tzinfo is not None else None


def _utc(value: str | None) -> str | None:
    t = _parse_time(value)
    if t is None:
        return value  # left as is: validation reports rcs.calendar_time
    t = t.astimezone(UTC)
    return t.strftime("%Y-%m-%dT%H:%M:%S") + (f".{t.microsecond:06d}Z" if t.microsecond else "Z")


# --------------------------------------------------------------------------- validate


def _require(ok: bool, limit: str, detail: str) -> None:
    if not ok:
        raise PayloadLimitError(limit=limit, detail=detail)


def _at_most(n: int, most: int, limit: str, what: str) -> None:
    _require(n <= most, limit, f"{what} is {n}, at most {most}")


def validate_agent_message(
    payload: dict[str, Any], *, content_types: Mapping[str, str] | None = None
) -> None:
    """Raise :class:`PayloadLimitError` for the first RCS limit ``payload`` breaks.

    ``content_types`` maps a media ``fileUrl`` to its declared type; other media files
    must show an allowed extension in their URL path.
    """
    both = "ttl" in payload and "expireTime" in payload
    _require(not both, "rcs.expiry", "give ttl or expireTime, never both")
    ttl = payload.get("ttl", "1s")
    ok_ttl = isinstance(ttl, str) and bool(_TTL.match(ttl)) and float(ttl[:-1]) > 0
    _require(ok_ttl, "rcs.expiry", f"ttl {ttl!r} is not a positive duration like '600s'")
    content = payload.get("contentMessage")
    if not isinstance(content, dict):
        raise PayloadLimitError("rcs.content", "contentMessage is missing")
    kinds = [k for k in ("text", "richCard", "contentInfo", "uploadedRbmFile") if k in content]
    _require(len(kinds) == 1, "rcs.content", f"need one of text, rich card, file; got {kinds}")
    if "text" in content:
        text = content["text"]
        _require(isinstance(text, str) and bool(text.strip()), "rcs.text_empty", "empty text")
        _at_most(len(text), TEXT_MAX_CHARS, "rcs.text_length", "text length in characters")
    elif "richCard" in content:
        _check_rich_card(content["richCard"], content_types or {})
    chips = content.get("suggestions", [])
    _at_most(len(chips), MESSAGE_SUGGESTIONS_MAX, "rcs.message_suggestions", "message chips")
    for s in chips:
        _check_suggestion(s)
    size = len(json.dumps(payload, ensure_ascii=False, separators=(",", ":")).encode())
    _at_most(size, PAYLOAD_MAX_BYTES, "rcs.payload_size", "the message size in JSON bytes")


def _check_rich_card(rich: Any, types: Mapping[str, str]) -> None:
    if "standaloneCard" in rich:
        card = rich["standaloneCard"]
        orientation = card.get("cardOrientation")
        ok = orientation in ("VERTICAL", "HORIZONTAL")
        _require(ok, "rcs.card_orientation", f"{orientation!r}: use VERTICAL or HORIZONTAL")
        ok = orientation == "VERTICAL" or card.get("thumbnailImageAlignment") in ("LEFT", "RIGHT")
        _require(ok, "rcs.horizontal_alignment", "a HORIZONTAL card needs thumbnail LEFT/RIGHT")
        _check_card(card.get("cardContent", {}), types, "card", in_carousel=False)
    elif "carouselCard" in rich:
        car = rich["carouselCard"]
        width = car.get("cardWidth")
        _require(width in ("SMALL", "MEDIUM"), "rcs.carousel_width", f"{width!r}: SMALL|MEDIUM")
        cards = car.get("cardContents", [])
        n_ok = CAROUSEL_MIN_CARDS <= len(cards) <= CAROUSEL_MAX_CARDS
        _require(n_ok, "rcs.carousel_cards", f"{len(cards)} cards; a carousel has 2 to 10")
        for i, c in enumerate(cards):
            _check_card(c, types, f"carousel card {i + 1}", in_carousel=True)
    else:
        raise PayloadLimitError("rcs.content", "richCard needs standaloneCard or carouselCard")


def _check_card(c: Any, types: Mapping[str, str], where: str, *, in_carousel: bool) -> None:
    media = c.get("media")
    some = bool(c.get("title") or c.get("description") or media)
    _require(some, "rcs.card_empty", f"{where} has no title, description or media")
    n = len(c.get("title", "").encode("utf-8"))
    _at_most(n, CARD_TITLE_MAX_BYTES, "rcs.card_title_length", f"{where} title in UTF-8 bytes")
    n = len(c.get("description", "").encode("utf-8"))
    limit = "rcs.card_description_length"
    _at_most(n, CARD_DESCRIPTION_MAX_BYTES, limit, f"{where} description in UTF-8 bytes")
    if media:
        height = media.get("height")
        _require(height in ("SHORT", "MEDIUM", "TALL"), "rcs.media_height", f"{height!r}")
        tall = in_carousel and height == "TALL"
        _require(not tall, "rcs.carousel_tall_media", f"{where}: no TALL media in a carousel")
        info = media.get("contentInfo", {})
        _check_media_url(info.get("fileUrl"), types, f"{where} media", images_only=False)
        if info.get("thumbnailUrl") is not None:
            _check_media_url(info["thumbnailUrl"], types, f"{where} thumbnail", images_only=True)
    chips = c.get("suggestions", [])
    _at_most(len(chips), CARD_SUGGESTIONS_MAX, "rcs.card_suggestions", f"{where} suggestions")
    for s in chips:
        _check_suggestion(s)


def is_public_https(url: object) -> bool:
    """An absolute ``https`` URL on a public host (no loopback, private or local names)."""
    if not isinstance(url, str) or any(ch.isspace() for ch in url):
        return False
    try:
        parts = urlsplit(url)
        host = parts.hostname
        parts.port  # noqa: B018 - raises ValueError on a bad port
    except ValueError:
        return False
    if parts.scheme != "https" or not host or parts.username is not None:
        return False
    try:
        return ipaddress.ip_address(host).is_global
    except ValueError:  # a name, not an address
        host = host.rstrip(".")
        return "." in host and not host.endswith(_PRIVATE_SUFFIXES)


def _check_media_url(url: Any, types: Mapping[str, str], where: str, *, images_only: bool) -> None:
    _require(is_public_https(url), "rcs.media_url", f"{where} {url!r}: not a public https URL")
    declared = types.get(url)
    if declared is not None:
        ctype = declared.split(";")[0].strip().lower()
        ok = ctype in (IMAGE_CONTENT_TYPES if images_only else MEDIA_CONTENT_TYPES)
        _require(ok, "rcs.media_type", f"{where}: content type {declared!r} is not allowed")
        return
    allowed = IMAGE_EXTENSIONS if images_only else MEDIA_EXTENSIONS
    name = urlsplit(url).path.rsplit("/", 1)[-1]
    ext = name.rsplit(".", 1)[-1].lower() if "." in name else ""
    _require(
        ext in allowed,
        "rcs.media_type",
        f"{where} {url!r}: file type {ext or '(none)'!r} is not one of "
        f"{', '.join(sorted(allowed))}; declare content_type if the URL has no extension",
    )


def _check_url(url: Any, what: str) -> None:
    _require(isinstance(url, str), "rcs.url", f"{what} is missing")
    _at_most(len(url), URL_MAX, "rcs.url_length", f"{what} length")
    parts = urlsplit(url)
    ok = parts.scheme in ("http", "https") and bool(parts.netloc) and " " not in url
    _require(ok, "rcs.url", f"{what} {url!r} is not an absolute http(s) URL")


def _check_suggestion(s: Any) -> None:
    body = s.get("reply") or s.get("action")
    _require(isinstance(body, dict), "rcs.suggestion_kind", f"{s!r}: not a reply or action")
    text = body.get("text") or ""
    _require(bool(text.strip()), "rcs.suggestion_text_length", "a suggestion has no text")
    _at_most(len(text), SUGGESTION_TEXT_MAX, "rcs.suggestion_text_length", f"len({text!r})")
    postback = body.get("postbackData") or ""
    _at_most(len(postback), POSTBACK_MAX, "rcs.postback_length", "postback length")
    if "reply" in s:
        return
    if "fallbackUrl" in body:
        _check_url(body["fallbackUrl"], "fallbackUrl")
    kinds = [k for k in _ACTION_FEATURES if k in body]
    _require(len(kinds) == 1, "rcs.suggestion_kind", f"an action has one kind, got {kinds}")
    action = body[kinds[0]]
    if kinds[0] == "openUrlAction":
        _check_url(action.get("url"), "open URL")
    elif kinds[0] == "dialAction":
        phone = action.get("phoneNumber")
        ok = isinstance(phone, str) and normalize_phone(phone).e164 == phone
        _require(ok, "rcs.dial_phone", f"{phone!r} is not a valid E.164 number (+14155550100)")
    elif kinds[0] == "viewLocationAction":
        ll = action.get("latLong")
        if ll is None:
            q = action.get("query")
            ok = isinstance(q, str) and bool(q.strip())
            _require(ok, "rcs.view_location", "view location needs latLong or a query")
        else:
            lat, lng = ll.get("latitude"), ll.get("longitude")
            ok = isinstance(lat, int | float) and isinstance(lng, int | float)
            ok = ok and -90 <= lat <= 90 and -180 <= lng <= 180
            _require(ok, "rcs.view_location", f"latitude, longitude {lat!r}, {lng!r}: invalid")
    elif kinds[0] == "createCalendarEventAction":
        _check_calendar(action)


def _check_calendar(ev: Any) -> None:
    title, description = ev.get("title") or "", ev.get("description") or ""
    _require(bool(title.strip()), "rcs.calendar_title_length", "the calendar event has no title")
    _at_most(len(title), CALENDAR_TITLE_MAX, "rcs.calendar_title_length", "calendar title length")
    limit = "rcs.calendar_description_length"
    _at_most(len(description), CALENDAR_DESCRIPTION_MAX, limit, "calendar description length")
    start, end = _parse_time(ev.get("startTime")), _parse_time(ev.get("endTime"))
    if start is None or end is None:
        raise PayloadLimitError(
            "rcs.calendar_time",
            f"start {ev.get('startTime')!r} / end {ev.get('endTime')!r}: use ISO-8601 times "
            "with a UTC offset, e.g. 2026-12-01T10:00:00Z",
        )
    _require(end > start, "rcs.calendar_time", "the calendar event must end after it starts")


# --------------------------------------------------------------------------- capabilities


def _all_suggestions(payload: Mapping[str, Any]) -> Iterator[Mapping[str, Any]]:
    content = payload.get("contentMessage", {})
    rich = content.get("richCard", {})
    cards = [rich["standaloneCard"].get("cardContent", {})] if "standaloneCard" in rich else []
    cards += rich.get("carouselCard", {}).get("cardContents", [])
    for c in cards:
        yield from c.get("suggestions", [])
    yield from content.get("suggestions", [])


def required_features(payload: Mapping[str, Any]) -> set[str]:
    """Capability features the device must have: RICHCARD_STANDALONE, ACTION_DIAL, ..."""
    out: set[str] = set()
    rich = payload.get("contentMessage", {}).get("richCard", {})
    if "standaloneCard" in rich:
        out.add("RICHCARD_STANDALONE")
    if "carouselCard" in rich:
        out.add("RICHCARD_CAROUSEL")
    for s in _all_suggestions(payload):
        action = s.get("action", {})
        out.update(feature for key, feature in _ACTION_FEATURES.items() if key in action)
    return out
