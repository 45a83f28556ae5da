"""Followup's domain metrics, on the shared registry. Labels are bounded enumerations."""

from __future__ import annotations

from prometheus_client import Counter, Histogram

from shared.metrics import registry

_DURATION_BUCKETS = (
    60.0,
    300.0,
    900.0,
    3600.0,
    4 * 3600.0,
    8 * 3600.0,
    24 * 3600.0,
    3 * 86400.0,
    7 * 86400.0,
    30 * 86400.0,
)
_DELAY_BUCKETS = (0.1, 0.5, 1.0, 2.5, 5.0, 15.0, 60.0, 300.0, 3600.0, 86400.0)

followups_sent = Counter(
    "amends_followups_sent_total",
    "Follow-up requests handed to the CRM, by kind (interim_update, survey_request...).",
    ["kind"],
    registry=registry,
)
csat_score = Histogram(
    "amends_csat_score",
    "Satisfaction answers on the 1-5 scale.",
    buckets=(1, 2, 3, 4, 5),
    registry=registry,
)
reopened_cases = Counter(
    "amends_reopened_cases_total",
    "Cases reopened after resolution, by reason (dissatisfied, public_complaint).",
    ["reason"],
    registry=registry,
)
time_to_first_response = Histogram(
    "amends_time_to_first_response_seconds",
    "From the case's opening to the assignee's first response.",
    buckets=_DURATION_BUCKETS,
    registry=registry,
)
time_to_resolution = Histogram(
    "amends_time_to_resolution_seconds",
    "From the case's opening to its resolution.",
    buckets=_DURATION_BUCKETS,
    registry=registry,
)
sla_outcomes = Counter(
    "amends_sla_outcomes_total",
    "SLA clocks stopped, by kind (first_response, resolution) and outcome (met, breached).",
    ["kind", "outcome"],
    registry=registry,
)
timers_fired = Counter(
    "amends_timers_fired_total",
    "Durable timers fired, by kind (interim, promise, survey, reminder, close).",
    ["kind"],
    registry=registry,
)
timer_fire_delay = Histogram(
    "amends_timer_fire_delay_seconds",
    "How late a timer fired after its due time (polling, load, downtime).",
    buckets=_DELAY_BUCKETS,
    registry=registry,
)
promises_broken = Counter(
    "amends_promises_broken_total",
    "Promises to a customer not kept by their due time.",
    registry=registry,
)
