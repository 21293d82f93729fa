"""SMS/RCS compliance keywords: opt-out, opt back in, help.

The spec says case-insensitive and *whole message*: "stop it" or "Please STOP" are not
keywords (a conversation, not a command), and neither is "STOP." here, since only
whitespace around and inside the message is forgiven: "  opt   out " is OPT OUT.

Text is NFKC-folded first so that full-width letters from CJK keyboards ("ＳＴＯＰ")
count as well; missing an opt-out is the costly mistake, honouring a look-alike is not.
"""

from __future__ import annotations

import unicodedata
from typing import Final, Literal

KeywordKind = Literal["opt_out", "opt_in", "help"]

OPT_OUT_KEYWORDS: Final = frozenset(
    {"STOP", "STOPALL", "UNSUBSCRIBE", "END", "QUIT", "CANCEL", "REVOKE", "OPTOUT", "OPT OUT"}
)
OPT_IN_KEYWORDS: Final = frozenset({"START", "YES", "UNSTOP"})
HELP_KEYWORDS: Final = frozenset({"HELP", "INFO"})

_KIND: Final[dict[str, KeywordKind]] = {
    **dict.fromkeys(OPT_OUT_KEYWORDS, "opt_out"),
    **dict.fromkeys(OPT_IN_KEYWORDS, "opt_in"),
    **dict.fromkeys(HELP_KEYWORDS, "help"),
}
# Keywords have at most two words and eleven letters. Longer messages (most inbound
# traffic) are rejected before Unicode normalization; the bound on letters is doubled
# because folding can change lengths ("ß" -> "SS").
_MAX_WORDS: Final = max(len(k.split()) for k in _KIND)
_MAX_LETTERS: Final = max(len(k.replace(" ", "")) for k in _KIND)


def normalize_keyword(text: str) -> str:
    """The form keywords are compared in: NFKC, upper case, whitespace runs as one space."""
    return " ".join(unicodedata.normalize("NFKC", text).upper().split())


def classify_keyword(text: str) -> KeywordKind | None:
    """``"opt_out"``, ``"opt_in"`` or ``"help"`` when the whole message is a keyword."""
    words = text.split()
    if not words or len(words) > _MAX_WORDS or sum(map(len, words)) > 2 * _MAX_LETTERS:
        return None
    return _KIND.get(normalize_keyword(text))
