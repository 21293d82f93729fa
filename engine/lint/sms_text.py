"""What an SMS text will cost, told before any user gets it.

Every segment of a long SMS is billed as one message, and a single character outside
the GSM-7 alphabet (a curly quote, a dash, an emoji) turns the whole message UCS-2,
where a segment holds 70 characters instead of 160. :func:`sms_cost_warning` reads one
SMS text (an ``sms`` send's ``text`` or a ``fallback.sms``) with the segmenter of
:mod:`engine.channels.sms`.

A template is measured by the text it always prints: its ``{{ ... }}`` outputs count as
empty and its ``{% ... %}`` blocks as not taken, so a warning is certain (the rendered
message can only be longer) and the figures say "at least".
"""

from __future__ import annotations

import re
import unicodedata
from typing import Final

from engine.channels.sms import (
    GSM7_SINGLE_SEPTETS,
    SMS_MAX_SEGMENTS,
    UCS2_SINGLE_UNITS,
    is_gsm7,
    segment,
)

# A text where more than one character in this many is outside GSM-7 is written in
# another script (Greek, Arabic, Hindi...): UCS-2 is then needed, not an accident.
_ACCIDENT_RATIO: Final = 10
_SHOWN_CHARACTERS: Final = 3
_REPLACEMENTS: Final = {
    "\u2018": "'", "\u2019": "'", "\u201a": "'", "\u2032": "'",
    "\u201c": '"', "\u201d": '"', "\u201e": '"', "\u2033": '"',
    "\u2013": "-", "\u2014": "-", "\u2212": "-", "\u2010": "-", "\u2011": "-",
    "\u2026": "...", "\u00a0": " ", "\u202f": " ", "\u2009": " ", "\u2022": "-",
}
_TAG = re.compile(r"\{%-?\s*(\w+).*?-?%\}|\{\{.*?\}\}", re.S)
_BLOCKS: Final = frozenset({"if", "unless", "case", "for", "tablerow", "capture", "comment",
                            "raw"})


def printed_always(source: str) -> list[tuple[int, str]]:
    """The pieces of ``source`` every rendering prints, with their offsets in ``source``.

    Outputs are left out (they may render empty) and so is everything inside a block tag
    (``if``, ``for``, ``case``...), which may not be taken. Whitespace next to a ``-``
    (whitespace control) is left out too, as Liquid trims it.
    """
    pieces: list[tuple[int, str]] = []
    depth, pos = 0, 0
    for m in _TAG.finditer(source):
        if depth == 0 and m.start() > pos:
            pieces.append((pos, source[pos:m.start()]))
        pos = m.end()
        name = m.group(1)
        if name in _BLOCKS:
            depth += 1
        elif name is not None and name.startswith("end") and name[3:] in _BLOCKS:
            depth = max(depth - 1, 0)
    if depth == 0 and pos < len(source):
        pieces.append((pos, source[pos:]))
    out: list[tuple[int, str]] = []
    for start, text in pieces:
        end = start + len(text)
        if source[max(start - 3, 0):start] in ("-}}", "-%}"):
            kept = text.lstrip()
            start, text = end - len(kept), kept
        if source[end:end + 3] in ("{{-", "{%-"):
            text = text.rstrip()
        if text:
            out.append((start, text))
    return out


def _character(ch: str, at: int) -> str:
    name = unicodedata.name(ch, "")
    shown = f"{ch!r} (U+{ord(ch):04X}{' ' + name if name else ''})"
    return f"{shown} at character {at + 1}"


def _fix(culprits: list[tuple[int, str]]) -> str:
    chars = list(dict.fromkeys(ch for _, ch in culprits))
    swaps = [f"{ch!r} with {_REPLACEMENTS[ch]!r}" for ch in chars if ch in _REPLACEMENTS]
    others = [repr(ch) for ch in chars if ch not in _REPLACEMENTS]
    parts = ([f"replace {', '.join(swaps)}"] if swaps else []) + (
        [f"remove {', '.join(others)}"] if others else []
    )
    return " and ".join(parts)


def sms_cost_warning(source: str) -> str | None:
    """Why the SMS text ``source`` (maybe a template) costs more than one plain SMS, or None.

    Texts over the segment cap are an error reported elsewhere: no warning for them.
    """
    pieces = printed_always(source)
    static = source == "".join(text for _, text in pieces)
    floor = "".join(text for _, text in pieces)
    seg = segment(floor)
    if seg.segments > SMS_MAX_SEGMENTS:
        return None
    at_least = "" if static else "at least "
    culprits = [(start + i, ch) for start, text in pieces for i, ch in enumerate(text)
                if not is_gsm7(ch)]
    accident = bool(culprits) and len(culprits) * _ACCIDENT_RATIO <= len(floor)
    if accident:
        shown = ", ".join(_character(ch, at) for at, ch in culprits[:_SHOWN_CHARACTERS])
        more = len(culprits) - _SHOWN_CHARACTERS
        shown += f" and {more} more" if more > 0 else ""
        plain = "".join(_REPLACEMENTS.get(ch, "" if not is_gsm7(ch) else ch) for ch in floor)
        gsm = segment(plain).segments
        if seg.segments > 1:
            cost = (f"is {at_least}{seg.segments} SMS segments, in UCS-2 because of {shown}; "
                    f"in GSM-7 it would be {gsm}")
        else:
            cost = (f"is UCS-2 because of {shown}: one SMS then holds {UCS2_SINGLE_UNITS} "
                    f"characters instead of {GSM7_SINGLE_SEPTETS}")
        return f"{cost}: {_fix(culprits)}"
    if seg.segments > 1:
        units = sum(seg.parts)
        single = GSM7_SINGLE_SEPTETS if seg.encoding == "gsm7" else UCS2_SINGLE_UNITS
        what = "GSM-7 characters" if seg.encoding == "gsm7" else "UCS-2 characters"
        return (f"is {at_least}{seg.segments} SMS segments ({at_least}{units} {what}; one SMS "
                f"holds {single}), each billed as one SMS: shorten it by {units - single} to "
                "send one, or accept the cost")
    return None
