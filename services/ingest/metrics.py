"""Domain metrics of ingest (default registry, bounded labels)."""

from __future__ import annotations

from prometheus_client import Counter

complaints_received = Counter(
    "amends_complaints_received_total",
    "Intake records normalised, by channel, language and outcome "
    "(new_case, merged, duplicate, praise, ignored).",
    ["channel", "language", "outcome"],
)
intake_http_requests = Counter(
    "amends_intake_http_requests_total",
    "POST /intake/{source} requests by source and HTTP status.",
    ["source", "status"],
)
