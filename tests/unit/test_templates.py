"""Sandboxed Liquid templates: rendering, refusals and limits."""

from __future__ import annotations

from typing import Any

import pytest

from engine.errors import JourneyError, TemplateError
from engine.journey.templates import MAX_OUTPUT_CHARS, Template, compile_template

SCOPE: dict[str, Any] = {
    "event": {
        "total": 42.5,
        "items": [{"name": "socks"}, {"name": "hat"}],
        "at": "2024-03-01T10:30:00+00:00",
        "epoch": 86400,
    },
    "entry": {"order_id": "o-1"},
    "user": {"first_name": "Ann", "tier": "gold"},
    "journey": {"id": "welcome"},
}


def render(source: str, scope: dict[str, Any] | None = None) -> str:
    return compile_template(source).render(SCOPE if scope is None else scope)


def parse_error(source: str) -> TemplateError:
    with pytest.raises(TemplateError) as info:
        compile_template(source)
    return info.value


def render_error(source: str, scope: dict[str, Any] | None = None) -> TemplateError:
    template = compile_template(source)
    with pytest.raises(TemplateError) as info:
        template.render(SCOPE if scope is None else scope)
    return info.value


# --- rendering ---


@pytest.mark.parametrize(
    ("source", "expected"),
    [
        ("Hi {{ user.first_name }}!", "Hi Ann!"),
        ("Total: {{ event.total }}", "Total: 42.5"),
        ("{{ event.items[1].name }}", "hat"),
        ("{% for item in event.items %}{{ item.name }};{% endfor %}", "socks;hat;"),
        ("{% if user.tier == 'gold' %}VIP{% else %}-{% endif %}", "VIP"),
        ("{{ user.first_name | upcase }} {{ event.items | size }}", "ANN 2"),
        ("{% assign n = event.total | times: 2 %}{{ n }}", "85.0"),
        ("{{ journey.id }}/{{ entry.order_id }}", "welcome/o-1"),
    ],
)
def test_rendering(source: str, expected: str) -> None:
    assert render(source) == expected


def test_default_filter() -> None:
    assert render("Hi {{ user.first_name | default: 'there' }}") == "Hi Ann"
    assert render("Hi {{ user.nickname | default: 'there' }}") == "Hi there"
    assert render("Hi {{ user.first_name | default: 'there' }}", {}) == "Hi there"


def test_unknown_variables_render_empty() -> None:
    assert render("[{{ nope }}][{{ user.missing.deeper }}][{{ event.items[9].name }}]") == "[][][]"
    assert render("{% for x in event.missing %}x{% endfor %}done") == "done"
    assert render("{% if user.missing %}yes{% else %}no{% endif %}") == "no"


def test_no_python_attributes() -> None:
    assert render("{{ event.__class__ }}{{ user.keys }}{{ event.items.pop }}") == ""


# --- the Template object ---


def test_is_static() -> None:
    assert compile_template("Your code is 1234. Reply STOP to opt out.").is_static is True
    assert compile_template("Hi {{ user.first_name }}").is_static is False
    assert compile_template("{% if true %}x{% endif %}").is_static is False
    assert compile_template("50% off } {").render({}) == "50% off } {"


def test_variables() -> None:
    template = compile_template(
        "{{ user.first_name }} {% for i in event.items %}{{ i.name }}{% endfor %}"
        "{% assign local = journey.id %}{{ local }}"
    )
    assert template.variables == {"user", "event", "journey"}
    assert compile_template("plain").variables == frozenset()


def test_template_object() -> None:
    template = compile_template("Hi {{ user.first_name }}")
    assert isinstance(template, Template)
    assert template.source == "Hi {{ user.first_name }}"
    assert compile_template("Hi {{ user.first_name }}") is template  # cached per source
    assert hash(template) == hash(template.source)
    assert repr(template) == "Template('Hi {{ user.first_name }}')"


# --- errors ---


@pytest.mark.parametrize(
    ("source", "message"),
    [
        ("{% if user.tier %}unclosed", "cannot parse"),
        ("{{ user.first_name ", "cannot parse"),
        ("{% bogus %}", "unexpected tag 'bogus'"),
        ("{{ user.first_name | no_such_filter }}", "unknown filter 'no_such_filter'"),
    ],
)
def test_parse_errors(source: str, message: str) -> None:
    error = parse_error(source)
    assert message in error.message
    assert error.source == source
    assert isinstance(error, JourneyError)


def test_parse_error_location() -> None:
    error = parse_error("Hello\nthere {% bogus %}")
    assert "(line 2, column 10)" in error.message
    assert error.offset == 15


@pytest.mark.parametrize(
    "source",
    [
        "{% include 'secrets.txt' %}",
        "{% render 'secrets' %}",
        "{% liquid\n include 'x' %}",
    ],
)
def test_include_and_render_are_refused(source: str) -> None:
    assert "unexpected tag" in parse_error(source).message


def test_render_errors_are_translated() -> None:
    error = render_error("{{ 1 | divided_by: 0 }}")
    assert "divided_by" in error.message
    assert error.offset == 7
    assert error.__cause__ is not None


# --- limits ---


def test_output_limit() -> None:
    big = "{% for i in (1..5000) %}xxxxx{% endfor %}"
    assert "longer than" in render_error(big).message
    # Just under the limit is fine; measured in characters, not UTF-8 bytes.
    assert len(render("{{ s }}", {"s": "é" * MAX_OUTPUT_CHARS})) == MAX_OUTPUT_CHARS
    assert "longer than" in render_error("{{ s }}", {"s": "x" * (MAX_OUTPUT_CHARS + 1)}).message


def test_static_text_is_limited_too() -> None:
    # Refused when the journey is loaded (the source is longer than any output may be).
    assert "longer than" in parse_error("x" * (MAX_OUTPUT_CHARS + 1)).message


def test_loop_iteration_limit() -> None:
    source = "{% for i in (1..1000) %}{% for j in (1..1000) %}{% endfor %}{% endfor %}"
    assert "loop iteration limit" in render_error(source).message


def test_runaway_assign_is_bounded() -> None:
    source = (
        "{% assign s = 'ab' %}{% for i in (1..60) %}{% assign s = s | append: s %}"
        "{% endfor %}{{ s | size }}"
    )
    assert "limit" in render_error(source).message


# --- determinism ---


def test_date_filter_does_not_read_the_clock() -> None:
    assert "not available" in render_error("{{ 'now' | date: '%Y' }}").message
    assert "not available" in render_error("{{ 'today' | date: '%Y' }}").message
    # Without a date part, Liquid would fill in today's date; it is printed as is.
    assert render("{{ '10:30' | date: '%Y' }}") == "10:30"


def test_date_filter_is_deterministic() -> None:
    assert render("{{ event.at | date: '%d/%m/%Y %H:%M' }}") == "01/03/2024 10:30"
    assert render("{{ event.epoch | date: '%Y-%m-%d %H:%M' }}") == "1970-01-02 00:00"
    assert render("{{ '86400' | date: '%Y-%m-%d %H:%M' }}") == "1970-01-02 00:00"
    assert render("{{ event.missing | date: '%Y' }}") == ""
