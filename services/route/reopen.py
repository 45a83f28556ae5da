"""Reopened cases, queued again.

followup reopens a resolved case (an unsatisfied survey answer, or a new public
complaint in the watch window) and announces it on ``complaints.escalated`` (kinds
``dissatisfied`` / ``reopened``, with a raised priority). Route queues the case again at
that priority (at least P2), with a fresh SLA clock of the original lengths, for a
senior handler (seniority as for P1). Continuity, decided: the previous assignee's
supervisor is preferred when they take cases, then the usual order (others who handled
the customer, skill, load); the previous assignee comes last (the customer rejected
their resolution, but they know the case: better than leaving it waiting when no one
else fits). The new ``CaseAssigned`` says why, and followup starts a new plan from it. A
survey answer about a resolved case does not re-queue it through
``complaints.classified``: whether it reopens the case is followup's call.
"""

from __future__ import annotations

import logging
from datetime import datetime
from typing import Any

from pymongo import ReturnDocument

from shared.events.pipeline import CaseEscalated
from shared.service import Rejected
from shared.store import Document

from . import escalation
from .assignment import EPOCH
from .dispatch import Dispatch
from .state import _utc

log = logging.getLogger(__name__)


class Reopen(Dispatch):
    """Queues reopened cases again."""

    async def _reopen(self, event: CaseEscalated, event_id: str) -> Document:
        """Store the reopen once (guarded by the event id and the version it was decided
        on); a redelivery finds it stored and only repeats the flush."""
        queue = self.store["queue"]
        for _ in range(5):
            doc = await queue.find_one({"_id": event.case_id})
            if doc is None or "req" not in doc:
                raise Rejected("unknown_case", f"case {event.case_id} was never routed")
            if event_id in doc.get("reopen_ids", []):
                return await self._flush("queue", doc)
            update, release = await self._reopen_update(doc, event, event_id)
            sla_at = update["$set"].get("sla_next_at")
            if sla_at is not None:
                await self._sla_due(doc["_id"], sla_at)  # before the write that sets it
            update["$set"]["v"] = int(doc.get("v") or 0) + 1
            stored = await queue.find_one_and_update(
                {"_id": doc["_id"], "v": doc.get("v")},
                update,
                return_document=ReturnDocument.AFTER,
            )
            if stored is None:
                continue  # changed meanwhile (assigned, resolved, reopened): decide again
            if release:
                await self._release_claim(doc["_id"], release)
            log.info(
                "case %s reopened (%s): %s at %s",
                doc["_id"],
                event.kind,
                stored.get("state"),
                stored["req"]["priority"],
            )
            return await self._flush("queue", stored)
        raise RuntimeError(f"case {event.case_id} kept changing while being reopened")

    async def _reopen_update(
        self, doc: Document, event: CaseEscalated, event_id: str
    ) -> tuple[dict[str, Any], str | None]:
        """The update that reopens ``doc`` and whose claim it frees (if any).

        Closed, or still held under the assignment whose resolution the customer rejected
        (route has not seen that resolution yet): back to the queue. Waiting: the raised
        priority and the seniority apply. Assigned again since the resolution (a new contact
        got there first): kept when the assignee is senior enough, else re-queued.
        """
        now = self.clock()
        case_id = doc["_id"]
        state = doc.get("state")
        holder = doc.get("person_id") if state == "assigned" else None
        handled = doc.get("handled_by") or []
        previous = holder or (handled[-1] if handled else None)
        people = self.store["people"]
        previous_doc = await people.find_one({"_id": previous}) if previous else None
        requeue = state != "waiting"
        if holder is not None:
            case = await self.store["cases"].find_one({"_id": case_id}, {"stages": 1})
            resolved_at = ((case or {}).get("stages") or {}).get("resolved_at")
            assigned_at = (doc.get("assignment") or {}).get("assigned_at") or EPOCH
            if isinstance(resolved_at, datetime) and _utc(assigned_at) > _utc(resolved_at):
                seniority = int((previous_doc or {}).get("seniority") or 1)
                requeue = seniority < self.settings.route_senior_min_seniority
                handled = [p for p in handled if p != holder]
                previous = handled[-1] if handled else holder
                previous_doc = await people.find_one({"_id": previous})
        req = dict(doc["req"])
        priority = escalation.reopen_priority(
            event.priority.value if event.priority else None, req.get("priority")
        )
        req.update(priority=priority, reopened=event.kind)
        supervisor = (previous_doc or {}).get("supervisor_id") or event.to_person_id
        reopen = {
            "kind": event.kind,
            "event_id": event_id,
            "at": now,
            "priority": priority,
            "reason": event.reason[:300],
            "previous_assignee": previous,
            "prefer": [supervisor] if supervisor else [],
        }
        sets: dict[str, Any] = {
            "req": req,
            "reopen": reopen,
            "reopened_at": _utc(event.escalated_at),
        }
        update: dict[str, Any] = {
            "$set": sets,
            "$max": {"urgency": escalation.PRIORITY_URGENCY[priority]},
            "$addToSet": {"reopen_ids": event_id},
            "$inc": {"rev": 1},
        }
        history = {
            "action": "reopened",
            "kind": event.kind,
            "priority": priority,
            "reason": reopen["reason"],
            "at": now,
        }
        if not requeue:
            update["$push"] = {"history": history}
            return update, None
        sets.update(
            {
                "state": "waiting",
                "enqueued_at": now,
                "lease_until": EPOCH,
                "status_mirrored": "queued",  # the flush mirrors it
            }
        )
        sla = escalation.restarted_sla(doc.get("sla") or {}, now)
        if sla is not None:
            warn_at = escalation.sla_warn_at(
                now, sla["first_response_due"], self.settings.route_sla_warning_fraction
            )
            sets.update({"sla": {**sla, "warn_at": warn_at}, "sla_stage": "pending"})
            sets["sla_next_at"] = warn_at
        if holder is not None:
            update["$unset"] = {"person_id": "", "assignment": ""}
            released = {"action": "released", "person_id": holder, "at": now}
            update["$push"] = {"history": {"$each": [released, history]}}
        else:
            update["$push"] = {"history": history}
        return update, holder
