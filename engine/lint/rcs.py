"""Channel limits of a send node that can be checked before rendering.

The limits are those of ``docs/channels.md`` (RCS Business Messaging and SMS). Lengths
are checked on *static* strings only (templates with no ``{{`` / ``{%``): a templated
string is checked again, rendered, when the message is built
(:class:`engine.errors.PayloadLimitError`). Structural limits (card counts, chip counts,
media height in a carousel) don't depend on rendering and are always checked.

:func:`send_fields` lists every string of a send node that is a Liquid template, with
its key path, so the linter can parse each one and point at its line.
"""

from __future__ import annotations

import difflib
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from datetime import datetime
from urllib.parse import urlsplit

from engine.channels.phone import normalize_phone
from engine.channels.rcs import (
    CALENDAR_DESCRIPTION_MAX,
    CALENDAR_TITLE_MAX,
    CARD_DESCRIPTION_MAX_BYTES,
    CARD_SUGGESTIONS_MAX,
    CARD_TITLE_MAX_BYTES,
    CAROUSEL_MAX_CARDS,
    CAROUSEL_MIN_CARDS,
    IMAGE_CONTENT_TYPES,
    IMAGE_EXTENSIONS,
    MEDIA_CONTENT_TYPES,
    MEDIA_EXTENSIONS,
    MESSAGE_SUGGESTIONS_MAX,
    POSTBACK_MAX,
    SUGGESTION_TEXT_MAX,
    TEXT_MAX_CHARS,
    URL_MAX,
    is_public_https,
)
from engine.channels.sms import SMS_MAX_SEGMENTS, segment
from engine.journey.loader import Loc
from engine.journey.model import (
    CalendarAction,
    DialAction,
    OpenUrlAction,
    RichCard,
    SendNode,
    Suggestion,
    ViewLocationAction,
)

Report = Callable[[Loc, str], None]
IsStatic = Callable[[str], bool]


@dataclass(frozen=True)
class TextField:
    """One template string of a send node: its full key path, text and role."""

    loc: Loc
    value: str
    role: str


def where(loc: Loc) -> str:
    """``("nodes", "x", "rich_card", "suggestions", 0, "reply", "text")`` -> readable path."""
    out = ""
    for part in loc[2:] if loc[:1] == ("nodes",) else loc:
        out += f"[{part}]" if isinstance(part, int) else (f".{part}" if out else str(part))
    return out


def _suggestion_fields(s: Suggestion, base: Loc) -> Iterator[TextField]:
    b = (*base, s.kind)
    a = s.action
    yield TextField((*b, "text"), a.text, "chip_text")
    if a.postback is not None:
        yield TextField((*b, "postback"), a.postback, "postback")
    fallback_url = getattr(a, "fallback_url", None)
    if fallback_url is not None:
        yield TextField((*b, "fallback_url"), fallback_url, "url")
    match a:
        case OpenUrlAction():
            yield TextField((*b, "url"), a.url, "url")
        case DialAction():
            yield TextField((*b, "phone"), a.phone, "phone")
        case ViewLocationAction():
            for key in ("label", "query"):
                if getattr(a, key) is not None:
                    yield TextField((*b, key), getattr(a, key), "location")
        case CalendarAction():
            yield TextField((*b, "title"), a.title, "calendar_title")
            if a.description is not None:
                yield TextField((*b, "description"), a.description, "calendar_description")
            yield TextField((*b, "start"), a.start, "calendar_time")
            yield TextField((*b, "end"), a.end, "calendar_time")


def _card_fields(card: RichCard, base: Loc) -> Iterator[TextField]:
    if card.title is not None:
        yield TextField((*base, "title"), card.title, "card_title")
    if card.description is not None:
        yield TextField((*base, "description"), card.description, "card_description")
    if card.media is not None:
        yield TextField((*base, "media", "url"), card.media.url, "media_url")
        if card.media.thumbnail_url is not None:
            thumb = card.media.thumbnail_url
            yield TextField((*base, "media", "thumbnail_url"), thumb, "thumbnail")
    for i, s in enumerate(card.suggestions):
        yield from _suggestion_fields(s, (*base, "suggestions", i))


def send_fields(node_id: str, node: SendNode) -> Iterator[TextField]:
    """Every template string of a send node, in file order."""
    base: Loc = ("nodes", node_id)
    if node.text is not None:
        yield TextField((*base, "text"), node.text, "sms" if node.channel == "sms" else "text")
    if node.rich_card is not None:
        yield from _card_fields(node.rich_card, (*base, "rich_card"))
    if node.carousel is not None:
        for i, card in enumerate(node.carousel.cards):
            yield from _card_fields(card, (*base, "carousel", "cards", i))
    for i, s in enumerate(node.suggestions):
        yield from _suggestion_fields(s, (*base, "suggestions", i))
    if node.fallback is not None and node.fallback.sms is not None:
        yield TextField((*base, "fallback", "sms"), node.fallback.sms, "sms")


def postback_problem(
    kind: str,
    value: str,
    sends: Sequence[tuple[str, object]],
    named: str | None,
    is_static: IsStatic,
) -> str | None:
    """Why a ``reply``/``click`` path waiting for ``value`` can't match a tap on ``sends``.

    ``named`` is the send the path names in ``of`` (``sends`` is then just that one);
    None if the path means the latest send, and ``sends`` lists every send before it.
    """
    offered: set[str] = set()
    for sid, node in sends:
        if isinstance(node, SendNode):
            offered |= {s.postback for _, s in message_suggestions(sid, node)}
    if not all(is_static(pb) for pb in offered):
        return None  # a templated postback: can't tell before rendering
    if value in offered or (kind == "reply" and not offered) or not sends:
        return None  # a reply to a message without chips is free text
    close = difflib.get_close_matches(value, sorted(offered), n=1, cutoff=0.6)
    fix = (f"did you mean {close[0]!r}?" if close else
           f"use one of {', '.join(map(repr, sorted(offered)))}" if offered else "it has no chips")
    if named is not None:
        return f"no suggestion with postback {value!r} in send '{named}': {fix}"
    return (f"no suggestion with postback {value!r} in any send before this wait_for: {fix} "
            "(or name the send in 'of')")


def message_suggestions(node_id: str, node: SendNode) -> list[tuple[Loc, Suggestion]]:
    """Every suggestion the message offers (message chips and card chips) with its key path."""
    base: Loc = ("nodes", node_id)
    out: list[tuple[Loc, Suggestion]] = []
    if node.rich_card is not None:
        out += [((*base, "rich_card", "suggestions", i), s)
                for i, s in enumerate(node.rich_card.suggestions)]
    if node.carousel is not None:
        for c, card in enumerate(node.carousel.cards):
            out += [((*base, "carousel", "cards", c, "suggestions", i), s)
                    for i, s in enumerate(card.suggestions)]
    out += [((*base, "suggestions", i), s) for i, s in enumerate(node.suggestions)]
    return out


# --------------------------------------------------------------------------- rules

_LIMITS = {  # role -> (limit, unit)
    "text": (TEXT_MAX_CHARS, "characters"),
    "card_title": (CARD_TITLE_MAX_BYTES, "bytes"),
    "card_description": (CARD_DESCRIPTION_MAX_BYTES, "bytes"),
    "chip_text": (SUGGESTION_TEXT_MAX, "characters"),
    "postback": (POSTBACK_MAX, "characters"),
    "url": (URL_MAX, "characters"),
    "calendar_title": (CALENDAR_TITLE_MAX, "characters"),
    "calendar_description": (CALENDAR_DESCRIPTION_MAX, "characters"),
}


def _time(value: str) -> datetime | None:
    try:
        t = datetime.fromisoformat(value)
    except ValueError:
        return None
    return t if t.tzinfo is not None else None


def _check_field(f: TextField, report: Report) -> None:
    """Limits of one static string."""
    v, what = f.value, where(f.loc)
    if f.role in ("text", "sms", "chip_text", "calendar_title") and not v.strip():
        report(f.loc, f"{what} is empty: write the text to send")
        return
    if f.role in _LIMITS:
        limit, unit = _LIMITS[f.role]
        size = len(v.encode("utf-8")) if unit == "bytes" else len(v)
        if size > limit:
            how = "split it into two sends" if f.role == "text" else "shorten it"
            report(f.loc, f"{what} is {size} {unit}; RCS allows at most {limit}: {how}")
            return
    if f.role == "sms":
        seg = segment(v)
        if seg.segments > SMS_MAX_SEGMENTS:
            report(f.loc, f"{what} is {seg.segments} SMS segments ({seg.encoding}); the cap is "
                          f"{SMS_MAX_SEGMENTS}: shorten it")
    elif f.role == "url":
        parts = urlsplit(v)
        if parts.scheme not in ("http", "https") or not parts.netloc or " " in v:
            report(f.loc, f"{what} {v!r} is not an absolute http(s) URL: write https://...")
    elif f.role == "phone":
        check = normalize_phone(v)
        if check.e164 == v:
            return
        fix = f"write {check.e164}" if check.ok else "write it in E.164, like +14155550100"
        report(f.loc, f"{what} {v!r} is not an E.164 phone number: {fix}")
    elif f.role == "calendar_time" and _time(v) is None:
        report(f.loc, f"{what} {v!r} is not an ISO-8601 time with a UTC offset: write e.g. "
                      "2026-12-01T10:00:00Z")


def _check_media_url(loc: Loc, url: str, content_type: str | None, report: Report) -> None:
    thumbnail = loc[-1] == "thumbnail_url"
    if not is_public_https(url):
        report(loc, f"{where(loc)} {url!r} is not a public https URL: RCS fetches media over "
                    "https from a public host only")
        return
    if content_type is not None and not thumbnail:
        allowed = MEDIA_CONTENT_TYPES
        if content_type.split(";")[0].strip().lower() not in allowed:
            report((*loc[:-1], "content_type"), f"content_type {content_type!r} is not a type "
                   f"RCS takes: use one of {', '.join(sorted(allowed))}")
        return
    name = urlsplit(url).path.rsplit("/", 1)[-1]
    ext = name.rsplit(".", 1)[-1].lower() if "." in name else ""
    exts = IMAGE_EXTENSIONS if thumbnail else MEDIA_EXTENSIONS
    if ext not in exts:
        kinds = IMAGE_CONTENT_TYPES if thumbnail else exts
        report(loc, f"{where(loc)}: can't tell the file type from {ext or 'no extension'!r}: "
                    f"use a URL ending in one of {', '.join(sorted(kinds))}"
                    + ("" if thumbnail else ", or declare content_type"))


def _check_calendar(loc: Loc, a: CalendarAction, is_static: IsStatic, report: Report) -> None:
    if not (is_static(a.start) and is_static(a.end)):
        return
    start, end = _time(a.start), _time(a.end)
    if start is not None and end is not None and end <= start:
        report((*loc, "calendar", "end"), f"{where((*loc, 'calendar', 'end'))} is not after "
                                          "start: the event must end after it starts")


def _check_location(loc: Loc, a: ViewLocationAction, report: Report) -> None:
    if a.lat is not None and not -90 <= a.lat <= 90:
        report((*loc, "view_location", "lat"), f"lat {a.lat} is out of range: use -90 to 90")
    if a.long is not None and not -180 <= a.long <= 180:
        report((*loc, "view_location", "long"), f"long {a.long} is out of range: use -180 to 180")


def _check_card(
    loc: Loc, card: RichCard, in_carousel: bool, is_static: IsStatic, report: Report
) -> None:
    if len(card.suggestions) > CARD_SUGGESTIONS_MAX:
        report((*loc, "suggestions"), f"{where(loc)} has {len(card.suggestions)} suggestions; a "
               f"card takes at most {CARD_SUGGESTIONS_MAX}: remove some or move them to "
               "the message's suggestions")
    if card.media is not None:
        m = card.media
        if in_carousel and m.height == "TALL":
            report((*loc, "media", "height"), f"{where(loc)}: TALL media is not allowed in a "
                   "carousel: use SHORT or MEDIUM")
        if is_static(m.url):
            _check_media_url((*loc, "media", "url"), m.url, m.content_type, report)
        if m.thumbnail_url is not None and is_static(m.thumbnail_url):
            _check_media_url((*loc, "media", "thumbnail_url"), m.thumbnail_url, None, report)
    if in_carousel and card.orientation == "HORIZONTAL":
        report((*loc, "orientation"), f"{where(loc)}: carousel cards are vertical: remove "
               "orientation HORIZONTAL (and thumbnail_alignment)")


def lint_send(node_id: str, node: SendNode, is_static: IsStatic, report: Report) -> None:
    """Report every channel limit the send node breaks before rendering."""
    base: Loc = ("nodes", node_id)
    for f in send_fields(node_id, node):
        if is_static(f.value):
            _check_field(f, report)
    if node.channel != "rcs":
        return
    if node.rich_card is not None:
        _check_card((*base, "rich_card"), node.rich_card, False, is_static, report)
    if node.carousel is not None:
        cards = node.carousel.cards
        if not CAROUSEL_MIN_CARDS <= len(cards) <= CAROUSEL_MAX_CARDS:
            how = "use a rich_card" if len(cards) < CAROUSEL_MIN_CARDS else "split it in two sends"
            report((*base, "carousel", "cards"), f"a carousel has {CAROUSEL_MIN_CARDS} to "
                   f"{CAROUSEL_MAX_CARDS} cards, this one has {len(cards)}: {how}")
        for i, card in enumerate(cards):
            _check_card((*base, "carousel", "cards", i), card, True, is_static, report)
    chips = len(node.suggestions) + (len(node.rich_card.suggestions) if node.rich_card else 0)
    if chips > MESSAGE_SUGGESTIONS_MAX:
        report((*base, "suggestions"), f"the message has {chips} suggestion chips; RCS allows at "
               f"most {MESSAGE_SUGGESTIONS_MAX} per message: remove some")
    seen: dict[str, Loc] = {}
    for loc, s in message_suggestions(node_id, node):
        match s.action:
            case CalendarAction() as a:
                _check_calendar(loc, a, is_static, report)
            case ViewLocationAction() as a:
                _check_location(loc, a, report)
        pb = s.postback
        if not is_static(pb):
            continue
        pb_loc = (*loc, s.kind, "postback" if s.action.postback is not None else "text")
        if pb in seen:
            report(pb_loc, f"postback {pb!r} is used twice in this message (also at "
                   f"{where(seen[pb])}): give each suggestion its own postback so a reply path "
                   "can tell them apart")
        else:
            seen[pb] = loc
