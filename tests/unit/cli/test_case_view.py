"""`amends case`: reading the query, and a terminal view with every section."""

from __future__ import annotations

import io
from datetime import UTC, datetime, timedelta

import pytest
from rich.console import Console

from cli.case import normalise_phone, query_kind, render_case, sla_state, timeline_events
from tests.fixtures.cli.case_document import full_case

NOW = datetime(2026, 1, 10, 12, 0, tzinfo=UTC)


@pytest.mark.parametrize(
    ("query", "kind"),
    [
        ("aino@example.fi", "email"),
        ("+358 40 123 4567", "phone"),
        ("0044 20 7946 0958", "phone"),
        ("(040) 123-4567", "phone"),
        ("zendesk:12345", "external"),
        ("email:aino@example.fi", "external"),
        ("case-123", "id"),
        ("6f1c2d9e-6a4b-4cde-9f00-1b2c3d4e5f60", "id"),
    ],
)
def test_query_kind(query: str, kind: str) -> None:
    assert query_kind(query) == kind


def test_phone_numbers_become_e164() -> None:
    assert normalise_phone("+358 40 123 4567") == "+358401234567"
    assert normalise_phone("00358-40-1234567") == "+358401234567"
    assert normalise_phone("358401234567") == "+358401234567"
    assert normalise_phone("+1 (415) 555-0100") == "+14155550100"
    assert normalise_phone("12") is None


def render(doc: dict) -> str:
    buffer = io.StringIO()
    console = Console(file=buffer, width=200, color_system=None)
    for section in render_case(doc, now=NOW):
        console.print(section)
    return buffer.getvalue()


def test_every_section_is_shown() -> None:
    out = render(full_case(NOW))
    for expected in (
        "case case-cli-full",
        "gold",  # header
        "Timeline",
        "promise kept",
        "escalated (legal_threat)",
        "Contacts",
        "email",
        "chat (zendesk)",
        "phone",
        "Rikkinäinen pesukone",
        "Urgency 87/100, priority P1",
        "legal_threat",
        "repeat_contacts",
        "+25.0",
        "defective_product (91%)",
        "litigant",
        "churn_intent",
        "Offer a replacement",
        "SLA (P1-gold",
        "met (1h 00m to spare)",
        "left",
        "Mikko Mäkinen (p-7)",
        "appliances-fi",
        "speaks fi",
        "Liisa Laine",
        "Escalations",
        "customer mentions a lawyer",
        "Promises",
        "Replacement machine delivered by Friday",
        "Follow-up",
        "interim_update",
        "Satisfaction",
        "csat 4/5",
        "Kiitos nopeasta avusta",
        "Lesson",
        "faulty inlet valve batch",
        "WM-800",
        "Measures",
        "first_response_seconds",
    ):
        assert expected in out, expected


def test_a_minimal_case_renders_without_the_missing_sections() -> None:
    out = render({"_id": "c-1", "status": "open", "opened_at": NOW})
    assert "case c-1" in out and "Urgency" not in out and "Assignment" not in out


def test_sla_states() -> None:
    due = NOW + timedelta(hours=2)
    assert str(sla_state(due, NOW, NOW)) == "met (2h 00m to spare)"
    assert str(sla_state(due, due + timedelta(minutes=5), NOW)) == "breached by 5m 00s"
    assert str(sla_state(due, None, NOW)) == "2h 00m left"
    assert str(sla_state(NOW - timedelta(hours=1), None, NOW)) == "overdue by 1h 00m"
    assert str(sla_state(None, None, NOW)) == "—"


def test_timeline_is_in_time_order() -> None:
    events = timeline_events(full_case(NOW))
    times = [at for at, _, _ in events]
    assert times == sorted(times)
    assert events[0][1].startswith("contact (email)")


def test_timeline_names_each_assignment_and_escalation_once() -> None:
    at = NOW - timedelta(minutes=5)
    doc = {
        "_id": "c-1",
        "stages": {"received_at": at, "assigned_at": at},
        # The shapes route stores: history and escalations dated by "at".
        "assignment_history": [{"seq": 1, "action": "assigned", "person_id": "elif", "at": at}],
        "escalations": [{"kind": "legal_threat", "to_role": "legal", "at": at}],
    }
    whats = [(what, detail) for _, what, detail in timeline_events(doc)]
    assert [w for w, _ in whats].count("assigned") == 1
    assert ("assigned", "elif") in whats
    assert ("escalated (legal_threat)", "legal") in whats
