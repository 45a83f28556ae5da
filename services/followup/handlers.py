"""Followup's decisions: plain async functions over the store, no broker.

Consumed events (assigned, activity, resolved, received) update followup's own case fields
and schedule durable timers; fired timers (``fire``) produce the follow-up events. Every
write is a single-document update guarded so a redelivered event or a re-fired timer
changes nothing twice (scalar id lists with ``$ne``/``$addToSet``, ``$exists`` guards, status
guards), and every output event id is derived from its input id, so a rebuilt event has
the id of the first one.

Case status moves (followup's part of it):
  resolved --satisfied--> closed          resolved --no answer, reminder, no answer--> closed
  resolved --unsatisfied--> reopened      resolved/closed --public complaint in watch--> reopened
``followup.cycle`` counts reopenings; timers carry the cycle they belong to and do nothing
once the case moved on.

Some MongoDB-protocol servers (FerretDB 1.24) match dotted paths into arrays of documents wrongly
(``{"promises.promise_id": {"$ne": x}}`` matches even when x is there), so idempotency
guards use scalar arrays (``followup.promise_ids``...) and promise updates address the
array element by its index, guarded by its id.
"""

from __future__ import annotations

import contextlib
import logging
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from pymongo.asynchronous.collection import AsyncCollection
from pymongo.errors import DuplicateKeyError

from shared.events import catalogue, derived_id, utcnow
from shared.events.common import CaseStatus, Channel
from shared.events.lifecycle import CaseActivity, CaseResolved, FollowupRequest
from shared.events.pipeline import CaseAssigned, CaseEscalated, ComplaintReceived
from shared.privacy import mask_pii
from shared.service import Incoming, Outgoing, Rejected
from shared.store import Document, Store

from . import metrics
from .measures import csat_score, raised_priority, seconds_between, sla_outcome
from .messages import render, usable_name
from .schedule import (
    CLOSE,
    INTERIM,
    PROMISE,
    REMINDER,
    SATISFACTION_KINDS,
    SURVEY,
    interim_due,
    next_interim,
    promise_due,
    timer_id,
)
from .settings import FollowupSettings
from .timers import Timer, TimerStore

log = logging.getLogger(__name__)

RESOLVED = CaseStatus.RESOLVED.value
CLOSED = CaseStatus.CLOSED.value
REOPENED = CaseStatus.REOPENED.value
AFTER_RESOLUTION = (RESOLVED, CLOSED)

# Escalation kinds followup raises (route re-queues the two reopen kinds).
PROMISE_BROKEN = "promise_broken"
DISSATISFIED = "dissatisfied"
REOPENED_PUBLIC = "reopened"

_MAX_REASON = 300

# Per customer (``_id``), the ids of the cases most recently resolved: how a survey answer
# or a public complaint finds the customer's resolved cases by ``_id`` (a query on
# ``cases.customer_id`` reads every case on a server without secondary indexes).
RESOLVED_BY_CUSTOMER = "resolved_cases"
RECENT_RESOLVED = 32


class CaseChanged(Exception):
    """The case moved between our read and our guarded write: the scaffold retries."""


@dataclass(slots=True)
class Followup:
    """What every handler needs: settings, the store, the timers and a clock."""

    settings: FollowupSettings
    store: Store
    timers: TimerStore
    clock: Callable[[], datetime] = field(default=utcnow)

    @property
    def cases(self) -> AsyncCollection[Document]:
        return self.store["cases"]

    def seconds(self, value: float) -> timedelta:
        return timedelta(seconds=value)


# -- reading other services' case fields, defensively --------------------------------


def _followup(case: Mapping[str, Any]) -> dict[str, Any]:
    return dict(case.get("followup") or {})


def _cycle(case: Mapping[str, Any]) -> int:
    return int(_followup(case).get("cycle") or 0)


def _opened_at(case: Mapping[str, Any]) -> datetime | None:
    stages = case.get("stages") or {}
    value = case.get("opened_at") or stages.get("received_at")
    return value if isinstance(value, datetime) else None


def _sla_due(case: Mapping[str, Any], name: str) -> datetime | None:
    value = _followup(case).get(name) or (case.get("sla") or {}).get(name)
    return value if isinstance(value, datetime) else None


def _contacts(case: Mapping[str, Any]) -> list[Mapping[str, Any]]:
    return [c for c in case.get("contacts") or [] if isinstance(c, Mapping)]


def _customer_name(case: Mapping[str, Any]) -> str | None:
    """The latest usable name the customer gave on any contact."""
    candidates: list[Any] = [case.get("customer_name")]
    for contact in _contacts(case):
        author = contact.get("author")
        if isinstance(author, Mapping):
            candidates.append(author.get("name"))
        candidates.append(contact.get("author_name"))
    names = [n for n in (usable_name(c) if isinstance(c, str) else None for c in candidates) if n]
    return names[-1] if names else None


def _reach(case: Mapping[str, Any], extra: int | None = None) -> int:
    """The customer's largest audience seen on any contact of the case."""
    values = [extra or 0]
    for contact in _contacts(case):
        reach = contact.get("reach")
        if isinstance(reach, int | float) and not isinstance(reach, bool):
            values.append(int(reach))
    return max(values)


def _public_channels(case: Mapping[str, Any]) -> list[str]:
    """The public channels the complaint was made on: those are watched after resolution."""
    channels = {
        str(c.get("channel")) for c in _contacts(case) if c.get("public") and c.get("channel")
    }
    if not channels and case.get("public"):
        listed = [str(c) for c in case.get("channels") or []]
        channels = {c for c in listed if c in (Channel.SOCIAL, Channel.REVIEW)} or set(listed)
    return sorted(channels)


def _is_silent(case: Mapping[str, Any], fallback_channel: str) -> bool:
    """The case started from a survey answer (a customer who would not have complained)."""
    contacts = _contacts(case)
    if contacts and contacts[0].get("channel"):
        return contacts[0].get("channel") == Channel.SURVEY
    channels = case.get("channels") or []
    first = channels[0] if channels else fallback_channel
    return bool(first == Channel.SURVEY)


def _channel(case: Mapping[str, Any]) -> Channel:
    value = _followup(case).get("channel") or next(iter(case.get("channels") or []), None)
    try:
        return Channel(str(value))
    except ValueError:
        return Channel.EMAIL


def _assignee(case: Mapping[str, Any]) -> dict[str, Any]:
    assignee = _followup(case).get("assignee") or case.get("assignment") or {}
    return dict(assignee) if isinstance(assignee, Mapping) else {}


async def _load_case(ctx: Followup, case_id: str) -> Document:
    case = await ctx.cases.find_one({"_id": case_id})
    if case is None:
        raise Rejected("unknown_case", f"case {case_id} does not exist")
    return case


async def _supervisor_of(ctx: Followup, person_id: str | None) -> str | None:
    if not person_id:
        return None
    person = await ctx.store["people"].find_one({"_id": person_id})
    supervisor = (person or {}).get("supervisor_id")
    return str(supervisor) if supervisor else None


async def _remember_resolved(ctx: Followup, customer_id: str, case_id: str) -> None:
    """Add the case to the customer's recently resolved ones (idempotent)."""
    with contextlib.suppress(DuplicateKeyError):  # listed already (the upsert found the doc)
        await ctx.store[RESOLVED_BY_CUSTOMER].update_one(
            {"_id": customer_id, "case_ids": {"$ne": case_id}},
            {"$push": {"case_ids": {"$each": [case_id], "$slice": -RECENT_RESOLVED}}},
            upsert=True,
        )


async def _recently_resolved(
    ctx: Followup, customer_id: str, query: Mapping[str, Any]
) -> list[Document]:
    """The customer's resolved or closed cases matching ``query``, latest resolution first
    (at most 5), read by ``_id`` through ``resolved_cases``."""
    listed = await ctx.store[RESOLVED_BY_CUSTOMER].find_one({"_id": customer_id})
    case_ids = (listed or {}).get("case_ids") or []
    if not case_ids:
        return []
    cursor = (
        ctx.cases.find(
            {
                "_id": {"$in": case_ids},
                "customer_id": customer_id,
                "status": {"$in": list(AFTER_RESOLUTION)},
                **query,
            }
        )
        .sort("stages.resolved_at", -1)
        .limit(5)
    )
    return await cursor.to_list()


# -- output builders -----------------------------------------------------------------


def followup_request(
    ctx: Followup, case: Mapping[str, Any], kind: str, request_id: str, **message: Any
) -> Outgoing:
    followup = _followup(case)
    rendered = render(
        kind,
        followup.get("language") or case.get("language"),
        customer_name=_customer_name(case),
        assignee_name=_assignee(case).get("name"),
        **message,
    )
    payload = FollowupRequest(
        request_id=request_id,
        case_id=case["_id"],
        customer_id=str(case.get("customer_id") or followup.get("customer_id") or ""),
        kind=kind,  # type: ignore[arg-type]  # checked by render()
        channel=_channel(case),
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
        "reason": mask_pii(reason)[:_MAX_REASON],
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


# -- consumed events -----------------------------------------------------------------


async def on_assigned(ctx: Followup, incoming: Incoming) -> list[Outgoing]:
    """Record the follow-up plan and schedule the first interim update."""
    event: CaseAssigned = incoming.payload
    case = await _load_case(ctx, event.case_id)
    cycle = _cycle(case)
    followup = _followup(case)
    opened_at = _opened_at(case) or event.assigned_at
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
        "measures.silent": _is_silent(case, event.channel.value),
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
    case = await _load_case(ctx, event.case_id)
    ttfr = seconds_between(_opened_at(case), event.at)
    outcome = sla_outcome(event.at, _sla_due(case, "first_response_due"))
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
    case = await _load_case(ctx, event.case_id)
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


def _find_promise(
    case: Mapping[str, Any], promise_id: str | None
) -> tuple[int, Mapping[str, Any]] | None:
    promises = [p if isinstance(p, Mapping) else {} for p in case.get("promises") or []]
    if promise_id is None:
        # Kept without naming which: the oldest open one.
        open_ones = [(i, p) for i, p in enumerate(promises) if p.get("state") == "open"]
        return min(open_ones, key=lambda ip: ip[1].get("due_at") or ip[0]) if open_ones else None
    for index, promise in enumerate(promises):
        if promise.get("promise_id") == promise_id:
            return index, promise
    return None


async def _set_promise_state(
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
    case = await _load_case(ctx, event.case_id)
    found = _find_promise(case, event.promise_id)
    if found is None:
        if event.promise_id:
            await ctx.timers.cancel_one(timer_id(event.case_id, PROMISE, event.promise_id))
        return
    index, promise = found
    promise_id = str(promise["promise_id"])
    await ctx.timers.cancel_one(timer_id(event.case_id, PROMISE, promise_id))
    await _set_promise_state(
        ctx, event.case_id, index, promise_id, ["open"], {"state": "kept", "kept_at": event.at}
    ) or await _set_promise_state(
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
    case = await _load_case(ctx, event.case_id)
    followup = _followup(case)
    customer_id = case.get("customer_id") or followup.get("customer_id")
    if customer_id:  # listed before it is resolved: a lookup never misses a resolved case
        await _remember_resolved(ctx, str(customer_id), event.case_id)
    cycle = _cycle(case)
    ttr = seconds_between(_opened_at(case), event.resolved_at)
    outcome = sla_outcome(event.resolved_at, _sla_due(case, "resolution_due"))
    values: dict[str, Any] = {
        "status": RESOLVED,
        "stages.resolved_at": event.resolved_at,
        "followup.resolved_cycle": cycle,
        "followup.watch_until": event.resolved_at
        + ctx.seconds(ctx.settings.followup_watch_seconds),
        "followup.watch_channels": _public_channels(case),
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
    followup = _followup(case)
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
            contact.contact_id in (_followup(case).get("answer_contacts") or [])
            or _awaits_answer(case)
        ):
            return case
    oldest = contact.received_at - ctx.seconds(ctx.settings.followup_survey_match_seconds)
    for case in await _recently_resolved(ctx, event.customer_id, {}):
        resolved_at = (case.get("stages") or {}).get("resolved_at")
        recent = isinstance(resolved_at, datetime) and resolved_at >= oldest
        if contact.contact_id in (_followup(case).get("answer_contacts") or []) or (
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
        and _reach(case, contact.reach) >= ctx.settings.followup_advocate_reach
    )
    answered_before = contact.contact_id in (_followup(case).get("answer_contacts") or [])
    if not answered_before:
        cycle = _cycle(case)
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
    priority = raised_priority(case.get("priority") or _followup(case).get("priority"))
    assignee_id = _assignee(case).get("person_id")
    return [
        escalation(
            ctx,
            case_id,
            kind=DISSATISFIED,
            to_role="supervisor",
            to_person_id=await _supervisor_of(ctx, assignee_id),
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
            case.get("priority") or _followup(case).get("priority")
        ),
    }


async def _public_complaint(ctx: Followup, event: ComplaintReceived) -> list[Outgoing]:
    """A new public complaint while the customer's resolved case is watched: reopen it."""
    contact = event.contact
    watched = {"followup.watch_until": {"$gte": contact.received_at}}
    for case in await _recently_resolved(ctx, event.customer_id, watched):
        followup = _followup(case)
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
    priority = raised_priority(case.get("priority") or _followup(case).get("priority"))
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


# -- fired timers --------------------------------------------------------------------


async def fire(ctx: Followup, timer: Timer) -> list[Outgoing]:
    """What a due timer does; safe to run again for the same timer (same output ids)."""
    case = await ctx.cases.find_one({"_id": timer.case_id})
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
    return int(timer.payload.get("cycle", 0)) == _cycle(case)


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
        },
    )
    cycle = _cycle(case)
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
    found = _find_promise(case, promise_id)
    if found is None:
        return []
    index, promise = found
    state = promise.get("state")
    if state == "open":
        if await _set_promise_state(
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
            again = _find_promise(fresh or {}, promise_id)
            state = again[1].get("state") if again else None
    if state != "broken":
        return []
    assignee = _assignee(case)
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
            to_person_id=await _supervisor_of(ctx, assignee_id),
            reason=reason,
            event_id=derived_id(timer.timer_id, "supervisor"),
        ),
    ]


async def _fire_survey(ctx: Followup, timer: Timer, case: Document) -> list[Outgoing]:
    """The survey, then its one reminder; each plans the next step if no answer came."""
    if case.get("status") != RESOLVED or not _current(timer, case):
        return []  # answered, reopened or closed meanwhile
    now = ctx.clock()
    cycle = _cycle(case)
    if timer.kind == SURVEY:
        kind, sent_field = "survey_request", "followup.survey_sent_at"
        next_kind, delay = REMINDER, ctx.settings.followup_reminder_delay_seconds
    else:
        kind, sent_field = "survey_reminder", "followup.reminder_sent_at"
        next_kind, delay = CLOSE, ctx.settings.followup_no_response_close_seconds
    await ctx.cases.update_one({"_id": case["_id"]}, {"$set": {sent_field: now}})
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
                "satisfaction.cycle": _cycle(case),
            }
        },
    )
