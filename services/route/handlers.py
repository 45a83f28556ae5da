"""Route's handlers: what each consumed event does, over the parts that own route's state.

``Router`` is that facade; its passes and helpers come from one part each:

* ``state.py``: the collections and their indexes, the keyed writes (compare-and-set on
  the queue entry), the small indexes (waiting cases, SLA checks, outbox markers) and
  who handled each customer's cases;
* ``outbox.py``: the outbox flush, the case mirror, the outbox sweep;
* ``enqueue.py``: what a classified event does to its case's queue entry (pure);
* ``classified.py``: complaints.classified, a poll at a time (enqueue, assign, mirror);
* ``resolved.py``: complaints.resolved, a poll at a time (close, free capacity, lessons);
* ``dispatch.py``: leases, claims, the drain, the gauges;
* ``handback.py``: presence, hand-back to the queue;
* ``reopen.py``: reopened cases queued again;
* ``escalations.py``: escalations and the SLA sweep;
* ``digests.py``: lessons and digests;
* ``spike_alerts.py``: spike counting, detection and alerts;
* ``directory.py``: the people directory and its seeding.

Each part is a base class of ``Router`` and builds only on the parts below it
(state <- outbox <- dispatch <- handback <- escalations <- classified, which also builds
on spike_alerts; reopen on dispatch; digests and spike_alerts on outbox), so it calls
only what it can see.

complaints.classified (one event per complaint) is handled a poll at a time
(``handle_classified``); the other topics, rarer, still go a record at a time through
the scaffold's ``each_record`` adapter. Handlers publish through the outbox themselves
and return no events to the scaffold.
"""

from __future__ import annotations

import logging
from typing import Any

from shared.events.directory import PersonUpdated, PresenceChanged
from shared.events.envelope import derived_id
from shared.events.lifecycle import CaseActivity
from shared.events.pipeline import CaseEscalated
from shared.service import Incoming, Outgoing
from shared.store import Document

from . import escalation
from .assignment import EPOCH
from .classified import Classified
from .digests import Digests
from .directory import upsert_person
from .reopen import Reopen
from .resolved import Resolved

log = logging.getLogger(__name__)


class Router(Classified, Resolved, Reopen, Digests):
    """Route's handlers and background passes over one store."""

    # -- Kafka handlers -----------------------------------------------------------------

    async def on_directory(self, incoming: Incoming) -> list[Outgoing]:
        person = incoming.payload.person if isinstance(incoming.payload, PersonUpdated) else None
        if person is None:
            return []
        await upsert_person(self.store, person, self.clock())
        await self._presence_effects(person.person_id, person.presence, incoming.event.id)
        return []

    async def on_presence(self, incoming: Incoming) -> list[Outgoing]:
        change: PresenceChanged = incoming.payload
        await self.store["people"].update_one(
            {"_id": change.person_id},
            {
                "$set": {"presence": change.presence, "presence_at": self.clock()},
                "$setOnInsert": {"load": 0, "open_cases": [], "last_assigned_at": EPOCH},
            },
            upsert=True,
        )
        await self._presence_effects(change.person_id, change.presence, incoming.event.id)
        return []

    async def on_activity(self, incoming: Incoming) -> list[Outgoing]:
        activity: CaseActivity = incoming.payload
        queue = self.store["queue"]
        if activity.kind == "first_response":
            # Answered: the SLA sweep has nothing more to do for this case (its route_sla
            # entry is dropped by the sweep when it comes due).
            def answered(d: Document | None) -> dict[str, Any] | None:
                if d is None or d.get("sla_stage") not in ("pending", "warned"):
                    return None
                return {
                    "$set": {"sla_stage": "responded", "responded_at": activity.at},
                    "$unset": {"sla_next_at": ""},
                }

            await self._cas(activity.case_id, None, answered, known=False)
        elif activity.kind == "manager_requested":
            doc = await queue.find_one({"_id": activity.case_id}) or {"_id": activity.case_id}
            role, reason = escalation.FLAG_ROUTES["manager_requested"]
            done = await self._escalate(
                doc,
                "manager_requested",
                role,
                f"{reason}: {activity.note[:200]}" if activity.note else reason,
                derived_id(incoming.event.id, "escalation"),
                self.clock(),
            )
            await self._flush("queue", done or doc)
        return []

    async def on_escalated(self, incoming: Incoming) -> list[Outgoing]:
        """followup reopened a resolved case: queue it again, assign it when someone fits.

        Only the reopen kinds; route's own escalations come back on this topic and are
        ignored by kind (route never raises a reopen kind), so route cannot loop.
        """
        event: CaseEscalated = incoming.payload
        if event.kind not in escalation.REOPEN_KINDS:
            return []
        doc = await self._reopen(event, incoming.event.id)
        if doc.get("state") == "waiting":
            await self._place(doc)
        return []
