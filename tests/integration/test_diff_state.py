"""``journeys diff --state kafka`` counts the runs in flight from the worker's state
changelog on the real broker.

A worker (child process, its own app id and topics) runs version 1 of a journey whose
users wait an hour in one of two nodes; events are produced; once the worker's
checkpoints have written every user's state to ``{app id}-user-states-changelog``, the
diff against a version 2 that maps one waiting node and drops the other is run on it: the
unmapped removed node is flagged with its count, and the mapped one says where its runs go.
"""

from __future__ import annotations

import asyncio
import time
from pathlib import Path
from typing import Any

import orjson
import pytest

from engine import cli
from engine.durations import format_ts
from engine.stream.devtools.harness import StreamEnv

V1 = """
id: plans
version: 1
entry: {event: signed_up}
settings: {default_timezone: UTC}
start: by_plan
nodes:
  by_plan:
    type: branch
    cases:
      - {when: "event.plan == 'pro'", next: wait_pro}
    default: wait_free
  wait_pro: {type: wait, duration: 1h, next: done}
  wait_free: {type: wait, duration: 1h, next: done}
  done: {type: exit}
"""

V2 = """
id: plans
version: 2
entry: {event: signed_up}
settings: {default_timezone: UTC}
migrate:
  - from_version: 1
    nodes: {wait_pro: hold_pro}
start: hold_pro
nodes:
  hold_pro: {type: wait, duration: 2h, next: done}
  done: {type: exit}
"""

PRO, FREE = 3, 4


def _diff(*argv: str) -> tuple[int, dict[str, Any]]:
    """``journeys diff --json`` in this process (its own thread: it runs its own loop)."""
    import contextlib
    import io

    out = io.StringIO()
    with contextlib.redirect_stdout(out):
        code = cli.main(["diff", *argv, "--json"])
    return code, orjson.loads(out.getvalue()) if out.getvalue() else {}


@pytest.mark.timeout(150)
async def test_diff_counts_the_runs_in_flight_from_the_changelog(
    kafka_bootstrap: str, tmp_path: Path
) -> None:
    old, new = tmp_path / "old", tmp_path / "new"
    old.mkdir()
    new.mkdir()
    (old / "plans.yaml").write_text(V1)
    (new / "plans.yaml").write_text(V1)
    (new / "plans-v2.yaml").write_text(V2)
    env = StreamEnv(kafka_bootstrap, tmp_path, old, partitions=2)
    try:
        worker = env.start_worker()
        await worker.wait_for("worker_ready", 60)
        now = int(time.time() * 1000)
        events = [
            {"event_id": f"e{i}", "user_id": f"u{i}", "name": "signed_up", "ts": format_ts(now),
             "properties": {"plan": "pro" if i < PRO else "free"}}
            for i in range(PRO + FREE)
        ]
        topic = env.settings().topics.user_events
        await env.produce([(topic, e["user_id"].encode(), orjson.dumps(e)) for e in events])

        app_id = env.env()["JOURNEYS_APP_ID"]
        argv = [str(old), str(new), "--state", "kafka", "--bootstrap", kafka_bootstrap,
                "--app-id", app_id]
        deadline = time.monotonic() + 60
        report: dict[str, Any] = {}
        while time.monotonic() < deadline:
            code, report = await asyncio.to_thread(_diff, *argv)
            if report.get("state", {}).get("runs") == PRO + FREE:
                break
            await asyncio.sleep(1.0)
        assert report["state"]["runs"] == PRO + FREE, worker.tail(20)
        assert report["state"]["source"] == f"{app_id}-user-states-changelog"
        assert report["state"]["users"] == PRO + FREE
        assert code == cli.EXIT_PROBLEMS

        (j,) = report["journeys"]
        flags = {f["code"]: f for f in j["findings"]}
        free = flags["unmapped_removed"]
        assert (free["level"], free["node"], free["runs"]) == ("warning", "wait_free", FREE)
        rows = {r["node"]: r for r in j["in_flight"]}
        assert (rows["wait_free"]["runs"], rows["wait_free"]["fate"]) == (FREE, "stay")
        assert (rows["wait_pro"]["runs"], rows["wait_pro"]["fate"]) == (PRO, "move")
        assert (rows["wait_pro"]["to_version"], rows["wait_pro"]["to_node"]) == (2, "hold_pro")

        # Without version 1 in NEW, all of them are stranded, the mapped ones too.
        (new / "plans.yaml").unlink()
        code, report = await asyncio.to_thread(_diff, *argv)
        (j,) = report["journeys"]
        stranded = {f["node"]: f["runs"] for f in j["findings"] if f["code"] == "stranded"}
        assert stranded == {"wait_free": FREE, "wait_pro": PRO}
        assert worker.count("dead_letter") == 0

        # Another app id has no changelog: said, with what to pass.
        code, _ = await asyncio.to_thread(_diff, str(old), str(new), "--state", "kafka",
                                          "--bootstrap", kafka_bootstrap, "--app-id",
                                          f"{app_id}-nope")
        assert code == cli.EXIT_USAGE
    finally:
        await env.aclose()
