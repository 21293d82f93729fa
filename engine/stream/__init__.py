"""The stream runtime: the engine and the channel gateway on Kafka (faust-streaming + aiokafka).

A thin adapter around :mod:`engine.core`: decode, call the core, carry out the effects,
commit. See ``docs/streaming.md`` for the topology, the commit boundary, durable timers,
the no-duplicate-send guarantee and what was measured.

* ``worker/`` -- the engine worker (``journeys run``, ``python -m engine.stream.worker``);
* ``gateway/`` -- the channel gateway (``journeys gateway``, ``python -m engine.stream.gateway``);
* ``common/`` -- what both share: settings, topics, logs, the faust glue, the input feed and
  positions, the checkpoint, the timer index, dead letters, and the one service skeleton
  (``common/service.py``) that the worker and the gateway are configurations of;
* ``devtools/`` -- ``journeys produce`` and ``journeys outcomes``, the benchmarks and the
  test harness;

Every record's bytes come from :mod:`engine.core.wire` (the one wire module).

Entry points (for ``engine.cli``)::

    engine.stream.common.settings.Settings.from_env_and_args(args=None, env=None, **overrides)
    engine.stream.worker.service.run_worker(settings) -> int    # journeys run
    engine.stream.gateway.service.run_gateway(settings) -> int  # journeys gateway
    engine.stream.devtools.produce.produce_file(settings, path, realtime) -> int
    engine.stream.devtools.outcomes.print_outcomes(settings, follow) -> int
"""
