"""The benchmark suite: ``python -m engine.bench`` / ``journeys bench`` (docs/benchmarks.md).

One run on the local broker measures every figure of the throughput issue, prints a table
(figure, value, target, met?) and writes JSON (``--json FILE``).

Interface of a figure module
----------------------------
Each figure lives in its own module of this package and exposes one function::

    def run(opts: BenchOptions) -> dict[str, Any]: ...

``BenchOptions`` is the dataclass in :mod:`engine.bench.options` (bootstrap, users,
partitions, waiting_users, quick, workdir, seed; ``opts.note(msg)`` prints progress to
stderr). ``opts.workdir`` is a fresh, empty directory for that module alone. The events
every module shares are in :mod:`engine.bench.events` (``user_events(opts)``: the same
generated lines for R1 and R2). ``run`` may be synchronous; it starts its own event loop
(``asyncio.run``) if it needs one.

The returned dict must be JSON-serialisable; it is written as is under
``results[<key>]["result"]``. For the table it may carry::

    "figures": [
        {"figure": "R3 lateness p99", "value": 120.0, "unit": "ms",
         "target": "<= 250 ms", "met": True},
        ...
    ]

(``target`` and ``met`` may be ``None`` for a figure without a target). Without
``figures``, the table shows the dict's top-level numbers without a target.

The runner (:mod:`engine.bench.runner`) calls the modules in this order, by key:

=====  =========================  ========
key    module                     owner
=====  =========================  ========
r1     engine.bench.r1            suite: passthrough / worker / worker+gateway, 1 -> 2 workers
r2     engine.bench.core_steps    corefast: core steps/s vs the serialization floor
r3     engine.bench.timers        scale: timer lateness with 1M pending timers
r4     engine.bench.memory        scale: bytes per waiting user (memory store, RocksDB)
r5     engine.bench.restore       scale: restore of 1M users after kill -9
=====  =========================  ========

A module that is not importable shows "not built"; one that raises shows "failed" with
the error, and the other figures still run. (``core_steps`` may expose ``measure(...)``
instead of ``run``: the runner passes it the options its parameters name.)
"""
