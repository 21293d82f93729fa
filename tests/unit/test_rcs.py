"""RBM AgentMessage building, validation of every RCS limit, and required features."""

from __future__ import annotations

import copy
from collections.abc import Callable
from typing import Any

import pytest

from engine.channels.rcs import (
    LIMITS,
    build_agent_message,
    build_and_validate,
    is_public_https,
    required_features,
    validate_agent_message,
)
from engine.errors import PayloadLimitError
from engine.journey.model import SendNode
from engine.journey.render import (
    RenderedCard,
    RenderedCarousel,
    RenderedMedia,
    RenderedMessage,
    RenderedSuggestion,
    render_send,
)

MID = "1b4e28ba-2fa1-11d2-883f-0016d3cca427"
IMG = "https://cdn.example.com/box.png"


def reply(text: str = "Track order", postback: str = "track") -> RenderedSuggestion:
    return RenderedSuggestion("reply", text=text, postback=postback)


def card(**kw: Any) -> RenderedCard:
    base: dict[str, Any] = {"title": "Order A1 confirmed", "description": "We'll tell you."}
    return RenderedCard(**{**base, **kw})


def standalone(**kw: Any) -> RenderedMessage:
    return RenderedMessage(channel="rcs", rich_card=card(**kw))


def valid_payload() -> dict[str, Any]:
    msg = RenderedMessage(
        channel="rcs",
        rich_card=card(media=RenderedMedia(IMG), suggestions=(reply(),)),
        suggestions=(reply("Yes", "yes"),),
    )
    return build_agent_message(msg, message_id=MID, ttl_ms=600_000)


# --------------------------------------------------------------------------- exact JSON


def test_rich_card_exact_rbm_json() -> None:
    msg = RenderedMessage(
        channel="rcs",
        rich_card=RenderedCard(
            title="Order A1 confirmed",
            description="Hi Asha, we'll tell you when it ships.",
            media=RenderedMedia(
                IMG, height="MEDIUM", thumbnail_url="https://cdn.example.com/t.jpg"
            ),
            suggestions=(
                reply(),
                RenderedSuggestion(
                    "dial", text="Call us", postback="call_us", phone="+14155550100"
                ),
            ),
            orientation="HORIZONTAL",
            thumbnail_alignment="RIGHT",
        ),
        suggestions=(reply("Stop", "stop"),),
    )
    assert build_and_validate(msg, MID, 600_000) == {
        "contentMessage": {
            "richCard": {
                "standaloneCard": {
                    "cardOrientation": "HORIZONTAL",
                    "thumbnailImageAlignment": "RIGHT",
                    "cardContent": {
                        "title": "Order A1 confirmed",
                        "description": "Hi Asha, we'll tell you when it ships.",
                        "media": {
                            "height": "MEDIUM",
                            "contentInfo": {
                                "fileUrl": IMG,
                                "thumbnailUrl": "https://cdn.example.com/t.jpg",
                                "forceRefresh": False,
                            },
                        },
                        "suggestions": [
                            {"reply": {"text": "Track order", "postbackData": "track"}},
                            {
                                "action": {
                                    "text": "Call us",
                                    "postbackData": "call_us",
                                    "dialAction": {"phoneNumber": "+14155550100"},
                                }
                            },
                        ],
                    },
                }
            },
            "suggestions": [{"reply": {"text": "Stop", "postbackData": "stop"}}],
        },
        "ttl": "600s",
    }


def test_carousel_exact_rbm_json() -> None:
    msg = RenderedMessage(
        channel="rcs",
        carousel=RenderedCarousel(
            width="SMALL",
            cards=(
                RenderedCard(
                    title="Red",
                    media=RenderedMedia("https://cdn.example.com/red.jpg", height="SHORT"),
                    suggestions=(reply("Buy red", "buy_red"),),
                ),
                RenderedCard(description="Blue, in stock"),
            ),
        ),
    )
    assert build_and_validate(msg, MID, None) == {
        "contentMessage": {
            "richCard": {
                "carouselCard": {
                    "cardWidth": "SMALL",
                    "cardContents": [
                        {
                            "title": "Red",
                            "media": {
                                "height": "SHORT",
                                "contentInfo": {
                                    "fileUrl": "https://cdn.example.com/red.jpg",
                                    "forceRefresh": False,
                                },
                            },
                            "suggestions": [
                                {"reply": {"text": "Buy red", "postbackData": "buy_red"}}
                            ],
                        },
                        {"description": "Blue, in stock"},
                    ],
                }
            }
        }
    }


def test_text_message_and_ttl_formats() -> None:
    msg = RenderedMessage(channel="rcs", text="Track here")
    assert build_and_validate(msg, MID, 1_500) == {
        "contentMessage": {"text": "Track here"},
        "ttl": "1.500s",
    }
    assert "ttl" not in build_agent_message(msg, message_id=MID, ttl_ms=None)


SUGGESTION_CASES: list[tuple[RenderedSuggestion, dict[str, Any], str | None]] = [
    (reply("Yes", "yes"), {"reply": {"text": "Yes", "postbackData": "yes"}}, None),
    (
        RenderedSuggestion(
            "open_url",
            text="Open",
            postback="open",
            url="https://a.example/x",
            fallback_url="https://a.example/f",
        ),
        {
            "action": {
                "text": "Open",
                "postbackData": "open",
                "fallbackUrl": "https://a.example/f",
                "openUrlAction": {"url": "https://a.example/x"},
            }
        },
        "ACTION_OPEN_URL",
    ),
    (
        RenderedSuggestion("dial", text="Call", postback="call", phone="+33612345678"),
        {
            "action": {
                "text": "Call",
                "postbackData": "call",
                "dialAction": {"phoneNumber": "+33612345678"},
            }
        },
        "ACTION_DIAL",
    ),
    (
        RenderedSuggestion(
            "view_location", text="Map", postback="map", lat=48.8584, long=2.2945, label="Tower"
        ),
        {
            "action": {
                "text": "Map",
                "postbackData": "map",
                "viewLocationAction": {
                    "latLong": {"latitude": 48.8584, "longitude": 2.2945},
                    "label": "Tower",
                },
            }
        },
        "ACTION_VIEW_LOCATION",
    ),
    (
        RenderedSuggestion("view_location", text="Find", postback="find", query="Googleplex"),
        {
            "action": {
                "text": "Find",
                "postbackData": "find",
                "viewLocationAction": {"query": "Googleplex"},
            }
        },
        "ACTION_VIEW_LOCATION",
    ),
    (
        RenderedSuggestion("share_location", text="Share", postback="share"),
        {"action": {"text": "Share", "postbackData": "share", "shareLocationAction": {}}},
        "ACTION_SHARE_LOCATION",
    ),
    (
        RenderedSuggestion(
            "calendar",
            text="Add",
            postback="add",
            title="Pick up",
            description="Desk 3",
            start="2026-12-01T10:00:00+01:00",
            end="2026-12-01T10:30:00.250+01:00",
        ),
        {
            "action": {
                "text": "Add",
                "postbackData": "add",
                "createCalendarEventAction": {
                    "startTime": "2026-12-01T09:00:00Z",
                    "endTime": "2026-12-01T09:30:00.250000Z",
                    "title": "Pick up",
                    "description": "Desk 3",
                },
            }
        },
        "ACTION_CREATE_CALENDAR_EVENT",
    ),
]


@pytest.mark.parametrize(("chip", "expected", "feature"), SUGGESTION_CASES)
def test_each_suggestion_kind(
    chip: RenderedSuggestion, expected: dict[str, Any], feature: str | None
) -> None:
    as_message_chip = build_and_validate(
        RenderedMessage(channel="rcs", text="hi", suggestions=(chip,)), MID, None
    )
    assert as_message_chip["contentMessage"]["suggestions"] == [expected]
    assert required_features(as_message_chip) == ({feature} if feature else set())
    on_card = build_and_validate(standalone(suggestions=(chip,)), MID, None)
    assert on_card["contentMessage"]["richCard"]["standaloneCard"]["cardContent"][
        "suggestions"
    ] == [expected]
    assert required_features(on_card) == {"RICHCARD_STANDALONE"} | ({feature} if feature else set())


def test_required_features_carousel() -> None:
    chip = RenderedSuggestion("dial", text="Call", postback="c", phone="+14155550100")
    msg = RenderedMessage(
        channel="rcs",
        carousel=RenderedCarousel("MEDIUM", (card(), card(suggestions=(chip,)))),
    )
    assert required_features(build_and_validate(msg, MID, None)) == {
        "RICHCARD_CAROUSEL",
        "ACTION_DIAL",
    }
    assert required_features(build_and_validate(RenderedMessage("rcs", text="x"), MID, 1)) == set()


# --------------------------------------------------------------------------- limits

Mutator = Callable[[dict[str, Any]], None]


def _card_content(p: dict[str, Any]) -> dict[str, Any]:
    c: dict[str, Any] = p["contentMessage"]["richCard"]["standaloneCard"]["cardContent"]
    return c


def _set_card(**kw: Any) -> Mutator:
    return lambda p: _card_content(p).update(kw)


def _action(kind: str, body: dict[str, Any], **extra: Any) -> Mutator:
    chip = {"action": {"text": "Go", "postbackData": "go", kind: body, **extra}}
    return lambda p: p["contentMessage"].setdefault("suggestions", []).append(chip)


def _carousel(n: int, height: str = "MEDIUM", width: str = "MEDIUM") -> Mutator:
    def mutate(p: dict[str, Any]) -> None:
        content = {"title": "t", "media": {"height": height, "contentInfo": {"fileUrl": IMG}}}
        p["contentMessage"]["richCard"] = {
            "carouselCard": {"cardWidth": width, "cardContents": [dict(content) for _ in range(n)]}
        }

    return mutate


def _media(url: str, *, thumb: str | None = None, height: str = "MEDIUM") -> Mutator:
    info = {"fileUrl": url} if thumb is None else {"fileUrl": IMG, "thumbnailUrl": thumb}
    return _set_card(media={"height": height, "contentInfo": info})


def _huge(p: dict[str, Any]) -> None:
    # Every part within its own limit (postbacks are counted in characters), the whole too big.
    chips = [{"reply": {"text": "x", "postbackData": "😀" * 2048}} for _ in range(4)]
    cards = [{"title": "t", "suggestions": chips} for _ in range(10)]
    p["contentMessage"]["richCard"] = {
        "carouselCard": {"cardWidth": "MEDIUM", "cardContents": cards}
    }


def _text(value: Any) -> Mutator:
    def mutate(p: dict[str, Any]) -> None:
        del p["contentMessage"]["richCard"]
        p["contentMessage"]["text"] = value

    return mutate


def _chip(text: str = "x", postback: str = "x") -> dict[str, Any]:
    return {"reply": {"text": text, "postbackData": postback}}


def _msg_chips(*chips: dict[str, Any]) -> Mutator:
    return lambda p: p["contentMessage"].update(suggestions=list(chips))


def _standalone(**kw: Any) -> Mutator:
    return lambda p: p["contentMessage"]["richCard"]["standaloneCard"].update(kw)


def _cal(
    start: str = "2026-12-01T10:00:00Z", end: str = "2026-12-01T11:00:00Z", **kw: Any
) -> Mutator:
    return _action(
        "createCalendarEventAction", {"title": "t", "startTime": start, "endTime": end, **kw}
    )


LONG_URL = "https://a.example/" + "x" * 2031  # 2049 characters

LIMIT_CASES: list[tuple[str, Mutator]] = [
    ("rcs.content", lambda p: p["contentMessage"].pop("richCard")),
    ("rcs.content", lambda p: p["contentMessage"].update(text="and text")),
    ("rcs.content", lambda p: p.pop("contentMessage")),
    ("rcs.content", lambda p: p["contentMessage"].update(richCard={"bigCard": {}})),
    ("rcs.text_length", _text("a" * 3073)),
    ("rcs.text_empty", _text("  ")),
    ("rcs.payload_size", _huge),
    ("rcs.message_suggestions", _msg_chips(*[_chip()] * 12)),
    ("rcs.card_suggestions", _set_card(suggestions=[_chip()] * 5)),
    ("rcs.card_orientation", _standalone(cardOrientation="DIAGONAL")),
    ("rcs.horizontal_alignment", _standalone(cardOrientation="HORIZONTAL")),
    ("rcs.card_title_length", _set_card(title="é" * 101)),  # 101 characters, 202 bytes
    ("rcs.card_description_length", _set_card(description="€" * 667)),  # 2001 bytes
    ("rcs.card_empty", _standalone(cardContent={})),
    ("rcs.media_height", _media(IMG, height="HUGE")),
    ("rcs.carousel_cards", _carousel(1)),
    ("rcs.carousel_cards", _carousel(11)),
    ("rcs.carousel_width", _carousel(2, width="LARGE")),
    ("rcs.carousel_tall_media", _carousel(3, height="TALL")),
    ("rcs.media_url", _media("http://cdn.example.com/a.png")),
    ("rcs.media_url", _media("https://localhost/a.png")),
    ("rcs.media_url", _media("https://127.0.0.1/a.png")),
    ("rcs.media_url", _media("https://10.1.2.3/a.png")),
    ("rcs.media_url", _media("https://192.168.0.7/a.png")),
    ("rcs.media_url", _media("https://[::1]/a.png")),
    ("rcs.media_url", _media("https://nas.local/a.png")),
    ("rcs.media_url", _media("https://intranet/a.png")),
    ("rcs.media_url", _media(IMG, thumb="https://169.254.169.254/t.png")),
    ("rcs.media_type", _media("https://cdn.example.com/a.svg")),
    ("rcs.media_type", _media("https://cdn.example.com/a.bmp")),
    ("rcs.media_type", _media("https://cdn.example.com/image?id=3")),
    ("rcs.media_type", _media(IMG, thumb="https://cdn.example.com/t.mp4")),
    ("rcs.suggestion_kind", _msg_chips({"poke": {}})),
    (
        "rcs.suggestion_kind",
        _action("dialAction", {"phoneNumber": "+1415"}, shareLocationAction={}),
    ),
    ("rcs.suggestion_text_length", _msg_chips(_chip("x" * 26))),
    ("rcs.suggestion_text_length", _set_card(suggestions=[_chip("")])),
    ("rcs.postback_length", _set_card(suggestions=[_chip("x", "p" * 2049)])),
    ("rcs.postback_length", _action("shareLocationAction", {}, postbackData="p" * 2049)),
    ("rcs.url_length", _action("openUrlAction", {"url": LONG_URL})),
    ("rcs.url_length", _action("shareLocationAction", {}, fallbackUrl=LONG_URL)),
    ("rcs.url", _action("openUrlAction", {"url": "javascript:alert(1)"})),
    ("rcs.url", _action("openUrlAction", {})),
    ("rcs.dial_phone", _action("dialAction", {"phoneNumber": "4155550100"})),
    ("rcs.dial_phone", _action("dialAction", {"phoneNumber": "+15555555555"})),  # not a real number
    (
        "rcs.view_location",
        _action("viewLocationAction", {"latLong": {"latitude": 91, "longitude": 0}}),
    ),
    ("rcs.view_location", _action("viewLocationAction", {"query": " "})),
    ("rcs.calendar_title_length", _cal(title="t" * 101)),
    ("rcs.calendar_description_length", _cal(description="d" * 501)),
    ("rcs.calendar_time", _cal(start="tomorrow")),
    ("rcs.calendar_time", _cal(start="2026-12-01T10:00:00", end="2026-12-01T11:00:00")),  # naive
    ("rcs.calendar_time", _cal(end="2026-12-01T09:00:00Z")),
    ("rcs.expiry", lambda p: p.update(expireTime="2026-12-01T10:00:00Z")),
    ("rcs.expiry", lambda p: p.update(ttl="10 minutes")),
    ("rcs.expiry", lambda p: p.update(ttl="0s")),
]


def test_baseline_payload_is_valid() -> None:
    validate_agent_message(valid_payload())


@pytest.mark.parametrize(("limit", "mutate"), LIMIT_CASES)
def test_each_limit_raises_its_name(limit: str, mutate: Mutator) -> None:
    payload = copy.deepcopy(valid_payload())
    mutate(payload)
    with pytest.raises(PayloadLimitError) as exc:
        validate_agent_message(payload)
    assert exc.value.limit == limit, exc.value.detail


def test_limits_at_the_boundary_pass() -> None:
    payload = valid_payload()
    _set_card(title="é" * 100, description="€" * 666)(payload)  # 200 and 1998 bytes
    chip = {"reply": {"text": "x" * 25, "postbackData": "p" * 2048}}
    payload["contentMessage"]["suggestions"] = [chip] * 11
    validate_agent_message(payload)
    text = copy.deepcopy(valid_payload())
    _text("é" * 3072)(text)  # characters, not bytes
    validate_agent_message(text)
    carousel = valid_payload()
    _carousel(10, height="SHORT")(carousel)
    validate_agent_message(carousel)


def test_every_limit_name_is_tested() -> None:
    tested = {limit for limit, _ in LIMIT_CASES} | {"rcs.message_id"}
    assert tested == set(LIMITS)


def test_declared_content_type_allows_url_without_extension() -> None:
    msg = standalone(
        media=RenderedMedia("https://cdn.example.com/img?id=3", content_type="image/png")
    )
    build_and_validate(msg, MID, None)
    bad = standalone(media=RenderedMedia("https://cdn.example.com/a.png", content_type="text/html"))
    with pytest.raises(PayloadLimitError) as exc:
        build_and_validate(bad, MID, None)
    assert exc.value.limit == "rcs.media_type"


@pytest.mark.parametrize(
    ("url", "public"),
    [
        ("https://cdn.example.com/a.png", True),
        ("https://8.8.8.8/a.png", True),
        ("https://user@cdn.example.com/a.png", False),
        ("https://cdn.example.com:99999/a.png", False),
        ("https://box.internal/a", False),
        ("https://a b.example.com/x.png", False),
        ("ftp://cdn.example.com/a.png", False),
    ],
)
def test_is_public_https(url: str, public: bool) -> None:
    assert is_public_https(url) is public


def test_build_rejects_bad_id_channel_and_ttl() -> None:
    msg = RenderedMessage(channel="rcs", text="x")
    with pytest.raises(PayloadLimitError) as exc:
        build_agent_message(msg, message_id="msg-1", ttl_ms=None)
    assert exc.value.limit == "rcs.message_id"
    with pytest.raises(PayloadLimitError) as exc:
        build_agent_message(RenderedMessage(channel="sms", text="x"), message_id=MID, ttl_ms=None)
    assert exc.value.limit == "rcs.content"
    with pytest.raises(PayloadLimitError) as exc:
        build_agent_message(msg, message_id=MID, ttl_ms=0)
    assert exc.value.limit == "rcs.expiry"


def test_personalization_pushes_title_over_200_bytes_after_rendering() -> None:
    node = SendNode.model_validate(
        {
            "type": "send",
            "channel": "rcs",
            "next": "done",
            "rich_card": {"title": "Bonjour {{ user.first_name }}, votre commande est prête"},
        }
    )
    short = render_send(node, {"user": {"first_name": "Zoé"}})
    build_and_validate(short, MID, 600_000)
    long = render_send(node, {"user": {"first_name": "Zoé" * 60}})  # 240 bytes of name
    with pytest.raises(PayloadLimitError) as exc:
        build_and_validate(long, MID, 600_000)
    assert exc.value.limit == "rcs.card_title_length"
    assert "bytes" in exc.value.detail
