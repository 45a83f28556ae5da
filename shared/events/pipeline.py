"""Events that carry a case along the pipeline: received -> classified -> assigned."""

from __future__ import annotations

from pydantic import Field

from .common import Category, Channel, CustomerProfile, EventModel, Priority, UtcDatetime
from .complaint import Contact


class ComplaintReceived(EventModel):
    """ingest -> classify: a contact attached to a (new or existing) case."""

    case_id: str
    customer_id: str
    contact: Contact
    case_is_new: bool
    contact_count: int = Field(ge=1, description="Contacts on the case, this one included.")
    repeat_contacts: int = Field(ge=0, description="Contacts after the first one.")
    case_opened_at: UtcDatetime
    reopened: bool = False
    customer_tier: str | None = None


class Contribution(EventModel):
    """One signal's share of the urgency score: why the case scored as it did."""

    signal: str
    value: float | str | bool
    weight: float
    points: float
    detail: str = ""


class Urgency(EventModel):
    score: int = Field(ge=0, le=100)
    priority: Priority
    contributions: list[Contribution]


class Flags(EventModel):
    legal_threat: bool = False
    safety_threat: bool = False
    churn_intent: bool = False
    abusive: bool = False
    manager_requested: bool = False


class SlaClock(EventModel):
    policy: str
    calendar: str
    first_response_due: UtcDatetime
    resolution_due: UtcDatetime


class Classification(EventModel):
    urgency: Urgency
    category: Category
    category_confidence: float = 0.0
    profile: CustomerProfile
    flags: Flags
    hints: list[str]
    model_version: str


class ComplaintClassified(EventModel):
    """classify -> route: the case's urgency, category, profile and SLA clock."""

    case_id: str
    customer_id: str
    contact_id: str
    channel: Channel
    language: str
    public: bool
    case_is_new: bool
    classification: Classification
    sla: SlaClock
    classified_at: UtcDatetime
    product: str | None = Field(
        default=None, description="Product the complaint is about, when known (spike detection)."
    )
    region: str | None = Field(
        default=None, description="Customer's region or market, when known (spike detection)."
    )


class Assignee(EventModel):
    person_id: str
    name: str
    team: str
    email: str | None = None


class CaseAssigned(EventModel):
    """route -> CRM, followup: who handles the case and why."""

    case_id: str
    customer_id: str
    assignee: Assignee
    reasons: list[str]
    priority: Priority
    category: Category
    language: str
    channel: Channel
    continuity: bool = Field(description="The person handled this customer before.")
    assigned_at: UtcDatetime
    waited_seconds: float = 0.0
    first_response_due: UtcDatetime | None = None
    resolution_due: UtcDatetime | None = None


class CaseEscalated(EventModel):
    """route or followup -> CRM / on-call: a case needs someone above or beside the assignee."""

    case_id: str
    kind: str = Field(
        description="safety_threat, legal_threat, manager_requested, sla_warning, sla_breach, "
        "promise_broken, dissatisfied, reopened, handback"
    )
    to_role: str = Field(description="security_oncall, legal, supervisor, assignee...")
    to_person_id: str | None = None
    reason: str
    escalated_at: UtcDatetime
    priority: Priority | None = Field(
        default=None,
        description="Set by followup on a reopened case (kinds dissatisfied, reopened): the "
        "raised priority route re-queues it at.",
    )
