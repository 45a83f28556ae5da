"""One Kafka poll of one of followup's topics, as one unit.

A topic's ``decide`` reads what the poll needs (one ``$in`` per collection) and decides
every record in memory into per-case plans (``drafts.CasePlan``). ``handle_poll`` then
writes, in this order and at most once per collection: the customers' lists of resolved
cases, the cases (the one guarded write, ``drafts.write_cases``), new timers, cancelled
timers. Supervisors named by the events are read in one ``$in``; metrics are counted and
events built only for the cases whose write held. The records of a case whose guard
failed are decided again from a fresh read, up to ``CONFLICT_ROUNDS``.

Every event id derives from its input's id (or the contact's), and a redelivered record
finds its effects stored and emits its events again, so a retried or redelivered poll,
in whatever order, changes nothing twice and announces the same events.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass, field

from pymongo import UpdateOne
from pymongo.errors import BulkWriteError

from shared.batch import Handled, Incoming, Outgoing, Rejected
from shared.writes import duplicate_key_errors, in_conflict_rounds

from .context import Followup
from .drafts import CONFLICT_ROUNDS, CasePlan, write_cases
from .lookups import RECENT_RESOLVED, RESOLVED_BY_CUSTOMER

log = logging.getLogger(__name__)


@dataclass(slots=True)
class Round:
    """One round's decisions: per case plan; for each record (by index in the poll), the
    case whose write its effects wait for; the records rejected for good."""

    plans: dict[str, CasePlan] = field(default_factory=dict)
    waits_for: dict[int, str] = field(default_factory=dict)
    rejected: list[tuple[int, Rejected]] = field(default_factory=list)

    def plan(self, plans_from: Mapping[str, CasePlan], case_id: str, index: int) -> CasePlan:
        plan = self.plans.setdefault(case_id, plans_from[case_id])
        self.waits_for[index] = case_id
        return plan


Decide = Callable[[Followup, Sequence[tuple[int, Incoming]]], Awaitable[Round]]


async def handle_poll(ctx: Followup, records: Sequence[Incoming], decide: Decide) -> Handled:
    """Decide and write the poll; the events of every record in poll order."""
    handled = Handled()
    outgoing: dict[int, list[Outgoing]] = {}
    waits_for: dict[int, str] = {}  # record index -> the case whose write it waits for

    async def attempt(pending: Sequence[tuple[int, Incoming]]) -> set[str]:
        for index, _ in pending:
            waits_for.pop(index, None)  # decided again: what it waits for may change
        decided = await decide(ctx, pending)
        waits_for.update(decided.waits_for)
        handled.rejected.extend((records[i], reason) for i, reason in decided.rejected)
        return await apply(ctx, list(decided.plans.values()), outgoing)

    await in_conflict_rounds(
        list(enumerate(records)),
        lambda item: waits_for.get(item[0], ""),  # "": waits for no case
        attempt,
        rounds=CONFLICT_ROUNDS,
    )
    handled.outgoing = [o for i in sorted(outgoing) for o in outgoing[i]]
    return handled


async def apply(
    ctx: Followup, plans: Sequence[CasePlan], outgoing: dict[int, list[Outgoing]]
) -> set[str]:
    """Write the plans; fill ``outgoing`` for the cases whose write held; return the
    others' ids (to decide again)."""
    await _remember_resolved(ctx, [r for plan in plans for r in plan.remember])
    conflicted = await write_cases(ctx, plans)
    held = [plan for plan in plans if plan.draft.case_id not in conflicted]
    await ctx.timers.schedule_many([spec for plan in held for spec in plan.schedule])
    await ctx.timers.cancel_many([tid for plan in held for tid in plan.cancel])
    supervisors = await _supervisors(ctx, {p for plan in held for p in plan.people})
    for plan in held:
        for count in plan.counts:
            count()
        for index, build in plan.outgoing:
            outgoing.setdefault(index, []).append(build(supervisors))
    return conflicted


async def _remember_resolved(ctx: Followup, listed: Sequence[tuple[str, str]]) -> None:
    """Add the cases to their customers' recently resolved ones (idempotent), before the
    cases are resolved: a lookup never misses a resolved case."""
    if not listed:
        return
    ops = [
        UpdateOne(
            {"_id": customer_id, "case_ids": {"$ne": case_id}},
            {"$push": {"case_ids": {"$each": [case_id], "$slice": -RECENT_RESOLVED}}},
            upsert=True,
        )
        for customer_id, case_id in dict.fromkeys(listed)
    ]
    try:
        await ctx.store[RESOLVED_BY_CUSTOMER].bulk_write(ops, ordered=False)
    except BulkWriteError as exc:
        # Listed already: the guarded upsert found the document (a redelivery).
        duplicate_key_errors(exc)


async def _supervisors(ctx: Followup, person_ids: set[str]) -> dict[str, str | None]:
    if not person_ids:
        return {}
    found: dict[str, str | None] = dict.fromkeys(person_ids)
    async for person in ctx.store["people"].find(
        {"_id": {"$in": sorted(person_ids)}}, {"supervisor_id": 1}
    ):
        supervisor = person.get("supervisor_id")
        found[person["_id"]] = str(supervisor) if supervisor else None
    return found
