"""complaints.resolved, a poll at a time: the cases closed, their capacity freed, their
lessons shared and mirrored onto the cases.

Per poll, whatever it holds: one ``$in`` read each of the cases' queue entries and of
their lessons (by the ids the events derive); the closes decided in memory (each case's
resolutions in offset order) and stored as one unordered bulk, each update guarded by
the version read (``{_id, v}``, upsert: a guard that fails is a duplicate ``_id``, and
that case is read and decided again); then one bulk write each of:

1. the new lessons (``$setOnInsert``, their LessonShared in their outbox) and the lessons
   mirrored onto their cases, beside the closes (they do not depend on them);
2. the waiting-index entries of the cases closed while waiting, dropped;
3. after the closes, one read of the people holding the cases, then one guarded
   ``$pull`` / ``$inc: -1`` per (holder, case) (filtered on the case being held, so a
   redelivery frees nothing twice; also repairs a claim a crash left). The closes come
   first, as one at a time did: a load is never below the cases its holder is assigned;
4. the lessons' outboxes published, then emptied.

Exactly once: a closed entry is not closed again, a freed claim is gone from
``open_cases``, a lesson is inserted once under its derived id; a redelivered poll, in
any order, publishes only what a lesson's outbox still holds (same event ids).
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from pymongo import DeleteOne, UpdateOne

from shared.batch import Handled, Incoming, Outgoing, Rejected, group_by
from shared.events.catalogue import LESSONS
from shared.events.envelope import derived_id
from shared.events.lifecycle import CaseResolved, LessonShared
from shared.store import Document
from shared.updates import applied
from shared.writes import bulk_write_retrying_duplicates, in_conflict_rounds

from . import lessons, metrics
from .assignment import EPOCH
from .dispatch import Dispatch
from .state import WAITING, _utc, outbox_entry, to_outgoing

log = logging.getLogger(__name__)

_HOLDERS = {"open_cases": 1, "load": 1, "max_concurrent_cases": 1}


@dataclass(slots=True)
class _Close:
    """One case's resolutions of the poll and what they decide."""

    case_id: str
    stored: Document | None  # the entry as read (None: route never saw the case)
    doc: Document | None  # the entry as the poll leaves it
    waited_rev: int | None = None  # closed while waiting, at this rev
    release: bool = False  # free whatever claim the case holds


def close_update(doc: Mapping[str, Any] | None, event: CaseResolved) -> dict[str, Any] | None:
    """The update that closes ``doc`` for ``event``; None when there is nothing to close:
    no entry, closed already, or reopened after this resolution (the reopen got here
    first)."""
    if doc is None or doc.get("state") == "closed":
        return None
    reopened = doc.get("reopened_at")
    if reopened is not None and _utc(reopened) > _utc(event.resolved_at):
        return None
    return {
        "$set": {"state": "closed", "closed_at": event.resolved_at, "lease_until": EPOCH},
        "$unset": {"sla_next_at": ""},
    }


def decide_close(case_id: str, stored: Document | None, events: Sequence[CaseResolved]) -> _Close:
    """The case's resolutions applied to its entry in offset order."""
    plan = _Close(case_id, stored, stored)
    for event in events:
        doc = plan.doc
        update = close_update(doc, event)
        if update is not None and doc is not None:
            if doc.get("state") == "waiting":
                plan.waited_rev = int(doc.get("rev", 0))
            plan.doc = applied(doc, update)
            plan.release = True
            continue
        reopened = (doc or {}).get("reopened_at")
        if reopened is not None and _utc(reopened) > _utc(event.resolved_at):
            log.info("case %s was reopened after this resolution; kept open", case_id)
        else:
            plan.release = True  # closed already, or never routed: free what it holds
    return plan


class Resolved(Dispatch):
    """Handles complaints.resolved a poll at a time."""

    async def handle_resolved(self, records: Sequence[Incoming]) -> Handled:
        handled = Handled()
        items: list[tuple[Incoming, CaseResolved]] = []
        for incoming in records:
            if isinstance(incoming.payload, CaseResolved):
                items.append((incoming, incoming.payload))
            else:
                reason = Rejected("invalid_payload", "expected CaseResolved")
                handled.rejected.append((incoming, reason))
        if not items:
            return handled
        by_case = group_by(items, lambda item: item[1].case_id)
        closes: dict[str, _Close] = {}

        async def close_round(case_ids: Sequence[str]) -> set[str]:
            stored = await self._by_id("queue", case_ids)
            plans = [
                decide_close(cid, stored.get(cid), [e for _, e in by_case[cid]]) for cid in case_ids
            ]
            conflicted = await self._store_closes(plans)
            closes.update((p.case_id, p) for p in plans if p.case_id not in conflicted)
            return conflicted

        _, outboxes = await asyncio.gather(
            in_conflict_rounds(list(by_case), lambda cid: cid, close_round),
            self._store_lessons(items, self.clock()),
        )
        plans = list(closes.values())
        await asyncio.gather(self._unwait_closed(plans), self._free_capacity(plans))
        await self._publish_lessons(outboxes)
        self.wake.set()
        return handled

    async def _store_closes(self, plans: Sequence[_Close]) -> set[str]:
        """One bulk of the closes, each guarded by the version read; the conflicted ids."""
        return await self._store_versions(
            [
                (p.case_id, p.stored, p.doc)
                for p in plans
                if p.doc is not None and p.doc is not p.stored
            ]
        )

    async def _unwait_closed(self, plans: Sequence[_Close]) -> None:
        ops = [
            DeleteOne({"_id": p.case_id, "rev": {"$lte": p.waited_rev}})
            for p in plans
            if p.waited_rev is not None
        ]
        if ops:
            await self.store[WAITING].bulk_write(ops, ordered=False)

    async def _free_capacity(self, plans: Sequence[_Close]) -> None:
        """Free each closed case's claim wherever it is held (people is small: the
        directory; its open_cases follow the open load)."""
        ids = [p.case_id for p in plans if p.release]
        if not ids:
            return
        query = {"open_cases": {"$in": ids}}
        holders = await self.store["people"].find(query, _HOLDERS).to_list()
        wanted = set(ids)
        ops: list[UpdateOne] = []
        for holder in holders:
            held = [c for c in holder.get("open_cases", []) if c in wanted]
            ops.extend(
                UpdateOne(
                    {"_id": holder["_id"], "open_cases": case_id},
                    {"$pull": {"open_cases": case_id}, "$inc": {"load": -1}},
                )
                for case_id in held
            )
            capacity = int(holder.get("max_concurrent_cases") or 0)
            load = max(0, int(holder.get("load") or 0) - len(held))
            metrics.person_load_ratio.observe(min(1.0, load / capacity) if capacity else 1.0)
        if ops:
            await self.store["people"].bulk_write(ops, ordered=False)

    async def _store_lessons(
        self, items: Sequence[tuple[Incoming, CaseResolved]], now: datetime
    ) -> dict[str, Mapping[str, Any]]:
        """Each resolution's lesson stored once (its LessonShared in its outbox) and
        mirrored onto its case; the outboxes to publish, by lesson id."""
        wanted = [(derived_id(i.event.id, "lesson"), e) for i, e in items if e.lesson is not None]
        if not wanted:
            return {}
        stored = await self._by_id("lessons", [lid for lid, _ in wanted], {"outbox": 1})
        inserts: list[UpdateOne] = []
        mirrors: list[UpdateOne] = []
        outboxes: dict[str, Mapping[str, Any]] = {}
        for lesson_id, event in wanted:
            assert event.lesson is not None
            lesson = lessons.masked(event.lesson)
            departments = self.subscriptions.departments_for(lesson.category.value, lesson.product)
            shared = {**lesson.model_dump(mode="json"), "departments": departments}
            mirrors.append(
                UpdateOne({"_id": event.case_id}, {"$set": {"lesson": shared}}, upsert=True)
            )
            found = stored.get(lesson_id)
            if found is not None:
                if found.get("outbox"):
                    outboxes[lesson_id] = found["outbox"]  # left unpublished by a crash
                continue
            insert: dict[str, Any] = {
                "case_id": event.case_id,
                **shared,
                "resolved_at": _utc(event.resolved_at),
                "resolved_by": event.resolved_by,
                "shared_at": now,
                "outbox": {},
            }
            if departments:
                payload = LessonShared(
                    case_id=event.case_id, departments=departments, lesson=lesson, shared_at=now
                )
                entry = outbox_entry(LESSONS, payload, lesson.category.value, event.case_id)
                insert["outbox"] = outboxes[lesson_id] = {lesson_id: entry}
                insert["outbox_at"] = now
            inserts.append(UpdateOne({"_id": lesson_id}, {"$setOnInsert": insert}, upsert=True))
        await asyncio.gather(
            bulk_write_retrying_duplicates(self.store["lessons"], inserts),
            bulk_write_retrying_duplicates(self.store["cases"], mirrors),
        )
        return outboxes

    async def _publish_lessons(self, outboxes: Mapping[str, Mapping[str, Any]]) -> None:
        """Publish the lessons' outboxes, then empty them (a lesson's outbox is written
        once, with the lesson: nothing can be added to it meanwhile)."""
        outgoing: list[Outgoing] = []
        ops: list[UpdateOne] = []
        for lesson_id, entries in outboxes.items():
            if not entries:
                continue
            for event_id, entry in entries.items():
                outgoing.append(to_outgoing(event_id, entry))
                metrics.lessons_shared.labels(entry["key"]).inc()  # keyed by category
            unset = {f"outbox.{eid}": "" for eid in entries}
            ops.append(UpdateOne({"_id": lesson_id}, {"$unset": {**unset, "outbox_at": ""}}))
        if not ops:
            return
        await self.publish(outgoing)
        await self.store["lessons"].bulk_write(ops, ordered=False)
