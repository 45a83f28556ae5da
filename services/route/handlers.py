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

Every topic is handled a poll at a time: complaints.classified (``handle_classified``) and
complaints.resolved (``handle_resolved``), one event per complaint, in a few bulk
commands per poll; first responses likewise; the rarer steps (a manager requested, a
reopen, someone going offline) go a record at a time inside the poll handler, each for
the reason given there. Handlers publish through the outbox themselves and return no
events to the scaffold.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from typing import Any, TypeVar

from pymongo import UpdateOne

from shared.batch import Handled, Incoming, Rejected, group_by
from shared.events.directory import PersonUpdated, PresenceChanged
from shared.events.envelope import derived_id
from shared.events.lifecycle import CaseActivity
from shared.events.pipeline import CaseEscalated
from shared.store import Document
from shared.updates import applied
from shared.writes import bulk_write_retrying_duplicates, in_conflict_rounds

from . import escalation
from .assignment import EPOCH
from .classified import Classified
from .digests import Digests
from .directory import person_update
from .reopen import Reopen
from .resolved import Resolved

log = logging.getLogger(__name__)

P = TypeVar("P")


def payloads(
    records: Sequence[Incoming], kind: type[P], handled: Handled
) -> list[tuple[Incoming, P]]:
    """The records whose payload is a ``kind``; the others rejected into ``handled``."""
    items: list[tuple[Incoming, P]] = []
    for incoming in records:
        if isinstance(incoming.payload, kind):
            items.append((incoming, incoming.payload))
        else:
            handled.rejected.append(
                (incoming, Rejected("invalid_payload", f"expected {kind.__name__}"))
            )
    return items


def answered_update(doc: Document | None, activity: CaseActivity) -> dict[str, Any] | None:
    """A first response: the SLA sweep has nothing more to do for the case (its route_sla
    entry is dropped by the sweep when it comes due). None when it had nothing pending."""
    if doc is None or doc.get("sla_stage") not in ("pending", "warned"):
        return None
    return {
        "$set": {"sla_stage": "responded", "responded_at": activity.at},
        "$unset": {"sla_next_at": ""},
    }


class Router(Classified, Resolved, Reopen, Digests):
    """Route's handlers and background passes over one store."""

    # -- Kafka handlers -----------------------------------------------------------------

    async def handle_activity(self, records: Sequence[Incoming]) -> Handled:
        """First responses: one ``$in`` read and one guarded bulk of queue entries per
        poll. A manager requested goes per record after them: its target is the
        assignee's own supervisor (reads of its own), and it is rare."""
        handled = Handled()
        items = payloads(records, CaseActivity, handled)
        answers = group_by([a for _, a in items if a.kind == "first_response"], lambda a: a.case_id)
        if answers:

            async def answer(case_ids: Sequence[str]) -> set[str]:
                stored = await self._by_id("queue", case_ids)
                changes: list[tuple[str, Document | None, Document]] = []
                for case_id in case_ids:
                    doc = stored.get(case_id)
                    for activity in answers[case_id]:
                        update = answered_update(doc, activity)
                        doc = doc if update is None else applied(doc, update)
                    if doc is not None and doc is not stored.get(case_id):
                        changes.append((case_id, stored.get(case_id), doc))
                return await self._store_versions(changes)

            await in_conflict_rounds(list(answers), lambda cid: cid, answer)
        for incoming, activity in items:
            if activity.kind != "manager_requested":
                continue
            queue = self.store["queue"]
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
        return handled

    async def handle_escalated(self, records: Sequence[Incoming]) -> Handled:
        """followup reopened resolved cases: queue each again, assign it when someone fits.

        Only the reopen kinds; route's own escalations come back on this topic and are
        ignored by kind (route never raises a reopen kind), so route cannot loop. A
        record at a time, in offset order: a reopen reads its previous assignee and their
        supervisor, may free the claim the case holds and then claims capacity again
        (``_place``), each claim guarded against the loads just read; reopens are rare
        (an unsatisfied survey answer, a public complaint in the watch window).
        """
        handled = Handled()
        for incoming, event in payloads(records, CaseEscalated, handled):
            if event.kind not in escalation.REOPEN_KINDS:
                continue
            try:
                doc = await self._reopen(event, incoming.event.id)
            except Rejected as exc:
                handled.rejected.append((incoming, exc))
                continue
            if doc.get("state") == "waiting":
                await self._place(doc)
        return handled

    async def handle_directory(self, records: Sequence[Incoming]) -> Handled:
        """Directory records: each person's latest record stored in one bulk, then what
        their presence means (see ``_presence_poll``)."""
        handled = Handled()
        items = payloads(records, PersonUpdated, handled)
        now = self.clock()
        latest = {u.person.person_id: u.person for _, u in items}
        ops = [
            UpdateOne({"_id": pid}, person_update(p, now), upsert=True) for pid, p in latest.items()
        ]
        await bulk_write_retrying_duplicates(self.store["people"], ops)
        changes = [(i, u.person.person_id, u.person.presence) for i, u in items]
        await self._presence_poll(changes)
        return handled

    async def handle_presence(self, records: Sequence[Incoming]) -> Handled:
        """Presence changes: each person's latest presence stored in one bulk, then what
        it means (see ``_presence_poll``)."""
        handled = Handled()
        items = payloads(records, PresenceChanged, handled)
        now = self.clock()
        latest = {c.person_id: c.presence for _, c in items}
        ops = [
            UpdateOne(
                {"_id": pid},
                {
                    "$set": {"presence": presence, "presence_at": now},
                    "$setOnInsert": {"load": 0, "open_cases": [], "last_assigned_at": EPOCH},
                },
                upsert=True,
            )
            for pid, presence in latest.items()
        ]
        await bulk_write_retrying_duplicates(self.store["people"], ops)
        await self._presence_poll([(i, c.person_id, c.presence) for i, c in items])
        return handled

    async def _presence_poll(self, changes: Sequence[tuple[Incoming, str, str]]) -> None:
        """Someone available: the drain is woken. Someone offline: their open cases go
        back to the queue, a record at a time in offset order: each case is moved with
        its outbox marker and waiting entry written before the move and its claim freed
        after it (as the SLA sweep's reassignments), and going offline is rare."""
        for incoming, person_id, presence in changes:
            await self._presence_effects(person_id, presence, incoming.event.id)
