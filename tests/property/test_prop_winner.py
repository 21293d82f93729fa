"""Properties of splits that pick their winner: a decision never changes once made, and
entrants before its effective time split by hash (after it, everyone takes the winner)."""

from __future__ import annotations

from hypothesis import example, given, settings
from hypothesis import strategies as st
from prop_world import examples

from engine.core.effects import Outcome
from engine.core.engine import Engine
from engine.core.experiments import Experiments
from engine.core.ids import bucket
from engine.core.inputs import UserEvent
from engine.core.winner import SplitDecision, decided_variant
from engine.errors import InputError
from engine.journey.model import SplitNode
from tests.experiment_log import DAY_MS, HOUR_MS, START_MS, journey

KEY = ("pick-best", 1, "pick")
JOURNEY = journey(min_users=5, after="1d")


def hashed(user: str) -> str:
    return "A" if bucket("split", user, "pick-best", "pick") * 100 < 50 else "B"


# A run: when it took the split (ms after START), its variant, and whether (and how much
# later) it converted.
runs = st.lists(
    st.tuples(
        st.integers(0, 4 * DAY_MS),
        st.sampled_from(["A", "B"]),
        st.none() | st.integers(1, DAY_MS),
    ),
    min_size=1,
    max_size=120,
)


def outcomes(spec: list[tuple[int, str, int | None]]) -> list[Outcome]:
    out = []
    for i, (at, variant, converts) in enumerate(spec):
        iid = f"i{i}"
        entered = Outcome(f"n{i}", "node_entered", START_MS + at, f"u{i}", "pick-best", 1, iid,
                          "pick", attributes={"variant": variant})  # fmt: skip
        out.append(entered)
        if converts is not None:
            converted = Outcome(f"g{i}", "goal_converted", START_MS + at + converts, f"u{i}",
                                "pick-best", 1, iid, None, attributes={"event": "buy"})  # fmt: skip
            out.append(converted)
    return sorted(out, key=lambda o: o.ts)


# 20 runs of each variant in the first day: only B's convert.
CLEAR = [(i * HOUR_MS, "A", None) for i in range(20)]
CLEAR += [(i * HOUR_MS, "B", 60_000) for i in range(20)]


@settings(max_examples=examples(80), deadline=None)
@given(
    runs,
    st.lists(st.integers(0, 8 * DAY_MS), min_size=1, max_size=12),
    st.sampled_from(["A", "B"]),
    st.integers(-HOUR_MS, HOUR_MS),
)
@example(CLEAR, [DAY_MS + HOUR_MS, 3 * DAY_MS], "A", 0).via("B wins, A is refused")
@example(CLEAR, [DAY_MS + HOUR_MS], "B", 1).via("B wins, B later is refused")
def test_a_decision_never_changes_once_made(
    spec: list[tuple[int, str, int | None]], looks: list[int], variant: str, shift: int
) -> None:
    exps = Experiments.of([JOURNEY])
    engine = Engine([JOURNEY])
    feed = outcomes(spec)
    made: list[SplitDecision] = []
    for upto in sorted(looks):
        # observe everything before ``upto`` (what due() asks), then look
        while feed and feed[0].ts < START_MS + upto:
            exps.observe(feed.pop(0))
        made += exps.due(START_MS + upto)
        if made:
            assert exps.decision(KEY) == made[0]
    assert len(made) <= 1
    if spec == CLEAR:
        assert [x.variant for x in made] == ["B"]
    if not made:
        return
    (d,) = made
    assert engine.apply_decision(d) is True
    assert engine.apply_decision(d) is False
    # Any other decision for the split is refused, and the first one stays.
    other = SplitDecision(
        *KEY,
        variant=variant,
        metric="conversion",
        decided_at=d.decided_at,
        effective_at=d.effective_at + shift,
        first_entry_at=d.first_entry_at,
        min_users=5,
        after_ms=DAY_MS,
    )
    if other.same_as(d):
        assert engine.apply_decision(other) is False
    else:
        try:
            engine.apply_decision(other)
        except InputError as exc:
            assert exc.reason == "conflicting_decision"
        else:
            raise AssertionError("a second decision was accepted")
    assert engine.catalog.decisions[KEY] is d
    # Later outcomes and looks change nothing.
    for o in feed:
        exps.observe(o)
    assert exps.due(START_MS + 30 * DAY_MS) == []
    assert exps.decision(KEY) is d


@settings(max_examples=examples(60), deadline=None)
@given(
    st.integers(0, 10 * DAY_MS),
    st.sampled_from(["A", "B"]),
    st.lists(
        st.tuples(st.text("abcdefgh0123", min_size=1, max_size=8), st.integers(0, 20 * DAY_MS)),
        min_size=1,
        max_size=30,
        unique_by=lambda x: x[0],
    ),
)
def test_entrants_before_the_effective_time_split_by_hash(
    effective: int, winner: str, entrants: list[tuple[str, int]]
) -> None:
    engine = Engine([JOURNEY])
    at = START_MS + effective
    engine.apply_decision(SplitDecision(*KEY, winner, "conversion", at, at, START_MS, 5, DAY_MS))
    node = JOURNEY.nodes["pick"]
    assert isinstance(node, SplitNode)
    for user, when in entrants:
        now = START_MS + when
        state = engine.new_state(user)
        event = UserEvent(f"{user}-in", user, "signed_up", now, profile={"phone": "+14155550100"})
        _, effects = engine.advance(state, event, now)
        (entry,) = [
            e
            for e in effects
            if isinstance(e, Outcome) and e.type == "node_entered" and e.node_id == "pick"
        ]
        if now < at:
            assert entry.attributes == {"variant": hashed(user)}
            assert decided_variant(engine.catalog.decisions, KEY, node, now) is None
        else:
            assert entry.attributes == {"variant": winner, "winner": True}
