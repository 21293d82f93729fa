"""The timer index (engine/stream/common/timers.py) at scale: ordering, stale and replaced
entries, dropped partitions, rebuild from the table; checked against a plain dict model."""

from __future__ import annotations

import itertools
import random
import time
from collections.abc import ItemsView, Iterator

from engine.core import wire
from engine.core.state import UserState
from engine.stream.common.timers import Due, TimerIndex
from engine.stream.worker.wakes import pending_wakes

N = 50_000


def drain(index: TimerIndex, now: int, partitions: list[int] | None = None) -> list[Due]:
    return list(index.pop_due(now, partitions))


def test_pops_every_due_timer_once_in_time_order_per_partition() -> None:
    rng = random.Random(7)
    index = TimerIndex()
    model: dict[str, tuple[int, int]] = {}
    for i in range(N):
        user, part, at = f"u{i}", i % 4, rng.randrange(1_000_000)
        index.schedule(user, part, at, "tok")
        model[user] = (part, at)
    assert len(index) == N
    assert index.next_due() == min(at for _p, at in model.values())
    popped: list[Due] = []
    previous = -1
    for now in [*range(0, 1_000_000, 50_000), 2**62]:  # the ticker, in steps
        got = drain(index, now)
        assert all(previous < d.at <= now for d in got), "early, or held back past its step"
        previous = now
        for part in range(4):  # within one step, a partition's timers come earliest first
            times = [d.at for d in got if d.partition == part]
            assert times == sorted(times)
        popped += got
    assert sorted((d.user_id, d.partition, d.at) for d in popped) == sorted(
        (u, p, at) for u, (p, at) in model.items()
    )
    assert len(index) == 0 and index.next_due() is None
    assert drain(index, 2**62) == []


def test_a_moved_or_cleared_timer_fires_only_at_its_latest_time() -> None:
    rng = random.Random(11)
    index = TimerIndex()
    model: dict[str, int | None] = {}
    for _ in range(N):
        user = f"u{rng.randrange(5_000)}"
        at = None if rng.random() < 0.1 else rng.randrange(100_000)
        index.schedule(user, 0, at, "")
        model[user] = at
    live = {u: at for u, at in model.items() if at is not None}
    assert len(index) == len(live)
    assert {d.user_id: d.at for d in index.pending()} == live
    got = drain(index, 50_000)
    assert {d.user_id: d.at for d in got} == {u: at for u, at in live.items() if at <= 50_000}
    assert len(got) == len({d.user_id for d in got}), "a user woken twice"
    rest = drain(index, 2**62)
    assert {d.user_id: d.at for d in rest} == {u: at for u, at in live.items() if at > 50_000}


def test_the_same_time_again_is_one_entry_and_a_popped_user_can_be_rearmed() -> None:
    index = TimerIndex()
    for _ in range(3):
        index.schedule("ann", 1, 100, "t")
    assert [(d.user_id, d.at) for d in drain(index, 100)] == [("ann", 100)]
    index.schedule("ann", 1, 100, "t")  # the same time, after it was handed out: re-armed
    assert [(d.user_id, d.at) for d in drain(index, 100)] == [("ann", 100)]


def test_requeue_puts_back_unless_the_user_has_a_newer_timer() -> None:
    index = TimerIndex()
    index.schedule("ann", 0, 10, "")
    index.schedule("bob", 0, 10, "")
    ann, bob = drain(index, 10)
    index.schedule("bob", 0, 500, "")  # bob moved on while his wake-up was being produced
    index.requeue(ann)
    index.requeue(bob)
    assert [(d.user_id, d.at) for d in drain(index, 2**62)] == [("ann", 10), ("bob", 500)]


def test_only_the_given_partitions_pop() -> None:
    index = TimerIndex()
    for p in range(4):
        index.schedule(f"u{p}", p, 5, "")
    assert sorted(d.partition for d in drain(index, 10, [1, 3])) == [1, 3]
    assert sorted(d.partition for d in drain(index, 10)) == [0, 2]


def test_dropped_partitions_lose_their_timers_and_others_keep_theirs() -> None:
    index = TimerIndex()
    for i in range(N):
        index.schedule(f"u{i}", i % 8, i, "")
    index.drop_partitions({0, 1, 2, 3})
    assert len(index) == N // 2
    assert sorted(index.partitions()) == [4, 5, 6, 7]
    due = drain(index, 2**62)
    assert len(due) == N // 2 and {d.partition for d in due} == {4, 5, 6, 7}


def _table(n: int, partitions: int) -> dict[bytes, bytes]:
    table = {}
    for i in range(n):
        state = UserState(f"u{i}", clock=1)
        state.wake_at = None if i % 10 == 0 else 1_000 + (i * 7919) % n
        table[state.user_id.encode()] = wire.state_record(i % partitions, state)
    return table


def test_rebuild_from_the_table_replaces_the_rebuilt_partitions_only() -> None:
    table = _table(N, 4)
    index = TimerIndex()
    index.schedule("old-in-0", 0, 1, "")  # gone after the rebuild of partition 0
    index.schedule("kept-in-9", 9, 1, "")  # another partition, untouched
    n = index.rebuild({0, 1}, pending_wakes(table.items()))
    expect = {
        u.decode(): wire.state_wake_at(v)
        for u, v in table.items()
        if wire.state_wake_at(v)[0] in (0, 1) and wire.state_wake_at(v)[1] is not None
    }
    assert n == len(expect) == len(index) - 1
    got = drain(index, 2**62)
    assert {d.user_id: (d.partition, d.at) for d in got if d.user_id != "kept-in-9"} == expect
    assert "old-in-0" not in {d.user_id for d in got}
    assert "kept-in-9" in {d.user_id for d in got}


def test_rebuild_shares_the_tables_key_objects() -> None:
    table = _table(1_000, 1)
    index = TimerIndex()
    index.rebuild({0}, pending_wakes(table.items()))
    keys = {id(k) for k in table}
    # white box: the index holds the table's own key objects, not copies
    assert all(id(key) in keys for _at, key in index._parts[0].heap)


def test_pending_wakes_skips_unreadable_values_and_tombstones() -> None:
    table = _table(10, 2)
    table[b"broken"] = b"{not json"
    table[b"gone"] = None  # type: ignore[assignment]
    found = list(pending_wakes(table.items()))
    assert len(found) == 9  # u0 has no timer
    assert all(isinstance(k, bytes) and tok == "" for k, _p, _at, tok in found)


# --------------------------------------------------------------------------- the horizon

H = 3_600_000


def test_with_a_horizon_only_the_timers_due_within_it_are_held() -> None:
    table = {
        f"u{i}".encode(): wire.state_record(0, _waiting(f"u{i}", i * 60_000)) for i in range(200)
    }
    index = TimerIndex(horizon_ms=H)
    pending = index.rebuild({0}, pending_wakes(table.items()), now_ms=0)
    assert pending == 200  # all found in the table
    assert len(index) == 61  # held: due up to one horizon (0 .. 60 min)
    assert index.bound == H


def test_the_scan_brings_in_the_next_horizon_and_nothing_twice() -> None:
    table = {
        f"u{i}".encode(): wire.state_record(0, _waiting(f"u{i}", i * 60_000)) for i in range(200)
    }
    index = TimerIndex(horizon_ms=H)
    index.rebuild({0}, pending_wakes(table.items()), now_ms=0)
    woken = [d.at for d in drain(index, H // 2)]  # the first half hour is handed out
    after = index.bound or 0
    index.extend(H // 2 + H)
    added = index.add_found(pending_wakes(table.items()), after)
    assert added == 30  # minutes 61 .. 90; the first 30 were handed out: not again
    woken += [d.at for d in drain(index, 10 * H)]
    assert woken == [i * 60_000 for i in range(91)]


def test_a_timer_scheduled_past_the_bound_is_held_up_to_a_horizon_further() -> None:
    index = TimerIndex(horizon_ms=H)
    index.rebuild({0}, [], now_ms=0)
    index.schedule("soon", 0, H + 1, "")  # past the bound: the table may not have it yet
    index.schedule("later", 0, 2 * H + 1, "")  # past bound + horizon: the table's alone
    assert {d.user_id for d in index.pending()} == {"soon"}
    index.schedule("soon", 0, 3 * H, "")  # moved far: its held entry is stale now
    assert len(index) == 0 and drain(index, 10 * H) == []


def test_the_ticker_scan_walks_a_changing_memory_table_in_chunks() -> None:
    from engine.stream.common.settings import Settings
    from engine.stream.worker import wakes
    from engine.stream.worker.wakes import WakeTicker

    class Store:  # faust's memory store: a dict in .data, items() a view over the store
        def __init__(self) -> None:
            self.data: dict[bytes, bytes] = {}

        def __iter__(self) -> Iterator[bytes]:
            return iter(self.data)

        def __getitem__(self, key: bytes) -> bytes:
            return self.data[key]

        def __len__(self) -> int:
            return len(self.data)

        def items(self) -> ItemsView[bytes, bytes]:
            return ItemsView(self)  # type: ignore[arg-type]

    store = Store()
    n = 3 * wakes.SCAN_CHUNK + 17
    base = int(time.time() * 1000) + H + 60_000  # past the bound the rebuild sets
    for i in range(n):
        store.data[f"u{i}".encode()] = wire.state_record(i % 2, _waiting(f"u{i}", base + i))
    index = TimerIndex()

    async def send(*_a: object) -> object:
        raise AssertionError("nothing is due")

    ticker = WakeTicker(Settings(), index, {}, send)
    ticker.rebuild({0, 1}, store.items())
    assert len(index) == 0 and index.bound is not None
    now = index.bound - H // 2  # half a horizon before the bound: the scan starts
    steps = 0
    while steps == 0 or ticker._scan is not None:
        ticker.scan_step(now)
        store.data[f"new{steps}".encode()] = b"{}"  # the table grows between chunks
        steps += 1
    assert steps == 4
    assert len(index) == n  # every table timer up to the new bound is held now


def test_the_scan_of_a_plain_dict_table_survives_inserts_between_chunks() -> None:
    from engine.stream.worker import wakes

    table = {f"u{i}".encode(): b"{}" for i in range(2 * wakes.SCAN_CHUNK)}
    scan = wakes.table_snapshot(table.items())  # faust's memory store: a dict's items
    first = list(itertools.islice(scan, wakes.SCAN_CHUNK))
    table[b"new"] = b"{}"  # would break a live dict iterator
    rest = list(scan)
    assert len(first) + len(rest) == 2 * wakes.SCAN_CHUNK


def _waiting(user: str, at: int) -> UserState:
    state = UserState(user, clock=1)
    state.wake_at = at
    return state
