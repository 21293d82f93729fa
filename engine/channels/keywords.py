"""Moved to :mod:`engine.core.keywords`: the core classifies inbound keywords itself."""

# compatibility re-export, removed after the issue-9 merge
from engine.core.keywords import (
    HELP_KEYWORDS,
    OPT_IN_KEYWORDS,
    OPT_OUT_KEYWORDS,
    KeywordKind,
    classify_keyword,
    normalize_keyword,
)

__all__ = [
    "HELP_KEYWORDS",
    "OPT_IN_KEYWORDS",
    "OPT_OUT_KEYWORDS",
    "KeywordKind",
    "classify_keyword",
    "normalize_keyword",
]
