"""Previews (:mod:`.preview`) drawn as phone mock-ups in a self-contained SVG.

One panel per send node: an RCS phone with the card, carousel or text bubble and its
chips, next to an SMS phone with the text a phone without RCS gets (the fallback, or the
plain SMS), its segments and encoding; under them the problems in red. Same look as the
journey drawing (:mod:`engine.journey.graph_svg`): Helvetica, the send node's blues, the
"missing" red, text measured by an average character width, no external resources.

What is drawn from where:

* a card: media first (vertical; a horizontal card puts it LEFT or RIGHT of the text), a
  placeholder box with the file's name and its height (SHORT 112, MEDIUM 168, TALL 264 dp),
  then the title, the description and one row per chip. Carousel cards stand side by side
  (SMALL 120, MEDIUM 232 dp wide) at the height of the tallest; the phone widens to show
  them all rather than hiding some off screen;
* chips: reply chips show their text, action chips a glyph per kind first
  (:data:`~.preview.CHIP_GLYPHS`); message-level chips are pills under the message;
* a value the sample data lacks is drawn in red as ``{{ path }}`` where it would print
  (``<tspan class="missing" data-var="...">``) and the bubble or card gets a red badge.

Hooks for tests and tools: ``<g class="preview" data-node="...">`` per panel,
``<g class="card">``, ``<text class="title">`` / ``description`` / ``chip-text`` lines,
``<g class="chip" data-kind="...">``, ``<g class="media" data-height="...">``,
``<g class="sms">`` with ``sms-text`` lines and ``sms-size``, ``<text class="problem">``.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from html import escape

from engine.channels.preview import (
    CHIP_GLYPHS,
    MEDIA_HEIGHTS,
    NodePreview,
    SmsPreview,
    chip_target,
    file_name,
    format_text,
)
from engine.journey.diagram import COLORS, TEXT_COLOR
from engine.journey.render import RenderedCard, RenderedMedia, RenderedMessage, RenderedSuggestion
from engine.journey.sample import MARK_CLOSE, MARK_OPEN

FONT = "Helvetica, Arial, sans-serif"
SEND_FILL, SEND_STROKE = COLORS["send"]
MISSING_FILL, MISSING_STROKE = COLORS["missing"]
NOTE_FILL, NOTE_STROKE = COLORS["note"]
OK_COLOR, WARN_COLOR, MUTED, FRAME_COLOR = "#2e7d32", "#ef6c00", "#616161", "#37474f"
BUBBLE, CARD_LINE, CHIP_BLUE, MEDIA_INK = "#f1f3f4", "#dadce0", "#1565c0", "#0d47a1"

MARGIN, GAP = 20.0, 28.0
SCREEN_W, BEZEL, PAD = 292.0, 10.0, 12.0
STATUS_H, HEADER_H, INPUT_H = 22.0, 46.0, 40.0
CARD_PAD, CHIP_ROW_H, PILL_H = 12.0, 34.0, 30.0
CAROUSEL_W = {"SMALL": 120.0, "MEDIUM": 232.0}
CAROUSEL_GAP = 8.0
VIDEO = ("mp4", "m4v", "mpeg", "webm", "h263", "3gpp")
AUDIO = ("aac", "mp3", "ogg")

Show = Callable[[str | None], str]


# --------------------------------------------------------------------------- text


def _n(v: float) -> str:
    s = f"{v:.1f}".rstrip("0").rstrip(".")
    return "0" if s == "-0" else s


# What XML 1.0 can't hold: a rendered value may carry any character.
_NOT_XML = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\ud800-\udfff\ufffe\uffff]")


def _x(text: str) -> str:
    return escape(_NOT_XML.sub("\ufffd", text), quote=True)


def _plain(display: str) -> str:
    return display.replace(MARK_OPEN, "").replace(MARK_CLOSE, "")


# Average advance per character, in ems, for Helvetica-like fonts (a little more for the
# wider fallbacks): good enough to wrap text and size bubbles without a font file.
_NARROW, _WIDE = frozenset("ijlftrI.,;:'!|()[] "), frozenset("mwMW@%")


def _char_em(ch: str, bold: bool) -> float:
    if ch in _NARROW:
        em = 0.33
    elif ch in _WIDE:
        em = 0.9
    elif ch.isupper():
        em = 0.72
    elif ch.isdigit():
        em = 0.62
    elif ord(ch) > 0x2E80:  # CJK, emoji: about a square each
        em = 1.0
    else:
        em = 0.6
    return em * (1.1 if bold else 1.0)


def _width(display: str, size: float, bold: bool = False) -> float:
    """Estimated width in px; a marker is drawn bold."""
    total, inside = 0.0, False
    for ch in display:
        if ch in (MARK_OPEN, MARK_CLOSE):
            inside = ch == MARK_OPEN
        else:
            total += _char_em(ch, bold or inside)
    return total * size


def _fit(text: str, width: float, size: float, bold: bool) -> int:
    """How many characters of ``text`` fit in ``width`` px."""
    used = 0.0
    for i, ch in enumerate(text):
        if ch not in (MARK_OPEN, MARK_CLOSE):
            used += _char_em(ch, bold) * size
        if used > width:
            return i
    return len(text)


def _wrap(display: str, width: float, size: float, bold: bool = False) -> list[str]:
    """Word wrap to ``width`` px, paragraphs kept; a word longer than a line is cut (a
    marker too: it stays red on both lines)."""
    lines: list[str] = []
    for para in display.split("\n"):
        line = ""
        for word in para.split():
            candidate = f"{line} {word}" if line else word
            if _width(candidate, size, bold) <= width:
                line = candidate
                continue
            if line:
                lines.append(line)
            while _width(word, size, bold) > width:  # one long word (a URL): cut it
                keep = max(1, _fit(word, width, size, bold))
                lines.append(word[:keep])
                word = word[keep:]
            line = word
        lines.append(line)
    return lines


def _clip(display: str, width: float, size: float, bold: bool = False) -> str:
    """One line cut to ``width`` px with an ellipsis; a marker cut short is closed."""
    if _width(display, size, bold) <= width:
        return display
    keep = _fit(display, width - _width("…", size, bold), size, bold)
    cut = display[: max(1, keep)]
    inside = cut.rfind(MARK_OPEN) > cut.rfind(MARK_CLOSE)
    return cut + (MARK_CLOSE if inside else "") + "…"


def _spans(display: str, inside: bool = False) -> tuple[str, bool]:
    """SVG text content: plain pieces, and red ``tspan class="missing"`` for markers."""
    out: list[str] = []
    buf: list[str] = []

    def flush() -> None:
        if not buf:
            return
        piece = _x("".join(buf))
        if inside:
            path = "".join(buf).strip("{} ")
            out.append(
                f'<tspan class="missing" data-var="{_x(path)}" fill="{MISSING_STROKE}" '
                f'font-weight="bold" text-decoration="underline">{piece}</tspan>'
            )
        else:
            out.append(piece)
        buf.clear()

    for ch in display:
        if ch in (MARK_OPEN, MARK_CLOSE):
            flush()
            inside = ch == MARK_OPEN
        else:
            buf.append(ch)
    flush()
    return "".join(out), inside


def _text(
    cls: str,
    x: float,
    y: float,
    display: str,
    size: float,
    *,
    bold: bool = False,
    fill: str = TEXT_COLOR,
    anchor: str = "start",
    inside: bool = False,
) -> tuple[str, bool]:
    body, inside = _spans(display, inside)
    weight = ' font-weight="bold"' if bold else ""
    anchor_attr = f' text-anchor="{anchor}"' if anchor != "start" else ""
    return (
        f'<text class="{cls}" x="{_n(x)}" y="{_n(y)}" font-size="{_n(size)}"{weight} '
        f'fill="{fill}"{anchor_attr}>{body}</text>'
    ), inside


def _lines(
    cls: str, x: float, y: float, lines: Sequence[str], size: float, line_h: float, **kw: object
) -> list[str]:
    """Lines from baseline-of-first-line ``y``; a marker broken over lines stays red."""
    out: list[str] = []
    inside = False
    for i, line in enumerate(lines):
        svg, inside = _text(cls, x, y + i * line_h, line, size, inside=inside, **kw)  # type: ignore[arg-type]
        out.append(svg)
    return out


def _badge(x: float, y: float) -> str:
    """The red "!" on a card or bubble that prints a missing value."""
    return (
        f'<g class="missing-badge"><title>a value the sample data lacks prints here</title>'
        f'<circle cx="{_n(x)}" cy="{_n(y)}" r="8" fill="{MISSING_STROKE}"/>'
        f'<text x="{_n(x)}" y="{_n(y + 4)}" font-size="11" font-weight="bold" fill="#ffffff" '
        f'text-anchor="middle">!</text></g>'
    )


# --------------------------------------------------------------------------- pieces


@dataclass
class _Block:
    """Something drawn at an origin: ``draw(x, y)`` gives its SVG; w and h its size."""

    w: float
    h: float
    draw: Callable[[float, float], list[str]]
    has_missing: bool = False
    # A card in a carousel is drawn at the height of the tallest: draw_at(x, y, h).
    draw_at: Callable[[float, float, float], list[str]] | None = None


def _has_marker(*texts: str | None) -> bool:
    return any(t is not None and MARK_OPEN in t for t in texts)


def _media_kind(media: RenderedMedia) -> str:
    ctype = (media.content_type or "").lower()
    ext = file_name(media.url).rsplit(".", 1)[-1].lower()
    if ctype.startswith("video/") or ext in VIDEO:
        return "video"
    if ctype.startswith("audio/") or ext in AUDIO:
        return "audio"
    if ctype == "application/pdf" or ext == "pdf":
        return "pdf"
    return "image"


def _glyph(kind: str, cx: float, cy: float) -> str:
    ink = "#90caf9"
    if kind == "video":
        return (
            f'<circle cx="{_n(cx)}" cy="{_n(cy)}" r="15" fill="{ink}"/>'
            f'<path d="M{_n(cx - 5)},{_n(cy - 8)} L{_n(cx + 9)},{_n(cy)} L{_n(cx - 5)},'
            f'{_n(cy + 8)} z" fill="#ffffff"/>'
        )
    if kind in ("audio", "pdf"):
        label = "♪" if kind == "audio" else "PDF"
        return (
            f'<rect x="{_n(cx - 13)}" y="{_n(cy - 16)}" width="26" height="32" rx="3" '
            f'fill="{ink}"/><text x="{_n(cx)}" y="{_n(cy + 4)}" font-size="10" '
            f'font-weight="bold" fill="#ffffff" text-anchor="middle">{label}</text>'
        )
    return (
        f'<rect x="{_n(cx - 18)}" y="{_n(cy - 13)}" width="36" height="26" rx="3" fill="none" '
        f'stroke="{ink}" stroke-width="2"/><circle cx="{_n(cx + 8)}" cy="{_n(cy - 5)}" r="3" '
        f'fill="{ink}"/><path d="M{_n(cx - 16)},{_n(cy + 11)} L{_n(cx - 5)},{_n(cy - 2)} '
        f'L{_n(cx + 2)},{_n(cy + 5)} L{_n(cx + 7)},{_n(cy + 1)} L{_n(cx + 16)},{_n(cy + 11)} z" '
        f'fill="{ink}"/>'
    )


def _media_box(
    media: RenderedMedia, w: float, h: float, show: Show, corners: str
) -> Callable[[float, float], list[str]]:
    """A placeholder for the media file: a glyph, the file name, the height."""

    def draw(x: float, y: float) -> list[str]:
        r = 12.0
        shape = _rounded_rect(x, y, w, h, r, corners)
        name = _clip(show(file_name(media.url)), w - 12, 11)
        label = f"{media.height} · {MEDIA_HEIGHTS.get(media.height, '?')} dp"
        url = _x(_plain(show(media.url)))
        out = [
            f'<g class="media" data-height="{_x(media.height)}" data-url="{url}">',
            f"<title>{url}</title>",
            f'<path d="{shape}" fill="{SEND_FILL}" stroke="#90caf9"/>',
            _glyph(_media_kind(media), x + w / 2, y + h / 2 - 14),
        ]
        svg, _ = _text(
            "media-name", x + w / 2, y + h / 2 + 18, name, 11, fill=MEDIA_INK, anchor="middle"
        )
        out.append(svg)
        out.append(
            _text(
                "media-height", x + w / 2, y + h / 2 + 31, label, 9.5, fill=MUTED, anchor="middle"
            )[0]
        )
        if media.thumbnail_url:
            thumb = _clip("thumbnail " + show(file_name(media.thumbnail_url)), w - 12, 9.5)
            out.append(
                _text(
                    "media-thumbnail",
                    x + w / 2,
                    y + h / 2 + 43,
                    thumb,
                    9.5,
                    fill=MUTED,
                    anchor="middle",
                )[0]
            )
        out.append("</g>")
        return out

    return draw


def _rounded_rect(x: float, y: float, w: float, h: float, r: float, corners: str) -> str:
    """A rectangle path with the named corners rounded (t=top, b=bottom, l/r sides):
    ``"tl tr"`` rounds the top two."""
    tl, tr = ("tl" in corners) * r, ("tr" in corners) * r
    br, bl = ("br" in corners) * r, ("bl" in corners) * r
    return (
        f"M{_n(x + tl)},{_n(y)} H{_n(x + w - tr)} Q{_n(x + w)},{_n(y)} {_n(x + w)},{_n(y + tr)} "
        f"V{_n(y + h - br)} Q{_n(x + w)},{_n(y + h)} {_n(x + w - br)},{_n(y + h)} "
        f"H{_n(x + bl)} Q{_n(x)},{_n(y + h)} {_n(x)},{_n(y + h - bl)} "
        f"V{_n(y + tl)} Q{_n(x)},{_n(y)} {_n(x + tl)},{_n(y)} z"
    )


def _chip_content(
    s: RenderedSuggestion, show: Show, cx: float, baseline: float, room: float, size: float
) -> list[str]:
    """Glyph and text of a chip, centred on ``cx``."""
    glyph = CHIP_GLYPHS.get(s.kind, "")
    glyph_w = size + 4 if glyph else 0.0
    text = _clip(show(s.text), room - glyph_w, size)
    total = glyph_w + _width(text, size)
    left = cx - total / 2
    out = []
    if glyph:
        out.append(
            f'<text class="chip-icon" x="{_n(left + size / 2)}" y="{_n(baseline)}" '
            f'font-size="{_n(size)}" fill="{CHIP_BLUE}" text-anchor="middle">{_x(glyph)}</text>'
        )
    out.append(_text("chip-text", left + glyph_w, baseline, text, size, fill=CHIP_BLUE)[0])
    return out


def _chip_open(s: RenderedSuggestion, show: Show) -> str:
    target = chip_target(s)
    tip = f"{s.kind}: {_plain(show(s.text))}" + (f" → {_plain(show(target))}" if target else "")
    return (
        f'<g class="chip" data-kind="{_x(s.kind)}" data-text="{_x(_plain(show(s.text)))}">'
        f"<title>{_x(tip)}</title>"
    )


def _card(card: RenderedCard, w: float, show: Show) -> tuple[_Block, float]:
    """A card block, and the height of its chip rows (kept at the bottom in a carousel)."""
    horizontal = card.orientation == "HORIZONTAL" and card.media is not None
    media_w = round(w * 0.4) if horizontal else w  # a horizontal card's text is beside it
    text_w = (w - media_w if horizontal else w) - 2 * CARD_PAD
    title = _wrap(show(card.title), text_w, 14, True) if card.title else []
    desc = _wrap(show(card.description), text_w, 12.5) if card.description else []
    text_h = len(title) * 18.0 + len(desc) * 17.0 + (6 if title and desc else 0)
    if text_h:
        text_h += 2 * CARD_PAD
    if card.media is None:
        media_h = 0.0
    elif horizontal:
        media_h = max(text_h, float(MEDIA_HEIGHTS["SHORT"]))
    else:
        media_h = float(MEDIA_HEIGHTS.get(card.media.height, 168))
    body_h = max(media_h, text_h) if horizontal else media_h + text_h
    chips_h = len(card.suggestions) * CHIP_ROW_H
    has_missing = (
        _has_marker(card.title, card.description)
        or any(_has_marker(show(s.text)) for s in card.suggestions)
        or (card.media is not None and _has_marker(show(file_name(card.media.url))))
    )

    def draw_at(x: float, y: float, h: float) -> list[str]:
        out = [
            '<g class="card">',
            f'<rect class="card-frame" x="{_n(x)}" y="{_n(y)}" width="{_n(w)}" height="{_n(h)}" '
            f'rx="12" fill="#ffffff" stroke="{CARD_LINE}"/>',
        ]
        text_x, text_y = x + CARD_PAD, y + CARD_PAD
        if card.media is not None:
            if horizontal:
                left = card.thumbnail_alignment != "RIGHT"
                mx = x if left else x + w - media_w
                corners = "tl bl" if left else "tr br"
                if chips_h:
                    corners = "tl" if left else "tr"
                out += _media_box(card.media, media_w, media_h, show, corners)(mx, y)
                text_x = x + media_w + CARD_PAD if left else x + CARD_PAD
            else:
                out += _media_box(card.media, w, media_h, show, "tl tr")(x, y)
                text_y = y + media_h + CARD_PAD
        if title:
            out.append('<g class="card-title">')
            out += _lines("title", text_x, text_y + 14, title, 14, 18, bold=True)
            out.append("</g>")
            text_y += len(title) * 18 + 6
        if desc:
            out.append('<g class="card-description">')
            out += _lines("description", text_x, text_y + 12, desc, 12.5, 17, fill="#3c4043")
            out.append("</g>")
        chip_y = y + h - chips_h
        for s in card.suggestions:
            out.append(_chip_open(s, show))
            out.append(
                f'<line x1="{_n(x)}" y1="{_n(chip_y)}" x2="{_n(x + w)}" y2="{_n(chip_y)}" '
                f'stroke="{CARD_LINE}"/>'
            )
            out += _chip_content(s, show, x + w / 2, chip_y + 22, w - 16, 12.5)
            out.append("</g>")
            chip_y += CHIP_ROW_H
        if has_missing:
            out.append(_badge(x + w - 4, y + 4))
        out.append("</g>")
        return out

    height = max(body_h, 24.0) + chips_h

    def draw(x: float, y: float) -> list[str]:
        return draw_at(x, y, height)

    return _Block(w, height, draw, has_missing, draw_at), chips_h


def _carousel(cards: Sequence[RenderedCard], width: str, show: Show) -> _Block:
    w = CAROUSEL_W.get(width, 232.0)
    built = [_card(c, w, show) for c in cards]
    body = max((b.h - chips for b, chips in built), default=0.0)
    chips = max((chips for _, chips in built), default=0.0)
    h = body + chips
    total_w = len(built) * w + max(len(built) - 1, 0) * CAROUSEL_GAP

    def draw(x: float, y: float) -> list[str]:
        out = [f'<g class="carousel" data-width="{_x(width)}">']
        for i, (b, _) in enumerate(built):
            assert b.draw_at is not None
            out += b.draw_at(x + i * (w + CAROUSEL_GAP), y, h)
        out.append("</g>")
        return out

    return _Block(total_w, h, draw, any(b.has_missing for b, _ in built))


def _bubble(display: str, max_w: float, cls: str, fill: str) -> _Block:
    lines = _wrap(display, max_w - 24, 13)
    w = min(max_w, max((_width(line, 13) for line in lines), default=0.0) + 26)
    h = len(lines) * 18 + 18
    missing = MARK_OPEN in display

    def draw(x: float, y: float) -> list[str]:
        out = [
            f'<g class="bubble {cls}-bubble">',
            f'<rect x="{_n(x)}" y="{_n(y)}" width="{_n(w)}" height="{_n(h)}" rx="14" '
            f'fill="{fill}"/>',
        ]
        out += _lines(f"{cls}-text", x + 12, y + 9 + 13, lines, 13, 18)
        if missing:
            out.append(_badge(x + w - 4, y + 4))
        out.append("</g>")
        return out

    return _Block(w, h, draw, missing)


def _pills(chips: Sequence[RenderedSuggestion], max_w: float, show: Show) -> _Block:
    """Message-level chips: pills in rows."""
    placed: list[tuple[RenderedSuggestion, float, float, float]] = []  # chip, dx, dy, width
    dx = dy = 0.0
    for s in chips:
        glyph_w = 16.0 if CHIP_GLYPHS.get(s.kind) else 0.0
        pw = min(max_w, _width(show(s.text), 12.5) + glyph_w + 26)
        if dx and dx + pw > max_w:
            dx, dy = 0.0, dy + PILL_H + 6
        placed.append((s, dx, dy, pw))
        dx += pw + 6
    h = dy + PILL_H if chips else 0.0

    def draw(x: float, y: float) -> list[str]:
        out = ['<g class="message-chips">']
        for s, px, py, pw in placed:
            out.append(_chip_open(s, show))
            out.append(
                f'<rect x="{_n(x + px)}" y="{_n(y + py)}" width="{_n(pw)}" height="{PILL_H}" '
                f'rx="15" fill="#ffffff" stroke="{CHIP_BLUE}"/>'
            )
            out += _chip_content(s, show, x + px + pw / 2, y + py + 20, pw - 14, 12.5)
            out.append("</g>")
        out.append("</g>")
        return out

    return _Block(max_w, h, draw, any(_has_marker(show(s.text)) for s in chips))


# --------------------------------------------------------------------------- phones


@dataclass
class _Phone:
    caption: str
    header: str
    sub: str
    content: list[_Block] = field(default_factory=list)
    footer: list[tuple[str, str, str]] = field(default_factory=list)  # class, text, colour
    cls: str = "rcs"

    @property
    def screen_w(self) -> float:
        widest = max((b.w for b in self.content), default=0.0)
        return max(SCREEN_W, widest + 2 * PAD)

    @property
    def w(self) -> float:
        return self.screen_w + 2 * BEZEL

    def content_h(self) -> float:
        h = sum(b.h for b in self.content) + 8 * max(len(self.content) - 1, 0)
        return h + 16 * len(self.footer)

    def draw(self, x: float, y: float, h: float) -> list[str]:
        """The phone at ``x, y`` (its caption above it), ``h`` high."""
        sw = self.screen_w
        sx, sy = x + BEZEL, y + BEZEL
        sh = h - 2 * BEZEL
        out = [
            f'<g class="phone {self.cls}">',
            _text(
                "phone-caption",
                x + 4,
                y - 8,
                _clip(self.caption, self.w - 4, 11.5, True),
                11.5,
                bold=True,
                fill=FRAME_COLOR,
            )[0],
            f'<rect x="{_n(x)}" y="{_n(y)}" width="{_n(self.w)}" height="{_n(h)}" rx="28" '
            f'fill="#eceff1" stroke="{FRAME_COLOR}" stroke-width="2"/>',
            f'<rect x="{_n(sx)}" y="{_n(sy)}" width="{_n(sw)}" height="{_n(sh)}" rx="20" '
            f'fill="#ffffff" stroke="#cfd8dc"/>',
            f'<rect x="{_n(sx + sw / 2 - 28)}" y="{_n(sy + 7)}" width="56" height="6" rx="3" '
            f'fill="#cfd8dc"/>',
            _text("status", sx + 16, sy + 16, "9:41", 9.5, bold=True, fill=MUTED)[0],
        ]
        hy = sy + STATUS_H
        initial = (self.header.strip()[:1] or "?").upper()
        out += [
            f'<line x1="{_n(sx)}" y1="{_n(hy + HEADER_H)}" x2="{_n(sx + sw)}" '
            f'y2="{_n(hy + HEADER_H)}" stroke="#eceff1"/>',
            f'<circle cx="{_n(sx + 26)}" cy="{_n(hy + HEADER_H / 2)}" r="14" fill="{SEND_FILL}" '
            f'stroke="{SEND_STROKE}"/>',
            _text(
                "avatar",
                sx + 26,
                hy + HEADER_H / 2 + 5,
                initial,
                13,
                bold=True,
                fill=SEND_STROKE,
                anchor="middle",
            )[0],
            _text(
                "sender", sx + 48, hy + 20, _clip(self.header, sw - 60, 12.5, True), 12.5, bold=True
            )[0],
            _text("sender-sub", sx + 48, hy + 34, self.sub, 10, fill=MUTED)[0],
        ]
        cy = hy + HEADER_H + PAD
        for block in self.content:
            out += block.draw(sx + PAD, cy)
            cy += block.h + 8
        for cls, text, color in self.footer:
            out.append(_text(cls, sx + PAD + 2, cy + 10, text, 10.5, fill=color)[0])
            cy += 16
        iy = sy + sh - INPUT_H - 8
        out += [
            f'<rect x="{_n(sx + PAD)}" y="{_n(iy)}" width="{_n(sw - 2 * PAD)}" '
            f'height="{_n(INPUT_H - 8)}" rx="16" fill="{BUBBLE}"/>',
            _text(
                "input",
                sx + PAD + 14,
                iy + 20,
                "RCS message" if self.cls == "rcs" else "Text message",
                11,
                fill="#9e9e9e",
            )[0],
            "</g>",
        ]
        return out


def _rcs_phone(p: NodePreview, show: Show, sender: str) -> _Phone:
    phone = _Phone("RCS", sender, "RCS business message")
    if p.sample is None:
        phone.content.append(
            _bubble(p.error or "cannot render", SCREEN_W - 2 * PAD, "error", MISSING_FILL)
        )
        return phone
    msg: RenderedMessage = p.sample.marked
    if msg.carousel is not None:
        phone.content.append(_carousel(msg.carousel.cards, msg.carousel.width, show))
    elif msg.rich_card is not None:
        phone.content.append(_card(msg.rich_card, SCREEN_W - 2 * PAD, show)[0])
    elif msg.text is not None:
        phone.content.append(_bubble(show(msg.text), (SCREEN_W - 2 * PAD) * 0.85, "rcs", BUBBLE))
    if msg.suggestions:
        widest = max((b.w for b in phone.content), default=SCREEN_W - 2 * PAD)
        phone.content.append(_pills(msg.suggestions, max(widest, SCREEN_W - 2 * PAD), show))
    return phone


def _sms_phone(sms: SmsPreview, show: Show) -> _Phone:
    phone = _Phone(sms.heading, "SMS", "Text message", cls="sms")
    phone.content.append(_bubble(show(sms.shown), (SCREEN_W - 2 * PAD) * 0.85, "sms", "#e8eaed"))
    seg = sms.segmentation
    color = MISSING_STROKE if seg.over_cap else WARN_COLOR if seg.warn else MUTED
    if seg.encoding == "ucs2" and not seg.over_cap:
        color = WARN_COLOR
    phone.footer.append(("sms-size", sms.sizes, color))
    return phone


# --------------------------------------------------------------------------- panels


def _display(p: NodePreview) -> Show:
    """``text`` with every marker as ``{{ path }}`` between the drawing's delimiters."""

    def show(text: str | None) -> str:
        if text is None:
            return ""
        if p.sample is None:
            return text
        return "".join(
            piece if path is None else f"{MARK_OPEN}{{{{{path}}}}}{MARK_CLOSE}"
            for piece, path in p.sample.runs(text)
        )

    return show


def _panel(p: NodePreview, sender: str) -> tuple[list[str], float, float]:
    """One node's panel at the origin: its SVG, width and height."""
    show = _display(p)
    phones: list[_Phone] = []
    if p.channel == "rcs":
        phones.append(_rcs_phone(p, show, sender))
    if p.sms is not None:
        phones.append(_sms_phone(p.sms, show))
    elif p.channel == "sms" and p.sample is None:
        sms_phone = _Phone("SMS", "SMS", "Text message", cls="sms")
        sms_phone.content.append(
            _bubble(p.error or "cannot render", SCREEN_W - 2 * PAD, "error", MISSING_FILL)
        )
        phones.append(sms_phone)
    phone_h = max(
        [420.0]
        + [BEZEL * 2 + STATUS_H + HEADER_H + PAD + ph.content_h() + INPUT_H + 24 for ph in phones]
    )
    phones_w = sum(ph.w for ph in phones) + GAP * max(len(phones) - 1, 0)
    width = max(phones_w, 560.0)
    kind = "text"
    if p.sample is not None:
        msg = p.sample.marked
        kind = "carousel" if msg.carousel else "rich card" if msg.rich_card else "text"
    title = p.label if p.label != p.node_id else p.node_id
    sub = f"send {p.node_id} · {p.channel.upper()} {kind}"
    out = [
        _text("node-title", 0, 16, _clip(title, width, 15, True), 15, bold=True)[0],
        _text("node-sub", 0, 33, sub, 11, fill=MUTED)[0],
    ]
    x, top = 0.0, 62.0
    for ph in phones:
        out += ph.draw(x, top, phone_h)
        x += ph.w + GAP
    y = top + phone_h + 22
    out.append('<g class="problems">')
    for problem in p.problems():
        for i, line in enumerate(_wrap(problem, width - 20, 11.5)):
            prefix = "✗ " if i == 0 else "   "
            out.append(_text("problem", 0, y, prefix + line, 11.5, fill=MISSING_STROKE)[0])
            y += 16
    for note in p.notes():
        for i, line in enumerate(_wrap(note, width - 20, 11.5)):
            prefix = "· " if i == 0 else "   "
            out.append(
                _text(
                    "note",
                    0,
                    y,
                    prefix + line,
                    11.5,
                    fill=WARN_COLOR if "fallback" in note or "SMS" in note else MUTED,
                )[0]
            )
            y += 16
    if not p.has_problems:
        out.append(_text("ok", 0, y, "✓ no missing value, no broken limit", 11.5, fill=OK_COLOR)[0])
        y += 16
    out.append("</g>")
    return out, width, y - 4


def to_svg(
    previews: Sequence[NodePreview], *, title: str, note: str = "", heading: bool = True
) -> str:
    """One SVG: a heading (``Preview: title``), then a panel per preview, one under the
    other. ``title`` (the journey's name) is also the sender shown on the phones."""
    panels = [_panel(p, title) for p in previews]
    width = max([w for _, w, _ in panels] + [560.0]) + 2 * MARGIN
    y = MARGIN + (44 if heading else 0)
    body: list[str] = []
    for p, (parts, _, h) in zip(previews, panels, strict=True):
        body.append(
            f'<g class="preview" id="preview-{_x(p.node_id)}" data-node="{_x(p.node_id)}" '
            f'transform="translate({_n(MARGIN)},{_n(y)})">'
        )
        body += parts
        body.append("</g>")
        y += h + 36
    height = y - 36 + MARGIN
    head = [
        f'<svg xmlns="http://www.w3.org/2000/svg" width="{_n(width)}" height="{_n(height)}" '
        f'viewBox="0 0 {_n(width)} {_n(height)}" font-family="{FONT}" role="img" '
        f'aria-label="{_x("Preview: " + title)}">',
        f"<title>{_x('Preview: ' + title)}</title>",
        '<rect class="background" width="100%" height="100%" fill="#ffffff"/>',
    ]
    if heading:
        head.append(
            _text("preview-title", MARGIN, MARGIN + 16, f"Preview: {title}", 17, bold=True)[0]
        )
    if note and heading:
        head.append(_text("preview-note", MARGIN, MARGIN + 34, note, 11, fill=MUTED)[0])
    return "\n".join([*head, *body, "</svg>"]) + "\n"


def to_html(previews: Sequence[NodePreview], *, title: str, note: str = "") -> str:
    """A self-contained page: per node its picture and the text preview."""
    sections = []
    for p in previews:
        svg = to_svg([p], title=title, heading=False)
        text = format_text([p])
        sections.append(
            f'<section id="node-{_x(p.node_id)}">\n{svg}<pre>{_x(text)}</pre>\n</section>'
        )
    return (
        '<!doctype html>\n<html lang="en"><head><meta charset="utf-8">'
        f"<title>{_x('Preview: ' + title)}</title>\n<style>"
        f"body{{font-family:{FONT};margin:24px;color:{TEXT_COLOR};background:#fafafa}}"
        "section{background:#fff;border:1px solid #e0e0e0;border-radius:8px;padding:8px;"
        "margin:0 0 24px}svg{max-width:100%;height:auto}"
        "pre{font-size:12px;background:#f5f5f5;padding:12px;border-radius:6px;overflow:auto}"
        "</style></head>\n<body>\n"
        f"<h1>{_x('Preview: ' + title)}</h1>\n"
        + (f"<p>{_x(note)}</p>\n" if note else "")
        + "\n".join(sections)
        + "\n</body></html>\n"
    )
