"""Tools around the services, not part of them: ``journeys produce`` (a file onto Kafka),
``journeys outcomes`` (the outcomes topic as JSON lines), the stream benchmarks
(``python -m engine.stream.devtools.bench``) and the harness that runs the services as
child processes for the integration tests and the benchmarks."""
