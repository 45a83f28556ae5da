from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

from services.route.assignment import (
    PersonView,
    Requirement,
    ineligibility,
    on_shift,
    rank,
)

# A Wednesday, 10:00 UTC (13:00 in Helsinki).
NOW = datetime(2025, 1, 15, 10, 0, tzinfo=UTC)
ALWAYS = {"timezone": "UTC", "days": [0, 1, 2, 3, 4, 5, 6], "start": "00:00", "end": "24:00"}


def person(pid: str, **over: Any) -> PersonView:
    doc: dict[str, Any] = {
        "_id": pid,
        "name": pid.title(),
        "team": "support",
        "roles": ["agent"],
        "skills": {"delivery": 3},
        "languages": ["en"],
        "channels": [],
        "seniority": 2,
        "max_concurrent_cases": 3,
        "load": 0,
        "presence": "available",
        "shift": ALWAYS,
    }
    doc.update(over)
    return PersonView.from_doc(doc)


def need(**over: Any) -> Requirement:
    values: dict[str, Any] = {
        "case_id": "c1",
        "category": "delivery",
        "language": "en",
        "channel": "email",
        "priority": "P3",
    }
    values.update(over)
    return Requirement(**values)


def test_day_shift_in_own_time_zone() -> None:
    helsinki = {
        "timezone": "Europe/Helsinki",
        "days": [0, 1, 2, 3, 4],
        "start": "08:00",
        "end": "17:00",
    }
    assert on_shift(helsinki, NOW)  # 12:00 local
    assert not on_shift(helsinki, NOW.replace(hour=15))  # 17:00 local: shift over
    assert not on_shift(helsinki, NOW + timedelta(days=3))  # Saturday


def test_overnight_shift_belongs_to_its_start_day() -> None:
    night = {"timezone": "UTC", "days": [4], "start": "22:00", "end": "06:00"}  # Friday night
    friday = datetime(2025, 1, 17, 23, 0, tzinfo=UTC)
    assert on_shift(night, friday)
    assert on_shift(night, friday + timedelta(hours=4))  # Saturday 03:00
    assert not on_shift(night, friday - timedelta(days=1))  # Thursday 23:00


def test_round_the_clock_shift() -> None:
    assert on_shift(ALWAYS, NOW)
    assert on_shift(ALWAYS, NOW.replace(hour=23, minute=59))


def test_eligibility_reasons() -> None:
    assert ineligibility(person("a"), need(), NOW, 3) is None
    assert ineligibility(person("a", skills={"billing_refund": 4}), need(), NOW, 3)
    assert "speak" in (ineligibility(person("a"), need(language="fi"), NOW, 3) or "")
    assert ineligibility(person("a", channels=["phone"]), need(), NOW, 3) == "does not work email"
    assert ineligibility(person("a", load=3), need(), NOW, 3) == "at capacity"
    assert ineligibility(person("a", presence="away"), need(), NOW, 3) == "presence away"
    assert ineligibility(person("a", roles=["legal"]), need(), NOW, 3) == "not an agent"
    off = {"timezone": "UTC", "days": [0], "start": "08:00", "end": "09:00"}
    assert ineligibility(person("a", shift=off), need(), NOW, 3) == "off shift"


def test_seniority_for_p1_litigant_and_threats() -> None:
    junior = person("a", seniority=2)
    for req in (
        need(priority="P1"),
        need(profile="litigant"),
        need(legal_threat=True),
        need(safety_threat=True),
    ):
        assert ineligibility(junior, req, NOW, 3) == "seniority 2 < 3"
        assert ineligibility(person("b", seniority=3), req, NOW, 3) is None


def test_unknown_language_and_other_category_are_open() -> None:
    p = person("a", languages=["fi"], skills={})
    assert ineligibility(p, need(language="und", category="other"), NOW, 3) is None
    assert ineligibility(person("a", languages=["en-GB"]), need(language="EN"), NOW, 3) is None


def test_best_skill_then_lowest_load() -> None:
    people = [
        person("low", skills={"delivery": 2}),
        person("busy", skills={"delivery": 5}, load=2),
        person("free", skills={"delivery": 5}, load=1),
    ]
    ranked = rank(people, need(), NOW, 3)
    assert [c.person.person_id for c in ranked] == ["free", "busy", "low"]
    assert any("level 5" in r for r in ranked[0].reasons)
    assert any("lowest of 2 at skill level 5" in r for r in ranked[0].reasons)


def test_continuity_wins_over_fit() -> None:
    people = [person("expert", skills={"delivery": 5}), person("before", skills={"delivery": 1})]
    ranked = rank(people, need(previous_handlers=("before",)), NOW, 3)
    assert ranked[0].person.person_id == "before"
    assert ranked[0].continuity
    assert "handled this customer before" in ranked[0].reasons
    # ... but only when that person can take it now.
    people[1] = person("before", skills={"delivery": 1}, presence="offline")
    ranked = rank(people, need(previous_handlers=("before",)), NOW, 3)
    assert ranked[0].person.person_id == "expert"
    assert not ranked[0].continuity


def test_round_robin_among_equals() -> None:
    t0 = datetime(2025, 1, 1, tzinfo=UTC)
    people = [
        person("a", last_assigned_at=t0 + timedelta(minutes=3)),
        person("b", last_assigned_at=t0 + timedelta(minutes=1)),
        person("c", last_assigned_at=t0 + timedelta(minutes=2)),
    ]
    ranked = rank(people, need(), NOW, 3)
    assert [c.person.person_id for c in ranked] == ["b", "c", "a"]
    assert any("round robin" in r for r in ranked[0].reasons)


def test_nobody_fits() -> None:
    assert rank([person("a", languages=["de"])], need(language="fa"), NOW, 3) == []


def test_reopened_case_needs_a_senior_whatever_its_priority() -> None:
    req = need(priority="P2", reopened="dissatisfied")
    assert ineligibility(person("junior", seniority=2), req, NOW, 3) == "seniority 2 < 3"
    assert ineligibility(person("senior", seniority=3), req, NOW, 3) is None
    assert req.senior_reason() == "reopened"


def test_reopened_case_prefers_the_supervisor_and_tries_the_previous_assignee_last() -> None:
    people = [
        person("before", seniority=4, skills={"delivery": 5}),
        person("expert", seniority=4, skills={"delivery": 5}, load=2),
        person("boss", seniority=5, skills={"delivery": 1}, roles=["agent", "supervisor"]),
    ]
    req = need(
        priority="P2",
        reopened="dissatisfied",
        previous_handlers=("before",),
        preferred=("boss",),
        last_resort=frozenset({"before"}),
    )
    ranked = rank(people, req, NOW, 3)
    assert [c.person.person_id for c in ranked] == ["boss", "expert", "before"]
    assert ranked[0].reasons[0] == (
        "case reopened (dissatisfied): routed again at P2 to a senior handler"
    )
    assert "supervisor of the previous assignee" in ranked[0].reasons
    assert "previous assignee: no one else fits now" in ranked[2].reasons
    # The previous assignee takes it back only when no one else fits.
    ranked = rank([people[0]], req, NOW, 3)
    assert [c.person.person_id for c in ranked] == ["before"] and ranked[0].continuity
