"""Domain metrics of classify (bounded labels: channel, language, category, priority, flag)."""

from __future__ import annotations

from prometheus_client import Counter, Gauge, Histogram

from shared.metrics import registry

from .text.lexicons import LANGUAGES

complaints_classified = Counter(
    "amends_complaints_classified_total",
    "Contacts classified, by channel, language, category and priority.",
    ["channel", "language", "category", "priority"],
    registry=registry,
)
urgency_score = Histogram(
    "amends_urgency_score",
    "Urgency scores given (0-100).",
    buckets=(10, 20, 30, 40, 50, 60, 70, 80, 90, 100),
    registry=registry,
)
threat_flags = Counter(
    "amends_threat_flags_total",
    "Flags raised on classified contacts, by flag.",
    ["flag"],
    registry=registry,
)


def language_label(language: str) -> str:
    # Any language can arrive; only the supported ones get their own series.
    return language if language in LANGUAGES else "other"


# The cascade (text/cascade.py): how many texts reach the encoder, and what became of them.
cascade_scored = Counter(
    "amends_cascade_scored_texts_total",
    "Texts the fast model scored while the cascade was on (the share's denominator).",
    registry=registry,
)
cascade_texts = Counter(
    "amends_cascade_texts_total",
    "In-band texts, by outcome: refined, timeout, queue_full, over_share, "
    "no_known_words, error (all but refined keep the fast-path decision).",
    ["outcome"],
    registry=registry,
)
cascade_share = Gauge(
    "amends_cascade_share",
    "Share of scored texts the encoder refined since start.",
    registry=registry,
)
cascade_latency_seconds = Histogram(
    "amends_cascade_latency_seconds",
    "Time a handler waited for the encoder's refinements of one batch.",
    buckets=(0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5),
    registry=registry,
)
cascade_batch_seconds = Histogram(
    "amends_cascade_batch_seconds",
    "Time the encoder took for one worker batch.",
    buckets=(0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5),
    registry=registry,
)
