"""The stream runtime: the engine and the channel gateway on Kafka (faust-streaming + aiokafka).

A thin adapter around :mod:`engine.core`: decode, call the core, carry out the effects,
commit. See ``docs/streaming.md`` for the topology, the commit boundary, durable timers,
the no-duplicate-send guarantee and what was measured.

Entry points (for ``engine.cli``)::

    engine.stream.common.settings.Settings.from_env_and_args(args=None, env=None, **overrides)
    engine.stream.worker.run_worker(settings) -> int            # journeys run
    engine.stream.gateway_service.run_gateway(settings) -> int  # journeys gateway
    engine.stream.devtools.produce.produce_file(settings, path, realtime) -> int   # journeys produce
    engine.stream.devtools.outcomes.print_outcomes(settings, follow) -> int        # journeys outcomes
"""
