"""The events followup publishes: follow-up requests to the CRM and escalations."""

from __future__ import annotations

import logging
from collections.abc import Mapping
from typing import Any

from shared.events import catalogue
from shared.events.lifecycle import FollowupRequest
from shared.events.pipeline import CaseEscalated
from shared.privacy import mask_pii
from shared.service import Outgoing

from .casefields import assignee_of, channel_of, customer_name, followup_of
from .context import Followup
from .messages import render

log = logging.getLogger(__name__)

MAX_REASON = 300


# -- output builders -----------------------------------------------------------------


def followup_request(
    ctx: Followup, case: Mapping[str, Any], kind: str, request_id: str, **message: Any
) -> Outgoing:
    followup = followup_of(case)
    rendered = render(
        kind,
        followup.get("language") or case.get("language"),
        customer_name=customer_name(case),
        assignee_name=assignee_of(case).get("name"),
        **message,
    )
    payload = FollowupRequest(
        request_id=request_id,
        case_id=case["_id"],
        customer_id=str(case.get("customer_id") or followup.get("customer_id") or ""),
        kind=kind,  # type: ignore[arg-type]  # checked by render()
        channel=channel_of(case),
        language=rendered.language,
        message=rendered.text,
        requested_at=ctx.clock(),
    )
    return Outgoing(
        spec=catalogue.FOLLOWUP_REQUESTS,
        payload=payload,
        key=case["_id"],
        event_id=request_id,
        subject=case["_id"],
    )


def escalation(
    ctx: Followup,
    case_id: str,
    *,
    kind: str,
    to_role: str,
    to_person_id: str | None,
    reason: str,
    event_id: str,
    priority: str | None = None,
) -> Outgoing:
    values: dict[str, Any] = {
        "case_id": case_id,
        "kind": kind,
        "to_role": to_role,
        "to_person_id": to_person_id,
        "reason": mask_pii(reason)[:MAX_REASON],
        "escalated_at": ctx.clock(),
    }
    if priority is not None:
        values["priority"] = priority
    return Outgoing(
        spec=catalogue.ESCALATED,
        payload=CaseEscalated(**values),
        key=case_id,
        event_id=event_id,
        subject=case_id,
    )
