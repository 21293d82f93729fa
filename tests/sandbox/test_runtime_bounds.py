"""The run-time bounds keep ordinary journeys working, and end in the core's usual failure.

corpus.yaml holds the attacks (one case per limit at least); this file checks the other
side: what an author normally writes still renders and evaluates as before, right up
to the limits, and a template that hits a limit is a ``message_failed`` with reason
``template``, after which the user moves on.
"""

from __future__ import annotations

from typing import Any

import pytest
import yaml
from hypothesis import given, settings
from hypothesis import strategies as st
from liquid.builtin.filters.array import uniq as liquid_uniq

from engine.core import Engine, Outcome, SendRequest, UserEvent, UserState
from engine.errors import TemplateError
from engine.journey.expressions import MAX_SEQUENCE_LENGTH, compile_expression
from engine.journey.model import Journey, SendNode
from engine.journey.render import render_send
from engine.journey.templates import (
    _ENV,
    MAX_LOOP_ITERATIONS,
    MAX_OUTPUT_CHARS,
    MAX_VALUE_LENGTH,
    compile_template,
)

SCOPE: dict[str, Any] = {
    "event": {
        "items": [{"name": f"item {i}", "price": i % 7} for i in range(200)],
        "tags": ["a", "b", "a", "c"],
        "text": "word " * 2000,
    },
    "user": {"first_name": "Ann"},
    "entry": {},
    "journey": {"id": "j"},
}


def render(source: str) -> str:
    return compile_template(source).render(SCOPE)


def ev(source: str) -> Any:
    return compile_expression(source).evaluate(SCOPE)


# --- conditions up to the bound ---


@pytest.mark.parametrize(
    ("source", "expected"),
    [
        (f"len('ab' * {MAX_SEQUENCE_LENGTH // 2})", MAX_SEQUENCE_LENGTH),
        (f"len('ab' * {MAX_SEQUENCE_LENGTH // 2} + '')", MAX_SEQUENCE_LENGTH),
        (f"'ab' * {MAX_SEQUENCE_LENGTH // 2 + 1}", None),
        (f"len([0] * {MAX_SEQUENCE_LENGTH})", MAX_SEQUENCE_LENGTH),
        ("len([[0, 1]] * 3000)", 3000),  # 3 items repeated: 9,000
        ("[[0, 1]] * 4000", None),  # 12,000
        ("len([[0] * 99] * 100)", 100),  # 10,000 with the inner lists
        ("[[0] * 100] * 100", None),  # 10,100
        ("len(str([0] * 3000))", 9000),
        ("len(event.tags + event.tags)", 8),
        ("event.tags * 0", []),
        ("event.tags * -3", []),
        ("str(user)", "{'first_name': 'Ann'}"),
        ("str(event.text) == event.text", True),  # a scope string is returned as is
        ("lower(event.text) == event.text", True),
    ],
)
def test_conditions_build_values_up_to_the_bound(source: str, expected: Any) -> None:
    assert ev(source) == expected


# --- templates up to the bounds ---


def test_a_loop_may_run_up_to_the_iteration_limit() -> None:
    out = render(f"{{% for i in (1..{MAX_LOOP_ITERATIONS}) %}}{{% endfor %}}done")
    assert out == "done"
    with pytest.raises(TemplateError, match="loop iteration limit"):
        render(f"{{% for i in (1..{MAX_LOOP_ITERATIONS + 1}) %}}{{% endfor %}}")


def test_several_loops_share_the_iteration_limit() -> None:
    half = MAX_LOOP_ITERATIONS // 2
    loop = f"{{% for i in (1..{half}) %}}{{% endfor %}}"
    assert render(loop * 2) == ""
    with pytest.raises(TemplateError, match="in total"):
        render(loop * 3)


def test_offset_and_reversed_work_inside_the_bound() -> None:
    assert render("{% for i in (1..100) offset: 97 reversed %}{{ i }},{% endfor %}") == "100,99,98,"
    assert render("{% for i in (1..20000) limit: 3 %}{{ i }}{% endfor %}") == "123"


def test_ordinary_templates_render_as_before() -> None:
    out = render(
        "Hi {{ user.first_name }}: "
        "{% for item in event.items limit: 3 %}{{ item.name | upcase }}"
        "{% unless forloop.last %}, {% endunless %}{% endfor %}; "
        "{{ event.tags | uniq | join: '/' }}; "
        "{{ event.items | map: 'price' | uniq | sort | join: '' }}; "
        "{{ event.text | truncatewords: 3 }}; {{ event.items | size }}"
    )
    assert out == "Hi Ann: ITEM 0, ITEM 1, ITEM 2; a/b/c; 0123456; word word word...; 200"


def test_filters_may_make_values_up_to_the_bound() -> None:
    half = MAX_VALUE_LENGTH // 2  # five times event.text
    ok = (
        "{% assign s = event.text | append: event.text | append: event.text | append: "
        "event.text | append: event.text %}{{ s | size }}"
    )
    assert render(ok) == str(half)
    assert render(ok.replace("{{ s | size }}", "{{ s | append: s | size }}")) == str(2 * half)
    with pytest.raises(TemplateError, match="value length limit"):
        render(ok.replace("{{ s | size }}", "{{ s | append: s | append: 'x' | size }}"))


def test_output_up_to_the_limit() -> None:
    assert len(render(f"{{% for i in (1..{MAX_OUTPUT_CHARS // 4}) %}}abcd{{% endfor %}}")) == (
        MAX_OUTPUT_CHARS
    )


_json = st.recursive(
    st.none() | st.booleans() | st.integers(-3, 3) | st.sampled_from(["a", "b", ""]),
    lambda children: (
        st.lists(children, max_size=3)
        | st.dictionaries(st.sampled_from(["k", "v"]), children, max_size=2)
    ),
    max_leaves=8,
)


@settings(max_examples=300, deadline=None, database=None)
@given(items=st.lists(_json, max_size=12), key=st.none() | st.sampled_from(["k", "v"]))
def test_uniq_agrees_with_liquid(items: list[Any], key: str | None) -> None:
    """Our linear uniq gives what Liquid's quadratic one gives (or fails the same way)."""
    ours = _ENV.filters["uniq"]
    try:
        expected: Any = liquid_uniq(items, key)
    except Exception as exc:  # the same failure is expected from ours
        with pytest.raises(type(exc)):
            ours(items, key, context=None)
        return
    assert ours(items, key, context=None) == expected


# --- a template that hits a limit fails the send, as any template error does ---

BOMB = "{% for i in (1..1000000000) %}x{% endfor %}"


def test_a_bounded_template_is_a_failed_send_and_the_run_goes_on() -> None:
    journey = Journey.model_validate(
        yaml.safe_load(
            f"""
id: j
version: 1
entry: {{event: go}}
start: s
nodes:
  s: {{type: send, channel: sms, text: "{BOMB}", next: t}}
  t: {{type: send, channel: sms, text: "still here", next: done}}
  done: {{type: exit}}
"""
        )
    )
    engine = Engine([journey], None)
    event = UserEvent("e1", "u", "go", 1_767_614_400_000, {}, {"phone": "+14155550123"})
    _, effects = engine.advance(UserState("u"), event, event.ts)
    failed = [e for e in effects if isinstance(e, Outcome) and e.type == "message_failed"]
    assert len(failed) == 1
    assert failed[0].attributes["reason"] == "template"
    assert "loop iteration limit" in str(failed[0].attributes["detail"])
    (sent,) = [e for e in effects if isinstance(e, SendRequest)]
    assert sent.content["text"] == "still here"


# --- the templates of one send share a budget ---

LOOP_9000 = "{% for i in (1..9000) %}{% endfor %}x"


def carousel(description: str, cards: int = 10, title: str = "Card") -> SendNode:
    return SendNode.model_validate(
        {
            "type": "send",
            "channel": "rcs",
            "next": "done",
            "carousel": {
                "width": "MEDIUM",
                "cards": [{"title": title, "description": description} for _ in range(cards)],
            },
        }
    )


def test_a_send_nodes_templates_share_one_budget() -> None:
    # Each description alone is within the limits...
    assert compile_template(LOOP_9000).render(SCOPE) == "x"
    assert len(render_send(carousel(LOOP_9000, cards=1), SCOPE).cards) == 1
    # ...ten of them in one send are not: 90,000 loop iterations for one message.
    with pytest.raises(TemplateError, match="loop iteration limit"):
        render_send(carousel(LOOP_9000), SCOPE)
    # The budget is per send: the next send starts afresh.
    assert len(render_send(carousel(LOOP_9000, cards=1), SCOPE).cards) == 1


def test_the_rendered_texts_of_a_send_count_as_data() -> None:
    # Each of these reads, makes and renders 80,000 characters: 800,000 for ten cards.
    long = "{{ event.text | append: event.text }}"
    assert len(render_send(carousel(long), SCOPE).cards) == 10
    # Twice that passes 1,000,000 characters for one message.
    with pytest.raises(TemplateError, match="render data limit"):
        render_send(carousel(long, title=long), SCOPE)
