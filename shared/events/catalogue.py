"""The one catalogue of topics and event types: every producer and consumer reads it.

An event type's name ends with its schema version (``...v1``). A breaking change to a
schema gets a new type (``...v2``) published beside the old one until every consumer
has moved; additive, optional fields keep the version.
"""

from __future__ import annotations

from dataclasses import dataclass

from pydantic import BaseModel

from .directory import PersonUpdated, PresenceChanged
from .lifecycle import (
    CaseActivity,
    CaseResolved,
    FollowupRequest,
    LessonShared,
    SpikeAlert,
)
from .pipeline import CaseAssigned, CaseEscalated, ComplaintClassified, ComplaintReceived

DEAD_LETTER_SUFFIX = ".dlq"


@dataclass(frozen=True, slots=True)
class EventSpec:
    topic: str
    event_type: str
    version: int
    schema: type[BaseModel] | None  # None: the source's own format (intake)
    key: str
    producer: str
    consumers: tuple[str, ...]
    description: str


INTAKE = EventSpec(
    topic="complaints.intake",
    event_type="amends.intake.v1",
    version=1,
    schema=None,
    key="author identity (email, phone, handle) or the source's ticket id",
    producer="CRM connectors, webhooks (ingest's POST /intake/{source}), amends replay",
    consumers=("ingest",),
    description="A complaint in its source's own format; ce_sourceformat names the adapter.",
)
RECEIVED = EventSpec(
    topic="complaints.received",
    event_type="amends.complaint.received.v1",
    version=1,
    schema=ComplaintReceived,
    key="case id",
    producer="ingest",
    consumers=("classify",),
    description="A normalised contact attached to a new or existing case.",
)
CLASSIFIED = EventSpec(
    topic="complaints.classified",
    event_type="amends.complaint.classified.v1",
    version=1,
    schema=ComplaintClassified,
    key="case id",
    producer="classify",
    consumers=("route",),
    description="Urgency with its contributions, category, profile, flags, hints, SLA clock.",
)
ASSIGNED = EventSpec(
    topic="complaints.assigned",
    event_type="amends.case.assigned.v1",
    version=1,
    schema=CaseAssigned,
    key="case id",
    producer="route",
    consumers=("followup", "CRM"),
    description="Who handles the case and why.",
)
ESCALATED = EventSpec(
    topic="complaints.escalated",
    event_type="amends.case.escalated.v1",
    version=1,
    schema=CaseEscalated,
    key="case id",
    producer="route, followup",
    consumers=("route", "CRM", "on-call"),
    description="A case raised to security, legal, a supervisor, or back to the queue.",
)
ACTIVITY = EventSpec(
    topic="complaints.activity",
    event_type="amends.case.activity.v1",
    version=1,
    schema=CaseActivity,
    key="case id",
    producer="CRM",
    consumers=("route", "followup"),
    description="First responses, promises made and kept, notes, manager requests.",
)
RESOLVED = EventSpec(
    topic="complaints.resolved",
    event_type="amends.case.resolved.v1",
    version=1,
    schema=CaseResolved,
    key="case id",
    producer="CRM",
    consumers=("route", "followup"),
    description="The case is fixed; carries its lesson.",
)
FOLLOWUP_REQUESTS = EventSpec(
    topic="followup.requests",
    event_type="amends.followup.requested.v1",
    version=1,
    schema=FollowupRequest,
    key="case id",
    producer="followup",
    consumers=("CRM",),
    description="Interim update, survey request, reminder, thank-you for the CRM to deliver.",
)
LESSONS = EventSpec(
    topic="lessons",
    event_type="amends.lesson.shared.v1",
    version=1,
    schema=LessonShared,
    key="category",
    producer="route",
    consumers=("departments",),
    description="A resolved case's lesson for the departments subscribed to it.",
)
SPIKES = EventSpec(
    topic="alerts.spikes",
    event_type="amends.alert.spike.v1",
    version=1,
    schema=SpikeAlert,
    key="dimension:value",
    producer="route",
    consumers=("ops",),
    description="A burst of one category, product or region against its baseline.",
)
DIRECTORY = EventSpec(
    topic="people.directory",
    event_type="amends.directory.person.v1",
    version=1,
    schema=PersonUpdated,
    key="person id",
    producer="HR / WFM, amends seed",
    consumers=("route",),
    description="An employee's whole directory record.",
)
PRESENCE = EventSpec(
    topic="people.presence",
    event_type="amends.directory.presence.v1",
    version=1,
    schema=PresenceChanged,
    key="person id",
    producer="WFM / telephony presence",
    consumers=("route",),
    description="A person became available, away or offline.",
)

CATALOGUE: tuple[EventSpec, ...] = (
    INTAKE,
    RECEIVED,
    CLASSIFIED,
    ASSIGNED,
    ESCALATED,
    ACTIVITY,
    RESOLVED,
    FOLLOWUP_REQUESTS,
    LESSONS,
    SPIKES,
    DIRECTORY,
    PRESENCE,
)


def dead_letter_topic(topic: str) -> str:
    return f"{topic}{DEAD_LETTER_SUFFIX}"
