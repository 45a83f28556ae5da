"""What the customer says after a resolution: survey answers (close or reopen the case)
and public complaints while the case is watched (reopen it). The output event ids derive
from the contact id, so a redelivered answer rebuilds the same events."""

from __future__ import annotations

import logging
from collections.abc import Mapping
from datetime import datetime
from typing import Any

from shared.events import derived_id
from shared.events.pipeline import ComplaintReceived
from shared.service import Incoming, Outgoing
from shared.store import Document

from . import metrics
from .casefields import assignee_of, cycle_of, followup_of, reach_of
from .context import (
    AFTER_RESOLUTION,
    CLOSED,
    DISSATISFIED,
    REOPENED,
    REOPENED_PUBLIC,
    RESOLVED,
    CaseChanged,
    Followup,
)
from .lookups import recently_resolved, supervisor_of
from .measures import csat_score, raised_priority
from .outputs import escalation, followup_request
from .schedule import (
    SATISFACTION_KINDS,
)

log = logging.getLogger(__name__)


async def on_received(ctx: Followup, incoming: Incoming) -> list[Outgoing]:
    """Survey answers, and public complaints from customers whose case is being watched."""
    event: ComplaintReceived = incoming.payload
    contact = event.contact
    if contact.survey is not None:
        return await _survey_answer(ctx, event)
    if contact.public and contact.kind == "complaint":
        return await _public_complaint(ctx, event)
    return []


def _awaits_answer(case: Mapping[str, Any]) -> bool:
    followup = followup_of(case)
    return case.get("status") == RESOLVED or (
        # A late answer after "no response" still counts.
        case.get("status") == CLOSED and followup.get("closed_reason") == "no_response"
    )


async def _survey_case(ctx: Followup, event: ComplaintReceived) -> Document | None:
    """The case the answer is about: the one it names, else the customer's latest resolved."""
    contact = event.contact
    assert contact.survey is not None
    named = [cid for cid in (contact.survey.case_id, event.case_id) if cid]
    for case_id in dict.fromkeys(named):
        case = await ctx.cases.find_one({"_id": case_id})
        if case is not None and (
            contact.contact_id in (followup_of(case).get("answer_contacts") or [])
            or _awaits_answer(case)
        ):
            return case
    oldest = contact.received_at - ctx.seconds(ctx.settings.followup_survey_match_seconds)
    for case in await recently_resolved(ctx, event.customer_id, {}):
        resolved_at = (case.get("stages") or {}).get("resolved_at")
        recent = isinstance(resolved_at, datetime) and resolved_at >= oldest
        if contact.contact_id in (followup_of(case).get("answer_contacts") or []) or (
            recent and _awaits_answer(case)
        ):
            return case
    return None


async def _survey_answer(ctx: Followup, event: ComplaintReceived) -> list[Outgoing]:
    contact = event.contact
    survey = contact.survey
    assert survey is not None
    case = await _survey_case(ctx, event)
    if case is None:
        return []  # not about a case we resolved: a (silent) complaint of its own
    case_id = case["_id"]
    score = csat_score(survey.score, survey.scale_max, survey.kind)
    satisfied = score >= ctx.settings.followup_satisfied_threshold
    advocate = (
        satisfied
        and score >= ctx.settings.followup_advocate_score
        and reach_of(case, contact.reach) >= ctx.settings.followup_advocate_reach
    )
    answered_before = contact.contact_id in (followup_of(case).get("answer_contacts") or [])
    if not answered_before:
        cycle = cycle_of(case)
        answer = {
            "score": score,
            "raw_score": survey.score,
            "scale_max": survey.scale_max,
            "survey_kind": survey.kind,
            "comment": survey.comment,
            "answered_at": contact.received_at,
            "contact_id": contact.contact_id,
            "cycle": cycle,
            "outcome": "satisfied" if satisfied else "dissatisfied",
        }
        values: dict[str, Any] = {"satisfaction": answer, "measures.csat": score}
        inc: dict[str, int] = {}
        if satisfied:
            values.update(
                {
                    "status": CLOSED,
                    "followup.closed_reason": "satisfied",
                    "followup.closed_at": contact.received_at,
                }
            )
            if advocate:
                values.update({"followup.advocate": True, "measures.advocate": True})
        else:
            values.update(_reopen_values(case, contact.received_at, "dissatisfied"))
            inc = {"followup.cycle": 1, "measures.reopens": 1}
        update: dict[str, Any] = {
            "$set": values,
            "$addToSet": {"followup.answer_contacts": contact.contact_id},
        }
        if inc:
            update["$inc"] = inc
        result = await ctx.cases.update_one(
            {
                "_id": case_id,
                "status": case.get("status"),
                "followup.answer_contacts": {"$ne": contact.contact_id},
            },
            update,
        )
        if not result.modified_count:
            raise CaseChanged(f"case {case_id} changed while recording a survey answer")
        metrics.csat_score.observe(score)
        if not satisfied:
            metrics.reopened_cases.labels("dissatisfied").inc()
        await ctx.timers.cancel(case_id, list(SATISFACTION_KINDS))
    # Output (also rebuilt, with the same ids, when the answer was already recorded).
    if satisfied:
        out = [
            followup_request(
                ctx, case, "thank_you", derived_id(contact.contact_id, "followup", "thank_you")
            )
        ]
        if advocate:
            out.append(
                followup_request(
                    ctx, case, "advocacy", derived_id(contact.contact_id, "followup", "advocacy")
                )
            )
        if not answered_before:
            metrics.followups_sent.labels("thank_you").inc()
            if advocate:
                metrics.followups_sent.labels("advocacy").inc()
        return out
    priority = raised_priority(case.get("priority") or followup_of(case).get("priority"))
    assignee_id = assignee_of(case).get("person_id")
    return [
        escalation(
            ctx,
            case_id,
            kind=DISSATISFIED,
            to_role="supervisor",
            to_person_id=await supervisor_of(ctx, assignee_id),
            reason=f"customer rated the resolution {score}/5; case reopened at priority "
            f"{priority}, to be routed again",
            event_id=derived_id(contact.contact_id, "followup", "dissatisfied"),
            priority=priority,
        )
    ]


def _reopen_values(case: Mapping[str, Any], at: datetime, reason: str) -> dict[str, Any]:
    return {
        "status": REOPENED,
        "followup.reopened_at": at,
        "followup.reopen_reason": reason,
        "followup.reopen_priority": raised_priority(
            case.get("priority") or followup_of(case).get("priority")
        ),
    }


async def _public_complaint(ctx: Followup, event: ComplaintReceived) -> list[Outgoing]:
    """A new public complaint while the customer's resolved case is watched: reopen it."""
    contact = event.contact
    watched = {"followup.watch_until": {"$gte": contact.received_at}}
    for case in await recently_resolved(ctx, event.customer_id, watched):
        followup = followup_of(case)
        if contact.contact_id in (followup.get("reopen_contacts") or []):
            return [_public_escalation(ctx, case, event)]  # redelivered: same event again
        resolved_at = (case.get("stages") or {}).get("resolved_at")
        if isinstance(resolved_at, datetime) and contact.received_at <= resolved_at:
            continue  # a contact from before the resolution (a replay), not a new complaint
        if contact.channel.value not in (followup.get("watch_channels") or []):
            continue
        result = await ctx.cases.update_one(
            {
                "_id": case["_id"],
                "status": {"$in": list(AFTER_RESOLUTION)},
                "followup.reopen_contacts": {"$ne": contact.contact_id},
            },
            {
                "$set": _reopen_values(case, contact.received_at, "public_complaint"),
                "$inc": {"followup.cycle": 1, "measures.reopens": 1},
                "$addToSet": {"followup.reopen_contacts": contact.contact_id},
            },
        )
        if not result.modified_count:
            raise CaseChanged(f"case {case['_id']} changed while reopening it")
        metrics.reopened_cases.labels("public_complaint").inc()
        await ctx.timers.cancel(case["_id"], list(SATISFACTION_KINDS))
        return [_public_escalation(ctx, case, event)]
    return []


def _public_escalation(
    ctx: Followup, case: Mapping[str, Any], event: ComplaintReceived
) -> Outgoing:
    contact = event.contact
    where = contact.platform or contact.channel.value
    priority = raised_priority(case.get("priority") or followup_of(case).get("priority"))
    return escalation(
        ctx,
        case["_id"],
        kind=REOPENED_PUBLIC,
        to_role="supervisor",
        to_person_id=None,
        reason=f"customer complained again in public ({where}) after the case was resolved; "
        f"case reopened at priority {priority}, to be routed again",
        event_id=derived_id(contact.contact_id, "followup", "reopened"),
        priority=priority,
    )
