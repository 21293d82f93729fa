"""Render a send node's templates into a plain, serializable message.

:func:`render_send` evaluates every Liquid template of a :class:`SendNode` (text, card
title / description, media URLs, suggestion labels, postbacks, URLs, phone numbers,
location labels and queries, calendar fields, ``fallback.sms``) against one scope with
the roots ``event``, ``entry``, ``user`` and ``journey``. The result is a tree of frozen
dataclasses holding plain strings: what the channel gateway needs to build a provider
payload, with no template left in it.

A :class:`RenderedMessage` travels in a Kafka send request: :meth:`RenderedMessage.to_dict`
gives JSON-ready data (``None`` fields and empty lists are left out) and
:meth:`RenderedMessage.from_dict` rebuilds it, raising :class:`~engine.errors.InputError`
when the data is not a rendered message.

Rules:

- a field whose template renders to an empty (or blank) string is ``None``: an empty
  title is left out of the payload, and a card that ends up with no title, description
  or media fails validation with ``rcs.card_empty``;
- a suggestion's postback is the model's :attr:`Suggestion.postback` (the explicit one,
  or the slug of the *unrendered* label), rendered: the core matches clicks on the same
  value;
- template errors raise :class:`~engine.errors.TemplateError`, unchanged;
- all the templates of a node share one budget (:func:`~engine.journey.templates.shared_budget`):
  a carousel of many chips costs no more than one template may.

Channel limits are not checked here: see :mod:`engine.channels.rcs` and
:mod:`engine.channels.sms`.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Literal, cast

from engine.errors import InputError
from engine.journey.model import (
    SUGGESTION_KINDS,
    CalendarAction,
    Carousel,
    DialAction,
    Media,
    OpenUrlAction,
    RichCard,
    SendNode,
    Suggestion,
    ViewLocationAction,
)
from engine.journey.templates import compile_template, shared_budget

SuggestionKind = Literal["reply", "open_url", "dial", "view_location", "share_location", "calendar"]


# --------------------------------------------------------------------------- rendered tree


@dataclass(frozen=True, slots=True)
class RenderedSuggestion:
    """One chip; ``kind`` says which of the optional fields are used."""

    kind: SuggestionKind
    text: str
    postback: str
    fallback_url: str | None = None
    url: str | None = None  # open_url
    phone: str | None = None  # dial
    lat: float | None = None  # view_location
    long: float | None = None
    label: str | None = None
    query: str | None = None
    title: str | None = None  # calendar
    description: str | None = None
    start: str | None = None
    end: str | None = None


@dataclass(frozen=True, slots=True)
class RenderedMedia:
    url: str
    height: str = "MEDIUM"
    thumbnail_url: str | None = None
    content_type: str | None = None


@dataclass(frozen=True, slots=True)
class RenderedCard:
    title: str | None = None
    description: str | None = None
    media: RenderedMedia | None = None
    suggestions: tuple[RenderedSuggestion, ...] = ()
    orientation: str = "VERTICAL"
    thumbnail_alignment: str | None = None


@dataclass(frozen=True, slots=True)
class RenderedCarousel:
    width: str
    cards: tuple[RenderedCard, ...]


@dataclass(frozen=True, slots=True)
class RenderedMessage:
    """A send node after rendering. Exactly one of ``text``, ``rich_card``, ``carousel``.

    ``ttl_ms`` is the node's own ``ttl``; ``fallback_after_ms`` is ``fallback.after`` when
    the node has a ``fallback`` block (``None``: no SMS fallback configured);
    ``fallback_sms`` is the rendered ``fallback.sms`` (``None``: derive it, see
    :mod:`engine.channels.fallback_text`).
    """

    channel: Literal["rcs", "sms"]
    text: str | None = None
    rich_card: RenderedCard | None = None
    carousel: RenderedCarousel | None = None
    suggestions: tuple[RenderedSuggestion, ...] = ()
    fallback_sms: str | None = None
    ttl_ms: int | None = None
    fallback_after_ms: int | None = None

    @property
    def rcs_ttl_ms(self) -> int | None:
        """The ``ttl`` to send over RCS: the fallback window, or the node's ttl if shorter."""
        given = [t for t in (self.ttl_ms, self.fallback_after_ms) if t is not None]
        return min(given) if given else None

    @property
    def cards(self) -> tuple[RenderedCard, ...]:
        """The standalone card, or the carousel's cards, or ``()``."""
        if self.rich_card is not None:
            return (self.rich_card,)
        return self.carousel.cards if self.carousel is not None else ()

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready data; ``None`` and empty lists are left out."""
        return cast(dict[str, Any], _dump(self))

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> RenderedMessage:
        """Rebuild from :meth:`to_dict` output; raises :class:`InputError` on bad data."""
        try:
            return _load_message(data)
        except (KeyError, TypeError, ValueError, AttributeError) as exc:
            raise InputError("bad_rendered_message", f"{type(exc).__name__}: {exc}") from exc


def _dump(obj: object) -> Any:
    if isinstance(obj, tuple):
        return [_dump(x) for x in obj]
    names = _FIELD_NAMES.get(type(obj))
    if names is None:
        if not hasattr(obj, "__dataclass_fields__"):
            return obj
        names = tuple(obj.__dataclass_fields__)
    out: dict[str, Any] = {}
    for name in names:
        value = getattr(obj, name)
        if value is None or value == ():
            continue
        out[name] = value if type(value) is str else _dump(value)
    return out


# The fields of each rendered class, in order: what _dump writes (a table, not a
# ``__dataclass_fields__`` walk: to_dict runs for every send).
_FIELD_NAMES: dict[type, tuple[str, ...]] = {
    cls: tuple(cls.__dataclass_fields__)
    for cls in (RenderedSuggestion, RenderedMedia, RenderedCard, RenderedCarousel, RenderedMessage)
}


def _opt_str(data: Mapping[str, Any], key: str) -> str | None:
    value = data.get(key)
    if value is not None and not isinstance(value, str):
        raise TypeError(f"{key} must be a string, not {type(value).__name__}")
    return value


def _str(data: Mapping[str, Any], key: str) -> str:
    value = _opt_str(data, key)
    if value is None:
        raise KeyError(key)
    return value


def _opt_int(data: Mapping[str, Any], key: str) -> int | None:
    value = data.get(key)
    if value is not None and (isinstance(value, bool) or not isinstance(value, int)):
        raise TypeError(f"{key} must be an integer")
    return value


def _opt_float(data: Mapping[str, Any], key: str) -> float | None:
    value = data.get(key)
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise TypeError(f"{key} must be a number")
    return float(value)


def _list(data: Mapping[str, Any], key: str) -> list[Mapping[str, Any]]:
    value = data.get(key, [])
    if not isinstance(value, list) or not all(isinstance(v, Mapping) for v in value):
        raise TypeError(f"{key} must be a list of objects")
    return value


def _load_suggestion(d: Mapping[str, Any]) -> RenderedSuggestion:
    kind = _str(d, "kind")
    if kind not in SUGGESTION_KINDS:
        raise ValueError(f"unknown suggestion kind {kind!r}")
    return RenderedSuggestion(
        kind=cast(SuggestionKind, kind),
        text=_str(d, "text"),
        postback=_str(d, "postback"),
        fallback_url=_opt_str(d, "fallback_url"),
        url=_opt_str(d, "url"),
        phone=_opt_str(d, "phone"),
        lat=_opt_float(d, "lat"),
        long=_opt_float(d, "long"),
        label=_opt_str(d, "label"),
        query=_opt_str(d, "query"),
        title=_opt_str(d, "title"),
        description=_opt_str(d, "description"),
        start=_opt_str(d, "start"),
        end=_opt_str(d, "end"),
    )


def _load_card(d: Mapping[str, Any]) -> RenderedCard:
    m = d.get("media")
    media = None
    if m is not None:
        if not isinstance(m, Mapping):
            raise TypeError("media must be an object")
        media = RenderedMedia(
            url=_str(m, "url"),
            height=_opt_str(m, "height") or "MEDIUM",
            thumbnail_url=_opt_str(m, "thumbnail_url"),
            content_type=_opt_str(m, "content_type"),
        )
    return RenderedCard(
        title=_opt_str(d, "title"),
        description=_opt_str(d, "description"),
        media=media,
        suggestions=tuple(_load_suggestion(s) for s in _list(d, "suggestions")),
        orientation=_opt_str(d, "orientation") or "VERTICAL",
        thumbnail_alignment=_opt_str(d, "thumbnail_alignment"),
    )


def _load_message(d: Mapping[str, Any]) -> RenderedMessage:
    channel = _str(d, "channel")
    if channel not in ("rcs", "sms"):
        raise ValueError(f"unknown channel {channel!r}")
    card = d.get("rich_card")
    car = d.get("carousel")
    carousel = None
    if car is not None:
        carousel = RenderedCarousel(
            width=_opt_str(car, "width") or "MEDIUM",
            cards=tuple(_load_card(c) for c in _list(car, "cards")),
        )
    return RenderedMessage(
        channel=cast(Literal["rcs", "sms"], channel),
        text=_opt_str(d, "text"),
        rich_card=None if card is None else _load_card(card),
        carousel=carousel,
        suggestions=tuple(_load_suggestion(s) for s in _list(d, "suggestions")),
        fallback_sms=_opt_str(d, "fallback_sms"),
        ttl_ms=_opt_int(d, "ttl_ms"),
        fallback_after_ms=_opt_int(d, "fallback_after_ms"),
    )


# --------------------------------------------------------------------------- rendering


# A suggestion's action, postback template and fallback URL template, by the model's id:
# the model computes them on every access (the postback's slug is a regex substitution),
# and they never change (the models are frozen). The model is kept in the entry so that
# its id can't be reused while the entry lives; the table is emptied when it grows.
_SUGGESTION_PARTS: dict[int, tuple[Suggestion, Any, str, str | None]] = {}
_SUGGESTION_PARTS_MAX = 4096


def _suggestion_parts(s: Suggestion) -> tuple[Any, str, str | None]:
    hit = _SUGGESTION_PARTS.get(id(s))
    if hit is not None and hit[0] is s:
        return hit[1], hit[2], hit[3]
    a = s.action
    parts = (a, s.postback, getattr(a, "fallback_url", None))
    if len(_SUGGESTION_PARTS) >= _SUGGESTION_PARTS_MAX:
        _SUGGESTION_PARTS.clear()
    _SUGGESTION_PARTS[id(s)] = (s, *parts)
    return parts


class _Renderer:
    def __init__(self, scope: Mapping[str, Any]) -> None:
        self.scope = scope

    def __call__(self, source: str) -> str:
        return compile_template(source).render(self.scope)  # compile_template caches

    def opt(self, source: str | None) -> str | None:
        """Render; an absent, empty or blank result is ``None``."""
        if source is None:
            return None
        out = self(source)
        return out if out.strip() else None

    def suggestion(self, s: Suggestion) -> RenderedSuggestion:
        a, postback, fallback_source = _suggestion_parts(s)
        fallback_url = self.opt(fallback_source)
        common: dict[str, Any] = {
            "text": self(a.text),
            "postback": self(postback),
            "fallback_url": fallback_url,
        }
        match a:
            case OpenUrlAction():
                return RenderedSuggestion("open_url", url=self(a.url).strip(), **common)
            case DialAction():
                return RenderedSuggestion("dial", phone=self(a.phone).strip(), **common)
            case ViewLocationAction():
                return RenderedSuggestion(
                    "view_location",
                    lat=a.lat,
                    long=a.long,
                    label=self.opt(a.label),
                    query=self.opt(a.query),
                    **common,
                )
            case CalendarAction():
                return RenderedSuggestion(
                    "calendar",
                    title=self(a.title),
                    description=self.opt(a.description),
                    start=self(a.start).strip(),
                    end=self(a.end).strip(),
                    **common,
                )
        return RenderedSuggestion(cast(SuggestionKind, s.kind), **common)

    def suggestions(self, items: list[Suggestion]) -> tuple[RenderedSuggestion, ...]:
        return tuple(self.suggestion(s) for s in items)

    def media(self, m: Media | None) -> RenderedMedia | None:
        if m is None:
            return None
        return RenderedMedia(
            url=self(m.url).strip(),
            height=m.height,
            thumbnail_url=None if m.thumbnail_url is None else self(m.thumbnail_url).strip(),
            content_type=m.content_type,
        )

    def card(self, c: RichCard) -> RenderedCard:
        return RenderedCard(
            title=self.opt(c.title),
            description=self.opt(c.description),
            media=self.media(c.media),
            suggestions=self.suggestions(c.suggestions),
            orientation=c.orientation,
            thumbnail_alignment=c.thumbnail_alignment,
        )

    def carousel(self, c: Carousel) -> RenderedCarousel:
        return RenderedCarousel(width=c.width, cards=tuple(self.card(x) for x in c.cards))


def render_send(node: SendNode, scope: Mapping[str, Any]) -> RenderedMessage:
    """Render every template of ``node`` with ``scope`` (roots event, entry, user, journey).

    Raises :class:`~engine.errors.TemplateError` when a template does not parse or render.
    """
    r = _Renderer(scope)
    fallback = node.fallback
    with shared_budget():
        return RenderedMessage(
            channel=node.channel,
            text=None if node.text is None else r(node.text),
            rich_card=None if node.rich_card is None else r.card(node.rich_card),
            carousel=None if node.carousel is None else r.carousel(node.carousel),
            suggestions=r.suggestions(node.suggestions),
            fallback_sms=None if fallback is None else r.opt(fallback.sms),
            ttl_ms=node.ttl_ms,
            fallback_after_ms=None if fallback is None else fallback.after_ms,
        )
