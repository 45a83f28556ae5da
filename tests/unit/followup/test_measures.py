"""Per-case measure math and the per-team/channel aggregation."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from services.followup.measures import (
    csat_score,
    fold,
    pipeline,
    raised_priority,
    seconds_between,
    sla_outcome,
)

T0 = datetime(2030, 1, 1, tzinfo=UTC)


def test_seconds_between_is_never_negative_and_none_when_unknown() -> None:
    assert seconds_between(T0, T0 + timedelta(minutes=5)) == 300
    assert seconds_between(T0 + timedelta(seconds=3), T0) == 0  # clock skew
    assert seconds_between(None, T0) is None


def test_sla_outcome() -> None:
    assert sla_outcome(T0, T0) == "met"
    assert sla_outcome(T0 + timedelta(seconds=1), T0) == "breached"
    assert sla_outcome(T0, None) is None


@pytest.mark.parametrize(
    ("score", "scale", "kind", "expected"),
    [
        (1, 5, "csat", 1),
        (5, 5, "csat", 5),
        (7, 5, "csat", 5),
        (0, 10, "nps", 1),
        (10, 10, "nps", 5),
        (5, 10, "nps", 3),
        (3, 3, "csat", 5),
        (2, 3, "csat", 3),
    ],
)
def test_csat_score_rescales_to_one_to_five(
    score: int, scale: int, kind: str, expected: int
) -> None:
    assert csat_score(score, scale, kind) == expected


def test_raised_priority() -> None:
    assert [raised_priority(p) for p in ("P4", "P3", "P2", "P1")] == ["P3", "P2", "P1", "P1"]
    assert raised_priority(None) == "P2"


ROWS: list[dict[str, Any]] = [
    {
        "team": "a",
        "channel": "email",
        "resolved": True,
        "ttfr_seconds": 60.0,
        "ttr_seconds": 3600.0,
        "first_response_sla": "met",
        "resolution_sla": "met",
        "csat": 5,
    },
    {
        "team": "a",
        "channel": "email",
        "resolved": True,
        "ttfr_seconds": 120.0,
        "ttr_seconds": 7200.0,
        "first_response_sla": "breached",
        "resolution_sla": "breached",
        "csat": 2,
        "reopens": 1,
    },
    {"team": "a", "channel": "survey", "silent": True},
    {
        "team": "b",
        "channel": "social",
        "resolved": True,
        "ttr_seconds": 100.0,
        "resolution_sla": "met",
        "reopens": 0,
    },
    {"channel": "email"},
]


def test_fold_per_team_and_channel() -> None:
    rows = {(s.team, s.channel): s for s in fold(ROWS)}
    email = rows[("a", "email")]
    assert email.cases == 2 and email.resolved == 2
    assert email.avg_time_to_first_response_seconds == 90.0
    assert email.avg_time_to_resolution_seconds == 5400.0
    assert email.sla_met_rate == 0.5
    assert email.first_response_sla_met == 1 and email.first_response_sla_breached == 1
    assert email.csat_average == 3.5
    assert email.reopen_rate == 0.5
    assert email.silent_share == 0.0
    assert rows[("a", "survey")].silent_share == 1.0
    assert rows[("a", "survey")].reopen_rate is None  # nothing resolved yet: no rate
    assert rows[("b", "social")].reopened == 0
    assert ("unknown", "email") in rows


def test_fold_per_team_only_and_overall() -> None:
    by_team = {s.team: s for s in fold(ROWS, ("team",))}
    assert by_team["a"].cases == 3 and by_team["a"].channel is None
    assert by_team["a"].silent_share == pytest.approx(1 / 3)
    (overall,) = fold(ROWS, ())
    assert overall.cases == 5 and overall.resolved == 3
    data = overall.as_dict()
    assert data["csat_average"] == 3.5 and data["reopen_rate"] == pytest.approx(1 / 3)


def test_pipeline_groups_by_the_requested_fields_and_filters_by_opening() -> None:
    stages = pipeline(("team",), opened_since=T0)
    assert stages[0]["$match"]["opened_at"] == {"$gte": T0}
    assert set(stages[1]["$group"]["_id"]) == {"team"}
    assert pipeline(())[1]["$group"]["_id"] is None
