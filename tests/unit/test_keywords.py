"""Compliance keywords: whole message, case-insensitive, whitespace forgiven."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from engine.core.keywords import (
    HELP_KEYWORDS,
    OPT_IN_KEYWORDS,
    OPT_OUT_KEYWORDS,
    classify_keyword,
    normalize_keyword,
)

SPEC_OPT_OUT = ["STOP", "STOPALL", "UNSUBSCRIBE", "END", "QUIT", "CANCEL", "REVOKE", "OPTOUT"]


def test_keyword_sets_are_the_spec_ones() -> None:
    assert frozenset([*SPEC_OPT_OUT, "OPT OUT"]) == OPT_OUT_KEYWORDS
    assert frozenset(["START", "YES", "UNSTOP"]) == OPT_IN_KEYWORDS
    assert frozenset(["HELP", "INFO"]) == HELP_KEYWORDS


@pytest.mark.parametrize("word", [*SPEC_OPT_OUT, "OPT OUT"])
def test_opt_out(word: str) -> None:
    assert classify_keyword(word) == "opt_out"
    assert classify_keyword(word.lower()) == "opt_out"
    assert classify_keyword(word.title()) == "opt_out"


@pytest.mark.parametrize("word", ["START", "YES", "UNSTOP"])
def test_opt_in(word: str) -> None:
    assert classify_keyword(word) == "opt_in"
    assert classify_keyword(word.lower()) == "opt_in"


@pytest.mark.parametrize("word", ["HELP", "INFO"])
def test_help(word: str) -> None:
    assert classify_keyword(word) == "help"
    assert classify_keyword(word.capitalize()) == "help"


@pytest.mark.parametrize(
    ("text", "kind"),
    [
        ("  stop  ", "opt_out"),
        ("\tStOp\r\n", "opt_out"),
        ("opt  out", "opt_out"),
        ("Opt\tOut", "opt_out"),
        (" OPT \n OUT ", "opt_out"),
        ("\u00a0STOP\u3000", "opt_out"),  # no-break and ideographic spaces
        ("ＳＴＯＰ", "opt_out"),  # full-width letters
        ("yes", "opt_in"),
        ("  help ", "help"),
    ],
)
def test_whitespace_and_case_forgiven(text: str, kind: str) -> None:
    assert classify_keyword(text) == kind


@pytest.mark.parametrize(
    "text",
    [
        "",
        "   ",
        "stop it",
        "please stop",
        "STOP.",
        "stop!",
        "STOP STOP",
        "S T O P",
        "stopp",
        "nonstop",
        "opt-out",
        "opt out now",
        "yes please",
        "help me",
        "information",
        "ok",
        "unsubscribe " * 50,
    ],
)
def test_not_keywords(text: str) -> None:
    assert classify_keyword(text) is None


def test_normalize_keyword() -> None:
    assert normalize_keyword("  opt \t out\n") == "OPT OUT"
    assert normalize_keyword("ｈｅｌｐ") == "HELP"


@given(
    st.sampled_from(sorted(OPT_OUT_KEYWORDS | OPT_IN_KEYWORDS | HELP_KEYWORDS)),
    st.text(" \t\r\n", max_size=3),
    st.text(" \t\r\n", max_size=3),
    st.lists(st.booleans(), min_size=11, max_size=11),
)
def test_prop_padding_and_case(keyword: str, before: str, after: str, upper: list[bool]) -> None:
    cased = "".join(c.upper() if u else c.lower() for c, u in zip(keyword, upper, strict=False))
    kind = classify_keyword(keyword)
    assert kind is not None
    assert classify_keyword(before + cased + after) == kind


@given(st.text(max_size=40))
def test_prop_never_raises(text: str) -> None:
    kind = classify_keyword(text)
    assert kind in (None, "opt_out", "opt_in", "help")
    if kind is not None:
        assert 1 <= len(text.split()) <= 2
