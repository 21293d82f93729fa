"""Shape rules of the journey model (one file, no graph): what pydantic accepts and refuses."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from pydantic import ValidationError

from engine.journey.loader import load_file
from engine.journey.model import (
    Fallback,
    Journey,
    SendNode,
    Suggestion,
    WaitNode,
    WaitPath,
    successors,
    time_to_minutes,
)

OK_FILE = Path(__file__).resolve().parent.parent / "fixtures" / "ok" / "full.yaml"


def journey(**changes: Any) -> dict[str, Any]:
    data: dict[str, Any] = {
        "id": "order-updates",
        "version": 1,
        "entry": {"event": "order_placed"},
        "start": "hello",
        "nodes": {
            "hello": {"type": "send", "channel": "sms", "text": "Hi", "next": "done"},
            "done": {"type": "exit"},
        },
    }
    data.update(changes)
    return data


def send(**fields: Any) -> dict[str, Any]:
    return {"type": "send", "next": "done", **fields}


def node_error(node: dict[str, Any]) -> str:
    """The validation error text for a journey whose node ``hello`` is ``node``."""
    with pytest.raises(ValidationError) as info:
        Journey.model_validate(journey(nodes={"hello": node, "done": {"type": "exit"}}))
    return str(info.value)


def valid_node(node: dict[str, Any]) -> Any:
    return Journey.model_validate(journey(nodes={"hello": node, "done": {"type": "exit"}})).nodes[
        "hello"
    ]


# --------------------------------------------------------------------------- suggestions

SIX_KINDS = {
    "reply": {"text": "Yes", "postback": "yes"},
    "open_url": {"text": "Open", "url": "https://example.com"},
    "dial": {"text": "Call us", "phone": "+14155550100"},
    "view_location": {"text": "Map", "query": "Eiffel Tower"},
    "share_location": {"text": "Share where you are"},
    "calendar": {"text": "Book", "title": "Call", "start": "2026-12-01T10:00:00Z",
                 "end": "2026-12-01T11:00:00Z"},
}


@pytest.mark.parametrize("kind", list(SIX_KINDS))
def test_each_suggestion_kind_is_accepted(kind: str) -> None:
    s = Suggestion.model_validate({kind: SIX_KINDS[kind]})
    assert s.kind == kind
    assert s.action.text == SIX_KINDS[kind]["text"]


def test_a_suggestion_is_exactly_one_kind() -> None:
    with pytest.raises(ValidationError, match="exactly one of reply, open_url"):
        Suggestion.model_validate({})
    with pytest.raises(ValidationError, match="this one has reply, dial"):
        Suggestion.model_validate({"reply": SIX_KINDS["reply"], "dial": SIX_KINDS["dial"]})
    with pytest.raises(ValidationError, match="Extra inputs are not permitted"):
        Suggestion.model_validate({"tap": {"text": "x"}})


def test_postback_defaults_to_a_slug_of_the_label() -> None:
    assert Suggestion.model_validate({"reply": SIX_KINDS["reply"]}).postback == "yes"
    assert Suggestion.model_validate({"dial": SIX_KINDS["dial"]}).postback == "call_us"
    assert Suggestion.model_validate({"open_url": {"text": "!!", "url": "x"}}).postback == "action"
    with pytest.raises(ValidationError, match="postback"):
        Suggestion.model_validate({"reply": {"text": "Yes"}})  # a reply needs its postback


def test_view_location_needs_both_coordinates_or_a_query() -> None:
    assert Suggestion.model_validate({"view_location": {"text": "Map", "lat": 1, "long": 2}})
    with pytest.raises(ValidationError, match="needs both lat and long"):
        Suggestion.model_validate({"view_location": {"text": "Map", "lat": 1}})
    with pytest.raises(ValidationError, match="needs lat and long, or a query"):
        Suggestion.model_validate({"view_location": {"text": "Map"}})


def test_calendar_needs_title_start_and_end() -> None:
    for key in ("title", "start", "end"):
        body = {k: v for k, v in SIX_KINDS["calendar"].items() if k != key}
        with pytest.raises(ValidationError, match=key):
            Suggestion.model_validate({"calendar": body})


# --------------------------------------------------------------------------- send content


def test_sms_send_needs_text_and_nothing_rich() -> None:
    assert valid_node(send(channel="sms", text="Hi")).text == "Hi"
    assert "an sms send needs text" in node_error(send(channel="sms"))
    assert "an sms send needs text" in node_error(
        send(channel="sms", text="Hi", rich_card={"title": "x"})
    )
    assert "can't have suggestions" in node_error(
        send(channel="sms", text="Hi", suggestions=[{"reply": SIX_KINDS["reply"]}])
    )
    assert "fallback applies to rcs sends only" in node_error(
        send(channel="sms", text="Hi", fallback={"sms": "x"})
    )


def test_rcs_send_has_exactly_one_content() -> None:
    assert valid_node(send(channel="rcs", text="Hi")).channel == "rcs"
    card = {"title": "x"}
    assert valid_node(send(channel="rcs", rich_card=card)).rich_card.title == "x"
    assert valid_node(send(channel="rcs", carousel={"cards": [card, card]})).carousel.width == (
        "MEDIUM"
    )
    two: dict[str, Any] = {"rich_card": card, "carousel": {"cards": []}}
    for bad in ({}, {"text": "Hi", "rich_card": card}, two):
        assert "exactly one of text, rich_card, carousel" in node_error(send(channel="rcs", **bad))
    assert "Input should be 'rcs' or 'sms'" in node_error(send(channel="mms", text="Hi"))


def test_card_needs_content_and_horizontal_needs_alignment() -> None:
    assert "at least one of title, description, media" in node_error(
        send(channel="rcs", rich_card={"suggestions": []})
    )
    assert "needs thumbnail_alignment" in node_error(
        send(channel="rcs", rich_card={"title": "x", "orientation": "HORIZONTAL"})
    )
    assert "Input should be 'SHORT', 'MEDIUM' or 'TALL'" in node_error(
        send(channel="rcs", rich_card={"media": {"url": "https://x.example/a", "height": "BIG"}})
    )
    assert "Input should be 'SMALL' or 'MEDIUM'" in node_error(
        send(channel="rcs", carousel={"width": "LARGE", "cards": [{"title": "a"}, {"title": "b"}]})
    )


def test_fallback_after_defaults_to_ten_minutes() -> None:
    assert Fallback().after_ms == 600_000
    assert Fallback(after="1h").after_ms == 3_600_000
    node = valid_node(send(channel="rcs", text="Hi", fallback={"sms": "Hi"}, ttl="30m"))
    assert isinstance(node, SendNode) and node.ttl_ms == 1_800_000 and node.marketing is True


# --------------------------------------------------------------------------- waits


def test_wait_is_exactly_one_kind() -> None:
    assert valid_node({"type": "wait", "duration": "1h", "next": "done"}).duration_ms == 3_600_000
    until = valid_node({"type": "wait", "until": {"time": "10:30"}, "next": "done"})
    assert until.until.minutes == 630 and until.until.days == ["mon", "tue", "wed", "thu", "fri",
                                                                "sat", "sun"]
    prop = valid_node({"type": "wait", "until_property": "user.renewal_date", "offset": "-1d",
                       "next": "done"})
    assert isinstance(prop, WaitNode) and prop.offset_ms == -86_400_000
    for bad in ({}, {"duration": "1h", "until": {"time": "10:00"}}):
        assert "exactly one of duration, until, until_property" in node_error(
            {"type": "wait", "next": "done", **bad}
        )


def test_wait_offset_and_until_rules() -> None:
    assert "offset goes with until_property" in node_error(
        {"type": "wait", "duration": "1h", "offset": "1h", "next": "done"}
    )
    assert "until_property is a dotted path" in node_error(
        {"type": "wait", "until_property": "renewal_date", "next": "done"}
    )
    assert "not a time of day" in node_error(
        {"type": "wait", "until": {"time": "25:00"}, "next": "done"}
    )
    assert "Input should be 'mon'" in node_error(
        {"type": "wait", "until": {"time": "10:00", "days": ["monday"]}, "next": "done"}
    )


def test_wait_for_paths() -> None:
    assert WaitPath(read="hello", next="done").of_node == "hello"
    assert WaitPath(reply="yes", of="hello", next="done").of_node == "hello"
    assert WaitPath(click="*", next="done").kind == "click"
    with pytest.raises(ValidationError, match="exactly one of event, reply, click, read"):
        WaitPath(event="x", reply="y", next="done")
    with pytest.raises(ValidationError, match="'of' goes with reply, click or read"):
        WaitPath(event="x", of="hello", next="done")
    assert "at least 1 item" in node_error({"type": "wait_for", "paths": []})
    node = valid_node({"type": "wait_for", "paths": [{"event": "x", "next": "done"}]})
    assert node.timeout is None and node.timeout_ms is None  # the linter reports it


def test_branch_and_split_need_their_lists() -> None:
    assert "at least 1 item" in node_error({"type": "branch", "cases": [], "default": "done"})
    assert "at least 2 items" in node_error(
        {"type": "split", "variants": [{"name": "a", "weight": 1, "next": "done"}]}
    )


# --------------------------------------------------------------------------- durations


@pytest.mark.parametrize(("text", "ms"), [
    ("30s", 30_000), ("15m", 900_000), ("1h", 3_600_000), ("2d", 172_800_000),
    ("1w", 604_800_000), ("1h30m", 5_400_000), (90, 90_000),
])
def test_durations(text: str | int, ms: int) -> None:
    node = valid_node({"type": "wait", "duration": text, "next": "done"})
    assert node.duration_ms == ms


@pytest.mark.parametrize("text", ["10 minutes", "1y", "", "-1h"])
def test_bad_durations_are_refused(text: str) -> None:
    message = node_error({"type": "wait", "duration": text, "next": "done"})
    assert "duration" in message


def test_durations_elsewhere() -> None:
    j = Journey.model_validate(journey(
        entry={"event": "e", "cooldown": "1d"},
        goal={"event": "g"},
        settings={"frequency_cap": {"max": 2, "per": "1d"}},
    ))
    assert j.entry.cooldown_ms == 86_400_000 and j.goal is not None
    assert j.goal.within_ms == 7 * 86_400_000
    assert j.settings.frequency_cap is not None and j.settings.frequency_cap.per_ms == 86_400_000
    with pytest.raises(ValidationError, match="not a duration"):
        Journey.model_validate(journey(goal={"event": "g", "within": "soon"}))
    with pytest.raises(ValidationError, match="greater than or equal to 1"):
        Journey.model_validate(journey(settings={"frequency_cap": {"max": 0, "per": "1d"}}))


def test_send_rate() -> None:
    j = Journey.model_validate(journey(settings={"send_rate": {"max": 100, "per": "1m"}}))
    rate = j.settings.send_rate
    assert rate is not None and (rate.max, rate.per_ms) == (100, 60_000)
    assert Journey.model_validate(journey()).settings.send_rate is None
    # values are the linter's (max >= 1, per > 0); the shape is the model's
    with pytest.raises(ValidationError, match="not a duration"):
        Journey.model_validate(journey(settings={"send_rate": {"max": 1, "per": "often"}}))
    with pytest.raises(ValidationError, match="negative duration"):
        Journey.model_validate(journey(settings={"send_rate": {"max": 1, "per": "-1s"}}))
    with pytest.raises(ValidationError, match="per"):
        Journey.model_validate(journey(settings={"send_rate": {"max": 1}}))


# --------------------------------------------------------------------------- settings


def test_quiet_hours() -> None:
    j = Journey.model_validate(journey(settings={"quiet_hours": {"from": "21:00", "to": "08:00"}}))
    qh = j.settings.quiet_hours
    assert qh is not None and (qh.from_, qh.to, qh.action) == ("21:00", "08:00", "defer")
    assert time_to_minutes(qh.from_) == 1260
    with pytest.raises(ValidationError, match="not a time of day"):
        Journey.model_validate(journey(settings={"quiet_hours": {"from": "9pm", "to": "08:00"}}))
    with pytest.raises(ValidationError, match="Input should be 'defer' or 'skip'"):
        Journey.model_validate(journey(
            settings={"quiet_hours": {"from": "21:00", "to": "08:00", "action": "drop"}}
        ))


def test_default_timezone_must_be_iana() -> None:
    assert Journey.model_validate(journey()).settings.default_timezone == "UTC"
    j = Journey.model_validate(journey(settings={"default_timezone": "Europe/Paris"}))
    assert j.settings.default_timezone == "Europe/Paris"
    with pytest.raises(ValidationError, match="not an IANA time zone"):
        Journey.model_validate(journey(settings={"default_timezone": "Paris"}))


# --------------------------------------------------------------------------- journey


def test_journey_identity_rules() -> None:
    j = Journey.model_validate(journey())
    assert j.key == ("order-updates", 1)
    assert j.entry.reentry == "after_exit" and j.exit_on == [] and j.migrate == []
    with pytest.raises(ValidationError, match="should match pattern"):
        Journey.model_validate(journey(id="Order Updates"))
    with pytest.raises(ValidationError, match="greater than or equal to 1"):
        Journey.model_validate(journey(version=0))
    with pytest.raises(ValidationError, match="at least 1 item"):
        Journey.model_validate(journey(nodes={}))
    with pytest.raises(ValidationError, match="Extra inputs are not permitted"):
        Journey.model_validate(journey(owner="me"))
    with pytest.raises(ValidationError, match="should match pattern"):
        Journey.model_validate(journey(nodes={"has space": {"type": "exit"}}))


def test_model_is_frozen() -> None:
    j = Journey.model_validate(journey())
    with pytest.raises(ValidationError, match="frozen"):
        j.version = 2  # type: ignore[misc]


def test_successors_in_file_order() -> None:
    j = Journey.model_validate(journey(nodes={
        "hello": {"type": "wait_for", "paths": [{"event": "x", "when": "event.a", "next": "b"},
                                                {"reply": "y", "of": "s", "next": "c"},
                                                {"read": "s", "next": "b"}],
                  "timeout": "1d", "on_timeout": "done"},
        "b": {"type": "branch", "cases": [{"when": "user.vip", "next": "c"}], "default": "done"},
        "c": {"type": "split", "variants": [{"name": "a", "weight": 1.5, "next": "done"},
                                             {"name": "b", "weight": 1, "next": "done"}]},
        "s": {"type": "send", "channel": "sms", "text": "Hi", "next": "done"},
        "done": {"type": "exit"},
    }))
    assert successors(j.nodes["hello"]) == [
        ("event x [event.a]", "b"), ("reply y of s", "c"), ("read s", "b"), ("timeout", "done")]
    assert successors(j.nodes["b"]) == [("user.vip", "c"), ("default", "done")]
    assert successors(j.nodes["c"]) == [("a (1.5)", "done"), ("b (1)", "done")]
    assert successors(j.nodes["s"]) == [("", "done")]
    assert successors(j.nodes["done"]) == []


def test_json_file_is_accepted_too(tmp_path: Path) -> None:
    loaded, problems = load_file(OK_FILE)
    assert problems == [] and loaded is not None and loaded.journey is not None
    path = tmp_path / "full.json"
    path.write_text(json.dumps(loaded.raw, indent=2, ensure_ascii=False), encoding="utf-8")
    from_json, problems = load_file(path)
    assert problems == [] and from_json is not None
    assert from_json.journey == loaded.journey
