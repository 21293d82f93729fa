"""The commit boundary (``Checkpoint.commit``) and faust-streaming #606.

#606: faust's ack bookkeeping (``Consumer._new_offset``) can commit an offset past a
message that is still being processed. The runtime does not go through it: its input
topics are subscribed with acks disabled and ``Checkpoint.commit`` commits the offsets it
tracked itself, after the effects and the state are acknowledged, in that order.
"""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

import pytest

from engine.stream.common.checkpoint import Checkpoint


class FakeBackend:
    def __init__(self) -> None:
        self.calls: list[str] = []
        self.committed: dict[tuple[str, int], int] = {}
        self.changelog: list[asyncio.Future[Any]] = []

    def store_put(self, partition: int, key: bytes, value: bytes | None) -> None:
        self.calls.append(f"store {key.decode()}")

    async def send_changelog(self, partition: int, key: bytes, value: bytes | None) -> Any:
        self.calls.append(f"changelog {key.decode()}")
        fut: asyncio.Future[Any] = asyncio.get_running_loop().create_future()
        self.changelog.append(fut)
        return fut

    async def commit_offsets(self, offsets: dict[tuple[str, int], int]) -> bool:
        self.calls.append("commit")
        self.committed.update(offsets)
        return True

    def assigned(self) -> set[tuple[str, int]]:
        return {("in", 0), ("in", 1)}


class Stop(Exception):
    pass


def stop(reason: str, **fields: Any) -> None:
    raise Stop(reason)


async def test_commit_runs_effects_then_state_then_offsets() -> None:
    backend = FakeBackend()
    cp = Checkpoint(backend=backend, on_fail=stop)
    loop = asyncio.get_running_loop()
    effect: asyncio.Future[Any] = loop.create_future()
    cp.add_effect("send m1", effect)
    cp.put_state(b"u1", 0, b"{}")
    cp.processed("in", 0, 41)
    cp.processed("in", 0, 42)
    cp.processed("in", 7, 3)  # a partition no longer assigned: not committed

    commit = asyncio.create_task(cp.commit("test"))
    await asyncio.sleep(0.05)
    assert backend.calls == []  # 1. waiting for the effect: no state, no offsets yet
    effect.set_result("ok")
    await asyncio.sleep(0.05)
    assert backend.calls == ["changelog u1", "store u1"]  # 2. state, awaiting its ack
    for f in backend.changelog:
        f.set_result("ok")
    await commit
    assert backend.calls == ["changelog u1", "store u1", "commit"]  # 3. offsets last
    assert backend.committed == {("in", 0): 43}
    assert not cp.dirty and not cp.effects and not cp.offsets


async def test_an_unacknowledged_effect_stops_before_anything_is_committed() -> None:
    backend = FakeBackend()
    cp = Checkpoint(backend=backend, on_fail=stop)
    failed: asyncio.Future[Any] = asyncio.get_running_loop().create_future()
    failed.set_exception(RuntimeError("broker said no"))
    cp.add_effect("send m1", failed)
    cp.put_state(b"u1", 0, b"{}")
    cp.processed("in", 0, 1)
    with pytest.raises(Stop, match="effect_not_acknowledged"):
        await cp.commit("test")
    assert backend.calls == []  # no state written, no offset committed


async def test_processing_waits_for_a_running_commit() -> None:
    cp = Checkpoint(backend=FakeBackend(), on_fail=stop)
    gate: asyncio.Future[Any] = asyncio.get_running_loop().create_future()
    cp.add_effect("send", gate)
    cp.processed("in", 0, 1)
    commit = asyncio.create_task(cp.commit("test"))
    await asyncio.sleep(0.01)
    assert cp.lock.locked()  # the agent takes this lock around every input
    gate.set_result(None)
    await commit
    assert not cp.lock.locked()


def test_faust_606_is_present_in_faust_and_bypassed_by_the_runtime(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from faust.transport.consumer import Consumer

    class Acks:
        pass

    def new_offset(committed: int | None, acked: list[int]) -> int | None:
        st: Any = Acks()
        st._acked = {"tp": list(acked)}
        st._gap = {"tp": []}
        st._committed_offset = {"tp": committed}
        st._acked_index = {"tp": set(acked)}
        return Consumer._new_offset(st, "tp")  # type: ignore[arg-type]

    # Offset 2585 is still being processed (not acked) while 2586..2589 are done.
    # A correct answer is None (nothing committable); faust 0.15.3 says 2590, i.e. 2585
    # would be skipped on restart. Same with nothing committed yet (offset 0 in flight).
    skipped = {new_offset(2585, [2586, 2587, 2588, 2589]), new_offset(None, [1, 2, 3])}
    assert skipped <= {None, 2590, 4}

    from engine.stream.common.settings import Settings
    from engine.stream.worker.service import build_worker

    jdir = tmp_path / "j"
    jdir.mkdir()
    (jdir / "j.yaml").write_text(
        "id: j\nversion: 1\nname: j\nentry: {event: e}\nstart: hi\nnodes:\n"
        "  hi: {type: send, channel: sms, text: Hi, next: done}\n  done: {type: exit}\n"
    )
    monkeypatch.chdir(tmp_path)
    settings = Settings.from_env_and_args(env={"JOURNEYS_DIR": str(jdir)})
    app = build_worker(settings)
    (agent,) = app.agents.values()
    assert agent.channel.acks is False  # faust never tracks or commits these offsets
    assert set(agent.channel.topics) == set(settings.topics.engine_inputs())


def test_gateway_forgets_old_dedupe_records_only_when_nothing_is_pending() -> None:
    import orjson

    from engine.stream.gateway.claims import Claims

    records = {
        b"old": {"p": 0, "st": "sent", "at": 1_000},
        b"old-pending": {"p": 0, "st": "sent", "at": 1_000, "sched": [[5, {}]]},
        b"old-elsewhere": {"p": 3, "st": "sent", "at": 1_000},
        b"new": {"p": 0, "st": "sent", "at": 9_000},
        b"old-queued": {"p": 0, "st": "queued", "at": 1_000},  # not sent yet
    }

    class Items:
        def items(self) -> Any:
            return [(k, orjson.dumps(v)) for k, v in records.items()]

    cp = Checkpoint(backend=FakeBackend(), on_fail=stop)
    claims = Claims(Items(), cp)
    assert [key for key, _rec in claims.sweep({0, 1}, older_than_ms=5_000)] == [b"old"]
    assert cp.dirty == {b"old": (0, None)}  # a tombstone, written at the next checkpoint
