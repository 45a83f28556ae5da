"""What the customer says after a resolution: survey answers (close or reopen the case)
and public complaints while the case is watched (reopen it).

A poll of ComplaintReceived is one unit: one ``$in`` read of ``resolved_cases`` for the
customers who answered or complained in public, one ``$in`` read of the cases named or
listed there, every contact decided in poll order against the cases as the contacts
before it left them, one guarded write per case. The output event ids derive from the
contact id, and a contact already recorded on its case (``followup.answer_contacts``,
``followup.reopen_contacts``) rebuilds its events instead of deciding again, so a
redelivered poll announces the same events and changes nothing.
"""

from __future__ import annotations

import copy
import logging
from collections.abc import Mapping, Sequence
from datetime import datetime
from functools import partial
from typing import Any

from shared.batch import Handled, Incoming, Outgoing
from shared.events import derived_id
from shared.events.pipeline import ComplaintReceived

from . import metrics
from .casefields import assignee_of, cycle_of, followup_of, reach_of
from .context import (
    AFTER_RESOLUTION,
    CLOSED,
    DISSATISFIED,
    REOPENED,
    REOPENED_PUBLIC,
    RESOLVED,
    Followup,
)
from .drafts import CaseDraft, CasePlan, read_drafts
from .lookups import recently_resolved, resolved_lists
from .measures import csat_score, raised_priority
from .outputs import escalation, followup_request
from .poll import Round, handle_poll
from .schedule import SATISFACTION_KINDS, timer_id

log = logging.getLogger(__name__)


async def on_received(ctx: Followup, records: Sequence[Incoming]) -> Handled:
    """Survey answers, and public complaints from customers whose case is being watched."""
    return await handle_poll(ctx, records, _decide)


def _answer_or_complaint(incoming: Incoming) -> str | None:
    contact = incoming.payload.contact
    if contact.survey is not None:
        return "survey"
    if contact.public and contact.kind == "complaint":
        return "public"
    return None


class _Poll:
    """The cases a poll's contacts may be about, as drafts, and each customer's list."""

    def __init__(self, plans: dict[str, CasePlan], lists: Mapping[str, list[str]]) -> None:
        self.plans = plans
        self.drafts = {case_id: plan.draft for case_id, plan in plans.items()}
        self.lists = lists

    def recent(self, customer_id: str, matches: Any) -> list[CaseDraft]:
        return recently_resolved(self.drafts, self.lists.get(customer_id, []), customer_id, matches)


async def _decide(ctx: Followup, items: Sequence[tuple[int, Incoming]]) -> Round:
    relevant = [(i, inc, kind) for i, inc in items if (kind := _answer_or_complaint(inc))]
    decided = Round()
    if not relevant:
        return decided
    lists = await resolved_lists(ctx, (inc.payload.customer_id for _, inc, _ in relevant))
    wanted: list[str] = []
    for _, inc, kind in relevant:
        event: ComplaintReceived = inc.payload
        if kind == "survey":
            assert event.contact.survey is not None
            wanted += [c for c in (event.contact.survey.case_id, event.case_id) if c]
        wanted += lists.get(event.customer_id, [])
    drafts = await read_drafts(ctx, wanted)
    poll = _Poll({case_id: CasePlan(draft) for case_id, draft in drafts.items()}, lists)
    for index, incoming, kind in relevant:
        if kind == "survey":
            _survey_answer(ctx, poll, decided, index, incoming.payload)
        else:
            _public_complaint(ctx, poll, decided, index, incoming.payload)
    return decided


# -- survey answers ------------------------------------------------------------------


def _awaits_answer(case: Mapping[str, Any]) -> bool:
    followup = followup_of(case)
    return case.get("status") == RESOLVED or (
        # A late answer after "no response" still counts.
        case.get("status") == CLOSED and followup.get("closed_reason") == "no_response"
    )


def _answered(case: Mapping[str, Any], contact_id: str) -> bool:
    return contact_id in (followup_of(case).get("answer_contacts") or [])


def _survey_case(ctx: Followup, poll: _Poll, event: ComplaintReceived) -> CaseDraft | None:
    """The case the answer is about: the one it names, else the customer's latest resolved."""
    contact = event.contact
    assert contact.survey is not None
    named = [cid for cid in (contact.survey.case_id, event.case_id) if cid]
    for case_id in dict.fromkeys(named):
        draft = poll.drafts.get(case_id)
        if draft is not None and (
            _answered(draft.doc, contact.contact_id) or _awaits_answer(draft.doc)
        ):
            return draft
    oldest = contact.received_at - ctx.seconds(ctx.settings.followup_survey_match_seconds)

    def about(draft: CaseDraft) -> bool:
        # An answer recorded already (the case may have been reopened by it since).
        if _answered(draft.doc, contact.contact_id):
            return True
        resolved_at = draft.get("stages.resolved_at")
        recent = isinstance(resolved_at, datetime) and resolved_at >= oldest
        return draft.get("status") in AFTER_RESOLUTION and recent and _awaits_answer(draft.doc)

    found = poll.recent(event.customer_id, about)
    return found[0] if found else None


def _survey_answer(
    ctx: Followup, poll: _Poll, decided: Round, index: int, event: ComplaintReceived
) -> None:
    contact = event.contact
    survey = contact.survey
    assert survey is not None
    draft = _survey_case(ctx, poll, event)
    if draft is None:
        return  # not about a case we resolved: a (silent) complaint of its own
    plan = decided.plan(poll.plans, draft.case_id, index)
    case = copy.deepcopy(draft.doc)  # as the answer found it: its events are built from it
    score = csat_score(survey.score, survey.scale_max, survey.kind)
    satisfied = score >= ctx.settings.followup_satisfied_threshold
    advocate = (
        satisfied
        and score >= ctx.settings.followup_advocate_score
        and reach_of(case, contact.reach) >= ctx.settings.followup_advocate_reach
    )
    answered_before = _answered(case, contact.contact_id)
    if not answered_before:
        _record_answer(plan, case, event, score, satisfied, advocate)
    # Output (also rebuilt, with the same ids, when the answer was already recorded).
    if satisfied:
        kinds = ["thank_you", "advocacy"] if advocate else ["thank_you"]
        for kind in kinds:
            out = followup_request(
                ctx, case, kind, derived_id(contact.contact_id, "followup", kind)
            )
            plan.emit(index, partial(_ready, out))
            if not answered_before:
                plan.counts.append(metrics.followups_sent.labels(kind).inc)
        return
    priority = raised_priority(case.get("priority") or followup_of(case).get("priority"))
    assignee_id = assignee_of(case).get("person_id")
    if assignee_id:
        plan.people.add(str(assignee_id))

    def build(supervisors: Mapping[str, str | None]) -> Outgoing:
        return escalation(
            ctx,
            draft.case_id,
            kind=DISSATISFIED,
            to_role="supervisor",
            to_person_id=supervisors.get(str(assignee_id)) if assignee_id else None,
            reason=f"customer rated the resolution {score}/5; case reopened at priority "
            f"{priority}, to be routed again",
            event_id=derived_id(contact.contact_id, "followup", "dissatisfied"),
            priority=priority,
        )

    plan.emit(index, build)


def _record_answer(
    plan: CasePlan,
    case: Mapping[str, Any],
    event: ComplaintReceived,
    score: int,
    satisfied: bool,
    advocate: bool,
) -> None:
    contact = event.contact
    survey = contact.survey
    assert survey is not None
    draft = plan.draft
    cycle = cycle_of(case)
    draft.set(
        "satisfaction",
        {
            "score": score,
            "raw_score": survey.score,
            "scale_max": survey.scale_max,
            "survey_kind": survey.kind,
            "comment": survey.comment,
            "answered_at": contact.received_at,
            "contact_id": contact.contact_id,
            "cycle": cycle,
            "outcome": "satisfied" if satisfied else "dissatisfied",
        },
    )
    draft.set("measures.csat", score)
    draft.add_to("followup.answer_contacts", contact.contact_id)
    if satisfied:
        draft.update(
            {
                "status": CLOSED,
                "followup.closed_reason": "satisfied",
                "followup.closed_at": contact.received_at,
            }
        )
        if advocate:
            draft.update({"followup.advocate": True, "measures.advocate": True})
    else:
        _reopen(draft, case, contact.received_at, "dissatisfied")
        plan.counts.append(metrics.reopened_cases.labels("dissatisfied").inc)
    plan.counts.append(partial(metrics.csat_score.observe, score))
    plan.cancel.extend(timer_id(draft.case_id, kind, cycle) for kind in SATISFACTION_KINDS)


def _ready(out: Outgoing, supervisors: Mapping[str, str | None]) -> Outgoing:
    return out


def _reopen(draft: CaseDraft, case: Mapping[str, Any], at: datetime, reason: str) -> None:
    draft.update(
        {
            "status": REOPENED,
            "followup.reopened_at": at,
            "followup.reopen_reason": reason,
            "followup.reopen_priority": raised_priority(
                case.get("priority") or followup_of(case).get("priority")
            ),
            "followup.cycle": cycle_of(case) + 1,
            "measures.reopens": int((case.get("measures") or {}).get("reopens") or 0) + 1,
        }
    )


# -- public complaints ---------------------------------------------------------------


def _public_complaint(
    ctx: Followup, poll: _Poll, decided: Round, index: int, event: ComplaintReceived
) -> None:
    """A new public complaint while the customer's resolved case is watched: reopen it."""
    contact = event.contact

    def watched(draft: CaseDraft) -> bool:
        if contact.contact_id in (followup_of(draft.doc).get("reopen_contacts") or []):
            return True  # reopened by this very complaint (a redelivery)
        until = draft.get("followup.watch_until")
        return (
            draft.get("status") in AFTER_RESOLUTION
            and isinstance(until, datetime)
            and until >= contact.received_at
        )

    for draft in poll.recent(event.customer_id, watched):
        case = copy.deepcopy(draft.doc)
        followup = followup_of(case)
        if contact.contact_id in (followup.get("reopen_contacts") or []):
            plan = decided.plan(poll.plans, draft.case_id, index)
            plan.emit(index, partial(_ready, _public_escalation(ctx, case, event)))
            return  # redelivered: the same event again
        resolved_at = draft.get("stages.resolved_at")
        if isinstance(resolved_at, datetime) and contact.received_at <= resolved_at:
            continue  # a contact from before the resolution (a replay), not a new complaint
        if contact.channel.value not in (followup.get("watch_channels") or []):
            continue
        plan = decided.plan(poll.plans, draft.case_id, index)
        _reopen(draft, case, contact.received_at, "public_complaint")
        draft.add_to("followup.reopen_contacts", contact.contact_id)
        plan.counts.append(metrics.reopened_cases.labels("public_complaint").inc)
        cycle = cycle_of(case)
        plan.cancel.extend(timer_id(draft.case_id, kind, cycle) for kind in SATISFACTION_KINDS)
        plan.emit(index, partial(_ready, _public_escalation(ctx, case, event)))
        return


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
