"""Stored escalations and the SLA sweep: recording and announcing an escalation once per
event id, and the sweep that warns, reassigns and escalates before and at a
first-response breach. The rules they follow (targets, stages, priorities) are the
plain functions in escalation.py.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime, timedelta
from typing import Any

from shared.events.catalogue import ESCALATED
from shared.events.envelope import derived_id
from shared.events.pipeline import CaseEscalated
from shared.store import Document

from . import escalation, metrics
from .assignment import EPOCH, PersonView
from .handback import Handback
from .state import DUE, _escalation_record, _utc, outbox_entry


class Escalations(Handback):
    """Escalates cases: from handlers (flags, a manager requested) and the SLA sweep."""

    async def _target(self, role: str, doc: Mapping[str, Any], now: datetime) -> escalation.Target:
        people = self.store["people"]
        assignee = None
        if doc.get("person_id"):
            found = await people.find_one({"_id": doc["person_id"]})
            assignee = PersonView.from_doc(found) if found else None
        candidates: list[PersonView] = []
        if role != "assignee":
            query: dict[str, Any] = {"$or": [{"roles": role}, {"team": role}]}
            candidates = [PersonView.from_doc(d) async for d in people.find(query)]
            if role == "supervisor" and assignee is not None and assignee.supervisor_id:
                own = await people.find_one({"_id": assignee.supervisor_id})
                if own is not None:
                    candidates.append(PersonView.from_doc(own))
        team_hint = assignee.team if assignee else None
        return escalation.choose_target(
            role, candidates, now, assignee=assignee, team_hint=team_hint
        )

    async def _escalate(
        self,
        doc: Mapping[str, Any],
        kind: str,
        role: str,
        reason: str,
        event_id: str,
        now: datetime,
        extra_set: Mapping[str, Any] | None = None,
    ) -> Document | None:
        """Record and announce one escalation, once per event id; the stored case doc."""
        case_id = doc["_id"]
        target = await self._target(role, doc, now)
        update = escalation_update(case_id, kind, target, reason, event_id, now, extra_set)

        def new_escalation(d: Document | None) -> dict[str, Any] | None:
            return None if d is not None and event_id in d.get("escalation_ids", []) else update

        current = dict(doc) if "v" in doc or "req" in doc else None
        if current is not None and new_escalation(current) is None:
            return None  # already escalated for this event
        # Called from handlers only: their redelivery repeats the flush that publishes it.
        stored, _ = await self._cas(
            case_id, current, new_escalation, upsert=True, known=current is not None
        )
        if stored is not None:
            metrics.escalations.labels(kind).inc()
        return stored

    async def sla_sweep(self) -> int:
        """Warn (remind, reassign) before a first-response breach; escalate at breach.

        Due checks come from ``route_sla`` (cases with a pending SLA check only); each case
        is read by _id and the entry set to what the case says, *after* the escalation it
        stores is published: an entry stays due until then, so a crash in between is
        found again here and the outbox flushed (no route_outbox marker needed).
        """
        now = self.clock()
        queue = self.store["queue"]
        grace = now - timedelta(seconds=self.settings.route_outbox_grace_seconds)
        due = await self.store[DUE].find({"sla_at": {"$lte": now}}).limit(100).to_list()
        handled = 0
        for entry in due:
            doc = await queue.find_one({"_id": entry["_id"]})
            if doc is not None and doc.get("outbox"):
                if _utc(doc.get("outbox_at") or EPOCH) > grace:
                    continue  # a writer is publishing it now: look again next time
                doc = await self._flush("queue", doc)  # left by a crash before the sync
            stage = (doc or {}).get("sla_stage")
            next_at = (doc or {}).get("sla_next_at")
            if doc is None or next_at is None or stage not in ("pending", "warned"):
                await self._due_sla(entry, None)
                continue
            if _utc(next_at) > now:
                await self._due_sla(entry, next_at)
                continue
            assignee = None
            if doc.get("state") == "assigned" and doc.get("person_id"):
                found = await self.store["people"].find_one({"_id": doc["person_id"]})
                assignee = PersonView.from_doc(found) if found else None
            action = escalation.sla_action(stage, doc.get("state", ""), assignee, now)
            sla = doc.get("sla") or {}
            deadline = _utc(sla.get("first_response_due") or now)
            cycle = deadline.isoformat()
            event_id = derived_id(doc["_id"], action.kind, cycle)
            # The stage move is the claim: one replica wins, the other's guard fails.
            guard = {"sla_stage": stage, "sla_next_at": next_at}
            if stage == "pending":
                next_set: dict[str, Any] = {"sla_stage": "warned", "sla_next_at": deadline}
            else:
                next_set = {"sla_stage": "breached", "sla_next_at": None}
            left = max(0, int((deadline - now).total_seconds()))
            if action.action == "reassign" and assignee is not None:
                result = await self._requeue(
                    doc["_id"],
                    assignee.person_id,
                    action.kind,
                    action.to_role,
                    f"no first response and assignee {assignee.presence} or off shift; "
                    f"reassigned {left} s before the deadline",
                    event_id,
                    extra_set=next_set,
                    extra_filter=guard,
                    to_person_id=assignee.supervisor_id,
                    doc=doc,
                    swept=True,
                )
                if result is not None:
                    await self._release_claim(doc["_id"], assignee.person_id)
                    self.wake.set()
            else:
                if action.kind == "sla_warning":
                    reason = f"no first response; deadline in {left} s"
                else:
                    reason = f"first-response deadline {cycle} passed without a response"
                result = await self._escalate_guarded(
                    doc, action, reason, event_id, now, guard, next_set
                )
            if result is not None:
                await self._due_sla(entry, next_set["sla_next_at"])
                handled += 1
                if action.kind == "sla_warning":
                    metrics.sla_warnings.inc()
                else:
                    metrics.sla_breaches.inc()
        return handled

    async def _escalate_guarded(
        self,
        doc: Document,
        action: escalation.SlaAction,
        reason: str,
        event_id: str,
        now: datetime,
        guard: Mapping[str, Any],
        next_set: Mapping[str, Any],
    ) -> Document | None:
        target = await self._target(action.to_role, doc, now)
        escalated = CaseEscalated(
            case_id=doc["_id"],
            kind=action.kind,
            to_role=target.to_role,
            to_person_id=target.person.person_id if target.person else None,
            reason=reason,
            escalated_at=now,
        )
        update = {
            "$set": {
                f"outbox.{event_id}": outbox_entry(ESCALATED, escalated, doc["_id"]),
                **next_set,
            },
            "$min": {"outbox_at": now},
            "$addToSet": {"escalation_ids": event_id},
            "$push": {"escalations": _escalation_record(escalated, event_id)},
        }

        def unchanged(d: Document | None) -> dict[str, Any] | None:
            if d is None or event_id in d.get("escalation_ids", []):
                return None
            if any(d.get(k) != v for k, v in guard.items()):
                return None
            return update

        # Only the SLA sweep calls this: its route_sla entry is the marker (see sla_sweep).
        stored, _ = await self._cas(doc["_id"], doc, unchanged)
        if stored is None:
            return None
        metrics.escalations.labels(action.kind).inc()
        return await self._flush("queue", stored)


def escalation_update(
    case_id: str,
    kind: str,
    target: escalation.Target,
    reason: str,
    event_id: str,
    now: datetime,
    extra_set: Mapping[str, Any] | None = None,
) -> dict[str, Any]:
    """The queue entry update that records escalation ``event_id`` and stores its
    CaseEscalated in the outbox (guarded by the caller: once per event id)."""
    escalated = CaseEscalated(
        case_id=case_id,
        kind=kind,
        to_role=target.to_role,
        to_person_id=target.person.person_id if target.person else None,
        reason=reason,
        escalated_at=now,
    )
    return {
        "$set": {
            f"outbox.{event_id}": outbox_entry(ESCALATED, escalated, case_id),
            **(extra_set or {}),
        },
        "$min": {"outbox_at": now},
        "$addToSet": {"escalation_ids": event_id},
        "$push": {"escalations": _escalation_record(escalated, event_id)},
    }
