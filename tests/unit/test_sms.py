"""GSM-7 / UCS-2 encoding and segmentation against the spec's table, plus properties."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from engine.channels.sms import (
    GSM7_BASIC,
    GSM7_EXTENSION,
    SMS_MAX_SEGMENTS,
    SMS_WARN_SEGMENTS,
    Segmentation,
    detect_encoding,
    encode_gsm7,
    encode_ucs2,
    graphemes,
    gsm7_septets,
    is_gsm7,
    segment,
    split,
    truncate_to_segments,
    ucs2_units,
)

FLAG_US = "\U0001f1fa\U0001f1f8"
FLAG_GB = "\U0001f1ec\U0001f1e7"
FLAG_ENGLAND = "\U0001f3f4\U000e0067\U000e0062\U000e0065\U000e006e\U000e0067\U000e007f"
FAMILY = "\U0001f468\u200d\U0001f469\u200d\U0001f467\u200d\U0001f466"
THUMBS_MEDIUM = "\U0001f44d\U0001f3fd"
HEART_EMOJI = "\u2764\ufe0f"
KEYCAP_ONE = "1\ufe0f\u20e3"
E_ACUTE_DECOMPOSED = "e\u0301"
GRINNING = "\U0001f600"


def _units(text: str, encoding: str) -> int:
    return gsm7_septets(text) if encoding == "gsm7" else ucs2_units(text)


# ------------------------------------------------------------- the spec's table, verbatim

SPEC_TABLE: list[tuple[str, str, str, int, tuple[int, ...]]] = [
    ('"a"*160', "a" * 160, "gsm7", 160, (160,)),
    ('"a"*161', "a" * 161, "gsm7", 161, (153, 8)),
    ('"a"*159 + "€"', "a" * 159 + "€", "gsm7", 161, (153, 8)),
    ('"["*80', "[" * 80, "gsm7", 160, (160,)),
    ('"["*81', "[" * 81, "gsm7", 162, (152, 10)),
    ('"a"*152 + "€" + "a"*152', "a" * 152 + "€" + "a" * 152, "gsm7", 306, (152, 153, 1)),
    ('"a"*159 + "ç"', "a" * 159 + "ç", "ucs2", 160, (67, 67, 26)),
    ('"a"*159 + "Ç"', "a" * 159 + "Ç", "gsm7", 160, (160,)),
    ('"a"*69 + "😀"', "a" * 69 + "😀", "ucs2", 71, (67, 4)),
    ('"a"*66 + "😀" + "b"*66', "a" * 66 + "😀" + "b" * 66, "ucs2", 134, (66, 67, 1)),
    ('"ж"*70', "ж" * 70, "ucs2", 70, (70,)),
    ('"ж"*71', "ж" * 71, "ucs2", 71, (67, 4)),
    ('"Hello\\tworld"', "Hello\tworld", "ucs2", 11, (11,)),
    ('"It’s here"', "It’s here", "ucs2", 9, (9,)),
    ('"\\r\\n"*80', "\r\n" * 80, "gsm7", 160, (160,)),
    ('"a"*1530', "a" * 1530, "gsm7", 1530, (153,) * 10),
    ('"a"*1531', "a" * 1531, "gsm7", 1531, (*(153,) * 10, 1)),
    ('"a"*65 + "🇺🇸" + "b"*10', "a" * 65 + "🇺🇸" + "b" * 10, "ucs2", 79, (65, 14)),
]


@pytest.mark.parametrize(
    ("label", "text", "encoding", "units", "parts"), SPEC_TABLE, ids=[r[0] for r in SPEC_TABLE]
)
def test_spec_segmentation_table(
    label: str, text: str, encoding: str, units: int, parts: tuple[int, ...]
) -> None:
    seg = segment(text)
    assert seg.encoding == encoding
    assert seg.segments == len(parts)
    assert seg.parts == parts
    assert seg.units == units
    assert [_units(p, encoding) for p in split(text)] == list(parts)


def test_spec_cap_flags() -> None:
    assert not segment("a" * 1530).over_cap
    assert segment("a" * 1531).over_cap
    assert segment("a" * 1531).segments == 11
    assert not segment("a" * 459).warn  # 3 x 153
    assert segment("a" * 460).warn


def test_spec_flag_stays_whole() -> None:
    parts = split("a" * 65 + FLAG_US + "b" * 10)
    assert parts == ["a" * 65, FLAG_US + "b" * 10]


def test_constants() -> None:
    assert SMS_MAX_SEGMENTS == 10
    assert SMS_WARN_SEGMENTS == 3


# ----------------------------------------------------------------------- alphabets


def test_gsm7_tables_exactly_as_spec() -> None:
    basic = (
        "@£$¥èéùìòÇ\nØø\rÅåΔ_ΦΓΛΩΠΨΣΘΞÆæßÉ !\"#¤%&'()*+,-./0123456789:;<=>?"
        "¡ABCDEFGHIJKLMNOPQRSTUVWXYZÄÖÑÜ§¿abcdefghijklmnopqrstuvwxyzäöñüà"
    )
    assert frozenset(basic) == GSM7_BASIC
    assert len(GSM7_BASIC) == 127  # 128 codes minus the escape
    assert frozenset("^{}\\[~]|€\f") == GSM7_EXTENSION
    assert not GSM7_BASIC & GSM7_EXTENSION
    # Greek capitals, not look-alikes such as OHM SIGN or INCREMENT.
    assert "\u03a9" in GSM7_BASIC and "\u2126" not in GSM7_BASIC
    assert "\u0394" in GSM7_BASIC and "\u2206" not in GSM7_BASIC


@pytest.mark.parametrize("ch", ["ç", "\t", "`", "’", "…", "“", "á", "\u00a0"])
def test_not_gsm7_switches_to_ucs2(ch: str) -> None:
    assert not is_gsm7(ch)
    assert detect_encoding("Hello " + ch) == "ucs2"


def test_encode_gsm7_codes() -> None:
    assert encode_gsm7("@A") == bytes([0x00, 0x41])
    assert encode_gsm7("É") == bytes([0x1F])  # after the skipped escape slot
    assert encode_gsm7(" ") == bytes([0x20])
    assert encode_gsm7("à") == bytes([0x7F])
    assert encode_gsm7("€") == bytes([0x1B, 0x65])
    assert encode_gsm7("[\f") == bytes([0x1B, 0x3C, 0x1B, 0x0A])
    assert len(set(encode_gsm7("".join(sorted(GSM7_BASIC))))) == 127
    with pytest.raises(ValueError, match="U\\+00E7"):
        encode_gsm7("ç")


def test_encode_ucs2_uses_surrogate_pairs() -> None:
    assert encode_ucs2("ж") == b"\x04\x36"
    assert encode_ucs2(GRINNING) == b"\xd8\x3d\xde\x00"
    assert ucs2_units(GRINNING) == 2
    assert ucs2_units("\ud800") == 1  # a lone surrogate is counted, not a crash


# ------------------------------------------------------------------- edge behaviour


def test_empty_text_is_one_empty_gsm7_segment() -> None:
    seg = segment("")
    assert seg == Segmentation("gsm7", 1, (0,))
    assert split("") == [""]


def test_to_json_dict() -> None:
    assert segment("a" * 161).to_json_dict() == {
        "encoding": "gsm7",
        "segments": 2,
        "parts": [153, 8],
    }


def test_escape_pair_not_split_at_part_end() -> None:
    # 152 septets then "€" (2 septets) cannot start at septet 153.
    parts = split("a" * 152 + "€" + "a" * 10)
    assert parts == ["a" * 152, "€" + "a" * 10]


def test_surrogate_pair_not_split() -> None:
    parts = split("a" * 66 + GRINNING + "a" * 10)
    assert parts == ["a" * 66, GRINNING + "a" * 10]


@pytest.mark.parametrize(
    "cluster",
    [FAMILY, THUMBS_MEDIUM, HEART_EMOJI, KEYCAP_ONE, E_ACUTE_DECOMPOSED, FLAG_ENGLAND, FLAG_GB],
)
def test_grapheme_cluster_not_split(cluster: str) -> None:
    text = "ж" * 66 + cluster + "ж" * 10
    parts = split(text)
    assert "".join(parts) == text
    assert parts[0] == "ж" * 66
    assert parts[1].startswith(cluster)


def test_crlf_kept_together() -> None:
    parts = split("a" * 152 + "\r\n" + "a" * 10)
    assert parts[0] == "a" * 152
    assert parts[1].startswith("\r\n")


def test_oversized_cluster_falls_back_to_code_points() -> None:
    zalgo = "a" + "\u0301" * 100
    text = "ж" * 10 + zalgo + GRINNING * 40
    parts = split(text)
    assert "".join(parts) == text
    assert all(ucs2_units(p) <= 67 for p in parts)
    assert segment(text).parts == tuple(ucs2_units(p) for p in parts)


def test_oversized_emoji_run_never_splits_a_surrogate_pair() -> None:
    # 40 ZWJ-joined emoji form one (widened) cluster of 119 units.
    text = "\u200d".join([GRINNING] * 40)
    parts = split(text)
    assert "".join(parts) == text
    for p in parts:
        p.encode("utf-16-le")  # would raise on half a pair
        assert ucs2_units(p) <= 67


@pytest.mark.parametrize(
    ("text", "clusters"),
    [
        (FLAG_US + FLAG_GB + "\U0001f1eb", [FLAG_US, FLAG_GB, "\U0001f1eb"]),
        (FAMILY + "x", [FAMILY, "x"]),
        (THUMBS_MEDIUM + HEART_EMOJI + KEYCAP_ONE, [THUMBS_MEDIUM, HEART_EMOJI, KEYCAP_ONE]),
        ("a\r\nb\n\r", ["a", "\r\n", "b", "\n", "\r"]),
        (E_ACUTE_DECOMPOSED + "\u0308x", [E_ACUTE_DECOMPOSED + "\u0308", "x"]),
        ("\n\u0301", ["\n", "\u0301"]),  # nothing combines with a control
        ("\u1100\u1161\u11a8\uac00", ["\u1100\u1161\u11a8", "\uac00"]),  # Hangul jamo
        ("\u0915\u094d\u0937\u093f", ["\u0915\u094d\u0937\u093f"]),  # Devanagari "kṣi"
        ("\u0915\u093e\u0916", ["\u0915\u093e", "\u0916"]),  # spacing mark joins
        ("\u0600\u0661", ["\u0600\u0661"]),  # prepend
        (FLAG_ENGLAND + "!", [FLAG_ENGLAND, "!"]),
        ("", []),
    ],
)
def test_graphemes(text: str, clusters: list[str]) -> None:
    assert graphemes(text) == clusters


# ------------------------------------------------------------------------ truncation


def test_truncate_leaves_fitting_text_alone() -> None:
    assert truncate_to_segments("hello", 1) == "hello"
    assert truncate_to_segments("a" * 306, 2) == "a" * 306


def test_truncate_gsm7_uses_three_dots_and_word_boundary() -> None:
    text = "hello world " * 40
    out = truncate_to_segments(text, 1)
    assert out == ("hello world " * 13).rstrip() + "..."
    assert segment(out) == Segmentation("gsm7", 1, (158,))


def test_truncate_ucs2_keeps_unicode_ellipsis() -> None:
    text = "привет мир " * 30
    out = truncate_to_segments(text, 1)
    assert out.endswith("мир…")
    assert segment(out).segments == 1
    assert segment(out).encoding == "ucs2"


def test_truncate_uses_dots_when_the_kept_prefix_is_gsm7() -> None:
    # The only UCS-2 character is cut off, so the result can be GSM-7 throughout.
    out = truncate_to_segments("word " * 100 + "ж", 2)
    assert out.endswith("word...")
    assert segment(out).encoding == "gsm7"


def test_truncate_long_word_is_cut_mid_word() -> None:
    url = "https://example.com/" + "x" * 300
    out = truncate_to_segments("see " + url, 1)
    assert out == ("see " + url)[:157] + "..."


def test_truncate_never_splits_a_flag() -> None:
    # 63 + 4 + 1 = 68 units; half of the next flag would still fit in 70, so a
    # code-point cut would keep it.
    text = "ж" * 63 + FLAG_US * 10
    assert truncate_to_segments(text, 1) == "ж" * 63 + FLAG_US + "…"


def test_truncate_custom_gsm7_ellipsis_and_errors() -> None:
    assert (
        truncate_to_segments("a" * 200, 1, ellipsis=" [more]") == "a" * 151 + " [more]"
    )  # [ ] cost 2 each
    with pytest.raises(ValueError, match="max_segments"):
        truncate_to_segments("abc", 0)
    with pytest.raises(ValueError, match="ellipsis"):
        truncate_to_segments("a" * 200, 1, ellipsis="x" * 161)


# ------------------------------------------------------------------------ properties

_ATOMS = [
    *"aZ0 .,@£€[]{}\\~|^\f\r\n\r\nÇçжй’\t",
    GRINNING,
    FLAG_US,
    FLAG_GB,
    FAMILY,
    THUMBS_MEDIUM,
    HEART_EMOJI,
    KEYCAP_ONE,
    E_ACUTE_DECOMPOSED,
    FLAG_ENGLAND,
    "\u0915\u094d\u0937",
    "\u200d",
    "\U0001f1fa",
]
_GSM_ATOMS = ["a", " ", "€", "[", "\f", "\r\n", "\n", "É"]

texts = st.one_of(
    st.text(max_size=400),
    st.lists(st.sampled_from(_ATOMS), max_size=250).map("".join),
    st.lists(st.sampled_from(_GSM_ATOMS), max_size=900).map("".join),
)


@settings(max_examples=300)
@given(texts)
def test_prop_parts_sum_and_limits(text: str) -> None:
    seg = segment(text)
    assert seg.segments == len(seg.parts) >= 1
    assert seg.units == sum(seg.parts) == _units(text, seg.encoding)
    assert seg.encoding == detect_encoding(text)
    if seg.segments > 1:
        limit = 153 if seg.encoding == "gsm7" else 67
        assert all(0 < p <= limit for p in seg.parts)
    else:
        assert seg.units <= (160 if seg.encoding == "gsm7" else 70)


@settings(max_examples=300)
@given(texts)
def test_prop_split_round_trips_and_matches_parts(text: str) -> None:
    seg = segment(text)
    parts = split(text)
    assert "".join(parts) == text
    assert tuple(_units(p, seg.encoding) for p in parts) == seg.parts


@settings(max_examples=300)
@given(texts)
def test_prop_no_boundary_inside_escape_or_surrogate_pair(text: str) -> None:
    seg = segment(text)
    parts = split(text)
    if seg.encoding == "gsm7":
        encoded = [encode_gsm7(p) for p in parts]
        assert b"".join(encoded) == encode_gsm7(text)
        assert all(not e.endswith(b"\x1b") for e in encoded)
    else:
        # Strict UTF-16 raises on half a pair, so each part holding only whole pairs
        # and the parts joining to the whole encoding means no cut inside a pair.
        encoded = [encode_ucs2(p) for p in parts]
        assert b"".join(encoded) == encode_ucs2(text)


@settings(max_examples=300)
@given(texts)
def test_prop_boundaries_fall_between_graphemes(text: str) -> None:
    seg = segment(text)
    limit = 153 if seg.encoding == "gsm7" else 67
    clusters = graphemes(text)
    assert "".join(clusters) == text
    if any(_units(c, seg.encoding) > limit for c in clusters):
        return  # the documented code-point fallback applies
    cluster_ends = set()
    pos = 0
    for c in clusters:
        pos += len(c)
        cluster_ends.add(pos)
    pos = 0
    for p in split(text):
        pos += len(p)
        assert pos in cluster_ends or pos == 0


@settings(max_examples=200)
@given(texts, st.integers(min_value=1, max_value=4), st.sampled_from(["…", "...", ""]))
def test_prop_truncate_fits(text: str, max_segments: int, ellipsis: str) -> None:
    out = truncate_to_segments(text, max_segments, ellipsis)
    assert segment(out).segments <= max_segments
    if segment(text).segments <= max_segments:
        assert out == text
    else:
        body = out.removesuffix(ellipsis) if out.endswith(ellipsis) else out.removesuffix("...")
        assert text.startswith(body)
        assert len(body) < len(text)
