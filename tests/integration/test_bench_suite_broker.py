"""``python -m engine.bench --quick --only r1`` end to end on the broker: the command runs,
prints its table and writes JSON with every R1 figure. No timing is asserted (speed goals
live in the benchmark's own output, docs/benchmarks.md)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

R1_PARTS = ("passthrough", "worker", "worker_gateway", "two_workers")


def test_the_quick_r1_run_writes_every_figure(kafka_bootstrap: str, tmp_path: Path) -> None:
    out = tmp_path / "bench.json"
    env = {**os.environ, "JOURNEYS_BOOTSTRAP": kafka_bootstrap}
    proc = subprocess.run(
        [sys.executable, "-m", "engine.bench", "--quick", "--only", "r1", "--json", str(out)],
        env=env,
        capture_output=True,
        text=True,
        timeout=110,
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr
    doc = json.loads(out.read_text())
    assert set(doc["results"]) == {"r1"}
    r1 = doc["results"]["r1"]
    assert r1["status"] == "ok", r1["error"]
    result = r1["result"]
    for part in R1_PARTS:
        rate = result[part]["records_per_s" if part == "passthrough" else "inputs_per_s"]
        assert rate > 0, (part, result[part])
    for part in R1_PARTS[1:]:
        # every outcome arrived: the rate is over all of them
        assert result[part]["outcomes"] >= result[part]["expected_outcomes"] > 0
    assert result["two_workers"]["workers"] == 2
    assert all(
        result["ratios"][k] > 0 for k in ("worker", "worker_gateway", "two_workers_over_one")
    )
    figures = {f["figure"]: f for f in result["figures"]}
    assert figures["R1 worker / passthrough"]["target"] == ">= 0.30"
    assert isinstance(figures["R1 worker / passthrough"]["met"], bool)
    # the table on stdout has the same figures
    assert proc.stdout.splitlines()[0].split() == ["figure", "value", "target", "met?"]
    assert "R1 worker + gateway / passthrough" in proc.stdout
