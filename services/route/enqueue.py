"""The queue entry: storing a classified event on its case's entry (new, restarted, or a
further contact raising its urgency).
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from shared.events.common import Channel
from shared.events.pipeline import ComplaintClassified
from shared.store import Document

from . import escalation
from .assignment import EPOCH
from .state import RouteState, _utc


class Enqueue(RouteState):
    """Stores classified events on the queue."""

    async def _enqueue(
        self, event: ComplaintClassified, event_id: str, now: datetime
    ) -> tuple[Document | None, bool]:
        """Store the event on the case's queue entry: (entry, whether this started a new
        waiting period)."""
        queue = self.store["queue"]
        case_id = event.case_id
        doc = await queue.find_one({"_id": case_id})
        if doc is not None and event_id in doc.get("classified_events", []):
            return doc, False  # redelivery: the decision is stored; flushing repeats it
        c = event.classification
        request = {
            "category": c.category.value,
            "language": event.language,
            "channel": event.channel.value,
            "priority": c.urgency.priority.value,
            "profile": c.profile.value,
            "legal_threat": c.flags.legal_threat,
            "safety_threat": c.flags.safety_threat,
            "public": event.public,
            "product": event.product,
            "region": event.region,
        }
        urgency = c.urgency.score

        def unseen(d: Document | None) -> bool:
            return d is not None and event_id not in d.get("classified_events", [])

        if (
            doc is not None
            and doc.get("state") not in ("waiting", "assigned")
            and event.channel is Channel.SURVEY
            and not event.case_is_new
        ):
            # A survey answer about a resolved case: whether it reopens the case is
            # followup's call (complaints.escalated, kind dissatisfied), not a new entry.
            stored, current = await self._cas(
                case_id,
                doc,
                lambda d: {"$addToSet": {"classified_events": event_id}} if unseen(d) else None,
            )
            return stored or current or doc, False
        if doc is None or doc.get("state") not in ("waiting", "assigned"):
            # A new case, or a resolved one that came back: (re)start its queue entry.
            start = _utc(event.classified_at)
            due = _utc(event.sla.first_response_due)
            warn_at = escalation.sla_warn_at(start, due, self.settings.route_sla_warning_fraction)
            restart = {
                "$set": {
                    "customer_id": event.customer_id,
                    "state": "waiting",
                    "req": request,
                    "urgency": urgency,
                    "enqueued_at": now,
                    "classified_at": start,
                    "lease_until": EPOCH,
                    "sla": {
                        "start": start,
                        "first_response_due": due,
                        "resolution_due": _utc(event.sla.resolution_due),
                        "warn_at": warn_at,
                    },
                    "sla_stage": "pending",
                    "sla_next_at": warn_at,
                    "status_mirrored": None,
                },
                "$addToSet": {"classified_events": event_id},
                "$setOnInsert": {"seq": 0},
                "$inc": {"rev": 1},
            }

            def start_over(d: Document | None) -> dict[str, Any] | None:
                if d is not None and (d.get("state") in ("waiting", "assigned") or not unseen(d)):
                    return None  # queued or assigned meanwhile (or this event stored)
                return restart

            await self._sla_due(case_id, warn_at)  # before the write that sets it
            stored, current = await self._cas(case_id, doc, start_over, upsert=True)
            return stored or current, stored is not None

        # Another contact on a case already queued or assigned: urgency can only rise.
        def raise_urgency(d: Document | None) -> dict[str, Any] | None:
            if not unseen(d):
                return None
            assert d is not None
            update: dict[str, Any] = {
                "$addToSet": {"classified_events": event_id},
                "$max": {"urgency": urgency},
            }
            if urgency > int(d.get("urgency", 0)):
                req = dict(request)
                earlier = d.get("req") or {}
                if earlier.get("reopened"):  # still a reopened case, at its raised priority
                    req["reopened"] = earlier["reopened"]
                    req["priority"] = escalation.more_urgent(
                        str(req["priority"]), earlier.get("priority")
                    )
                update["$set"] = {"req": req}
            return update

        stored, current = await self._cas(case_id, doc, raise_urgency)
        return stored or current or doc, False
