"""SMS text for an RCS message whose journey gives no ``fallback.sms``.

No provider turns a rich card into SMS for us, so :func:`derive_sms` does it, following
``docs/channels.md`` ("Fallback text when the journey gives none")::

    <title>
    <description>                       (plain RCS text: the text)
    <Label>: <URL>                      one line per open-URL action
    <Label>: +14155550100               one line per dial action
    <Label>: https://maps.google.com/?q=48.8584,2.2945   per view-location action
    Reply STOP to opt out.

- **Carousel**: the first card in full (title, description, its actions) and then one
  line ``More: <title 2>; <title 3>; ...`` with the other cards' titles. Their actions
  are left out: several links per card would not fit a 3-segment SMS, and the first card
  is the one the author put first.
- Actions come from the card(s) used, then the message-level chips; duplicate lines are
  dropped. Reply, share-location and calendar chips have no SMS form and are left out.
- **Cap**: the result fits ``max_segments`` (clamped to the 10-segment hard cap) as
  counted by :func:`engine.channels.sms.segment`. When it doesn't, the *body* (title,
  description, carousel titles) is cut at a word or grapheme boundary and ends in
  ``...``; the action lines and the opt-out line are kept. Only if those alone don't fit
  are action lines dropped, last first, and only if the opt-out line alone doesn't fit is
  it cut.
- **GSM-7**: typographic punctuation is replaced by its plain form (’ -> ', “ ” -> ",
  – — -> -, … -> ..., non-breaking and other odd spaces -> space, tab -> space, zero-width
  characters and soft hyphens removed) so that one curly quote does not switch the whole
  SMS to UCS-2 and halve its capacity. Letters are never changed (ç, emoji, Cyrillic stay
  and make the message UCS-2 as they must): replacing them would change words. URLs are
  left exactly as rendered.
- The opt-out line is not added twice: a body that already ends with it loses it there.
"""

from __future__ import annotations

from collections.abc import Iterable
from urllib.parse import quote_plus

from engine.channels.sms import SMS_MAX_SEGMENTS, graphemes, segment, truncate_to_segments
from engine.journey.render import RenderedCard, RenderedMessage, RenderedSuggestion

DEFAULT_OPT_OUT = "Reply STOP to opt out."
ELLIPSIS = "..."
# How far back (in graphemes) a cut looks for a space so it doesn't split a word.
_WORD_LOOKBACK = 30

_GSM_SAFE = str.maketrans(
    {
        **dict.fromkeys("\u2018\u2019\u201a\u201b\u2032\u00b4`", "'"),
        **dict.fromkeys("\u201c\u201d\u201e\u201f\u2033\u00ab\u00bb", '"'),
        **dict.fromkeys("\u2010\u2011\u2012\u2013\u2014\u2015\u2212\u2022", "-"),
        **dict.fromkeys("\t\u00a0\u2002\u2003\u2004\u2005\u2006\u2007\u2008\u2009", " "),
        **dict.fromkeys("\u200a\u202f\u205f\u3000", " "),
        **dict.fromkeys("\u200b\u00ad\u2060\ufeff", ""),
        "\u2026": "...",
        "\u2039": "<",
        "\u203a": ">",
    }
)


def gsm_safe(text: str) -> str:
    """Replace typographic punctuation and odd spaces with GSM-7 equivalents (see above)."""
    return text.translate(_GSM_SAFE)


def fallback_sms_text(
    msg: RenderedMessage, *, opt_out_line: str = DEFAULT_OPT_OUT, max_segments: int = 3
) -> str:
    """The journey's rendered ``fallback.sms`` when it gives one, else :func:`derive_sms`."""
    if msg.fallback_sms is not None:
        return msg.fallback_sms
    return derive_sms(msg, opt_out_line=opt_out_line, max_segments=max_segments)


def derive_sms(
    msg: RenderedMessage, *, opt_out_line: str = DEFAULT_OPT_OUT, max_segments: int = 3
) -> str:
    """SMS text for ``msg`` (card, carousel or text) within ``max_segments`` segments."""
    if max_segments < 1:
        raise ValueError("max_segments must be at least 1")
    max_segments = min(max_segments, SMS_MAX_SEGMENTS)
    body_lines, chips = _body_and_chips(msg)
    body = "\n".join(gsm_safe(line).strip() for line in body_lines if line and line.strip())
    links = _dedupe(line for s in chips if (line := action_line(s)) is not None)
    opt_out = gsm_safe(opt_out_line).strip()
    if opt_out and body[-len(opt_out) :].lower() == opt_out.lower():
        body = body[: -len(opt_out)].rstrip()  # moved to the protected tail, not doubled
    text = _fit(body, links, opt_out, max_segments)
    if not _fits(text, max_segments):  # belt and braces: never hand out an over-long SMS
        text = truncate_to_segments(text, max_segments, ellipsis=ELLIPSIS)
    return text


def _body_and_chips(msg: RenderedMessage) -> tuple[list[str], list[RenderedSuggestion]]:
    cards = msg.cards
    if not cards:
        return [msg.text or ""], list(msg.suggestions)
    first: RenderedCard = cards[0]
    lines = [first.title or "", first.description or ""]
    others = [c.title.strip() for c in cards[1:] if c.title and c.title.strip()]
    if others:
        lines.append("More: " + "; ".join(others))
    return lines, [*first.suggestions, *msg.suggestions]


def map_link(s: RenderedSuggestion) -> str | None:
    """Google Maps link for a view-location chip: ``?q=lat,long`` or ``?q=<query>``."""
    if s.lat is not None and s.long is not None:
        return f"https://maps.google.com/?q={_coord(s.lat)},{_coord(s.long)}"
    if s.query:
        return f"https://maps.google.com/?q={quote_plus(s.query.strip())}"
    return None


def _coord(value: float) -> str:
    return f"{value:.6f}".rstrip("0").rstrip(".")


def action_line(s: RenderedSuggestion) -> str | None:
    """``Label: target`` for open-URL, dial and view-location chips; ``None`` for others."""
    target: str | None = None
    if s.kind == "open_url":
        target = s.url
    elif s.kind == "dial":
        target = s.phone
    elif s.kind == "view_location":
        target = map_link(s)
    if not target:
        return None
    label = gsm_safe(s.text).strip().rstrip(":").strip()
    return f"{label}: {target.strip()}" if label else target.strip()


def _dedupe(lines: Iterable[str]) -> list[str]:
    return list(dict.fromkeys(lines))


def _fits(text: str, max_segments: int) -> bool:
    return segment(text).segments <= max_segments


def _join(body: str, tail: list[str]) -> str:
    return "\n".join(part for part in (body, *tail) if part)


def _fit(body: str, links: list[str], opt_out: str, max_segments: int) -> str:
    tail = [*links, opt_out]
    full = _join(body, tail)
    if _fits(full, max_segments):
        return full
    # The tail must fit with at least a cut body; else drop action lines, last first.
    while links and not _fits(_join(ELLIPSIS if body else "", [*links, opt_out]), max_segments):
        links = links[:-1]
    tail = [*links, opt_out]
    if _fits(_join(body, tail), max_segments):
        return _join(body, tail)
    if body:
        cut = _cut_body(body, tail, max_segments)
        if cut is not None:
            return cut
    text = _join("", tail)
    if _fits(text, max_segments):
        return text
    # Only the opt-out line is left and even it is too long: cut it, as a last resort.
    return truncate_to_segments(text, max_segments, ellipsis=ELLIPSIS)


def _cut_body(body: str, tail: list[str], max_segments: int) -> str | None:
    """The longest ``body prefix + '...'`` that fits with ``tail``, or ``None``."""
    clusters = graphemes(body)
    ends = [0]
    for g in clusters:
        ends.append(ends[-1] + len(g))

    def compose(k: int) -> str:
        prefix = body[: ends[k]].rstrip()
        return _join(prefix + ELLIPSIS if prefix else "", tail)

    lo, hi = 0, len(clusters)  # compose(lo) fits; the whole body (hi) does not
    while hi - lo > 1:
        mid = (lo + hi) // 2
        if _fits(compose(mid), max_segments):
            lo = mid
        else:
            hi = mid
    if lo == 0:
        return None  # not even one grapheme of the body fits next to the tail
    best = lo
    if best < len(clusters) and not (clusters[best].isspace() or clusters[best - 1].isspace()):
        # Mid-word: back up to the last space within reach.
        for k in range(best - 1, max(0, best - _WORD_LOOKBACK), -1):
            if clusters[k].isspace():
                best = k
                break
    result = compose(best)
    return result if _fits(result, max_segments) else compose(lo)
