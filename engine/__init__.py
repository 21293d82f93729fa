"""Journey orchestration engine: journeys as graph files, a pure deterministic core,
RCS with SMS fallback, and a Kafka stream runtime."""

__version__ = "0.1.0"
