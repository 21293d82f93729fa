"""Properties of the core over random journeys and random input scripts: determinism
(also across state serialization), one place per run, every run ends, quiet hours, the
frequency cap, split shares."""

from __future__ import annotations

from collections import Counter, defaultdict

import orjson
from hypothesis import given, settings
from hypothesis import strategies as st
from prop_world import (
    DAY,
    HOUR,
    MIN,
    PHONE,
    Script,
    StepRecord,
    World,
    assert_no_send_in_quiet_hours,
    edges,
    examples,
    is_marketing,
    journeys,
    quiet_hours,
    scripts,
)

from engine.core import Engine, Outcome, UserEvent
from engine.journey.model import Journey
from engine.sim.simulator import Simulator

TWO = st.tuples(journeys("a", "go"), journeys("b", "go2"))
ENTRIES = ("go", "go2")


# ----------------------------------------------------------------------------- determinism


@settings(max_examples=examples(60), deadline=None)
@given(TWO, scripts(entry_events=ENTRIES))
def test_same_inputs_same_effects_also_across_serialization(
    js: tuple[Journey, Journey], script: Script
) -> None:
    runs = []
    for roundtrip in (False, False, True):
        w = World(list(js), roundtrip=roundtrip)
        w.play(script)
        w.drain()
        runs.append(w)
    a, b, c = (w.wire() for w in runs)
    assert a == b
    assert a == c
    finals = [{u: s.to_wire() for u, s in sorted(w.states.items())} for w in runs]
    assert finals[0] == finals[1] == finals[2]


@settings(max_examples=examples(25), deadline=None)
@given(TWO, scripts(entry_events=ENTRIES, phone=True, max_actions=10))
def test_simulator_output_is_byte_identical(js: tuple[Journey, Journey], script: Script) -> None:
    inputs = [
        UserEvent(f"e{u}", f"u{u}", ev, script.base + k * HOUR, {"x": k}, prof)
        for k, (u, prof) in enumerate(enumerate(script.users))
        for ev in ENTRIES
    ]
    outs = [[o.to_wire() for o in Simulator(list(js)).run(inputs).outcomes] for _ in range(2)]
    assert outs[0] == outs[1]


@settings(max_examples=examples(60), deadline=None)
@given(TWO, scripts(entry_events=ENTRIES, max_actions=40))
def test_distinct_outcomes_have_distinct_ids(js: tuple[Journey, Journey], script: Script) -> None:
    """Consumers dedupe on outcome_id: two different outcomes must never share one (the
    same outcome twice, e.g. two identical STOPs in the same millisecond, may)."""
    w = World(list(js))
    w.play(script)
    w.drain()
    by_id: dict[str, bytes] = {}
    for o in w.outcomes():
        body = orjson.dumps(o.to_wire())
        assert by_id.setdefault(o.outcome_id, body) == body, (by_id[o.outcome_id], body)


# ----------------------------------------------------------------------------- one place


@settings(max_examples=examples(80), deadline=None)
@given(TWO, scripts(entry_events=ENTRIES))
def test_a_run_is_in_exactly_one_place(js: tuple[Journey, Journey], script: Script) -> None:
    """Follow every run through its outcomes: it starts at ``start``, each node_entered
    follows an edge of the graph from the previous node, nothing happens after it exits,
    and the state's ``node`` is always where the outcomes last put it."""
    graphs = {j.id: edges(j) for j in js}
    start = {j.id: j.start for j in js}
    at: dict[str, str] = {}
    exited: set[str] = set()
    live: dict[str, str] = {}  # instance id -> user
    flow = ("journey_entered", "node_entered", "journey_exited", "message_deferred")

    def check(w: World, step: StepRecord) -> None:
        for o in step.effects:
            if not isinstance(o, Outcome) or o.instance_id is None:
                continue
            iid = o.instance_id
            if o.type == "message_deferred" and "fallback_of" in o.attributes:
                continue  # a fallback SMS deferred: about a message, not where the run is
            if o.type in flow:
                assert iid not in exited, f"{o.type} after journey_exited"
            assert o.journey_id is not None
            if o.type == "journey_entered":
                assert iid not in at
                at[iid] = ""
                live[iid] = o.user_id
            elif o.type == "node_entered":
                assert o.node_id is not None
                prev = at[iid]
                if prev == "":
                    assert o.node_id == start[o.journey_id]
                else:
                    assert o.node_id in graphs[o.journey_id][prev], (prev, o.node_id)
                at[iid] = o.node_id
            elif o.type == "journey_exited":
                assert o.node_id == at[iid]
                exited.add(iid)
                live.pop(iid)
            elif o.type == "message_deferred":
                assert o.node_id == at[iid]
        # the state agrees with the outcomes: one node per run, the one last entered
        user = step.inp.user_id
        state = w.states[user]
        for iid, inst in state.instances.items():
            assert inst.id == iid
            assert at[iid] == inst.node
            assert inst.node in graphs[inst.journey_id]
        assert {i for i, u in live.items() if u == user} == set(state.instances)

    w = World(list(js), on_step=check)
    w.play(script)
    w.drain()
    assert not live


# ----------------------------------------------------------------------------- versions


@st.composite
def two_versions(draw: st.DrawFn) -> tuple[Journey, Journey]:
    """v1 and a v2 that maps some of v1's nodes onto any of its own."""
    v1 = draw(journeys("j", "go"))
    data = draw(journeys("j", "go")).model_dump(by_alias=True, exclude_none=True)
    data["version"] = 2
    mapping = {
        old: draw(st.sampled_from(sorted(data["nodes"]))) for old in v1.nodes if draw(st.booleans())
    }
    data["migrate"] = [{"from_version": 1, "nodes": mapping}]
    return v1, Journey.model_validate(data)


@settings(max_examples=examples(80), deadline=None)
@given(two_versions(), scripts(max_actions=30), st.integers(0, 30))
def test_runs_in_flight_survive_a_new_version(
    vs: tuple[Journey, Journey], script: Script, cut: int
) -> None:
    """Users start on v1; the engine is then reloaded with v1 and v2 (which migrates some
    nodes). Every run still ends, and every outcome names a node of its own version."""
    v1, v2 = vs
    w = World([v1])
    w.play(Script(script.base, script.users, script.actions[:cut]))
    w.engine = Engine([v1, v2])
    w.play(Script(w.now, script.users, script.actions[cut:]))
    w.drain()
    for state in w.states.values():
        assert state.instances == {}
    for o in w.outcomes():
        if o.journey_id is not None and o.node_id is not None:
            assert o.node_id in w.journey_of(o.journey_id, o.journey_version or 0).nodes, o
    migrated = w.outcomes("instance_migrated")
    for o in migrated:
        assert o.journey_version == 2
        assert o.attributes["from_version"] == 1
        assert v2.migrate[0].nodes[o.attributes["from_node"]] == o.node_id


# ----------------------------------------------------------------------------- every run ends


@settings(max_examples=examples(80), deadline=None)
@given(TWO, scripts(entry_events=ENTRIES))
def test_every_run_ends_when_every_wait_has_an_end(
    js: tuple[Journey, Journey], script: Script
) -> None:
    w = World(list(js))
    w.play(script)
    w.drain()
    for state in w.states.values():
        assert state.instances == {}
        assert state.wake_at is None
        assert all(m.timer_at is None for m in state.messages.values())
    entered = Counter(o.instance_id for o in w.outcomes("journey_entered"))
    exited = Counter(o.instance_id for o in w.outcomes("journey_exited"))
    assert entered == exited
    assert set(entered.values()) <= {1}


@settings(max_examples=examples(30), deadline=None)
@given(TWO, scripts(entry_events=ENTRIES, max_actions=0))
def test_the_simulator_runs_to_quiescence(js: tuple[Journey, Journey], script: Script) -> None:
    inputs = []
    for u, prof in enumerate(script.users):
        for k, ev in enumerate(("go", "ping", "go2", "buy", "ping")):
            at = script.base + (u * 7 + k * 13) * MIN
            inputs.append(UserEvent(f"e{u}-{k}", f"u{u}", ev, at, {"x": 6 + k}, prof))
    result = Simulator(list(js)).run(inputs)
    for state in result.states.values():
        assert state.instances == {}
        assert state.wake_at is None
    entered = {o.instance_id for o in result.outcomes if o.type == "journey_entered"}
    exited = {o.instance_id for o in result.outcomes if o.type == "journey_exited"}
    assert entered == exited


# ----------------------------------------------------------------------------- quiet hours


@st.composite
def quiet_pair(draw: st.DrawFn) -> tuple[Journey, Journey]:
    qh = draw(quiet_hours())
    settings_ = {"quiet_hours": qh}
    return (
        draw(journeys("a", "go", settings=settings_)),
        draw(journeys("b", "go2", settings=settings_)),
    )


@settings(max_examples=examples(120), deadline=None)
@given(quiet_pair(), scripts(entry_events=ENTRIES, phone=True))
def test_no_marketing_send_inside_quiet_hours(js: tuple[Journey, Journey], script: Script) -> None:
    w = World(list(js))
    w.play(script)
    w.drain()
    assert_no_send_in_quiet_hours(w, script)
    # and a deferred send goes out at the end of the window, not later
    for o in w.outcomes("message_deferred"):
        assert o.attributes["reason"] == "quiet_hours"


# ----------------------------------------------------------------------------- frequency cap


@st.composite
def capped_pair(draw: st.DrawFn) -> tuple[tuple[Journey, Journey], int, int]:
    cap_max = draw(st.integers(1, 3))
    per = draw(st.sampled_from(["1h", "1d"]))
    settings_ = {"frequency_cap": {"max": cap_max, "per": per}}
    js = (
        draw(journeys("a", "go", settings=settings_)),
        draw(journeys("b", "go2", settings=settings_)),
    )
    return js, cap_max, HOUR if per == "1h" else DAY


@settings(max_examples=examples(120), deadline=None)
@given(capped_pair(), scripts(entry_events=ENTRIES, phone=True, max_actions=40))
def test_frequency_cap_is_never_exceeded(
    capped: tuple[tuple[Journey, Journey], int, int], script: Script
) -> None:
    js, cap_max, per = capped
    w = World(list(js))
    # more entries: every event re-enters where the journey allows it
    w.play(script)
    w.drain()
    by_user: dict[str, list[int]] = defaultdict(list)
    for o in w.outcomes("message_sent"):
        if o.journey_id is None or "fallback_of" in o.attributes:
            continue  # HELP answers; a fallback SMS replaces its RCS, it doesn't add to it
        journey = next(j for j in js if j.id == o.journey_id)
        if not is_marketing(journey, o.node_id):
            continue  # the cap governs marketing sends only (utility messages pass)
        by_user[o.user_id].append(o.ts)
    for times in by_user.values():
        times.sort()
        for i, t in enumerate(times):
            window = [u for u in times[: i + 1] if u > t - per]
            assert len(window) <= cap_max, (times, cap_max, per)


def test_frequency_cap_with_many_entries() -> None:
    """Busy users: one event a minute into two capped journeys for a day."""
    text = {
        "version": 1,
        "entry": {"reentry": "always"},
        "settings": {"frequency_cap": {"max": 3, "per": "1h"}},
        "start": "s",
        "nodes": {
            "s": {"type": "send", "channel": "sms", "text": "hi", "next": "w"},
            "w": {"type": "wait", "duration": "7m", "next": "s2"},
            "s2": {"type": "send", "channel": "sms", "text": "again", "next": "end"},
            "end": {"type": "exit"},
        },
    }
    a = Journey.model_validate({**text, "id": "a", "entry": {"event": "go", "reentry": "always"}})
    b = Journey.model_validate({**text, "id": "b", "entry": {"event": "go2", "reentry": "always"}})
    engine = Engine([a, b])
    state = engine.new_state("u")
    sent: list[int] = []
    base = 1_767_614_400_000
    for k in range(24 * 60 // 5):
        at = base + k * 5 * MIN
        ev = UserEvent(f"e{k}", "u", "go" if k % 2 else "go2", at, {}, {"phone": PHONE})
        state, eff = engine.advance(state, ev, at)
        sent += [o.ts for o in eff if isinstance(o, Outcome) and o.type == "message_sent"]
    sent.sort()
    assert len(sent) >= 24 * 3 - 3
    for i, t in enumerate(sent):
        assert sum(1 for u in sent[: i + 1] if u > t - HOUR) <= 3


# ----------------------------------------------------------------------------- split shares


def split_journey(weights: list[int]) -> Journey:
    return Journey.model_validate(
        {
            "id": "sp",
            "version": 1,
            "entry": {"event": "go"},
            "start": "s",
            "nodes": {
                "s": {
                    "type": "split",
                    "variants": [
                        {"name": f"v{i}", "weight": w, "next": "end"} for i, w in enumerate(weights)
                    ],
                },
                "end": {"type": "exit"},
            },
        }
    )


def test_split_70_30_over_10k_users() -> None:
    engine = Engine([split_journey([70, 30])])
    got: Counter[str] = Counter()
    for i in range(10_000):
        state = engine.new_state(f"user-{i}")
        _, eff = engine.advance(state, UserEvent("e", state.user_id, "go", 0), 0)
        (v,) = [
            o.attributes["variant"]
            for o in eff
            if isinstance(o, Outcome) and o.type == "node_entered" and o.node_id == "s"
        ]
        got[v] += 1
    assert abs(got["v0"] / 10_000 - 0.70) <= 0.02
    assert abs(got["v1"] / 10_000 - 0.30) <= 0.02


@settings(max_examples=12, deadline=None, derandomize=True)
@given(
    st.lists(st.integers(1, 10), min_size=2, max_size=4),
    st.text("abcdefghijklmnop-", min_size=1, max_size=8),
)
def test_split_shares_follow_the_weights(weights: list[int], prefix: str) -> None:
    from engine.core.context import Step
    from engine.core.nodes import split_variant
    from engine.core.state import Instance

    journey = split_journey(weights)
    engine = Engine([journey])
    node = journey.nodes["s"]
    n = 10_000
    counts = Counter()
    for i in range(n):
        state = engine.new_state(f"{prefix}{i}")
        inst = Instance("i", "sp", 1, "s", 0, {}, {})
        step = Step(engine.catalog, engine.config, state, 0)
        counts[split_variant(step, inst, node)] += 1  # type: ignore[arg-type]
    total = sum(weights)
    for i, wgt in enumerate(weights):
        assert abs(counts[i] / n - wgt / total) <= 0.02, (weights, counts)
