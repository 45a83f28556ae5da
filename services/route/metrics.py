"""Route's domain metrics (default registry; bounded labels: team, priority, kind...)."""

from __future__ import annotations

from prometheus_client import Counter, Gauge, Histogram

from .spikes import DIMENSIONS

assignments = Counter(
    "amends_assignments_total",
    "Cases assigned, by team, priority and whether the person handled the customer before.",
    ["team", "priority", "continuity"],
)
queue_length = Gauge(
    "amends_queue_length",
    "Cases waiting for a fitting person, by the team that would most likely take them.",
    ["team"],
)
open_cases = Gauge("amends_open_cases", "Cases currently held by people, by team.", ["team"])
escalations = Counter("amends_escalations_total", "Escalations raised, by kind.", ["kind"])
sla_warnings = Counter(
    "amends_sla_warnings_total", "Cases warned or reassigned before a first-response breach."
)
sla_breaches = Counter(
    "amends_sla_breaches_total", "Cases whose first-response deadline passed unanswered."
)
spike_alerts = Counter(
    "amends_spike_alerts_total", "Spike alerts raised, by dimension.", ["dimension"]
)
# Every dimension's series exists at 0 from the start: Prometheus' increase() cannot see
# the first value of a series, so a spike that created its series would not alert.
for _dimension in DIMENSIONS:
    spike_alerts.labels(_dimension)
person_load_ratio = Histogram(
    "amends_person_load_ratio",
    "Load / capacity of the person, observed at every assignment and release.",
    buckets=(0.0, 0.2, 0.4, 0.6, 0.8, 0.9, 1.0),
)
lessons_shared = Counter(
    "amends_lessons_shared_total", "Lessons fanned out to departments, by category.", ["category"]
)
