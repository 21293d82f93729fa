"""SMS fallback text derived from a rendered RCS message."""

from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st

from engine.channels.fallback_text import (
    action_line,
    derive_sms,
    fallback_sms_text,
    gsm_safe,
    map_link,
)
from engine.channels.sms import segment
from engine.journey.render import (
    RenderedCard,
    RenderedCarousel,
    RenderedMessage,
    RenderedSuggestion,
)

OPT_OUT = "Reply STOP to opt out."
TRACK = RenderedSuggestion("open_url", text="Track", postback="t", url="https://ex.co/t/A1")
CALL = RenderedSuggestion("dial", text="Call us", postback="c", phone="+14155550100")
PIN = RenderedSuggestion("view_location", text="Store", postback="s", lat=48.8584, long=2.2945)
FIND = RenderedSuggestion("view_location", text="Find", postback="f", query="Café de Flore, Paris")


def card_msg(card: RenderedCard, *chips: RenderedSuggestion) -> RenderedMessage:
    return RenderedMessage(channel="rcs", rich_card=card, suggestions=chips)


def test_card_title_description_actions_opt_out() -> None:
    card = RenderedCard(
        title="Order A1 confirmed",
        description="We'll tell you when it ships.",
        suggestions=(
            RenderedSuggestion("reply", text="Track order", postback="track"),
            TRACK,
            CALL,
        ),
    )
    assert derive_sms(card_msg(card, PIN)) == (
        "Order A1 confirmed\n"
        "We'll tell you when it ships.\n"
        "Track: https://ex.co/t/A1\n"
        "Call us: +14155550100\n"
        "Store: https://maps.google.com/?q=48.8584,2.2945\n"
        "Reply STOP to opt out."
    )


def test_action_lines_per_kind() -> None:
    assert action_line(TRACK) == "Track: https://ex.co/t/A1"
    assert action_line(CALL) == "Call us: +14155550100"
    assert action_line(FIND) == "Find: https://maps.google.com/?q=Caf%C3%A9+de+Flore%2C+Paris"
    assert (
        map_link(RenderedSuggestion("view_location", text="x", postback="x", lat=-33.5, long=0.0))
        == "https://maps.google.com/?q=-33.5,0"
    )
    for kind in ("reply", "share_location", "calendar"):
        assert action_line(RenderedSuggestion(kind, text="x", postback="x")) is None


def test_plain_text_with_url_actions_and_duplicate_links_dropped() -> None:
    msg = RenderedMessage(
        channel="rcs", text="Your parcel is out for delivery.", suggestions=(TRACK, TRACK)
    )
    assert derive_sms(msg) == (
        "Your parcel is out for delivery.\nTrack: https://ex.co/t/A1\nReply STOP to opt out."
    )


def test_carousel_first_card_then_other_titles() -> None:
    cards = (
        RenderedCard(title="Red shoes", description="In stock, size 38-44.", suggestions=(TRACK,)),
        RenderedCard(title="Blue shoes", suggestions=(CALL,)),
        RenderedCard(description="no title"),
        RenderedCard(title="Green shoes"),
    )
    msg = RenderedMessage(channel="rcs", carousel=RenderedCarousel("MEDIUM", cards))
    assert derive_sms(msg) == (
        "Red shoes\nIn stock, size 38-44.\nMore: Blue shoes; Green shoes\n"
        "Track: https://ex.co/t/A1\nReply STOP to opt out."
    )


def test_long_description_capped_at_three_segments_keeping_links_and_opt_out() -> None:
    words = "Our autumn collection has landed with new colours and sizes for everyone. " * 20
    card = RenderedCard(title="New in", description=words, suggestions=(TRACK, CALL))
    sms = derive_sms(card_msg(card))
    seg = segment(sms)
    assert seg.encoding == "gsm7"
    assert seg.segments == 3
    assert sms.startswith("New in\nOur autumn collection")
    assert sms.endswith(
        "...\nTrack: https://ex.co/t/A1\nCall us: +14155550100\nReply STOP to opt out."
    )
    kept = sms.split("...\n")[0].removeprefix("New in\n")
    assert words.startswith(kept) and words[len(kept)] == " "  # cut between two words
    next_word = words[: words.index(" ", len(kept) + 1)]
    assert segment(sms.replace(kept + "...", next_word + "...")).segments > 3  # as long as it gets
    assert segment(derive_sms(card_msg(card), max_segments=2)).segments == 2


def test_typographic_punctuation_stays_gsm7() -> None:
    card = RenderedCard(title="It’s here – “Autumn” sale…", description="Don’t\u00a0miss\tit")
    sms = derive_sms(card_msg(card))
    assert sms == "It's here - \"Autumn\" sale...\nDon't miss it\nReply STOP to opt out."
    assert segment(sms).encoding == "gsm7"
    assert gsm_safe("ç and 😀 stay") == "ç and 😀 stay"  # letters and emoji are never changed


def test_ucs2_body_is_cut_within_the_cap() -> None:
    card = RenderedCard(title="Привет 😀", description="Скидки на всё! " * 40, suggestions=(TRACK,))
    sms = derive_sms(card_msg(card))
    assert segment(sms).encoding == "ucs2"
    assert segment(sms).segments <= 3
    assert sms.endswith("\nTrack: https://ex.co/t/A1\nReply STOP to opt out.")


def test_opt_out_not_doubled() -> None:
    msg = RenderedMessage(channel="rcs", text="Sale today. Reply STOP to opt out.")
    assert derive_sms(msg) == "Sale today.\nReply STOP to opt out."
    assert derive_sms(RenderedMessage(channel="rcs", text="Hi"), opt_out_line="") == "Hi"


def test_too_many_links_drops_the_last_ones_but_keeps_opt_out() -> None:
    chips = tuple(
        RenderedSuggestion(
            "open_url", text=f"Link {i}", postback=f"l{i}", url=f"https://ex.co/{'p' * 60}/{i}"
        )
        for i in range(8)
    )
    sms = derive_sms(
        RenderedMessage(channel="rcs", text="Hello", suggestions=chips), max_segments=2
    )
    assert segment(sms).segments <= 2
    assert sms.endswith(OPT_OUT)
    assert "Link 0: " in sms and "Link 7: " not in sms


def test_one_segment_and_bad_max() -> None:
    card = RenderedCard(title="T" * 300, suggestions=(TRACK,))
    sms = derive_sms(card_msg(card), max_segments=1)
    assert segment(sms).segments == 1
    assert sms.endswith("...\nTrack: https://ex.co/t/A1\nReply STOP to opt out.")
    try:
        derive_sms(card_msg(card), max_segments=0)
    except ValueError:
        pass
    else:  # pragma: no cover
        raise AssertionError("max_segments=0 must be refused")
    huge = derive_sms(card_msg(card), max_segments=50)  # clamped to the 10-segment hard cap
    assert segment(huge).segments <= 10


def test_journey_fallback_text_wins() -> None:
    msg = RenderedMessage(channel="rcs", text="x", fallback_sms="Given. Reply STOP to opt out.")
    assert fallback_sms_text(msg) == "Given. Reply STOP to opt out."
    assert fallback_sms_text(RenderedMessage(channel="rcs", text="x")) == "x\n" + OPT_OUT


# --------------------------------------------------------------------------- property

_texts = st.one_of(
    st.text(max_size=600),
    st.text(alphabet="abc def[]{}€’“”–\n", max_size=900),
    st.text(alphabet="жя😀🇺🇸 e\u0301", max_size=400),
)
_urls = st.text(alphabet="abcdefgh/-", min_size=1, max_size=300).map(lambda p: "https://ex.co/" + p)
_chips = st.lists(
    st.one_of(
        st.builds(
            lambda t, u: RenderedSuggestion("open_url", text=t, postback="p", url=u),
            st.text(max_size=25),
            _urls,
        ),
        st.builds(
            lambda t: RenderedSuggestion("dial", text=t, postback="p", phone="+14155550100"),
            st.text(max_size=25),
        ),
        st.builds(
            lambda q: RenderedSuggestion("view_location", text="Map", postback="p", query=q),
            st.text(min_size=1, max_size=80),
        ),
    ),
    max_size=6,
)
_cards = st.builds(
    lambda t, d, c: RenderedCard(title=t or None, description=d or None, suggestions=tuple(c)),
    _texts,
    _texts,
    _chips.map(lambda c: c[:4]),
)
_messages = st.one_of(
    st.builds(lambda c, s: card_msg(c, *s), _cards, _chips),
    st.builds(
        lambda t, s: RenderedMessage(channel="rcs", text=t, suggestions=tuple(s)), _texts, _chips
    ),
    st.builds(
        lambda cs: RenderedMessage(channel="rcs", carousel=RenderedCarousel("SMALL", tuple(cs))),
        st.lists(_cards, min_size=2, max_size=10),
    ),
)


@settings(deadline=None, max_examples=300)
@given(msg=_messages, max_segments=st.integers(min_value=1, max_value=10))
def test_derived_sms_never_exceeds_max_segments(msg: RenderedMessage, max_segments: int) -> None:
    sms = derive_sms(msg, max_segments=max_segments)
    assert segment(sms).segments <= max_segments
    assert sms.endswith(OPT_OUT)  # the opt-out line always survives the cut
