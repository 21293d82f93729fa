"""Trace records change nothing: over random journeys and input scripts, every other effect
and every state are the same with tracing on and off, step by step; and with tracing on,
every outcome has a trace record of its decision beside it (what `journeys explain` relies
on to tell the story from trace records alone)."""

from __future__ import annotations

import orjson
from hypothesis import given, settings
from hypothesis import strategies as st
from prop_world import Script, World, examples, journeys, scripts

from engine.core import EngineConfig, Outcome
from engine.core.trace import Trace, input_key, traced
from engine.core.wire import decode_trace, trace_value
from engine.journey.model import Journey

TWO = st.tuples(journeys("a", "go"), journeys("b", "go2"))
ENTRIES = ("go", "go2")
ALL = EngineConfig(trace_sample=1.0)

# The trace kind that records the decision behind each outcome type.
DECIDED_BY = {
    "journey_entered": {"entry"},
    "node_entered": {"node"},
    "message_sent": {"send"},
    "message_delivered": {"message"},
    "message_read": {"message"},
    "message_clicked": {"inbound"},
    "message_replied": {"inbound"},
    "message_failed": {"send", "message"},
    "message_unknown": {"message"},
    "fallback_triggered": {"message"},
    "message_suppressed": {"send"},
    "message_deferred": {"send"},
    "goal_converted": {"goal"},
    "journey_exited": {"exit"},
    "instance_migrated": {"migrate"},
    "user_opted_out": {"keyword"},
    "user_opted_in": {"keyword"},
    "help_requested": {"keyword"},
}


def worlds(js: tuple[Journey, Journey], script: Script) -> tuple[World, World]:
    off, on = World(list(js)), World(list(js), config=ALL)
    for w in (off, on):
        w.play(script)
        w.drain()
    return off, on


@settings(max_examples=examples(60), deadline=None)
@given(TWO, scripts(entry_events=ENTRIES))
def test_tracing_changes_no_effect_and_no_state(
    js: tuple[Journey, Journey], script: Script
) -> None:
    off, on = worlds(js, script)
    assert len(off.steps) == len(on.steps)
    for a, b in zip(off.steps, on.steps, strict=True):
        assert not any(isinstance(e, Trace) for e in a.effects)
        assert a.effects == [e for e in b.effects if not isinstance(e, Trace)]
    assert off.wire() == on.wire()
    states = [{u: s.to_wire() for u, s in sorted(w.states.items())} for w in (off, on)]
    assert orjson.dumps(states[0]) == orjson.dumps(states[1])
    assert any(isinstance(e, Trace) for e in on.effects())


@settings(max_examples=examples(60), deadline=None)
@given(TWO, scripts(entry_events=ENTRIES))
def test_every_outcome_has_the_trace_of_its_decision(
    js: tuple[Journey, Journey], script: Script
) -> None:
    _off, on = worlds(js, script)
    ids: dict[str, tuple[str, int]] = {}
    for step in on.steps:
        traces = [e for e in step.effects if isinstance(e, Trace)]
        assert len({t.trace_id for t in traces}) == len(traces), "unique in a step"
        for t in traces:
            # Unique across steps too, but for a repeat of one input at one time (a redelivery):
            # the same decisions, the same ids (as for outcomes), so readers dedupe them.
            cause = (input_key(step.inp), step.now)
            assert ids.setdefault(t.trace_id, cause) == cause
            assert decode_trace(trace_value(t)) == t
        kinds_at = {(t.ts, t.kind) for t in traces}
        for o in (e for e in step.effects if isinstance(e, Outcome)):
            assert any((o.ts, k) in kinds_at for k in DECIDED_BY[o.type]), (o.type, o.ts)


def test_the_sample_is_a_stable_share_of_users() -> None:
    config = EngineConfig(trace_sample=0.25)
    users = [f"user-{i}" for i in range(4000)]
    picked = [u for u in users if traced(config, u)]
    assert picked == [u for u in users if traced(EngineConfig(trace_sample=0.25), u)]
    assert 0.22 < len(picked) / len(users) < 0.28
    assert not any(traced(EngineConfig(), u) for u in users)
    assert traced(EngineConfig(trace_users=frozenset({"user-1"})), "user-1")
    assert {u for u in users if traced(EngineConfig(trace_sample=0.1), u)} <= set(picked)
