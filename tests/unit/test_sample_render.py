"""engine.journey.sample: a send node rendered for sample data, missing values found."""

from __future__ import annotations

from typing import Any

import pytest

from engine.errors import ConfigError
from engine.journey.model import Journey
from engine.journey.sample import (
    SampleData,
    merge_data,
    parse_assignments,
    parse_event,
    parse_profile,
    render_sample,
)


def journey_with(text: str, channel: str = "sms") -> Journey:
    return Journey.model_validate(
        {
            "id": "j",
            "version": 3,
            "entry": {"event": "go"},
            "start": "s",
            "nodes": {
                "s": {"type": "send", "channel": channel, "text": text, "next": "d"},
                "d": {"type": "exit"},
            },
        }
    )


EVENT = {"order_id": "a1", "items": [{"name": "coat"}], "total": 12}
PROFILE = {"first_name": "Asha", "address": {"city": "Paris"}}


@pytest.mark.parametrize(
    ("template", "sent", "missing", "covered"),
    [
        # printed as nothing: flagged where it prints
        ("Hi {{ user.last_name }}!", "Hi !", ["user.last_name"], []),
        ("Hi {{ user.last_name | upcase }}!", "Hi !", ["user.last_name"], []),
        ("{{ user.address.zip }}", "", ["user.address.zip"], []),
        ("{{ user.phone_book.home }}", "", ["user.phone_book.home"], []),
        ("{% for i in event.items %}{{ i.price }}{% endfor %}", "", ["event.items[0].price"], []),
        ("{{ journey.name }}", "", ["journey.name"], []),
        # read, but a default or a condition covers it
        ("Hi {{ user.last_name | default: 'you' }}", "Hi you", [], ["user.last_name"]),
        ("Hi{% if user.nick %} {{ user.nick }}{% endif %}", "Hi", [], ["user.nick"]),
        ("{% if user.tier == 'gold' %}G{% else %}S{% endif %}", "S", [], ["user.tier"]),
        # everything there
        (
            "{{ event.order_id | upcase }} {{ user.address.city }} {{ journey.id }}",
            "A1 Paris j",
            [],
            [],
        ),
    ],
)
def test_missing_values_are_found_where_they_print(
    template: str, sent: str, missing: list[str], covered: list[str]
) -> None:
    journey = journey_with(template)
    node = journey.nodes["s"]
    result = render_sample(node, journey, SampleData(EVENT, PROFILE))  # type: ignore[arg-type]
    assert result.message.text == sent  # exactly what the engine sends
    assert list(result.missing) == missing
    assert list(result.covered) == covered
    assert result.plain(result.marked.text or "") == sent
    for path in missing:
        assert (path, path) in result.runs(result.marked.text or "")
        assert result.missing[path] == ("text",)


def test_the_marked_text_has_the_variable_where_it_prints() -> None:
    journey = journey_with("Hi {{ user.last_name }}, order {{ event.order_id }}.")
    result = render_sample(journey.nodes["s"], journey, SampleData(EVENT, {}))  # type: ignore[arg-type]
    assert result.runs(result.marked.text or "") == [
        ("Hi ", None),
        ("user.last_name", "user.last_name"),
        (", order a1.", None),
    ]


def test_entry_is_the_event_and_user_is_the_profile() -> None:
    journey = journey_with("{{ entry.order_id }}/{{ event.order_id }}/{{ user.first_name }}")
    result = render_sample(journey.nodes["s"], journey, SampleData(EVENT, PROFILE))  # type: ignore[arg-type]
    assert result.message.text == "a1/a1/Asha"
    assert not result.missing


def test_assignments_nest_and_read_json_values() -> None:
    got = parse_assignments(
        ["first_name=Asha", "address.city=Paris", "ltv=500", "vip=true", "phone=+14155550100"]
    )
    assert got == {
        "first_name": "Asha",
        "address": {"city": "Paris"},
        "ltv": 500,
        "vip": True,
        "phone": "+14155550100",
    }
    assert parse_assignments(["note=a=b"]) == {"note": "a=b"}


@pytest.mark.parametrize("bad", ["first_name", "=x", "a..b=1"])
def test_a_bad_assignment_says_how_to_write_it(bad: str) -> None:
    with pytest.raises(ConfigError, match="KEY=VALUE"):
        parse_assignments([bad])


def test_an_event_file_is_an_event_or_its_properties() -> None:
    event = '{"name": "go", "properties": {"a": 1}, "profile": {"first_name": "Bo"}}'
    assert parse_event(event, "e.json", "go") == ({"a": 1}, {"first_name": "Bo"})
    assert parse_event('{"a": 1}', "e.json", "go") == ({"a": 1}, {})


def test_an_event_log_gives_the_first_event_that_starts_the_journey() -> None:
    lines = "\n".join(
        [
            "# sample events",
            '{"name": "other", "properties": {"a": 0}}',
            '{"type": "inbound", "user_id": "u", "text": "hi"}',
            '{"name": "go", "properties": {"a": 1}, "profile": {"x": 2}}',
            '{"name": "go", "properties": {"a": 3}}',
        ]
    )
    assert parse_event(lines, "e.jsonl", "go") == ({"a": 1}, {"x": 2})
    with pytest.raises(ConfigError, match=r"no 'signup' event.*it has: go, other"):
        parse_event(lines, "e.jsonl", "signup")


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("{nope", "e.json:1: not JSON"),
        ("[1, 2]", "expected a JSON object"),
        ('{"properties": [1]}', "must be JSON objects"),
    ],
)
def test_a_bad_event_file_says_what_to_give(text: str, message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        parse_event(text, "e.json", "go")


def test_a_profile_file_is_one_object() -> None:
    assert parse_profile('{"tier": "gold"}', "p.json") == {"tier": "gold"}
    bad: Any
    for bad in ("[]", "tier: gold"):
        with pytest.raises(ConfigError, match=r"p\.json"):
            parse_profile(bad, "p.json")


def test_profiles_merge_key_by_key() -> None:
    base = {"first_name": "Bo", "address": {"city": "Paris", "zip": "75001"}}
    extra = parse_assignments(["address.city=Lyon", "tier=gold"])
    assert merge_data(base, extra) == {
        "first_name": "Bo",
        "address": {"city": "Lyon", "zip": "75001"},
        "tier": "gold",
    }


def test_sample_data_that_no_message_can_carry_is_refused() -> None:
    with pytest.raises(ConfigError, match=r"e\.json: \\ud800 is not a character"):
        parse_event('{"name": "x\\ud800"}', "e.json", "go")
    with pytest.raises(ConfigError, match="--user-profile"):
        parse_assignments(["first_name=\udcff"])  # an undecodable byte in an argument
