"""Prometheus metrics every service exports. Services define their domain metrics beside
their handlers, on the same default registry. Label values are bounded: topic, outcome,
reason codes, channel... never ids, names or emails."""

from __future__ import annotations

from prometheus_client import REGISTRY, CollectorRegistry, Counter, Gauge, Histogram

registry: CollectorRegistry = REGISTRY

LATENCY_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)

messages_processed = Counter(
    "amends_messages_processed_total",
    "Messages a service consumed, by outcome (ok, dead_lettered).",
    ["service", "topic", "outcome"],
)
handling_seconds = Histogram(
    "amends_message_handling_seconds",
    "Time spent handling one message, retries included.",
    ["service", "topic"],
    buckets=LATENCY_BUCKETS,
)
batch_size = Histogram(
    "amends_batch_size_messages",
    "Records taken from Kafka in one batch.",
    ["service", "topic"],
    buckets=(1, 2, 5, 10, 20, 50, 100, 200, 500, 1000),
)
retries = Counter(
    "amends_retries_total",
    "Retries of a message: kind=outage (Kafka or MongoDB unreachable) or error (handler).",
    ["service", "topic", "kind"],
)
dead_letters = Counter(
    "amends_dead_letters_total",
    "Messages sent to a dead-letter topic, by reason.",
    ["service", "topic", "reason"],
)
producer_replacements = Counter(
    "amends_kafka_producer_replacements_total",
    "Times a service replaced its Kafka producer after the broker refused its sequence "
    "numbers (OutOfOrderSequenceNumber, after a broker restart lost in-flight batches).",
    ["service"],
)
events_published = Counter(
    "amends_events_published_total",
    "Events a service published, by topic.",
    ["service", "topic"],
)
consumer_lag = Gauge(
    "amends_consumer_lag_messages",
    "Records behind the end of the partition after the last batch.",
    ["service", "topic", "partition"],
)
service_info = Gauge(
    "amends_service_info",
    "Always 1; labels say which service and version run.",
    ["service", "version"],
)
