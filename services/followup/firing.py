"""Fired timers: interim updates, broken promises, the survey, its reminder and the
close for no response. Safe to run again for the same timer (same output ids).

Every case write here also bumps ``followup.rev`` (``drafts.REV``): a poll of followup's
topics that read the case before this write then fails its guard and decides again,
instead of overwriting what the timer did (a promise broken, a case closed)."""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from datetime import datetime
from typing import Any

from shared.events import derived_id
from shared.service import Outgoing
from shared.store import Document

from . import metrics
from .casefields import assignee_of, cycle_of, find_promise
from .context import AFTER_RESOLUTION, CLOSED, PROMISE_BROKEN, RESOLVED, Followup
from .drafts import REV
from .lookups import supervisor_of
from .outputs import escalation, followup_request
from .schedule import (
    CLOSE,
    INTERIM,
    PROMISE,
    REMINDER,
    SURVEY,
    next_interim,
    timer_id,
)
from .timers import Timer

log = logging.getLogger(__name__)


# -- fired timers --------------------------------------------------------------------


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
        {
            "$set": {f"promises.{index}.{name}": value for name, value in values.items()},
            "$inc": {REV: 1},
        },
    )
    return result.modified_count == 1


async def read_cases(ctx: Followup, timers: Sequence[Timer]) -> dict[str, Document]:
    """The cases of a round's timers: one ``$in`` read."""
    ids = sorted({t.case_id for t in timers})
    if not ids:
        return {}
    return {doc["_id"]: doc async for doc in ctx.cases.find({"_id": {"$in": ids}})}


async def fire(
    ctx: Followup, timer: Timer, cases: Mapping[str, Document] | None = None
) -> list[Outgoing]:
    """What a due timer does; safe to run again for the same timer (same output ids).
    ``cases``: the round's cases as read (else the timer's case is read now)."""
    if cases is None:
        case = await ctx.cases.find_one({"_id": timer.case_id})
    else:
        case = cases.get(timer.case_id)
    if case is None:
        return []
    if timer.kind == INTERIM:
        return await _fire_interim(ctx, timer, case)
    if timer.kind == PROMISE:
        return await _fire_promise(ctx, timer, case)
    if timer.kind in (SURVEY, REMINDER):
        return await _fire_survey(ctx, timer, case)
    if timer.kind == CLOSE:
        await _fire_close(ctx, timer, case)
        return []
    log.warning("timer %s has unknown kind %r", timer.timer_id, timer.kind)
    return []


def _current(timer: Timer, case: Mapping[str, Any]) -> bool:
    return int(timer.payload.get("cycle", 0)) == cycle_of(case)


async def _fire_interim(ctx: Followup, timer: Timer, case: Document) -> list[Outgoing]:
    if case.get("status") in AFTER_RESOLUTION or not _current(timer, case):
        return []  # solved (or reopened into a new plan) meanwhile: nothing to apologise for
    now = ctx.clock()
    next_at = next_interim(now, ctx.seconds(ctx.settings.followup_interim_cadence_seconds))
    seq = int(timer.payload.get("seq", 0))
    await ctx.cases.update_one(
        {"_id": case["_id"], "followup.interim_sent": {"$ne": timer.timer_id}},
        {
            "$addToSet": {"followup.interim_sent": timer.timer_id},
            "$set": {"followup.last_interim_at": now, "followup.next_update_at": next_at},
            "$inc": {REV: 1},
        },
    )
    cycle = cycle_of(case)
    await ctx.timers.schedule(
        timer_id(case["_id"], INTERIM, cycle, seq + 1),
        case["_id"],
        INTERIM,
        next_at,
        {"cycle": cycle, "seq": seq + 1},
    )
    return [
        followup_request(
            ctx,
            case,
            "interim_update",
            derived_id(timer.timer_id, "request"),
            next_update=next_at,
        )
    ]


async def _fire_promise(ctx: Followup, timer: Timer, case: Document) -> list[Outgoing]:
    promise_id = str(timer.payload.get("promise_id"))
    found = find_promise(case, promise_id)
    if found is None:
        return []
    index, promise = found
    state = promise.get("state")
    if state == "open":
        if await set_promise_state(
            ctx,
            case["_id"],
            index,
            promise_id,
            ["open"],
            {"state": "broken", "broken_at": ctx.clock()},
        ):
            state = "broken"
            metrics.promises_broken.inc()
        else:
            # Kept at this very moment (or already broken by an earlier firing): re-read.
            fresh = await ctx.cases.find_one({"_id": case["_id"]})
            again = find_promise(fresh or {}, promise_id)
            state = again[1].get("state") if again else None
    if state != "broken":
        return []
    assignee = assignee_of(case)
    # The case's assignee now (who must act), else whoever made the promise.
    assignee_id = assignee.get("person_id") or promise.get("by_person_id")
    due = promise.get("due_at")
    text = (promise.get("text") or "a promise to the customer")[:120]
    reason = (
        f"promise not kept by {due:%Y-%m-%d %H:%M} UTC: {text}"
        if isinstance(due, datetime)
        else f"promise not kept: {text}"
    )
    return [
        escalation(
            ctx,
            case["_id"],
            kind=PROMISE_BROKEN,
            to_role="assignee",
            to_person_id=assignee_id,
            reason=reason,
            event_id=derived_id(timer.timer_id, "assignee"),
        ),
        escalation(
            ctx,
            case["_id"],
            kind=PROMISE_BROKEN,
            to_role="supervisor",
            to_person_id=await supervisor_of(ctx, assignee_id),
            reason=reason,
            event_id=derived_id(timer.timer_id, "supervisor"),
        ),
    ]


async def _fire_survey(ctx: Followup, timer: Timer, case: Document) -> list[Outgoing]:
    """The survey, then its one reminder; each plans the next step if no answer came."""
    if case.get("status") != RESOLVED or not _current(timer, case):
        return []  # answered, reopened or closed meanwhile
    now = ctx.clock()
    cycle = cycle_of(case)
    if timer.kind == SURVEY:
        kind, sent_field = "survey_request", "followup.survey_sent_at"
        next_kind, delay = REMINDER, ctx.settings.followup_reminder_delay_seconds
    else:
        kind, sent_field = "survey_reminder", "followup.reminder_sent_at"
        next_kind, delay = CLOSE, ctx.settings.followup_no_response_close_seconds
    await ctx.cases.update_one({"_id": case["_id"]}, {"$set": {sent_field: now}, "$inc": {REV: 1}})
    await ctx.timers.schedule(
        timer_id(case["_id"], next_kind, cycle),
        case["_id"],
        next_kind,
        now + ctx.seconds(delay),
        {"cycle": cycle},
    )
    return [followup_request(ctx, case, kind, derived_id(timer.timer_id, "request"))]


async def _fire_close(ctx: Followup, timer: Timer, case: Document) -> None:
    if case.get("status") != RESOLVED or not _current(timer, case):
        return
    now = ctx.clock()
    await ctx.cases.update_one(
        {"_id": case["_id"], "status": RESOLVED},  # an answer that just came in wins
        {
            "$set": {
                "status": CLOSED,
                "followup.closed_reason": "no_response",
                "followup.closed_at": now,
                "satisfaction.outcome": "no_response",
                "satisfaction.cycle": cycle_of(case),
            },
            "$inc": {REV: 1},
        },
    )
