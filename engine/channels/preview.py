"""What a user will see for each send node of a journey, for given sample data.

:func:`preview_journey` renders every send node (or one) with
:mod:`engine.journey.sample` and adds what the channels make of it:

* the RBM limits the rendered RCS message breaks (:mod:`.rcs`). The gateway stops at the
  first; here each card, each part of a card and each chip is also checked on its own, so
  that every broken limit is listed at once;
* the SMS the phone gets: a plain SMS send's text, or an RCS send's fallback (the
  journey's ``fallback.sms``, else the text :mod:`.fallback_text` derives from the card, as
  the gateway does), with its encoding and segments (:mod:`.sms`). An RCS send without
  ``fallback`` sends no SMS at all.

:func:`format_text` writes the previews for a terminal; :mod:`.preview_svg` draws them.
:func:`send_summary` is the one-line form of a send request's content, for traces.
"""

from __future__ import annotations

import re
import textwrap
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, replace
from difflib import get_close_matches
from typing import Any, Literal
from urllib.parse import unquote, urlsplit

from engine.channels.fallback_text import derive_sms, fallback_sms_text
from engine.channels.rcs import build_and_validate
from engine.channels.sms import (
    GSM7_SINGLE_SEPTETS,
    SMS_MAX_SEGMENTS,
    SMS_WARN_SEGMENTS,
    UCS2_SINGLE_UNITS,
    Segmentation,
    segment,
)
from engine.durations import format_duration
from engine.errors import ConfigError, InputError, PayloadLimitError, TemplateError
from engine.journey.model import Journey, SendNode
from engine.journey.render import RenderedCard, RenderedMessage, RenderedSuggestion
from engine.journey.sample import SampleData, SampleRender, profile_at, render_sample

#: The glyph drawn before an action chip's text, per kind (reply chips have none).
CHIP_GLYPHS: dict[str, str] = {
    "reply": "",
    "open_url": "↗",
    "dial": "☎",
    "view_location": "⚲",
    "share_location": "➤",
    "calendar": "▦",
}
#: Media heights in dp, as RBM draws them.
MEDIA_HEIGHTS = {"SHORT": 112, "MEDIUM": 168, "TALL": 264}

_ANY_UUID = "00000000-0000-4000-8000-000000000000"
_FILLER = RenderedCard(title="x")


@dataclass(frozen=True, slots=True)
class LimitBreak:
    limit: str  # rcs.* / sms.*, as the gateway's refusal reasons
    detail: str


@dataclass(frozen=True, slots=True)
class SmsPreview:
    """The SMS a phone gets. ``shown`` is ``text`` with markers where missing values were
    printed (``text`` itself when they can't be placed); ``source``: a plain SMS send,
    the journey's ``fallback.sms``, or text derived from the RCS message."""

    text: str
    shown: str
    segmentation: Segmentation
    source: Literal["sms", "fallback", "derived"]
    after_ms: int | None = None

    @property
    def heading(self) -> str:
        if self.source == "sms":
            return "SMS"
        after = f" after {format_duration(self.after_ms)}" if self.after_ms is not None else ""
        how = "fallback.sms" if self.source == "fallback" else "derived from the RCS message"
        return f"SMS fallback{after} ({how})"

    @property
    def sizes(self) -> str:
        """``1 segment, GSM-7: 99 of 160 septets``, ``2 segments, UCS-2: 67 + 3 units``."""
        seg = self.segmentation
        n = seg.segments
        enc, unit = ("GSM-7", "septets") if seg.encoding == "gsm7" else ("UCS-2", "units")
        if n == 1:
            room = GSM7_SINGLE_SEPTETS if seg.encoding == "gsm7" else UCS2_SINGLE_UNITS
            return f"1 segment, {enc}: {seg.units} of {room} {unit}"
        return f"{n} segments, {enc}: {' + '.join(str(p) for p in seg.parts)} {unit}"


@dataclass(frozen=True, slots=True)
class NodePreview:
    journey_id: str
    version: int
    node_id: str
    label: str
    channel: Literal["rcs", "sms"]
    sample: SampleRender | None  # None: a template failed (``error``)
    sms: SmsPreview | None  # None: an RCS send without fallback
    limits: tuple[LimitBreak, ...] = ()
    error: str | None = None

    @property
    def missing(self) -> Mapping[str, tuple[str, ...]]:
        return self.sample.missing if self.sample is not None else {}

    @property
    def covered(self) -> tuple[str, ...]:
        return self.sample.covered if self.sample is not None else ()

    @property
    def has_problems(self) -> bool:
        """A missing value printed as nothing, a broken limit, or a template that fails."""
        return bool(self.missing or self.limits or self.error)

    def problems(self) -> list[str]:
        """One line per problem: what a user would get wrong, and why."""
        out: list[str] = []
        if self.error:
            out.append(f"template {self.error} (the send fails: message_failed reason=template)")
        for path, where in self.missing.items():
            places = ", ".join(place_name(w) for w in where)
            out.append(
                f"{path} is not in the sample data: prints as nothing in {places} "
                f"(give it, or write {{{{ {path} | default: '...' }}}})"
            )
        out.extend(f"{b.limit}: {b.detail}" for b in self.limits)
        return out

    def notes(self) -> list[str]:
        """What is worth knowing but is not wrong."""
        out: list[str] = []
        if self.channel == "rcs" and self.sms is None:
            out.append("no fallback: users who can't get RCS get nothing")
        if self.sms is not None:
            seg = self.sms.segmentation
            if seg.encoding == "ucs2":
                out.append("the SMS is UCS-2 (a character outside GSM-7): 70 characters a part")
            if seg.warn and not seg.over_cap:
                out.append(f"the SMS is {seg.segments} segments (more than {SMS_WARN_SEGMENTS})")
        out.extend(
            f"{path} is not in the sample data; a default, a condition or a filter covers it"
            for path in self.covered
        )
        return out


def place_name(where: str) -> str:
    """``carousel.cards[1].suggestions[0].text`` -> ``card 2 chip 1 text``."""
    out = re.sub(r"^(rich_card|carousel)\.", "", where)
    out = re.sub(r"cards\[(\d+)\]", lambda m: f"card {int(m.group(1)) + 1}", out)
    out = re.sub(r"suggestions\[(\d+)\]", lambda m: f"chip {int(m.group(1)) + 1}", out)
    out = out.replace("fallback_sms", "fallback SMS").replace("media.", "media ")
    out = out.replace(".", " ").replace("_", " ")
    return ("card " + out) if where.startswith("rich_card.") else out


def send_nodes(journey: Journey) -> list[str]:
    return [nid for nid, n in journey.nodes.items() if isinstance(n, SendNode)]


def preview_journey(
    journey: Journey, data: SampleData, node_id: str | None = None
) -> list[NodePreview]:
    """One preview per send node in file order, or the one named; ConfigError for a
    ``node_id`` that is not a send node of the journey."""
    ids = send_nodes(journey)
    if node_id is not None:
        if node_id not in ids:
            raise ConfigError(_no_such_node(journey, node_id, ids))
        ids = [node_id]
    return [preview_node(journey, nid, data) for nid in ids]


def _no_such_node(journey: Journey, node_id: str, ids: list[str]) -> str:
    node = journey.nodes.get(node_id)
    if node is not None:
        what = f"{node_id!r} is a {node.type} node, not a send"
    else:
        what = f"no node {node_id!r} in {journey.id}"
        near = get_close_matches(node_id, list(journey.nodes), n=1)
        if near:
            what += f" (did you mean {near[0]!r}?)"
    return f"{what}; send nodes: {', '.join(ids) or 'none'}"


def preview_node(journey: Journey, node_id: str, data: SampleData) -> NodePreview:
    node = journey.nodes[node_id]
    assert isinstance(node, SendNode)
    base = NodePreview(
        journey.id, journey.version, node_id, journey.label(node_id), node.channel, None, None
    )
    data = profile_at(journey, node_id, data)  # update_profile nodes on the way
    try:
        sample = render_sample(node, journey, data)
    except TemplateError as exc:
        return replace(base, error=exc.message)
    msg = sample.message
    sms = _sms(sample)
    breaks: list[LimitBreak] = []
    if msg.channel == "rcs":
        breaks = limit_breaks(msg)
    if sms is not None and sms.segmentation.over_cap:
        seg = sms.segmentation.segments
        detail = f"{seg} segments; the cap is {SMS_MAX_SEGMENTS}: shorten the text"
        breaks.append(LimitBreak("sms.segments", detail))
    return replace(base, sample=sample, sms=sms, limits=tuple(breaks))


def _sms(sample: SampleRender) -> SmsPreview | None:
    msg, marked = sample.message, sample.marked
    source: Literal["sms", "fallback", "derived"] = "sms"
    after = None
    if msg.channel == "sms":
        text, shown = msg.text or "", marked.text or ""
    elif msg.fallback_after_ms is None:
        return None
    else:
        text, shown = fallback_sms_text(msg), fallback_sms_text(marked)
        source = "fallback" if msg.fallback_sms is not None else "derived"
        after = msg.fallback_after_ms
    if sample.plain(shown) != text:
        shown = text  # the derived text was cut at another place: show what is sent
    return SmsPreview(text, shown, segment(text), source, after)


# --------------------------------------------------------------------------- RBM limits


def limit_breaks(msg: RenderedMessage) -> list[LimitBreak]:
    """Every RBM limit ``msg`` breaks, each once (checked whole, then part by part)."""
    found: dict[tuple[str, str], None] = {}
    for part in _parts(msg):
        try:
            build_and_validate(part, _ANY_UUID, msg.rcs_ttl_ms)
        except PayloadLimitError as exc:
            found.setdefault((exc.limit, exc.detail))
    return [LimitBreak(limit, detail) for limit, detail in found]


def _parts(msg: RenderedMessage) -> Iterator[RenderedMessage]:
    yield msg
    bare = replace(msg, suggestions=())
    carousel = msg.carousel
    for i, card in enumerate(msg.cards):
        for variant in _card_parts(card):
            if carousel is None:
                yield replace(bare, rich_card=variant)
            elif i < 10:  # other cards stand in as fillers, so the count is valid
                cards = [_FILLER] * max(2, i + 1)
                cards[i] = variant
                yield replace(bare, carousel=replace(carousel, cards=tuple(cards)))
    chips = [*msg.suggestions, *(s for c in msg.cards for s in c.suggestions)]
    for chip in chips:
        yield RenderedMessage("rcs", text="x", suggestions=(chip,))


def _card_parts(card: RenderedCard) -> Iterator[RenderedCard]:
    yield card
    shape: dict[str, Any] = {
        "orientation": card.orientation,
        "thumbnail_alignment": card.thumbnail_alignment,
    }
    if card.title:
        yield RenderedCard(title=card.title, **shape)
    if card.description:
        yield RenderedCard(description=card.description, **shape)
    if card.media is not None:
        yield RenderedCard(media=card.media, **shape)
    if card.suggestions:
        yield RenderedCard(title="x", suggestions=card.suggestions, **shape)


# --------------------------------------------------------------------------- text


def file_name(url: str) -> str:
    """The last path segment of a media URL (its host when the path has none)."""
    try:
        parts = urlsplit(url)
    except ValueError:
        return url
    name = unquote(parts.path.rstrip("/").rsplit("/", 1)[-1])
    return name or parts.netloc or url


def chip_target(s: RenderedSuggestion) -> str:
    """What an action chip opens: ``https://...``, ``+1415...``, a place, an event."""
    match s.kind:
        case "open_url":
            return s.url or ""
        case "dial":
            return s.phone or ""
        case "view_location":
            if s.lat is not None and s.long is not None:
                return f"{s.lat:g},{s.long:g}" + (f" {s.label}" if s.label else "")
            return s.query or ""
        case "calendar":
            return f"{s.title or ''} {s.start or ''}..{s.end or ''}".strip()
    return ""


def chip_label(s: RenderedSuggestion) -> str:
    glyph = CHIP_GLYPHS.get(s.kind, "")
    return f"{glyph} {s.text}" if glyph else s.text


def format_text(previews: Sequence[NodePreview], *, marker: str = "<missing: {}>") -> str:
    """The previews for a terminal; a missing value shows as ``marker`` where it prints."""
    return "\n".join(_node_text(p, marker) for p in previews)


def _node_text(p: NodePreview, marker: str) -> str:
    out = [
        f"== {p.journey_id} v{p.version} · {p.node_id}"
        + (f' "{p.label}"' if p.label != p.node_id else "")
    ]
    sample = p.sample

    def show(text: str | None) -> str:
        if text is None or sample is None:
            return ""
        return "".join(
            piece if path is None else marker.format(path) for piece, path in sample.runs(text)
        )

    def field(name: str, text: str, indent: str = "  ", *, wrap: bool = True) -> None:
        width = max(20, 88 - len(indent) - 13) if wrap else len(text) + 1
        lines = [w for para in text.split("\n") for w in (textwrap.wrap(para, width) or [""])]
        for i, line in enumerate(lines):
            out.append(f"{indent}{name if i == 0 else '':<13}{line}".rstrip())

    if sample is not None:
        msg = sample.marked
        if msg.channel == "rcs":
            if msg.carousel is not None:
                n = len(msg.carousel.cards)
                out.append(f"RCS carousel, {n} cards, {msg.carousel.width} width")
            elif msg.rich_card is not None:
                card = msg.rich_card
                shape = card.orientation.lower()
                if card.orientation == "HORIZONTAL" and card.thumbnail_alignment:
                    shape += f", media {card.thumbnail_alignment.lower()}"
                out.append(f"RCS rich card, {shape}")
            else:
                out.append("RCS text")
            for i, card in enumerate(msg.cards):
                indent = "  "
                if msg.carousel is not None:
                    out.append(f"  card {i + 1}")
                    indent = "    "
                if card.media is not None:
                    m = card.media
                    dp = MEDIA_HEIGHTS.get(m.height)
                    what = f"{show(file_name(m.url))}, {m.height} ({dp} dp)"
                    if m.thumbnail_url:
                        what += f", thumbnail {show(file_name(m.thumbnail_url))}"
                    field("media", what, indent)
                if card.title:
                    field("title", show(card.title), indent)
                if card.description:
                    field("description", show(card.description), indent)
                for j, s in enumerate(card.suggestions):
                    field("chips" if j == 0 else "", _chip_text(s, show), indent, wrap=False)
            if msg.text is not None:
                field("text", show(msg.text))
            for j, s in enumerate(msg.suggestions):
                field("chips" if j == 0 else "", _chip_text(s, show), wrap=False)
        if p.sms is not None:
            out.append(f"{p.sms.heading}: {p.sms.sizes}")
            for line in show(p.sms.shown).split("\n"):
                out.append(f"  | {line}".rstrip())
    for problem in p.problems():
        out.append(f"  ✗ {problem}")
    for note in p.notes():
        out.append(f"  · {note}")
    if not p.has_problems:
        out.append("  ✓ no missing value, no broken limit")
    return "\n".join(out) + "\n"


def _chip_text(s: RenderedSuggestion, show: Any) -> str:
    target = chip_target(s)
    return f"[{show(chip_label(s))}]" + (f" -> {show(target)}" if target else "")


# --------------------------------------------------------------------------- traces


def send_summary(content: Mapping[str, Any], earlier: Mapping[str, Any] | None = None) -> str:
    """One line for a send request's content: ``card "Title" | "Description" [chips]``,
    ``carousel 3 cards: "A"; "B"; "C"``, ``text "..."``. A fallback SMS the gateway
    derives (``derive_from``) is derived here too, from ``earlier[message_id]``."""
    try:
        if content.get("derive_from") is not None:
            source = (earlier or {}).get(str(content["derive_from"]))
            if source is None:
                return "SMS derived from the RCS message"
            return f'text "{_one_line(derive_sms(RenderedMessage.from_dict(source)))}"'
        msg = RenderedMessage.from_dict({"channel": "sms", **content})
    except InputError:
        return "(unreadable content)"
    parts: list[str] = []
    if msg.carousel is not None:
        titles = "; ".join(f'"{_one_line(c.title or "")}"' for c in msg.carousel.cards)
        parts.append(f"carousel {len(msg.carousel.cards)} cards: {titles}")
    elif msg.rich_card is not None:
        c = msg.rich_card
        shown = " | ".join(f'"{_one_line(t)}"' for t in (c.title, c.description) if t)
        parts.append(f"card {shown or '(media only)'}")
    elif msg.text is not None:
        parts.append(f'text "{_one_line(msg.text)}"')
    chips = [*(s for c in msg.cards for s in c.suggestions), *msg.suggestions]
    if chips:
        parts.append(" ".join(f"[{chip_label(s)}]" for s in chips))
    return " ".join(parts)


def _one_line(text: str, limit: int = 480) -> str:
    flat = " ".join(text.split())
    return flat if len(flat) <= limit else flat[: limit - 1] + "…"
