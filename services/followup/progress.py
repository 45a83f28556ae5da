"""A case's progress while it is worked on: the follow-up plan on assignment, the first
response, promises made and kept, and the resolution (which plans the satisfaction check).

Every write is a single-document update guarded so a redelivered event changes nothing
twice (scalar id lists with ``$ne``/``$addToSet``, ``$exists`` guards, status guards).
Some MongoDB-protocol servers (FerretDB 1.24) match dotted paths into arrays of documents
wrongly (``{"promises.promise_id": {"$ne": x}}`` matches even when x is there), so
idempotency guards use scalar arrays (``followup.promise_ids``...) and promise updates
address the array element by its index, guarded by its id.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from datetime import datetime
from typing import Any

from shared.events import derived_id
from shared.events.lifecycle import CaseActivity, CaseResolved
from shared.events.pipeline import CaseAssigned
from shared.service import Incoming, Outgoing

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
from .lookups import load_case, remember_resolved
from .measures import seconds_between, sla_outcome
from .schedule import (
    INTERIM,
    PROMISE,
    SURVEY,
    interim_due,
    promise_due,
    timer_id,
)

log = logging.getLogger(__name__)


# -- consumed events -----------------------------------------------------------------


async def on_assigned(ctx: Followup, incoming: Incoming) -> list[Outgoing]:
    """Record the follow-up plan and schedule the first interim update."""
    event: CaseAssigned = incoming.payload
    case = await load_case(ctx, event.case_id)
    cycle = cycle_of(case)
    followup = followup_of(case)
    opened_at = case_opened_at(case) or event.assigned_at
    reopened_at = followup.get("reopened_at")
    # A reopened case gets a fresh window from its reopening.
    window_start = reopened_at if cycle and isinstance(reopened_at, datetime) else opened_at
    due = interim_due(
        window_start,
        event.resolution_due,
        event.assigned_at,
        share=ctx.settings.followup_interim_share,
        default_window=ctx.seconds(ctx.settings.followup_default_resolution_seconds),
    )
    plan: dict[str, Any] = {
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
    if event.first_response_due is not None:
        plan["followup.first_response_due"] = event.first_response_due
    if event.resolution_due is not None:
        plan["followup.resolution_due"] = event.resolution_due
    await ctx.cases.update_one(
        {"_id": event.case_id},
        {"$set": plan, "$min": {"stages.followup_scheduled_at": ctx.clock()}},
    )
    if case.get("status") not in AFTER_RESOLUTION:
        await ctx.timers.schedule(
            timer_id(event.case_id, INTERIM, cycle, 0),
            event.case_id,
            INTERIM,
            due,
            {"cycle": cycle, "seq": 0},
            # Never planned before (the stage is set just above, before any timer): its
            # first interim timer cannot have fired yet.
            first_time="followup_scheduled_at" not in (case.get("stages") or {}),
        )
    return []


async def on_activity(ctx: Followup, incoming: Incoming) -> list[Outgoing]:
    event: CaseActivity = incoming.payload
    if event.kind == "first_response":
        await _first_response(ctx, event)
    elif event.kind == "promise_made":
        await _promise_made(ctx, event, incoming.event.id)
    elif event.kind == "promise_kept":
        await _promise_kept(ctx, event)
    return []  # notes and manager requests are route's


async def _first_response(ctx: Followup, event: CaseActivity) -> None:
    case = await load_case(ctx, event.case_id)
    ttfr = seconds_between(case_opened_at(case), event.at)
    outcome = sla_outcome(event.at, sla_due(case, "first_response_due"))
    values: dict[str, Any] = {"stages.first_response_at": event.at}
    if ttfr is not None:
        values["measures.ttfr_seconds"] = ttfr
    if outcome is not None:
        values["measures.first_response_sla"] = outcome
    result = await ctx.cases.update_one(
        {"_id": event.case_id, "stages.first_response_at": {"$exists": False}}, {"$set": values}
    )
    if result.modified_count:  # the first one only, and once
        if ttfr is not None:
            metrics.time_to_first_response.observe(ttfr)
        if outcome is not None:
            metrics.sla_outcomes.labels("first_response", outcome).inc()


async def _promise_made(ctx: Followup, event: CaseActivity, event_id: str) -> None:
    case = await load_case(ctx, event.case_id)
    promise_id = event.promise_id or derived_id(event_id, "promise")
    due = promise_due(
        event.at,
        event.promise_due,
        event.promise_text,
        default=ctx.seconds(ctx.settings.followup_promise_default_seconds),
    )
    promise = {
        "promise_id": promise_id,
        "text": event.promise_text,
        "due_at": due,
        "made_at": event.at,
        "by_person_id": event.by_person_id,
        "state": "open",
    }
    await ctx.cases.update_one(
        {"_id": case["_id"], "followup.promise_ids": {"$ne": promise_id}},
        {"$push": {"promises": promise}, "$addToSet": {"followup.promise_ids": promise_id}},
    )
    await ctx.timers.schedule(
        timer_id(event.case_id, PROMISE, promise_id),
        event.case_id,
        PROMISE,
        due,
        {"promise_id": promise_id},
    )


async def set_promise_state(
    ctx: Followup,
    case_id: str,
    index: int,
    promise_id: str,
    from_states: Sequence[str],
    values: Mapping[str, Any],
) -> bool:
    # Promises are only appended, so an index stays valid; the id guard makes sure.
    result = await ctx.cases.update_one(
        {
            "_id": case_id,
            f"promises.{index}.promise_id": promise_id,
            f"promises.{index}.state": {"$in": list(from_states)},
        },
        {"$set": {f"promises.{index}.{name}": value for name, value in values.items()}},
    )
    return result.modified_count == 1


async def _promise_kept(ctx: Followup, event: CaseActivity) -> None:
    case = await load_case(ctx, event.case_id)
    found = find_promise(case, event.promise_id)
    if found is None:
        if event.promise_id:
            await ctx.timers.cancel_one(timer_id(event.case_id, PROMISE, event.promise_id))
        return
    index, promise = found
    promise_id = str(promise["promise_id"])
    await ctx.timers.cancel_one(timer_id(event.case_id, PROMISE, promise_id))
    await set_promise_state(
        ctx, event.case_id, index, promise_id, ["open"], {"state": "kept", "kept_at": event.at}
    ) or await set_promise_state(
        # Kept after it was escalated as broken: record it, the escalation stands.
        ctx,
        event.case_id,
        index,
        promise_id,
        ["broken"],
        {"state": "kept_late", "kept_at": event.at},
    )


async def on_resolved(ctx: Followup, incoming: Incoming) -> list[Outgoing]:
    """Stop the interim updates, keep the measures, plan the satisfaction check."""
    event: CaseResolved = incoming.payload
    case = await load_case(ctx, event.case_id)
    followup = followup_of(case)
    customer_id = case.get("customer_id") or followup.get("customer_id")
    if customer_id:  # listed before it is resolved: a lookup never misses a resolved case
        await remember_resolved(ctx, str(customer_id), event.case_id)
    cycle = cycle_of(case)
    ttr = seconds_between(case_opened_at(case), event.resolved_at)
    outcome = sla_outcome(event.resolved_at, sla_due(case, "resolution_due"))
    values: dict[str, Any] = {
        "status": RESOLVED,
        "stages.resolved_at": event.resolved_at,
        "followup.resolved_cycle": cycle,
        "followup.watch_until": event.resolved_at
        + ctx.seconds(ctx.settings.followup_watch_seconds),
        "followup.watch_channels": public_channels(case),
        "measures.resolved": True,
    }
    if event.resolved_by:
        values["followup.resolved_by"] = event.resolved_by
    if ttr is not None:
        values["measures.ttr_seconds"] = ttr
    if outcome is not None:
        values["measures.resolution_sla"] = outcome
    result = await ctx.cases.update_one(
        # A closed case stays closed (a late or repeated resolution changes nothing).
        {
            "_id": event.case_id,
            "status": {"$ne": CLOSED},
            "followup.resolution_events": {"$ne": incoming.event.id},
        },
        {"$set": values, "$addToSet": {"followup.resolution_events": incoming.event.id}},
    )
    if result.modified_count:
        if ttr is not None:
            metrics.time_to_resolution.observe(ttr)
        if outcome is not None:
            metrics.sla_outcomes.labels("resolution", outcome).inc()
    elif incoming.event.id not in (followup.get("resolution_events") or []):
        log.info("case %s is closed; resolution %s ignored", event.case_id, incoming.event.id)
        return []
    await ctx.timers.cancel(event.case_id, [INTERIM])
    await ctx.timers.schedule(
        timer_id(event.case_id, SURVEY, cycle),
        event.case_id,
        SURVEY,
        event.resolved_at + ctx.seconds(ctx.settings.followup_survey_delay_seconds),
        {"cycle": cycle},
    )
    return []
