"""SMS encoding and segmentation: GSM-7 or UCS-2, part sizes, safe split points.

Rules (``docs/channels.md``, SMS section):

* A text is GSM-7 when every character is in the basic or extension table; a single
  character outside both makes the *whole* message UCS-2, counted in UTF-16 code units.
* Extension-table characters cost two septets (ESC + code); astral code points (most
  emoji) cost two UTF-16 units (a surrogate pair).
* One message holds 160 septets / 70 units. Longer texts are split into parts of at most
  153 / 67, because each part loses room to the concatenation header (UDH).
* A split never falls inside an escape pair, a surrogate pair or a grapheme cluster
  (flag, ZWJ emoji, skin tone, combining marks, ...): some handsets show parts on their
  own, and half a character renders as garbage there.

Empty text counts as one GSM-7 segment of 0 septets: sending it still costs one message,
so cost estimates and caps should see 1, not 0.

Everything here is pure and allocation-light: it runs for every SMS rendered.
"""

from __future__ import annotations

import unicodedata
from bisect import bisect_right
from collections.abc import Sequence
from dataclasses import dataclass
from functools import lru_cache
from itertools import accumulate
from typing import Final, Literal

Encoding = Literal["gsm7", "ucs2"]

SMS_MAX_SEGMENTS: Final = 10
SMS_WARN_SEGMENTS: Final = 3

GSM7_SINGLE_SEPTETS: Final = 160
GSM7_PART_SEPTETS: Final = 153
UCS2_SINGLE_UNITS: Final = 70
UCS2_PART_UNITS: Final = 67

# GSM 03.38 default alphabet in code order 0x00..0x7F with 0x1B (the escape) left out,
# so a character's septet value is its index, plus one from 0x1B on.
_GSM7_BASIC_ORDERED: Final = (
    "@£$¥èéùìòÇ\nØø\rÅåΔ_ΦΓΛΩΠΨΣΘΞÆæßÉ"
    " !\"#¤%&'()*+,-./0123456789:;<=>?"
    "¡ABCDEFGHIJKLMNOPQRSTUVWXYZÄÖÑÜ§"
    "¿abcdefghijklmnopqrstuvwxyzäöñüà"
)
_GSM7_ESC: Final = 0x1B
_GSM7_BASIC_CODES: Final[dict[str, int]] = {
    ch: i if i < _GSM7_ESC else i + 1 for i, ch in enumerate(_GSM7_BASIC_ORDERED)
}
_GSM7_EXTENSION_CODES: Final[dict[str, int]] = {
    "\f": 0x0A,
    "^": 0x14,
    "{": 0x28,
    "}": 0x29,
    "\\": 0x2F,
    "[": 0x3C,
    "~": 0x3D,
    "]": 0x3E,
    "|": 0x40,
    "€": 0x65,
}

GSM7_BASIC: Final = frozenset(_GSM7_BASIC_CODES)
GSM7_EXTENSION: Final = frozenset(_GSM7_EXTENSION_CODES)
_GSM7_ALL: Final = GSM7_BASIC | GSM7_EXTENSION
_GSM7_SEPTETS: Final[dict[str, int]] = dict.fromkeys(GSM7_BASIC, 1) | dict.fromkeys(
    GSM7_EXTENSION, 2
)
# "…" is not GSM-7: appending it to a GSM-7 text would turn the whole message UCS-2.
_GSM7_ELLIPSIS: Final = "..."


# --------------------------------------------------------------------------- encoding


def is_gsm7(text: str) -> bool:
    """True when every character is in the GSM-7 basic or extension table."""
    return _GSM7_ALL.issuperset(text)


def detect_encoding(text: str) -> Encoding:
    """``"gsm7"`` or ``"ucs2"`` for the whole message (one outsider switches it all)."""
    return "gsm7" if is_gsm7(text) else "ucs2"


def gsm7_septets(text: str) -> int:
    """Septets for a GSM-7 text: one per character, two per extension character."""
    return len(text) + sum(text.count(ch) for ch in GSM7_EXTENSION)


def ucs2_units(text: str) -> int:
    """UTF-16 code units: astral code points (most emoji) take a surrogate pair."""
    # surrogatepass: a lone surrogate in a Python str still costs one unit, not a crash.
    return len(text.encode("utf-16-le", "surrogatepass")) // 2


def encode_gsm7(text: str) -> bytes:
    """Unpacked GSM-7 septets, one per byte, extension characters as ``0x1B, code``.

    Raises ValueError naming the first character that GSM-7 cannot carry.
    """
    out = bytearray()
    for ch in text:
        code = _GSM7_BASIC_CODES.get(ch)
        if code is not None:
            out.append(code)
            continue
        ext = _GSM7_EXTENSION_CODES.get(ch)
        if ext is None:
            raise ValueError(f"{ch!r} (U+{ord(ch):04X}) is not in the GSM-7 alphabet")
        out += bytes((_GSM7_ESC, ext))
    return bytes(out)


def encode_ucs2(text: str) -> bytes:
    """UTF-16BE, what carriers actually mean by "UCS-2" (surrogate pairs included)."""
    return text.encode("utf-16-be")


# ---------------------------------------------------------------- grapheme clusters
# A small subset of UAX #29 extended grapheme clusters, enough to keep the clusters that
# show up in messages whole. Where it deviates it only ever joins *more* (a slightly
# worse packing), never less (a broken character):
# * GB11 is widened: any code point right after a ZWJ stays with it (no emoji table).
# * GB9c (Unicode 15.1 Indic conjuncts) is approximated: a letter of the Indic blocks right
#   after a virama stays with it.
# * SpacingMark is every Mc (plus Thai/Lao SARA AM); the few Mc exceptions of UAX #29 only
#   join more.

_OTHER, _CR, _LF, _CONTROL, _EXTEND, _ZWJ, _RI, _PREPEND, _SPACING = range(9)
_L, _V, _T, _LV, _LVT = range(9, 14)

# Grapheme_Cluster_Break=Prepend (Unicode 14, what this Python ships): Arabic number signs
# and a few Brahmi-derived marks that attach to the *following* character.
_PREPEND_RANGES: Final = (
    (0x0600, 0x0605),
    (0x06DD, 0x06DD),
    (0x070F, 0x070F),
    (0x0890, 0x0891),
    (0x08E2, 0x08E2),
    (0x0D4E, 0x0D4E),
    (0x110BD, 0x110BD),
    (0x110CD, 0x110CD),
    (0x111C2, 0x111C3),
    (0x1193F, 0x1193F),
    (0x11941, 0x11941),
    (0x11A3A, 0x11A3A),
    (0x11A84, 0x11A89),
    (0x11D46, 0x11D46),
)
# Viramas that build conjuncts (Unicode 15.1 InCB=Linker): Devanagari, Bengali, Gujarati,
# Oriya, Telugu, Malayalam.
_LINKERS: Final = frozenset("\u094d\u09cd\u0acd\u0b4d\u0c4d\u0d4d")
_CONTROL_CATEGORIES: Final = frozenset({"Cc", "Zl", "Zp", "Cf", "Cs"})
_CONTROLS: Final = frozenset({_CR, _LF, _CONTROL})


@lru_cache(maxsize=4096)
def _gcb(ch: str) -> int:
    """Grapheme_Cluster_Break class of one code point (cached: texts repeat characters)."""
    cp = ord(ch)
    if cp < 0x7F:  # ASCII fast path: only CR, LF and C0 controls are special
        if cp >= 0x20:
            return _OTHER
        return _CR if cp == 0x0D else _LF if cp == 0x0A else _CONTROL
    if cp == 0x200D:
        return _ZWJ
    if 0x1F1E6 <= cp <= 0x1F1FF:
        return _RI
    # Extend by property although their category is not Mn/Me: skin-tone modifiers,
    # tag characters (subdivision flags), ZWNJ, halfwidth katakana sound marks.
    if 0x1F3FB <= cp <= 0x1F3FF or 0xE0020 <= cp <= 0xE007F or cp in (0x200C, 0xFF9E, 0xFF9F):
        return _EXTEND
    if 0x1100 <= cp <= 0x115F or 0xA960 <= cp <= 0xA97C:
        return _L
    if 0x1160 <= cp <= 0x11A7 or 0xD7B0 <= cp <= 0xD7C6:
        return _V
    if 0x11A8 <= cp <= 0x11FF or 0xD7CB <= cp <= 0xD7FB:
        return _T
    if 0xAC00 <= cp <= 0xD7A3:
        return _LV if (cp - 0xAC00) % 28 == 0 else _LVT
    if any(lo <= cp <= hi for lo, hi in _PREPEND_RANGES):
        return _PREPEND
    if cp in (0x0E33, 0x0EB3):
        return _SPACING
    cat = unicodedata.category(ch)
    if cat in ("Mn", "Me"):  # combining marks, variation selectors, keycap
        return _EXTEND
    if cat == "Mc":
        return _SPACING
    if cat in _CONTROL_CATEGORIES:
        return _CONTROL
    return _OTHER


def _is_boundary(text: str, i: int) -> bool:
    """Is there a grapheme boundary between ``text[i - 1]`` and ``text[i]``?

    Decided from local context only, so a splitter can test just the few positions near
    a part's end instead of clustering the whole text.
    """
    if i <= 0 or i >= len(text):
        return True
    prev, cur = _gcb(text[i - 1]), _gcb(text[i])
    if prev == _CR:
        return cur != _LF  # GB3, GB4
    if prev in _CONTROLS or cur in _CONTROLS:
        return True  # GB4, GB5
    if prev == _L:
        if cur in (_L, _V, _LV, _LVT):  # GB6
            return False
    elif prev in (_LV, _V):
        if cur in (_V, _T):  # GB7
            return False
    elif prev in (_LVT, _T) and cur == _T:  # GB8
        return False
    if cur in (_EXTEND, _ZWJ, _SPACING) or prev in (_PREPEND, _ZWJ):
        return False  # GB9, GB9a, GB9b, widened GB11
    if cur == _RI:
        if prev != _RI:
            return True
        # GB12, GB13: flags are RI pairs, so count the run of RIs before i.
        j = i - 1
        while j >= 0 and _gcb(text[j]) == _RI:
            j -= 1
        return (i - 1 - j) % 2 == 0
    ch = text[i]
    if "\u0900" <= ch <= "\u0d7f" and unicodedata.category(ch) == "Lo":
        # Approximated GB9c: a virama somewhere in the marks just before joins a letter.
        j = i - 1
        while j >= 0 and _gcb(text[j]) in (_EXTEND, _ZWJ):
            if text[j] in _LINKERS:
                return False
            j -= 1
    return True


def _grapheme_ends(text: str) -> list[int]:
    """End index (exclusive) of every grapheme cluster; the last one is ``len(text)``."""
    return [i for i in range(1, len(text) + 1) if _is_boundary(text, i)]


def graphemes(text: str) -> list[str]:
    """The text cut into user-perceived characters (approximate UAX #29, see above)."""
    start = 0
    out: list[str] = []
    for end in _grapheme_ends(text):
        out.append(text[start:end])
        start = end
    return out


# ---------------------------------------------------------------------- segmentation


@dataclass(frozen=True, slots=True)
class Segmentation:
    """How a text goes out as SMS. ``parts`` are sizes in septets (GSM-7) or UTF-16 units."""

    encoding: Encoding
    segments: int
    parts: tuple[int, ...]

    @property
    def units(self) -> int:
        """Total septets (GSM-7) or UTF-16 units (UCS-2) across all parts."""
        return sum(self.parts)

    @property
    def over_cap(self) -> bool:
        """More segments than the hard cap: must not be sent as is."""
        return self.segments > SMS_MAX_SEGMENTS

    @property
    def warn(self) -> bool:
        """More segments than is comfortable (cost, reassembly failures on old handsets)."""
        return self.segments > SMS_WARN_SEGMENTS

    def to_json_dict(self) -> dict[str, str | int | list[int]]:
        return {"encoding": self.encoding, "segments": self.segments, "parts": list(self.parts)}


def _ucs2_cost(ch: str) -> int:
    return 2 if ch > "\uffff" else 1


def _plan(text: str) -> tuple[Encoding, list[tuple[int, int, int]]]:
    """Encoding and parts as ``(start, end, units)`` over ``text``, packed greedily."""
    n = len(text)
    if is_gsm7(text):
        encoding: Encoding = "gsm7"
        total, single, limit = gsm7_septets(text), GSM7_SINGLE_SEPTETS, GSM7_PART_SEPTETS
        cost = _GSM7_SEPTETS.__getitem__
    else:
        encoding = "ucs2"
        total, single, limit = ucs2_units(text), UCS2_SINGLE_UNITS, UCS2_PART_UNITS
        cost = _ucs2_cost
    if total <= single:  # the common case: one message, nothing to cut
        return encoding, [(0, n, total)]

    # cum[i] = units of text[:i]; a plain range when every character costs one unit.
    cum: Sequence[int] = range(n + 1) if total == n else [0, *accumulate(map(cost, text))]
    # Greedy packing is optimal here: each part takes the longest run of whole clusters
    # that fits, and ending a part earlier never lets a later one hold more.
    parts: list[tuple[int, int, int]] = []
    start = 0
    while start < n:
        end = bisect_right(cum, cum[start] + limit, start) - 1  # every cost <= limit
        if end < n:
            cut = end
            while cut > start and not _is_boundary(text, cut):
                cut -= 1
            # cut == start: the cluster is longer than a whole part (a letter under 100
            # combining marks, a long ZWJ chain), so no clean cut exists: cut between code
            # points. A str indexes code points, so no surrogate or escape pair breaks.
            if cut > start:
                end = cut
        parts.append((start, end, cum[end] - cum[start]))
        start = end
    return encoding, parts


def segment(text: str) -> Segmentation:
    """Encoding, segment count and part sizes of ``text`` sent as one SMS."""
    encoding, parts = _plan(text)
    return Segmentation(encoding, len(parts), tuple(units for _, _, units in parts))


def split(text: str) -> list[str]:
    """The part strings, in order; ``"".join(split(t)) == t``. Empty text gives ``[""]``."""
    _, parts = _plan(text)
    return [text[start:end] for start, end, _ in parts]


# ------------------------------------------------------------------------ truncation

# A word longer than this (a URL, a token) is cut mid-word rather than dropped whole, so
# one long word near the cut cannot throw away most of a segment.
_WORD_LOOKBACK: Final = 30


def truncate_to_segments(text: str, max_segments: int, ellipsis: str = "…") -> str:
    """``text`` unchanged if it fits ``max_segments``; else its longest prefix plus ellipsis.

    The cut falls on a grapheme boundary, at the last word boundary when one is within
    ``_WORD_LOOKBACK`` code points, and trailing whitespace is dropped. When the kept
    prefix is GSM-7 and the ellipsis is not (the default "…"), "..." is used instead so
    the ellipsis alone does not switch the message to UCS-2 and cut its capacity by half.
    Raises ValueError when ``max_segments < 1`` or the ellipsis alone does not fit.
    """
    if max_segments < 1:
        raise ValueError("max_segments must be at least 1")
    if segment(text).segments <= max_segments:
        return text
    ellipsis_is_gsm7 = is_gsm7(ellipsis)

    def with_ellipsis(prefix: str) -> str:
        if not ellipsis_is_gsm7 and is_gsm7(prefix):
            return prefix + _GSM7_ELLIPSIS
        return prefix + ellipsis

    def fits(prefix: str) -> bool:
        return segment(with_ellipsis(prefix)).segments <= max_segments

    if not fits(""):
        raise ValueError(f"the ellipsis {ellipsis!r} alone needs more than {max_segments} segments")

    # Binary search the longest fitting prefix by code points (segment count only grows
    # with the prefix), then step back to a grapheme boundary. text[:lo] always fits and
    # the whole text never does.
    lo, hi = 0, len(text)
    while hi - lo > 1:
        mid = (lo + hi) // 2
        if fits(text[:mid]):
            lo = mid
        else:
            hi = mid
    hard = lo
    while not _is_boundary(text, hard):
        hard -= 1

    cut = hard
    if not text[cut].isspace() and not text[cut - 1 : cut].isspace():
        # Mid-word: step back to the start of a whitespace cluster, if one is close.
        for i in range(cut - 1, max(cut - _WORD_LOOKBACK, 0), -1):
            if text[i].isspace() and _is_boundary(text, i):
                cut = i
                break
    # Drop trailing whitespace: a space before the ellipsis reads as a formatting slip.
    while cut > 0 and text[cut - 1].isspace() and _is_boundary(text, cut - 1):
        cut -= 1
    # Fallbacks are for the corner cases only: a prefix that is blank before the word,
    # or a shorter prefix whose encoding flipped; "" is known to fit.
    for prefix in (text[:cut] if cut > 0 else text[:hard], text[:hard], ""):
        if fits(prefix):
            break
    return with_ellipsis(prefix)
