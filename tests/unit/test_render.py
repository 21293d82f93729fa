"""render_send: every template field of a send node rendered into a plain RenderedMessage."""

from __future__ import annotations

import json
from typing import Any

import pytest

from engine.errors import InputError, TemplateError
from engine.journey.model import SendNode
from engine.journey.render import (
    RenderedCard,
    RenderedCarousel,
    RenderedMedia,
    RenderedMessage,
    RenderedSuggestion,
    render_send,
)

SCOPE: dict[str, Any] = {
    "event": {"order_id": "A1", "sku": "sku-9", "when": "2026-12-01T10:00:00Z"},
    "entry": {"url": "https://shop.example.com/t/A1", "store": "Paris Opera"},
    "user": {"first_name": "Asha", "agent_phone": "+14155550100"},
    "journey": {"id": "order-updates", "version": 3},
}


def node(**fields: Any) -> SendNode:
    return SendNode.model_validate({"type": "send", "channel": "rcs", "next": "done", **fields})


def test_rich_card_every_field_rendered() -> None:
    n = node(
        rich_card={
            "title": "Order {{ event.order_id }} confirmed",
            "description": "Hi {{ user.first_name | default: 'there' }}!",
            "media": {
                "url": "https://cdn.example.com/{{ event.sku }}.png",
                "thumbnail_url": "https://cdn.example.com/{{ event.sku }}-t.png",
                "height": "SHORT",
                "content_type": "image/png",
            },
            "suggestions": [
                {
                    "reply": {
                        "text": "Track {{ event.order_id }}",
                        "postback": "track_{{ event.sku }}",
                    }
                },
                {
                    "open_url": {
                        "text": "Open",
                        "url": "{{ entry.url }}",
                        "fallback_url": "{{ entry.url }}",
                    }
                },
                {"dial": {"text": "Call us", "phone": "{{ user.agent_phone }}"}},
            ],
        },
        suggestions=[
            {"view_location": {"text": "Store", "query": "{{ entry.store }}", "label": "x"}},
            {
                "view_location": {
                    "text": "Pin",
                    "lat": 48.87,
                    "long": 2.33,
                    "label": "{{ entry.store }}",
                }
            },
            {"share_location": {"text": "Share"}},
            {
                "calendar": {
                    "text": "Add",
                    "title": "Pick up {{ event.order_id }}",
                    "description": "At {{ entry.store }}",
                    "start": "{{ event.when }}",
                    "end": "2026-12-01T11:00:00Z",
                }
            },
        ],
        fallback={
            "sms": "Order {{ event.order_id }} confirmed. Reply STOP to opt out.",
            "after": "5m",
        },
        ttl="1h",
    )
    m = render_send(n, SCOPE)
    assert m == RenderedMessage(
        channel="rcs",
        rich_card=RenderedCard(
            title="Order A1 confirmed",
            description="Hi Asha!",
            media=RenderedMedia(
                url="https://cdn.example.com/sku-9.png",
                height="SHORT",
                thumbnail_url="https://cdn.example.com/sku-9-t.png",
                content_type="image/png",
            ),
            suggestions=(
                RenderedSuggestion("reply", text="Track A1", postback="track_sku-9"),
                RenderedSuggestion(
                    "open_url",
                    text="Open",
                    postback="open",
                    url="https://shop.example.com/t/A1",
                    fallback_url="https://shop.example.com/t/A1",
                ),
                RenderedSuggestion(
                    "dial", text="Call us", postback="call_us", phone="+14155550100"
                ),
            ),
        ),
        suggestions=(
            RenderedSuggestion(
                "view_location", text="Store", postback="store", query="Paris Opera", label="x"
            ),
            RenderedSuggestion(
                "view_location",
                text="Pin",
                postback="pin",
                lat=48.87,
                long=2.33,
                label="Paris Opera",
            ),
            RenderedSuggestion("share_location", text="Share", postback="share"),
            RenderedSuggestion(
                "calendar",
                text="Add",
                postback="add",
                title="Pick up A1",
                description="At Paris Opera",
                start="2026-12-01T10:00:00Z",
                end="2026-12-01T11:00:00Z",
            ),
        ),
        fallback_sms="Order A1 confirmed. Reply STOP to opt out.",
        ttl_ms=3_600_000,
        fallback_after_ms=300_000,
    )
    assert m.rcs_ttl_ms == 300_000  # the fallback window is shorter than the node's ttl


def test_blank_fields_become_none_and_default_postback_is_slug_of_source() -> None:
    n = node(
        rich_card={
            "title": "{{ user.nickname }}",
            "description": "Hello",
            "suggestions": [
                {"open_url": {"text": "Buy {{ event.sku }}", "url": "https://a.example/x"}}
            ],
        },
        fallback={},
    )
    m = render_send(n, SCOPE)
    assert m.rich_card is not None
    assert m.rich_card.title is None
    # The slug comes from the unrendered label, the same value the core matches clicks on.
    assert m.rich_card.suggestions[0].postback == "buy_event_sku"
    assert m.rich_card.suggestions[0].text == "Buy sku-9"
    assert m.fallback_sms is None and m.fallback_after_ms == 600_000 and m.ttl_ms is None
    assert m.rcs_ttl_ms == 600_000


def test_text_and_carousel_and_sms() -> None:
    t = render_send(node(text="Track here: {{ entry.url }}"), SCOPE)
    assert t.text == "Track here: https://shop.example.com/t/A1"
    assert t.rich_card is None and t.carousel is None and t.cards == ()
    assert t.fallback_after_ms is None and t.rcs_ttl_ms is None

    c = render_send(
        node(
            carousel={"width": "SMALL", "cards": [{"title": "A {{ event.sku }}"}, {"title": "B"}]}
        ),
        SCOPE,
    )
    assert c.carousel == RenderedCarousel(
        width="SMALL", cards=(RenderedCard(title="A sku-9"), RenderedCard(title="B"))
    )
    assert c.cards == c.carousel.cards

    s = render_send(
        SendNode.model_validate(
            {"type": "send", "channel": "sms", "text": "Hi {{ user.first_name }}", "next": "d"}
        ),
        SCOPE,
    )
    assert s == RenderedMessage(channel="sms", text="Hi Asha")


@pytest.mark.parametrize(
    "fields",
    [
        {"text": "Hi {{ user.first_name | no_such_filter }}"},
        {"rich_card": {"title": "{% if %}"}},
        {"text": "ok", "suggestions": [{"reply": {"text": "x", "postback": "{{ a"}}]},
        {"text": "ok", "fallback": {"sms": "{% for %}"}},
    ],
)
def test_template_errors_propagate(fields: dict[str, Any]) -> None:
    with pytest.raises(TemplateError):
        render_send(node(**fields), SCOPE)


def test_to_dict_is_json_and_round_trips() -> None:
    n = node(
        rich_card={
            "title": "T {{ event.order_id }}",
            "media": {"url": "https://cdn.example.com/a.mp4", "height": "TALL"},
            "orientation": "HORIZONTAL",
            "thumbnail_alignment": "LEFT",
            "suggestions": [{"view_location": {"text": "Pin", "lat": 1, "long": -2}}],
        },
        suggestions=[{"reply": {"text": "Yes", "postback": "yes"}}],
        fallback={"sms": "hi", "after": "10m"},
        ttl="2h",
    )
    m = render_send(n, SCOPE)
    data = m.to_dict()
    assert json.loads(json.dumps(data)) == data
    assert "text" not in data and "carousel" not in data  # None fields left out
    assert data["rich_card"]["suggestions"][0] == {
        "kind": "view_location",
        "text": "Pin",
        "postback": "pin",
        "lat": 1.0,
        "long": -2.0,
    }
    assert RenderedMessage.from_dict(json.loads(json.dumps(data))) == m

    c = render_send(node(carousel={"cards": [{"title": "a"}, {"description": "b"}]}), SCOPE)
    assert RenderedMessage.from_dict(c.to_dict()) == c


@pytest.mark.parametrize(
    "data",
    [
        {},
        {"channel": "fax"},
        {"channel": "rcs", "text": 3},
        {"channel": "rcs", "suggestions": [{"kind": "teleport", "text": "x", "postback": "x"}]},
        {"channel": "rcs", "suggestions": [{"kind": "reply", "text": "x"}]},
        {"channel": "rcs", "ttl_ms": "10"},
        {"channel": "rcs", "rich_card": {"media": "https://x"}},
        {"channel": "rcs", "carousel": {"cards": "nope"}},
    ],
)
def test_from_dict_rejects_bad_data(data: dict[str, Any]) -> None:
    with pytest.raises(InputError) as exc:
        RenderedMessage.from_dict(data)
    assert exc.value.reason == "bad_rendered_message"
