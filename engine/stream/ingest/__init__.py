"""``journeys ingest``: an HTTP server that takes Segment-spec (and RudderStack) tracking
calls and writes them to ``journey.user-events`` (docs/ingest.md).

* :mod:`~engine.stream.ingest.segment`: a call -> wire records (pure: no clock, no I/O);
* :mod:`~engine.stream.ingest.config`: write keys, port, profile event, from the
  environment;
* :mod:`~engine.stream.ingest.server`: the aiohttp application (auth, size limits, 200
  only after the broker acknowledged);
* :mod:`~engine.stream.ingest.service`: the process (Kafka producer, signals).
"""
