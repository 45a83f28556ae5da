"""Presence and hand-back: an assignee going offline (or the SLA sweep reassigning) puts
an assigned case back in the queue, announced as an escalation.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from shared.events.catalogue import ESCALATED
from shared.events.envelope import derived_id
from shared.events.pipeline import CaseEscalated
from shared.store import Document

from . import metrics
from .assignment import EPOCH
from .dispatch import Dispatch
from .state import PENDING, WAITING, _escalation_record, outbox_entry


class Handback(Dispatch):
    """Hands assigned cases back to the queue."""

    async def _presence_effects(self, person_id: str, presence: str, event_id: str) -> None:
        if presence == "offline":
            await self.hand_back_all(person_id, event_id)
        elif presence == "available":
            self.wake.set()

    async def hand_back_all(self, person_id: str, event_id: str) -> int:
        """Someone went offline: their open cases go back to the queue, first in line."""
        person = await self.store["people"].find_one({"_id": person_id}, {"open_cases": 1})
        count = 0
        for case_id in (person or {}).get("open_cases", []):
            eid = derived_id(event_id, "handback", case_id)
            doc = await self._requeue(
                case_id,
                person_id,
                "handback",
                "queue",
                "assignee went offline; case back in the queue",
                eid,
            )
            await self._release_claim(case_id, person_id)
            count += doc is not None
        if count:
            self.wake.set()
        return count

    async def _requeue(
        self,
        case_id: str,
        person_id: str,
        kind: str,
        to_role: str,
        reason: str,
        event_id: str,
        extra_set: Mapping[str, Any] | None = None,
        extra_filter: Mapping[str, Any] | None = None,
        to_person_id: str | None = None,
        doc: Document | None = None,
        swept: bool = False,
    ) -> Document | None:
        """Hand an assigned case back to the queue, announcing it (once per event id).

        ``swept``: called by the SLA sweep, whose route_sla entry stays due until after
        the flush (so it needs no route_outbox marker: see ``sla_sweep``).
        """
        now = self.clock()
        escalated = CaseEscalated(
            case_id=case_id,
            kind=kind,
            to_role=to_role,
            to_person_id=to_person_id,
            reason=reason,
            escalated_at=now,
        )

        def held(d: Document | None) -> bool:
            return (
                d is not None
                and d.get("state") == "assigned"
                and d.get("person_id") == person_id
                and event_id not in d.get("escalation_ids", [])
                and all(d.get(k) == v for k, v in (extra_filter or {}).items())
            )

        update = {
            "$set": {
                "state": "waiting",
                "lease_until": EPOCH,
                "status_mirrored": "queued",  # the flush below mirrors it
                f"outbox.{event_id}": outbox_entry(ESCALATED, escalated, case_id),
                **(extra_set or {}),
            },
            "$unset": {"person_id": "", "assignment": ""},
            "$min": {"outbox_at": now},
            "$inc": {"rev": 1},
            "$addToSet": {"escalation_ids": event_id},
            "$push": {
                "history": {"action": "released", "person_id": person_id, "at": now},
                "escalations": _escalation_record(escalated, event_id),
            },
        }
        if doc is None:
            doc = await self.store["queue"].find_one({"_id": case_id})
        if not held(doc):
            return None
        assert doc is not None
        # Before the move: a marker for its event, the case in queue_waiting (at the rev
        # the move gives it). Neither outlives a move that does not happen.
        marker = None if swept else await self._outbox_marker("queue", case_id)
        rev = int(doc.get("rev", 0)) + 1
        stamp = await self._wait_index(doc, rev=rev)
        stored, _ = await self._cas(case_id, doc, lambda d: update if held(d) else None)
        if stored is None:
            await self.store[WAITING].delete_one({"_id": case_id, "stamp": stamp})
            if marker is not None:
                await self.store[PENDING].delete_one({"_id": marker})
            return None
        if int(stored.get("rev", 0)) != rev or stored.get("urgency") != doc.get("urgency"):
            await self._wait_index(stored)
        metrics.escalations.labels(kind).inc()
        return await self._flush("queue", stored, marker=marker)
