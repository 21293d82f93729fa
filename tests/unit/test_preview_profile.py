"""``journeys preview`` reads the profile as the engine keeps it: earlier profile events and
profiles of the sample file's user, and the update_profile nodes on the way to a send."""

from __future__ import annotations

import yaml

from engine.channels.preview import preview_node
from engine.journey.model import Journey
from engine.journey.sample import SampleData, parse_event, profile_at

JOURNEY = Journey.model_validate(
    yaml.safe_load(
        """
id: p
version: 1
entry: {event: go}
start: first
nodes:
  first: {type: send, channel: sms, text: "Hi {{ user.tier | default: 'none' }}", next: up}
  up:
    type: update_profile
    set: {tier: "'gold'", was: user.tier, plan: entry.plan}
    unset: [old]
    next: second
  second: {type: send, channel: sms, text: "Now {{ user.tier }} ({{ user.was }})", next: done}
  done: {type: exit}
"""
    )
)


def test_the_lines_before_the_entry_event_build_the_users_profile() -> None:
    lines = "\n".join(
        [
            '{"name": "profile_updated", "user_id": "u", "properties": {"first_name": "Ada"}}',
            '{"name": "profile_updated", "user_id": "other", "properties": {"x": 1}}',
            '{"name": "seen", "user_id": "u", "profile": {"tz": "UTC", "first_name": null}}',
            '{"name": "go", "user_id": "u", "properties": {"a": 1}, "profile": {"p": 2}}',
            '{"name": "profile_updated", "user_id": "u", "properties": {"late": 1}}',
        ]
    )
    assert parse_event(lines, "e.jsonl", "go") == ({"a": 1}, {"tz": "UTC", "p": 2})
    assert parse_event(lines, "e.jsonl", "go", ["identify"]) == ({"a": 1}, {"tz": "UTC", "p": 2})


def test_a_profile_event_listed_elsewhere_counts() -> None:
    lines = "\n".join(
        [
            '{"name": "identify", "user_id": "u", "properties": {"first_name": "Ada"}}',
            '{"name": "go", "user_id": "u", "properties": {}}',
        ]
    )
    assert parse_event(lines, "e.jsonl", "go", ["identify"]) == ({}, {"first_name": "Ada"})
    assert parse_event(lines, "e.jsonl", "go") == ({}, {})


def test_a_send_after_an_update_profile_node_previews_the_new_profile() -> None:
    data = SampleData({"plan": "pro"}, {"tier": "silver", "old": 1})
    assert profile_at(JOURNEY, "first", data) is data
    after = profile_at(JOURNEY, "second", data)
    assert after.profile == {"tier": "gold", "was": "silver", "plan": "pro"}
    first, second = (preview_node(JOURNEY, n, data) for n in ("first", "second"))
    assert first.sample is not None and first.sample.message.text == "Hi silver"
    assert second.sample is not None and second.sample.message.text == "Now gold (silver)"
