"""Route's hot path: a poll of complaints.classified handled as one unit.

Per poll, whatever it holds: one ``$in`` read of the cases' queue entries; when some case
can be assigned, one read each of the people (available, or holding a claim on one of
the poll's cases), of the best waiting case outside the poll and of the customers'
handlers, and of the cases' mirrored status; decisions in memory, each case's events in
offset order (enqueue.py), assignments most urgent first against the loads read (each
assignment counted before the next is decided); then one unordered bulk write per
collection and step:

1. the SLA checks (``route_sla``, before the entries that set them), the waiting index
   and the spike buckets; then the queue entries (each event stored, and a lease on the
   cases to be assigned), every one guarded by the version read (``{_id, v}``, upsert);
2. the claims (one guarded ``$inc`` per assignment: a person's load can never pass
   their capacity, whoever else claims at the same time);
3. the assignments, each with its CaseAssigned in the entry's outbox;
4. the case mirror and the customers' handlers; then the outbox is published and
   emptied (one bulk).

A guard that fails (another replica or the drain changed an entry since it was read)
fails its upsert on the duplicate ``_id``: that case's claim is given back and the case
is decided again from a fresh read, the rest of the poll stands. Exactly once: the
entry keeps the ids of the events stored on it, so a redelivered poll (in any order)
stores nothing again; it mirrors the case again and publishes what the outbox still
holds (same event ids). A crash between the steps leaves a lease (the drain waits for it
to expire) or a claim (reused by whoever assigns the case next: see the holders read).
Flag escalations to legal and security are decided with the poll (their targets from the
people read) and stored with its entries; one to a supervisor (a flagged manager request)
goes through ``_escalate`` per case after the writes, as its target needs the assignee's
own supervisor.
"""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, replace
from datetime import datetime, timedelta
from typing import Any

from pymongo import DeleteOne, UpdateOne

from shared.batch import Handled, Incoming, Outgoing, Rejected, group_by
from shared.events.catalogue import ASSIGNED
from shared.events.common import CaseStatus
from shared.events.envelope import derived_id
from shared.events.pipeline import ComplaintClassified
from shared.store import Document
from shared.updates import applied, difference
from shared.writes import (
    bulk_write_conflicts,
    bulk_write_retrying_duplicates,
    in_conflict_rounds,
)

from . import escalation, metrics
from .assignment import EPOCH, Choice, PersonView, rank
from .enqueue import enqueue_update
from .escalations import Escalations, escalation_update
from .outbox import mirror_update
from .spike_alerts import SpikeAlerts
from .state import CUSTOMERS, DUE, WAITING, _utc, remember_handlers_op, to_outgoing

# A case whose entry kept changing under the poll is decided again this many times.
CONFLICT_ROUNDS = 5
_MIRRORED = ("rev", "state", "assignment", "history", "escalations", "status_mirrored")


@dataclass(slots=True)
class _Plan:
    """One case's events of the poll and what they decide."""

    case_id: str
    read: Document | None  # the entry as read
    stored: Document | None  # the entry as last stored (read, or written since)
    doc: Document  # the entry as this poll leaves it (so far)
    fresh: bool = False  # the poll started a new waiting period
    redelivered: bool = False  # an event was stored before (a redelivery)
    sla_at: datetime | None = None
    escalate: list[str] = field(default_factory=list)  # flag escalation kinds
    escalated: list[str] = field(default_factory=list)  # those stored by this poll
    choice: Choice | None = None
    claim: bool = False  # the choice needs a claim of its own (not one held already)
    assigned: bool = False


def _ahead(entry: Mapping[str, Any], doc: Mapping[str, Any]) -> bool:
    """A waiting entry that comes before ``doc`` (more urgent, or waiting longer)."""
    urgency, mine = int(entry.get("urgency", 0)), int(doc.get("urgency", 0))
    return urgency > mine or (
        urgency == mine
        and _utc(entry.get("enqueued_at") or EPOCH) < _utc(doc.get("enqueued_at") or EPOCH)
    )


def _ratio(person: PersonView) -> float:
    return min(1.0, person.load / person.max_cases) if person.max_cases else 1.0


class Classified(Escalations, SpikeAlerts):
    """Handles complaints.classified a poll at a time."""

    async def handle_classified(self, records: Sequence[Incoming]) -> Handled:
        handled = Handled()
        items: list[tuple[Incoming, ComplaintClassified]] = []
        for incoming in records:
            if isinstance(incoming.payload, ComplaintClassified):
                items.append((incoming, incoming.payload))
            else:
                reason = Rejected("invalid_payload", "expected ComplaintClassified")
                handled.rejected.append((incoming, reason))
        if not items:
            return handled
        new_cases = [event for _, event in items if event.case_is_new]
        await asyncio.gather(
            self._count_for_spikes(new_cases),
            in_conflict_rounds(
                items, lambda item: item[1].case_id, self._classified_round, rounds=CONFLICT_ROUNDS
            ),
        )
        return handled

    # -- one round: read, decide, write ---------------------------------------------

    async def _classified_round(
        self, items: Sequence[tuple[Incoming, ComplaintClassified]]
    ) -> set[str]:
        """Decide and store ``items``; the ids of the cases to decide again."""
        now = self.clock()
        by_case = group_by(items, lambda item: item[1].case_id)
        ids = list(by_case)
        stored = await self._by_id("queue", ids)
        plans = [self._enqueued(cid, stored.get(cid), by_case[cid], now) for cid in ids]
        candidates = [p for p in plans if self._may_assign(p, now)]
        flagged = [p for p in plans if self._unescalated(p)]
        mirror_reads = [
            p.case_id
            for p in plans
            if p.read is not None
            and (
                p.redelivered
                or p in candidates
                or p in flagged
                or p.doc.get("rev") != p.read.get("rev")
            )
        ]
        # The SLA checks are written with these reads: before the entries that set them.
        people, head, customers, cases, _ = await asyncio.gather(
            self._people_holding(ids) if candidates or flagged else _nothing(),
            self._first_waiting(ids) if candidates else _nothing(),
            self._by_id(
                CUSTOMERS, sorted({c for p in candidates if (c := p.doc.get("customer_id"))})
            ),
            self._by_id("cases", mirror_reads, {"route_rev": 1, "status": 1}),
            self._sla_checks(plans),
        )
        views = {d["_id"]: PersonView.from_doc(d) for d in people}
        waiting_ahead = await self._choose(candidates, views, head, customers, now)
        if waiting_ahead:
            self.wake.set()  # others wait longer or matter more: the drain keeps the order
        for plan in flagged:
            self._escalate_in_memory(plan, views, now)

        # 1. The events stored, leases on the cases to assign.
        lease_until = now + timedelta(seconds=self.settings.route_lease_seconds)
        for plan in plans:
            if plan.choice is not None:
                lease = {"lease_until": lease_until, "lease_owner": self.poll_owner}
                plan.doc = applied(plan.doc, {"$set": lease})
            elif plan.doc.get("state") == "waiting" and plan in candidates:
                plan.doc = self._queued(plan.doc)
        conflicted, _ = await asyncio.gather(self._store_entries(plans), self._wait_entries(plans))
        # 2. The claims, then 3. the assignments.
        assigning = [p for p in plans if p.choice is not None and p.case_id not in conflicted]
        missed = await self._claims(assigning, now)
        for plan in assigning:
            assert plan.choice is not None
            if plan.case_id in missed:
                reset = {"$set": {"lease_until": EPOCH}}
                plan.doc, plan.choice = self._queued(applied(plan.doc, reset)), None
            else:
                plan.doc = applied(plan.doc, self._assignment_update(plan.doc, plan.choice, now))
                plan.assigned = True
        if missed:
            self.wake.set()
            await self._wait_entries([p for p in assigning if p.case_id in missed])
        lost = await self._store_entries(assigning)
        for plan in assigning:
            if plan.case_id in lost and plan.claim and plan.choice is not None:
                await self._release_claim(plan.case_id, plan.choice.person.person_id)
        conflicted |= lost
        done = [p for p in plans if p.case_id not in conflicted]
        for plan in done:
            for kind in plan.escalated:
                metrics.escalations.labels(kind).inc()
            if plan.assigned and plan.choice is not None:
                req = plan.doc["req"]
                continuity = "yes" if plan.choice.continuity else "no"
                metrics.assignments.labels(
                    plan.choice.person.team, req.get("priority") or "P4", continuity
                ).inc()
        # 4. The mirror and the handlers, then the outbox published and emptied.
        await asyncio.gather(
            self._mirror(done, cases),
            self._remember(done),
            self._unwait_assigned(done),
        )
        await self._publish_outboxes(done)
        for plan in done:
            await self._escalate_flags(plan, now)
        return conflicted

    # -- reads ------------------------------------------------------------------------

    async def _people_holding(self, case_ids: Sequence[str]) -> list[Document]:
        """The people not offline (the available ones take cases, the others may be
        escalated to), and anyone holding a claim on one of ``case_ids`` (left by an
        attempt that did not finish: reused rather than claimed twice)."""
        query = {"$or": [{"presence": {"$ne": "offline"}}, {"open_cases": {"$in": list(case_ids)}}]}
        return await self.store["people"].find(query).to_list()

    async def _first_waiting(self, case_ids: Sequence[str]) -> list[Document]:
        """The waiting case that comes first, of those outside the poll (``queue_waiting``:
        a superset of the waiting cases; a stale entry only sends a case to the drain)."""
        cursor = (
            self.store[WAITING]
            .find({"_id": {"$nin": list(case_ids)}})
            .sort([("urgency", -1), ("enqueued_at", 1)])
            .limit(1)
        )
        return await cursor.to_list()

    # -- decisions in memory ------------------------------------------------------------

    def _enqueued(
        self,
        case_id: str,
        stored: Document | None,
        items: Sequence[tuple[Incoming, ComplaintClassified]],
        now: datetime,
    ) -> _Plan:
        """The case's events stored on its entry, in offset order."""
        doc = stored
        plan = _Plan(case_id, stored, stored, dict(stored or {"_id": case_id}))
        fraction = self.settings.route_sla_warning_fraction
        for incoming, event in items:
            result = enqueue_update(doc, event, incoming.event.id, now, fraction)
            plan.redelivered |= result.redelivered
            if result.update is not None:
                doc = {"_id": case_id, **applied(doc, result.update)}
            if result.fresh:
                plan.fresh = True
                plan.sla_at = result.sla_at
            for kind in escalation.flag_escalations(event.classification.flags.model_dump()):
                if kind not in plan.escalate:
                    plan.escalate.append(kind)
        plan.doc = doc or plan.doc
        return plan

    @property
    def poll_owner(self) -> str:
        """The lease owner of this replica's poll handler: not the drain's (``token``),
        which may lease the same case meanwhile and must not look like us."""
        return f"{self.token}:poll"

    def _may_assign(self, plan: _Plan, now: datetime) -> bool:
        """Waiting, and not leased by anyone but this handler (an earlier round or
        attempt of the poll, whose claim the holders read finds)."""
        doc = plan.doc
        if doc.get("state") != "waiting" or "req" not in doc:
            return False
        leased = _utc(doc.get("lease_until") or EPOCH) >= now
        return not leased or doc.get("lease_owner") == self.poll_owner

    async def _choose(
        self,
        candidates: Sequence[_Plan],
        views: dict[str, PersonView],
        head: Sequence[Document],
        customers: Mapping[str, Document],
        now: datetime,
    ) -> bool:
        """Choose who takes each candidate, most urgent first, counting each choice in
        the loads before the next (in ``views``, the people read). A case behind a waiting
        one outside the poll waits for the drain, which keeps the order: True when one
        did."""
        min_seniority = self.settings.route_senior_min_seniority
        available = {pid: v for pid, v in views.items() if v.presence == "available"}
        held = {case_id: view for view in available.values() for case_id in view.open_cases}
        first = head[0] if head else None
        behind = False  # behind a waiting case outside the poll: so are those after it
        order = sorted(
            candidates,
            key=lambda p: (-int(p.doc.get("urgency", 0)), _utc(p.doc.get("enqueued_at") or EPOCH)),
        )
        for plan in order:
            doc = plan.doc
            if behind or (first is not None and _ahead(first, doc)):
                behind = True
                continue
            previous = await self._handlers_from(doc, customers.get(doc.get("customer_id", "")))
            ranked = rank(available.values(), self._requirement(doc, previous), now, min_seniority)
            holder = held.get(plan.case_id)
            if holder is not None:
                plan.choice = next(
                    (c for c in ranked if c.person.person_id == holder.person_id),
                    Choice(holder, False, ["claim recovered after a restart"]),
                )
            elif ranked:
                plan.choice, plan.claim = ranked[0], True
                person = ranked[0].person
                available[person.person_id] = views[person.person_id] = replace(
                    person,
                    load=person.load + 1,
                    last_assigned_at=now,
                    open_cases=(*person.open_cases, plan.case_id),
                )
            # else no one fits now: it waits; as in the drain, the cases after it are
            # still tried (what they can take, it cannot).
        return behind

    @staticmethod
    def _unescalated(plan: _Plan) -> bool:
        done = plan.doc.get("escalation_ids", [])
        return any(
            derived_id(plan.case_id, "escalation", kind) not in done for kind in plan.escalate
        )

    def _escalate_in_memory(
        self, plan: _Plan, views: Mapping[str, PersonView], now: datetime
    ) -> None:
        """The case's flag escalations (legal, safety) recorded on its entry, once per
        case and kind, each to the least busy reachable person of its role (as
        ``_target`` finds them, from the people read). A supervisor escalation depends
        on the assignee's own supervisor: left to ``_escalate`` after the writes."""
        for kind in plan.escalate:
            role, reason = escalation.FLAG_ROUTES[kind]
            event_id = derived_id(plan.case_id, "escalation", kind)
            if role == "supervisor" or event_id in plan.doc.get("escalation_ids", []):
                continue
            people = [v for v in views.values() if role in v.roles or v.team == role]
            target = escalation.choose_target(role, people, now)
            update = escalation_update(plan.case_id, kind, target, reason, event_id, now)
            plan.doc = applied(plan.doc, update)
            plan.escalated.append(kind)

    @staticmethod
    def _queued(doc: Document) -> Document:
        """A waiting entry whose queued status the mirror below writes."""
        if doc.get("status_mirrored") == "queued":
            return doc
        return applied(doc, {"$set": {"status_mirrored": "queued"}})

    # -- writes -------------------------------------------------------------------------

    async def _store_entries(self, plans: Sequence[_Plan]) -> set[str]:
        """One bulk write of the entries this poll changed, each guarded by the version
        last stored (``{_id, v}``, bumped; an upsert, so a guard that fails is a duplicate
        ``_id``); the ids of the cases whose guard failed."""
        ops: list[UpdateOne] = []
        written: list[_Plan] = []
        for plan in plans:
            if not difference(plan.stored, plan.doc):
                continue
            version = (plan.stored or {}).get("v")
            plan.doc = {**plan.doc, "v": int(version or 0) + 1}
            change = difference(plan.stored, plan.doc)
            ops.append(UpdateOne({"_id": plan.case_id, "v": version}, change, upsert=True))
            written.append(plan)
        _, failed = await bulk_write_conflicts(self.store["queue"], ops)
        conflicted = {written[i].case_id for i in failed}
        for plan in written:
            if plan.case_id not in conflicted:
                plan.stored = plan.doc
        return conflicted

    async def _sla_checks(self, plans: Sequence[_Plan]) -> None:
        """Note in ``route_sla`` the next SLA check of every case the poll restarts, before
        the entries that set it are written (see ``_sla_due``)."""
        ops = [
            UpdateOne(
                {"_id": p.case_id},
                {"$set": {"stamp": uuid.uuid4().hex}, "$min": {"sla_at": p.sla_at}},
                upsert=True,
            )
            for p in plans
            if p.sla_at is not None
        ]
        await bulk_write_retrying_duplicates(self.store[DUE], ops)

    async def _wait_entries(self, plans: Sequence[_Plan]) -> None:
        """Enter (or refresh) the poll's waiting cases in ``queue_waiting``, at the rev
        this poll gives them; a newer entry (its upsert fails on the _id) stays."""
        ops = []
        for plan in plans:
            doc = plan.doc
            if doc.get("state") != "waiting" or plan.choice is not None:
                continue
            rev = int(doc.get("rev", 0))
            entry = {
                "urgency": int(doc.get("urgency", 0)),
                "enqueued_at": doc.get("enqueued_at") or EPOCH,
                "category": (doc.get("req") or {}).get("category", "other"),
                "rev": rev,
                "stamp": uuid.uuid4().hex,
                "at": self.clock(),
            }
            ops.append(
                UpdateOne(
                    {"_id": plan.case_id, "rev": {"$not": {"$gt": rev}}},
                    {"$set": entry},
                    upsert=True,
                )
            )
        await bulk_write_conflicts(self.store[WAITING], ops)

    async def _claims(self, plans: Sequence[_Plan], now: datetime) -> set[str]:
        """One guarded ``$inc`` per new claim (presence available, load below the
        capacity read, case not yet held), as one bulk; the cases whose claim missed."""
        claiming = [p for p in plans if p.claim and p.choice is not None]
        ops = []
        for plan in claiming:
            assert plan.choice is not None
            p = plan.choice.person
            ops.append(
                UpdateOne(
                    {
                        "_id": p.person_id,
                        "presence": "available",
                        "max_concurrent_cases": p.max_cases,
                        "load": {"$lt": p.max_cases},
                        "open_cases": {"$ne": plan.case_id},
                    },
                    {
                        "$inc": {"load": 1},
                        "$addToSet": {"open_cases": plan.case_id},
                        "$set": {"last_assigned_at": now},
                    },
                )
            )
        if not ops:
            return set()
        result = await self.store["people"].bulk_write(ops, ordered=False)
        if result.matched_count == len(ops):
            for plan in claiming:
                assert plan.choice is not None
                person = plan.choice.person
                metrics.person_load_ratio.observe(_ratio(replace(person, load=person.load + 1)))
            return set()
        # Someone else took that capacity meanwhile: which claims hold?
        persons = sorted({p.choice.person.person_id for p in claiming if p.choice})
        holding = await self._by_id("people", persons, {"open_cases": 1})
        return {
            plan.case_id
            for plan in claiming
            if plan.choice is not None
            and plan.case_id
            not in (holding.get(plan.choice.person.person_id) or {}).get("open_cases", [])
        }

    async def _mirror(self, plans: Sequence[_Plan], cases: Mapping[str, Document]) -> None:
        """Mirror the entries whose mirrored fields changed (or were redelivered) onto
        their cases, in one bulk: each update compares the case as read (a new entry's
        case as ingest left it, open and never mirrored); a miss is mirrored alone."""
        ops: list[UpdateOne] = []
        planned: list[_Plan] = []
        for plan in plans:
            changed = any((plan.read or {}).get(k) != plan.doc.get(k) for k in _MIRRORED)
            if "req" not in plan.doc or not (plan.redelivered or changed or plan.doc.get("outbox")):
                continue
            case: Mapping[str, Any] | None = cases.get(plan.case_id)
            if case is None and plan.read is None:
                case = {"_id": plan.case_id, "route_rev": None, "status": CaseStatus.OPEN.value}
            mirrored = mirror_update(plan.doc, case)
            if mirrored is None:
                continue
            query, update = mirrored
            ops.append(UpdateOne(query, update, upsert=True))
            planned.append(plan)
        _, failed = await bulk_write_conflicts(self.store["cases"], ops)
        for i in sorted(failed):
            await self._project(planned[i].doc)

    async def _remember(self, plans: Sequence[_Plan]) -> None:
        """Who handled each case just assigned (or left assigned with its event
        unpublished), under its customer."""
        ops = []
        for plan in plans:
            entries = (plan.doc.get("outbox") or {}).values()
            if any(e.get("topic") == ASSIGNED.topic for e in entries):
                op = remember_handlers_op(plan.doc)
                if op is not None:
                    ops.append(UpdateOne(*op, upsert=True))
        await bulk_write_retrying_duplicates(self.store[CUSTOMERS], ops)

    async def _unwait_assigned(self, plans: Sequence[_Plan]) -> None:
        """Drop the waiting entries of cases that waited before and are assigned now."""
        ops = [
            DeleteOne({"_id": p.case_id, "rev": {"$lte": int(p.doc.get("rev", 0))}})
            for p in plans
            if p.assigned and not p.fresh
        ]
        if ops:
            await self.store[WAITING].bulk_write(ops, ordered=False)

    async def _publish_outboxes(self, plans: Sequence[_Plan]) -> None:
        """Publish what the entries' outboxes hold, then empty them: one bulk, each
        update keyed by the version written (a miss: only the published ids dropped)."""
        outgoing: list[Outgoing] = []
        ops: list[UpdateOne] = []
        flushed: list[tuple[_Plan, dict[str, str]]] = []
        for plan in plans:
            entries: Mapping[str, Any] = plan.doc.get("outbox") or {}
            if not entries:
                continue
            outgoing.extend(to_outgoing(eid, entry) for eid, entry in entries.items())
            unset = {f"outbox.{eid}": "" for eid in entries}
            ops.append(
                UpdateOne(
                    {"_id": plan.case_id, "v": plan.doc.get("v")},
                    {"$unset": {**unset, "outbox_at": ""}},
                )
            )
            flushed.append((plan, unset))
        if not ops:
            return
        await self.publish(outgoing)
        result = await self.store["queue"].bulk_write(ops, ordered=False)
        if result.matched_count < len(ops):
            # Some entry changed meanwhile (maybe more events stored): drop only these.
            for plan, unset in flushed:
                await self.store["queue"].update_one({"_id": plan.case_id}, {"$unset": unset})
        for plan, _ in flushed:
            plan.doc = {k: v for k, v in plan.doc.items() if k != "outbox_at"}
            plan.doc["outbox"] = {}

    async def _escalate_flags(self, plan: _Plan, now: datetime) -> None:
        """A supervisor escalation for a flag (per case, rare: its target depends on the
        assignee's own supervisor), once per case and kind."""
        doc: Document = plan.doc
        escalated = False
        for kind in plan.escalate:
            role, reason = escalation.FLAG_ROUTES[kind]
            event_id = derived_id(plan.case_id, "escalation", kind)
            if role != "supervisor" or event_id in doc.get("escalation_ids", []):
                continue  # recorded with the poll's writes, or before
            stored = await self._escalate(doc, kind, role, reason, event_id, now)
            if stored is not None:
                doc, escalated = stored, True
        if escalated:
            await self._flush("queue", doc)


async def _nothing() -> list[Document]:
    return []
