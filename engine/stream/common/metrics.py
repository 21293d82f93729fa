"""Prometheus metrics of a service process (worker, gateway), on a registry of its own.

One registry per process rather than prometheus_client's global one: tests run several
services in one interpreter, and a metric must not be registered twice. Names follow
Prometheus conventions (``_total`` on counters is added by the client library; seconds
for durations). `deploy/grafana-dashboard.json` draws them.
"""

from __future__ import annotations

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, generate_latest

#: Wake-up lateness and recovery are measured in seconds up to minutes.
LATENESS_BUCKETS = (0.01, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 15.0, 30.0, 60.0, 300.0)
#: Commits and provider calls are milliseconds to seconds.
DURATION_BUCKETS = (0.001, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)


class Metrics:
    def __init__(self) -> None:
        r = self.registry = CollectorRegistry()
        self.inputs = Counter(
            "journeys_inputs", "Input records consumed", ["topic"], registry=r
        )
        self.dead_letters = Counter(
            "journeys_dead_letters", "Records sent to the dead-letter topic", ["reason"], registry=r
        )
        self.consumer_lag = Gauge(
            "journeys_consumer_lag",
            "Records behind the end of each input partition this process owns",
            ["topic", "partition"],
            registry=r,
        )
        self.pending_timers = Gauge(
            "journeys_pending_timers", "Wake-ups (or scheduled receipts) in the timer index",
            registry=r,
        )
        self.wake_lateness = Histogram(
            "journeys_wake_lateness_seconds",
            "How late a wake-up was processed after its time",
            buckets=LATENESS_BUCKETS,
            registry=r,
        )
        self.checkpoint_duration = Histogram(
            "journeys_checkpoint_duration_seconds",
            "Duration of a commit (effects, state, offsets)",
            buckets=DURATION_BUCKETS,
            registry=r,
        )
        self.outcomes = Counter(
            "journeys_outcomes", "Outcomes produced", ["type"], registry=r
        )
        self.provider_latency = Histogram(
            "journeys_provider_latency_seconds",
            "Provider call duration",
            ["provider", "op"],
            buckets=DURATION_BUCKETS,
            registry=r,
        )
        self.provider_errors = Counter(
            "journeys_provider_errors", "Provider calls that failed", ["provider", "reason"],
            registry=r,
        )
        self.provider_retries = Counter(
            "journeys_provider_retries", "Provider calls retried", ["provider"], registry=r
        )
        self.provider_sends = Counter(
            "journeys_provider_sends", "Messages handed to a provider", ["provider", "channel"],
            registry=r,
        )
        self.webhooks = Counter(
            "journeys_webhook_requests", "Webhook requests by provider and HTTP status",
            ["provider", "status"], registry=r,
        )
        self.ready = Gauge(
            "journeys_ready", "1 once the service consumes (partitions assigned, recovered)",
            registry=r,
        )

    def exposition(self) -> bytes:
        """The text format Prometheus scrapes."""
        return bytes(generate_latest(self.registry))
