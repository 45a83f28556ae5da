"""A case's progress while it is worked on: the follow-up plan on assignment, the first
response, promises made and kept, and the resolution (which plans the satisfaction check).

Each topic's poll is one unit (``poll.handle_poll``): one ``$in`` read of the cases its
records name, each record applied in order to its case's draft (so a case's records of
one poll each see the ones before), one guarded write per case, then the timers. What a
record already did is read from the case (``followup.promise_ids``,
``followup.resolution_events``, ``stages.first_response_at``...), so a redelivered record
decides nothing new; its timers are asked for again, which is a no-op for a timer that
exists or finished.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from datetime import datetime
from functools import partial
from typing import Any

from shared.batch import Handled, Incoming, Rejected
from shared.events import derived_id
from shared.events.lifecycle import CaseActivity, CaseResolved
from shared.events.pipeline import CaseAssigned

from . import metrics
from .casefields import (
    case_opened_at,
    cycle_of,
    find_promise,
    followup_of,
    is_silent,
    public_channels,
    sla_due,
)
from .context import AFTER_RESOLUTION, CLOSED, RESOLVED, Followup
from .drafts import CasePlan, read_drafts, stored
from .measures import seconds_between, sla_outcome
from .poll import Decide, Round, handle_poll
from .schedule import INTERIM, PROMISE, SURVEY, interim_due, promise_due, timer_id
from .timers import TimerSpec

log = logging.getLogger(__name__)

# One record applied to its case's plan: (ctx, plan, incoming, now).
Step = Callable[[Followup, CasePlan, Incoming, datetime], None]


def by_case(step: Step) -> Decide:
    """A topic whose records each name their case: read the cases, apply in order."""

    async def decide(ctx: Followup, items: Sequence[tuple[int, Incoming]]) -> Round:
        drafts = await read_drafts(ctx, (incoming.payload.case_id for _, incoming in items))
        plans = {case_id: CasePlan(draft) for case_id, draft in drafts.items()}
        decided = Round()
        now = stored(ctx.clock())
        for index, incoming in items:
            case_id = incoming.payload.case_id
            if case_id not in plans:
                reason = Rejected("unknown_case", f"case {case_id} does not exist")
                decided.rejected.append((index, reason))
                continue
            step(ctx, decided.plan(plans, case_id, index), incoming, now)
        return decided

    return decide


def _observe(histogram: Any, value: float) -> None:
    histogram.observe(value)


def _count_sla(clock: str, outcome: str) -> None:
    metrics.sla_outcomes.labels(clock, outcome).inc()


# -- assigned ------------------------------------------------------------------------


def assigned(ctx: Followup, plan: CasePlan, incoming: Incoming, now: datetime) -> None:
    """Record the follow-up plan and schedule the first interim update."""
    event: CaseAssigned = incoming.payload
    draft = plan.draft
    case = draft.doc
    cycle = cycle_of(case)
    opened_at = case_opened_at(case) or event.assigned_at
    reopened_at = followup_of(case).get("reopened_at")
    # A reopened case gets a fresh window from its reopening.
    window_start = reopened_at if cycle and isinstance(reopened_at, datetime) else opened_at
    due = interim_due(
        window_start,
        event.resolution_due,
        event.assigned_at,
        share=ctx.settings.followup_interim_share,
        default_window=ctx.seconds(ctx.settings.followup_default_resolution_seconds),
    )
    # Never planned before: its first interim timer cannot have fired yet.
    first_time = draft.get("stages.followup_scheduled_at") is None
    draft.update(
        {
            "followup.scheduled": True,
            "followup.assignee": event.assignee.model_dump(exclude_none=True),
            "followup.channel": event.channel.value,
            "followup.language": event.language,
            "followup.customer_id": event.customer_id,
            "followup.category": event.category.value,
            "followup.priority": event.priority.value,
            "followup.interim_due": due,
            "measures.team": event.assignee.team,
            "measures.channel": event.channel.value,
            "measures.silent": is_silent(case, event.channel.value),
        }
    )
    if event.first_response_due is not None:
        draft.set("followup.first_response_due", event.first_response_due)
    if event.resolution_due is not None:
        draft.set("followup.resolution_due", event.resolution_due)
    if first_time:
        draft.set("stages.followup_scheduled_at", now)
    if draft.get("status") not in AFTER_RESOLUTION:
        plan.schedule.append(
            TimerSpec(
                timer_id(draft.case_id, INTERIM, cycle, 0),
                draft.case_id,
                INTERIM,
                stored(due),
                {"cycle": cycle, "seq": 0},
                first_time=first_time,
            )
        )


# -- activity ------------------------------------------------------------------------


def activity(ctx: Followup, plan: CasePlan, incoming: Incoming, now: datetime) -> None:
    event: CaseActivity = incoming.payload
    if event.kind == "first_response":
        _first_response(plan, event)
    elif event.kind == "promise_made":
        _promise_made(ctx, plan, event, incoming.event.id)
    elif event.kind == "promise_kept":
        _promise_kept(plan, event)
    # Notes and manager requests are route's.


def _measured(
    plan: CasePlan,
    duration: str,
    seconds: float | None,
    histogram: Any,
    sla: str,
    outcome: str | None,
) -> None:
    """Store a stage's duration and SLA outcome on the case; count them once it holds."""
    if seconds is not None:
        plan.draft.set(f"measures.{duration}_seconds", seconds)
        plan.counts.append(partial(_observe, histogram, seconds))
    if outcome is not None:
        plan.draft.set(f"measures.{sla}_sla", outcome)
        plan.counts.append(partial(_count_sla, sla, outcome))


def _first_response(plan: CasePlan, event: CaseActivity) -> None:
    draft = plan.draft
    if draft.get("stages.first_response_at") is not None:
        return  # the first one only, and once
    ttfr = seconds_between(case_opened_at(draft.doc), event.at)
    outcome = sla_outcome(event.at, sla_due(draft.doc, "first_response_due"))
    draft.set("stages.first_response_at", event.at)
    _measured(plan, "ttfr", ttfr, metrics.time_to_first_response, "first_response", outcome)


def _promise_made(ctx: Followup, plan: CasePlan, event: CaseActivity, event_id: str) -> None:
    draft = plan.draft
    promise_id = event.promise_id or derived_id(event_id, "promise")
    due = promise_due(
        event.at,
        event.promise_due,
        event.promise_text,
        default=ctx.seconds(ctx.settings.followup_promise_default_seconds),
    )
    new = draft.add_to("followup.promise_ids", promise_id)
    if new:
        promise = {
            "promise_id": promise_id,
            "text": event.promise_text,
            "due_at": due,
            "made_at": event.at,
            "by_person_id": event.by_person_id,
            "state": "open",
        }
        draft.set("promises", [*(draft.get("promises") or []), promise])
    else:
        # Redelivered: its timer is the one stored with the promise.
        found = find_promise(draft.doc, promise_id)
        if found is not None and isinstance(found[1].get("due_at"), datetime):
            due = found[1]["due_at"]
    plan.schedule.append(
        TimerSpec(
            timer_id(draft.case_id, PROMISE, promise_id),
            draft.case_id,
            PROMISE,
            stored(due),
            {"promise_id": promise_id},
            first_time=new,
        )
    )


def _promise_kept(plan: CasePlan, event: CaseActivity) -> None:
    draft = plan.draft
    found = find_promise(draft.doc, event.promise_id)
    if found is None:
        if event.promise_id:
            plan.cancel.append(timer_id(draft.case_id, PROMISE, event.promise_id))
        return
    index, promise = found
    plan.cancel.append(timer_id(draft.case_id, PROMISE, str(promise["promise_id"])))
    state = promise.get("state")
    # Kept after it was escalated as broken: record it, the escalation stands.
    kept = {"open": "kept", "broken": "kept_late"}.get(str(state))
    if kept is None:
        return  # kept already
    promises = list(draft.get("promises") or [])
    promises[index] = {**promise, "state": kept, "kept_at": event.at}
    draft.set("promises", promises)


# -- resolved ------------------------------------------------------------------------


def resolved(ctx: Followup, plan: CasePlan, incoming: Incoming, now: datetime) -> None:
    """Stop the interim updates, keep the measures, plan the satisfaction check."""
    event: CaseResolved = incoming.payload
    draft = plan.draft
    case = draft.doc
    followup = followup_of(case)
    cycle = cycle_of(case)
    # The cycle's first resolution: its survey timer was never asked for.
    first_time = False
    if incoming.event.id not in (followup.get("resolution_events") or []):
        if case.get("status") == CLOSED:
            # A closed case stays closed (a late or repeated resolution changes nothing).
            log.info("case %s is closed; resolution %s ignored", draft.case_id, incoming.event.id)
            return
        customer_id = case.get("customer_id") or followup.get("customer_id")
        if customer_id:  # listed before it is resolved: a lookup never misses a resolved case
            plan.remember.append((str(customer_id), draft.case_id))
        first_time = followup.get("resolved_cycle") != cycle
        _resolve(ctx, plan, event, incoming.event.id, cycle)
    elif followup.get("resolved_cycle") != cycle:
        return  # redelivered after a reopening: its timers were this cycle's, long done
    # Stop the interim updates: the pending one is among this cycle's first ones.
    fired = len(followup.get("interim_sent") or [])
    plan.cancel.extend(timer_id(draft.case_id, INTERIM, cycle, seq) for seq in range(fired + 1))
    plan.schedule.append(
        TimerSpec(
            timer_id(draft.case_id, SURVEY, cycle),
            draft.case_id,
            SURVEY,
            stored(event.resolved_at + ctx.seconds(ctx.settings.followup_survey_delay_seconds)),
            {"cycle": cycle},
            first_time=first_time,
        )
    )


def _resolve(ctx: Followup, plan: CasePlan, event: CaseResolved, event_id: str, cycle: int) -> None:
    draft = plan.draft
    case = draft.doc
    ttr = seconds_between(case_opened_at(case), event.resolved_at)
    outcome = sla_outcome(event.resolved_at, sla_due(case, "resolution_due"))
    draft.update(
        {
            "status": RESOLVED,
            "stages.resolved_at": event.resolved_at,
            "followup.resolved_cycle": cycle,
            "followup.watch_until": event.resolved_at
            + ctx.seconds(ctx.settings.followup_watch_seconds),
            "followup.watch_channels": public_channels(case),
            "measures.resolved": True,
        }
    )
    draft.add_to("followup.resolution_events", event_id)
    if event.resolved_by:
        draft.set("followup.resolved_by", event.resolved_by)
    _measured(plan, "ttr", ttr, metrics.time_to_resolution, "resolution", outcome)


# -- the batch handlers ----------------------------------------------------------------


async def on_assigned(ctx: Followup, records: Sequence[Incoming]) -> Handled:
    return await handle_poll(ctx, records, by_case(assigned))


async def on_activity(ctx: Followup, records: Sequence[Incoming]) -> Handled:
    return await handle_poll(ctx, records, by_case(activity))


async def on_resolved(ctx: Followup, records: Sequence[Incoming]) -> Handled:
    return await handle_poll(ctx, records, by_case(resolved))
