from __future__ import annotations

from datetime import UTC, datetime, timedelta

from services.route import escalation
from services.route.escalation import (
    choose_target,
    flag_escalations,
    sla_action,
    sla_warn_at,
)
from tests.unit.route.test_assignment import ALWAYS, NOW, person

OFF = {"timezone": "UTC", "days": [6], "start": "08:00", "end": "09:00"}


def test_flags_map_to_escalations_most_serious_first() -> None:
    flags = {"manager_requested": True, "legal_threat": True, "safety_threat": True}
    assert flag_escalations(flags) == ["safety_threat", "legal_threat", "manager_requested"]
    assert flag_escalations({"churn_intent": True}) == []


def test_security_on_call_must_be_on_shift() -> None:
    people = [
        person("sec-off", roles=["security_oncall"], shift=OFF),
        person("sec-on", roles=["security_oncall"], shift=ALWAYS, load=4),
    ]
    target = choose_target("security_oncall", people, NOW)
    assert target.person is not None and target.person.person_id == "sec-on"
    assert choose_target("security_oncall", people[:1], NOW).person is None


def test_legal_by_role_or_team() -> None:
    lawyer = person("l1", roles=[], team="legal")
    target = choose_target("legal", [person("agent"), lawyer], NOW)
    assert target.to_role == "legal"
    assert target.person is not None and target.person.person_id == "l1"


def test_supervisor_is_the_assignees_own_when_reachable() -> None:
    own = person("boss", roles=["supervisor"], team="emea")
    other = person("other-boss", roles=["supervisor"], team="emea")
    agent = person("agent", supervisor_id="boss", team="emea")
    assert choose_target("supervisor", [own, other], NOW, assignee=agent).person == own
    gone = person("boss", roles=["supervisor"], team="emea", presence="offline")
    target = choose_target("supervisor", [gone, other], NOW, assignee=agent)
    assert target.person is not None and target.person.person_id == "other-boss"


def test_warning_time_is_a_fraction_of_the_window() -> None:
    start = datetime(2025, 1, 1, tzinfo=UTC)
    assert sla_warn_at(start, start + timedelta(hours=4), 0.75) == start + timedelta(hours=3)
    assert sla_warn_at(start, start - timedelta(hours=1), 0.75) == start


def test_sla_actions() -> None:
    here = person("a")
    away = person("b", presence="away")
    assert sla_action("pending", "assigned", here, NOW).action == "remind_assignee"
    assert sla_action("pending", "assigned", away, NOW).action == "reassign"
    assert sla_action("pending", "waiting", None, NOW).action == "alert_supervisor"
    breach = sla_action("warned", "assigned", here, NOW)
    assert (breach.kind, breach.to_role) == ("sla_breach", "supervisor")


def test_reopen_priority_is_raised_and_at_least_p2() -> None:
    assert escalation.reopen_priority("P2", "P3") == "P2"  # followup's raised priority
    assert escalation.reopen_priority("P1", "P2") == "P1"
    assert escalation.reopen_priority(None, "P3") == "P2"  # one step up without a hint
    assert escalation.reopen_priority(None, "P4") == "P2"  # ... never below P2
    assert escalation.reopen_priority("P3", "P4") == "P2"
    assert escalation.reopen_priority("P2", "P1") == "P1"  # never below what it had
    assert escalation.more_urgent("P3", None) == "P3"


def test_reopen_kinds_are_not_routes_own() -> None:
    own = {*escalation.FLAG_ROUTES, "sla_warning", "sla_breach", "handback"}
    assert {"dissatisfied", "reopened"} == escalation.REOPEN_KINDS
    assert not own & escalation.REOPEN_KINDS


def test_reopened_sla_restarts_the_original_windows() -> None:
    start = datetime(2025, 1, 15, 8, 0, tzinfo=UTC)
    sla = {
        "start": start.replace(tzinfo=None),  # as a naive BSON date may come back
        "first_response_due": start + timedelta(hours=2),
        "resolution_due": start + timedelta(days=1),
    }
    now = start + timedelta(days=3)
    assert escalation.restarted_sla(sla, now) == {
        "start": now,
        "first_response_due": now + timedelta(hours=2),
        "resolution_due": now + timedelta(days=1),
    }
    assert escalation.restarted_sla({}, now) is None
