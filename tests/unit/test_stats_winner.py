"""Stats of a split that picks its winner: the decision, or "no clear winner yet" with the
figures and what is missing, the same in `journeys stats`, the service and its table."""

from __future__ import annotations

from typing import Any

import orjson

from engine.core.wire import decode_line
from engine.sim.simulator import Simulator
from engine.stats.aggregate import Aggregator
from engine.stats.table import format_table
from engine.stats.windows import WindowStats
from tests.experiment_log import DAY_MS, START_MS, Experiment, journey, lines


def reports(exp: Experiment, min_users: int = 100, **kw: int) -> list[dict[str, Any]]:
    """The split's ``winner`` part from the aggregator and from the (saved and restored)
    live counters, and the table's winner line."""
    j = journey(min_users)
    result = Simulator([j]).run([decode_line(x) for x in lines(exp)], **kw)
    wire = [o.to_wire() for o in result.outcomes]
    agg = Aggregator()
    agg.add_all(wire)
    (one,) = agg.to_json([j])
    live = WindowStats()
    live.add_all(wire)
    restored = WindowStats.from_state(orjson.loads(orjson.dumps(live.to_state())))
    from_live = restored.report("pick-best", 1, j)["splits"]["pick"]
    (line,) = [x for x in format_table([one]).splitlines() if "winner" in x]
    return [one["splits"]["pick"]["winner"], from_live["winner"], {"line": line}]


def test_a_decided_split_shows_the_decision_and_who_took_it_since() -> None:
    agg, live, table = reports(Experiment())
    assert agg == live
    assert (agg["status"], agg["variant"], agg["decided_at"]) == (
        "chosen", "B", "2026-03-05T09:00:00Z",
    )  # fmt: skip
    assert agg["figures"]["differences"]["B - A"]["ci_low"] > 0
    assert agg["after_decision"] == {"B": 40}
    assert table["line"] == (
        "  split pick winner (conversion): B won on 2026-03-05T09:00:00Z: every new entrant "
        "takes it; 40 entrants took it since"
    )


def test_before_after_the_split_says_how_long_to_go() -> None:
    # Up to two days in: a sign-up every 6 minutes, the last one at exactly two days.
    agg, live, table = reports(Experiment(late_users=0), until=START_MS + 2 * DAY_MS)
    assert agg == live
    assert agg["status"] == "waiting"
    assert agg["missing"]["time"] == "1d"  # the last outcome is at +2d; after is 3d
    assert "no clear winner yet: 1d to go" in table["line"]


def test_too_few_users_says_how_many_are_missing() -> None:
    agg, live, _ = reports(Experiment(), min_users=1000)
    assert agg == live
    assert agg["status"] == "waiting"
    users = {v: f["users"] for v, f in agg["figures"]["variants"].items()}
    assert agg["missing"] == {"users": {v: 1000 - n for v, n in users.items()}}


def test_a_close_race_says_no_clear_winner_yet() -> None:
    agg, live, table = reports(Experiment(rate_a=0.20, rate_b=0.21))
    assert agg == live
    assert agg["status"] == "no clear winner" and agg["missing"] == {}
    diff = agg["figures"]["differences"]["B - A"]
    assert diff["ci_low"] < 0 < diff["ci_high"]
    assert "no variant is clear of every other one; still splitting" in table["line"]
