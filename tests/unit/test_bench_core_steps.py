"""R2's measurement (engine.bench.core_steps) measures what it says: the figures, not
their values (speed lives in benchmarks that print, never in tests)."""

from __future__ import annotations

import orjson

from engine.bench.core_steps import _records, journeys, make_lines, measure
from engine.core.engine import Engine

KEYS = {
    "users", "lines", "repeat", "steps_per_s", "floor_per_s", "ratio", "target", "met",
    "wall_ratio", "step_us", "floor_us", "outcomes_per_step", "effects_per_step",
    "records_per_step",
}  # fmt: skip


def test_measure_returns_every_figure_for_the_mix() -> None:
    r = measure(users=8, repeat=1)
    assert set(r) == KEYS
    assert r["lines"] == len(make_lines(8)) == 50  # 6 lines a user, a 7th for 1 in 4
    assert r["steps_per_s"] > 0 and r["floor_per_s"] > 0
    assert abs(r["ratio"] - r["steps_per_s"] / r["floor_per_s"]) < 0.002  # both rounded
    assert r["met"] == (r["ratio"] >= r["target"])
    assert r["outcomes_per_step"] > 1 and r["records_per_step"] >= r["outcomes_per_step"]


def test_the_floor_dumps_what_the_steps_write() -> None:
    engine = Engine(journeys())
    lines = make_lines(4)
    records, outcomes, _ = _records(engine, lines)
    written = [d for per_line in records for d in per_line]
    kinds = {d.get("type") for d in written if "outcome_id" in d}
    # the mix enters, sends a card and an SMS, sees a delivery and a read, and exits
    assert {"journey_entered", "message_sent", "message_delivered", "message_read"} <= kinds
    assert {"journey_exited", "node_entered"} <= kinds
    assert sum("outcome_id" in d for d in written) == outcomes
    assert any(d.get("type") == "send" for d in written)  # send requests count too
    assert all(orjson.loads(orjson.dumps(d)) == d for d in written)
