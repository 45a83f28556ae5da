"""Events from the CRM about a case's life, and what followup asks the CRM to send."""

from __future__ import annotations

from typing import Literal

from pydantic import Field

from .common import Category, Channel, EventModel, UtcDatetime


class Lesson(EventModel):
    """What a resolved case teaches: shared with the departments it concerns."""

    category: Category
    product: str | None = None
    region: str | None = None
    root_cause: str
    fix: str
    remedy: str | None = Field(
        default=None, description="refund, replacement, discount, gift_card, free_month..."
    )
    outcome: str | None = None


class CaseActivity(EventModel):
    """CRM -> amends: something the assignee did on a case."""

    case_id: str
    kind: Literal["first_response", "promise_made", "promise_kept", "note", "manager_requested"]
    at: UtcDatetime
    by_person_id: str | None = None
    promise_id: str | None = None
    promise_text: str | None = None
    promise_due: UtcDatetime | None = None
    note: str | None = None


class CaseResolved(EventModel):
    """CRM -> route (lesson) and followup (satisfaction check)."""

    case_id: str
    resolved_at: UtcDatetime
    resolved_by: str | None = None
    lesson: Lesson | None = None


class FollowupRequest(EventModel):
    """followup -> CRM: a message the CRM should deliver to the customer."""

    request_id: str
    case_id: str
    customer_id: str
    kind: Literal["interim_update", "survey_request", "survey_reminder", "thank_you", "advocacy"]
    channel: Channel
    language: str
    message: str
    requested_at: UtcDatetime


class LessonShared(EventModel):
    """route -> departments: one case's lesson, personal data masked."""

    case_id: str
    departments: list[str]
    lesson: Lesson
    shared_at: UtcDatetime


class SpikeAlert(EventModel):
    """route -> ops: one kind of complaint is bursting against its own baseline."""

    alert_id: str
    dimension: Literal["category", "product", "region"]
    value: str
    window_count: int
    baseline_mean: float
    baseline_stddev: float
    z_score: float
    example_case_ids: list[str]
    raised_at: UtcDatetime
