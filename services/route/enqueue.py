"""The queue entry: what a classified event does to its case's entry (new, restarted, or a
further contact raising its urgency). Pure: the update for the entry as read, applied in
memory by the batch handler (classified.py), which stores a poll's decisions at once.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from shared.events.common import Channel
from shared.events.pipeline import ComplaintClassified
from shared.store import Document

from . import escalation
from .assignment import EPOCH
from .state import _utc

OPEN_STATES = ("waiting", "assigned")


@dataclass(frozen=True, slots=True)
class Enqueued:
    """One event's effect on the entry: ``update`` (None: nothing to store), whether it
    started a new waiting period (``fresh``), the SLA check it set (``sla_at``), and
    whether the entry had it stored already (``redelivered``)."""

    update: dict[str, Any] | None
    fresh: bool = False
    sla_at: datetime | None = None
    redelivered: bool = False


def enqueue_update(
    doc: Document | None,
    event: ComplaintClassified,
    event_id: str,
    now: datetime,
    warning_fraction: float,
) -> Enqueued:
    """The update that stores ``event`` on the case's entry ``doc`` (None: no entry yet)."""
    if doc is not None and event_id in doc.get("classified_events", []):
        return Enqueued(None, redelivered=True)  # stored: the flush repeats what it said
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
    state = (doc or {}).get("state")
    if (
        doc is not None
        and state not in OPEN_STATES
        and event.channel is Channel.SURVEY
        and not event.case_is_new
    ):
        # A survey answer about a resolved case: whether it reopens the case is
        # followup's call (complaints.escalated, kind dissatisfied), not a new entry.
        return Enqueued({"$addToSet": {"classified_events": event_id}})
    if doc is None or state not in OPEN_STATES:
        # A new case, or a resolved one that came back: (re)start its queue entry.
        start = _utc(event.classified_at)
        due = _utc(event.sla.first_response_due)
        warn_at = escalation.sla_warn_at(start, due, warning_fraction)
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
        return Enqueued(restart, fresh=True, sla_at=warn_at)
    # Another contact on a case already queued or assigned: urgency can only rise.
    update: dict[str, Any] = {
        "$addToSet": {"classified_events": event_id},
        "$max": {"urgency": urgency},
    }
    if urgency > int(doc.get("urgency", 0)):
        req = dict(request)
        earlier = doc.get("req") or {}
        if earlier.get("reopened"):  # still a reopened case, at its raised priority
            req["reopened"] = earlier["reopened"]
            req["priority"] = escalation.more_urgent(str(req["priority"]), earlier.get("priority"))
        update["$set"] = {"req": req}
    return Enqueued(update)
