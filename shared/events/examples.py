"""One realistic example of every event: for the README's catalogue and contract tests."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from pydantic import BaseModel

from .common import Category, Channel, CustomerProfile, Priority
from .complaint import Author, Contact, Thread
from .directory import Person, PersonUpdated, PresenceChanged, Shift
from .lifecycle import (
    CaseActivity,
    CaseResolved,
    FollowupRequest,
    Lesson,
    LessonShared,
    SpikeAlert,
)
from .pipeline import (
    Assignee,
    CaseAssigned,
    CaseEscalated,
    Classification,
    ComplaintClassified,
    ComplaintReceived,
    Contribution,
    Flags,
    SlaClock,
    Urgency,
)

AT = datetime(2026, 11, 24, 9, 15, tzinfo=UTC)
CASE = "c-6f1d2a9e-5b3c-5f0e-9a51-0d4c2f7e8b13"
CUSTOMER = "cu-1b9e4f70"

CONTACT = Contact(
    contact_id="3e1f6c1a-2b8d-5d6e-8f0a-7c9b1d2e3f40",
    source="email",
    channel=Channel.EMAIL,
    subject="Rikkinäinen pesukone - kolmas yhteydenotto",
    text="Pesukone on taas rikki... otan yhteyttä asianajajaan.",
    language="fi",
    language_confidence=0.99,
    author=Author(name="Aino Virtanen", email="aino.virtanen@example.fi"),
    received_at=AT,
    external_ids={"message_id": "<e2e-aino-1@example.fi>"},
    thread=Thread(in_reply_to="<earlier@example.fi>"),
)

URGENCY = Urgency(
    score=82,
    priority=Priority.P1,
    contributions=[
        Contribution(
            signal="legal_threat", value=True, weight=25, points=25, detail="'asianajajaan' (fi)"
        ),
        Contribution(signal="upset", value=0.91, weight=20, points=18.2),
        Contribution(signal="repeat_contacts", value=2, weight=8, points=16),
    ],
)

EXAMPLES: dict[str, BaseModel] = {
    "complaints.received": ComplaintReceived(
        case_id=CASE,
        customer_id=CUSTOMER,
        contact=CONTACT,
        case_is_new=False,
        contact_count=3,
        repeat_contacts=2,
        case_opened_at=AT - timedelta(days=2),
    ),
    "complaints.classified": ComplaintClassified(
        case_id=CASE,
        customer_id=CUSTOMER,
        contact_id=CONTACT.contact_id,
        channel=Channel.EMAIL,
        language="fi",
        public=False,
        case_is_new=False,
        classification=Classification(
            urgency=URGENCY,
            category=Category.DEFECTIVE_PRODUCT,
            category_confidence=0.84,
            profile=CustomerProfile.LITIGANT,
            flags=Flags(legal_threat=True),
            hints=["Offer a call: a legal threat is best calmed in person."],
            model_version="text-2026.11",
        ),
        sla=SlaClock(
            policy="P1/email",
            calendar="fi",
            first_response_due=AT + timedelta(hours=2),
            resolution_due=AT + timedelta(days=1),
        ),
        classified_at=AT,
    ),
    "complaints.assigned": CaseAssigned(
        case_id=CASE,
        customer_id=CUSTOMER,
        assignee=Assignee(person_id="p-fi-senior-1", name="Mikko Laine", team="support-nordics"),
        reasons=[
            "skill defective_product level 4",
            "speaks fi",
            "seniority 4 >= 3 for P1",
            "handled this customer before",
        ],
        priority=Priority.P1,
        category=Category.DEFECTIVE_PRODUCT,
        language="fi",
        channel=Channel.EMAIL,
        continuity=True,
        assigned_at=AT,
        first_response_due=AT + timedelta(hours=2),
        resolution_due=AT + timedelta(days=1),
    ),
    "complaints.escalated": CaseEscalated(
        case_id=CASE,
        kind="legal_threat",
        to_role="legal",
        reason="customer mentions a lawyer",
        escalated_at=AT,
    ),
    "complaints.activity": CaseActivity(
        case_id=CASE,
        kind="promise_made",
        at=AT,
        by_person_id="p-fi-senior-1",
        promise_id="pr-1",
        promise_text="Call back tomorrow with the repair date",
        promise_due=AT + timedelta(days=1),
    ),
    "complaints.resolved": CaseResolved(
        case_id=CASE,
        resolved_at=AT + timedelta(hours=20),
        resolved_by="p-fi-senior-1",
        lesson=Lesson(
            category=Category.DEFECTIVE_PRODUCT,
            product="WM-800 washer",
            region="FI",
            root_cause="inlet hose clamp",
            fix="replaced the hose",
            remedy="replacement",
            outcome="customer accepted",
        ),
    ),
    "followup.requests": FollowupRequest(
        request_id="fr-1",
        case_id=CASE,
        customer_id=CUSTOMER,
        kind="survey_request",
        channel=Channel.EMAIL,
        language="fi",
        message="Hei Aino, saimmeko asian kuntoon? Arvioi palvelumme asteikolla 1-5.",
        requested_at=AT,
    ),
    "lessons": LessonShared(
        case_id=CASE,
        departments=["product-quality", "training"],
        lesson=Lesson(
            category=Category.DEFECTIVE_PRODUCT,
            product="WM-800 washer",
            root_cause="inlet hose clamp",
            fix="replaced the hose",
        ),
        shared_at=AT,
    ),
    "alerts.spikes": SpikeAlert(
        alert_id="sp-1",
        dimension="product",
        value="WM-800 washer",
        window_count=42,
        baseline_mean=3.1,
        baseline_stddev=1.7,
        z_score=22.9,
        example_case_ids=[CASE],
        raised_at=AT,
    ),
    "people.directory": PersonUpdated(
        person=Person(
            person_id="p-fi-senior-1",
            name="Mikko Laine",
            team="support-nordics",
            supervisor_id="p-sup-nordics",
            roles=["agent"],
            skills={"defective_product": 4, "delivery": 3},
            languages=["fi", "en", "et"],
            seniority=4,
            authority_limits={"refund": 500, "replacement": 1500},
            max_concurrent_cases=6,
            shift=Shift(timezone="Europe/Helsinki"),
        )
    ),
    "people.presence": PresenceChanged(person_id="p-fi-senior-1", presence="away"),
}
