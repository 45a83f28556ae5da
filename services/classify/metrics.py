"""Domain metrics of classify (bounded labels: channel, language, category, priority, flag)."""

from __future__ import annotations

from prometheus_client import Counter, Histogram

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
