"""Route's decisions over the store: assignment, queue, escalation, lessons, spikes.

State lives in route's own collections; the case document only mirrors route's fields
(assignment, assignment_history, escalations, status queued/assigned, stages.assigned_at,
lesson), written idempotently from that state.

* ``queue`` (one document per case): the request, ``state`` waiting / assigned / closed,
  the SLA stage and its next check time, who handled it, the escalations, and an
  *outbox*: every event route emits is first stored, in the same single-document atomic
  update as the decision it announces, under ``outbox.<event id>``. It is then published
  and removed. What a crash leaves behind is published again (same event id, so
  consumers drop the duplicate): in a handler by the redelivery of its record, whose
  flush publishes whatever the outbox holds; in background work by a sweep, found through
  a ``route_outbox`` marker written before the decision (drain, hand-back) or through the
  ``route_sla`` entry that stays due until the SLA sweep's flush. No decision can be
  stored without its event. Every guarded write is a compare-and-set on ``v`` (see
  ``INDEXES``).
* ``queue_waiting``, ``route_sla``, ``route_outbox``: the only collections scanned on
  the hot path and by the sweeps; they hold open work only (waiting cases, pending SLA
  checks, unpublished background writes), so their size does not grow with history.
  ``route_customers``: per customer (by _id), their cases and who handled them.
* ``people``: the directory plus ``load`` and ``open_cases``. A claim is one guarded
  ``$inc`` (presence available, load below the capacity read, case not yet held), so two
  replicas can never push a person over capacity.
* ``lessons``, ``digests``, ``spike_buckets``, ``spikes``.

Handlers publish through the outbox themselves and return no events to the scaffold.

Reopened cases: followup reopens a resolved case (an unsatisfied survey answer, or a new
public complaint in the watch window) and announces it on ``complaints.escalated`` (kinds
``dissatisfied`` / ``reopened``, with a raised priority). Route queues the case again at
that priority (at least P2), with a fresh SLA clock of the original lengths, for a senior
handler (seniority as for P1). Continuity, decided: the previous assignee's supervisor
is preferred when they take cases, then the usual order (others who handled the
customer, skill, load); the previous assignee comes last (the customer rejected their
resolution, but they know the case: better than leaving it waiting when no one else
fits). The new ``CaseAssigned`` says why, and followup starts a new plan from it. A
survey answer about a resolved case does not re-queue it through ``complaints.classified``:
whether it reopens the case is followup's call.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import uuid
from collections import Counter, defaultdict
from collections.abc import Awaitable, Callable, Mapping, Sequence
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from pydantic import BaseModel
from pymongo import IndexModel, ReturnDocument
from pymongo.errors import DuplicateKeyError

from shared.events.catalogue import ASSIGNED, CATALOGUE, ESCALATED, LESSONS, SPIKES, EventSpec
from shared.events.common import CaseStatus, Channel
from shared.events.directory import Person, PersonUpdated, PresenceChanged
from shared.events.envelope import derived_id, utcnow
from shared.events.lifecycle import CaseActivity, CaseResolved, LessonShared, SpikeAlert
from shared.events.pipeline import Assignee, CaseAssigned, CaseEscalated, ComplaintClassified
from shared.service import Incoming, Outgoing, Rejected
from shared.store import Document, IndexSpec, Store

from . import escalation, lessons, metrics, spikes
from .assignment import EPOCH, Choice, PersonView, Requirement, rank, skill_level
from .settings import RouteSettings

log = logging.getLogger(__name__)

Publisher = Callable[[Sequence[Outgoing]], Awaitable[None]]
Clock = Callable[[], datetime]

SPEC_BY_TOPIC: dict[str, EventSpec] = {spec.topic: spec for spec in CATALOGUE}
FINAL_CASE_STATUSES = ["resolved", "closed"]
WAITING = "queue_waiting"  # one entry per waiting case (a superset, repaired by the drain)
DUE = "route_sla"  # cases with an SLA check pending, by case id
PENDING = "route_outbox"  # one marker per background write whose outbox is not yet published
CUSTOMERS = "route_customers"  # per customer: their cases and who handled them
CAS_ATTEMPTS = 8
HANDLER_CASES_KEPT = 40  # per customer, the most recent cases kept for continuity

# The local MongoDB-protocol server (deploy/local/MONGO.md) only uses an index when a
# query's fields are exactly the fields of a *unique* index: ``{"_id": x}`` is keyed, but
# ``{"_id": x, "state": "waiting"}`` reads the whole collection. So every guarded write on
# the growing collections (queue, cases) is a compare-and-set on an equality filter that a
# unique index covers: queue documents carry a version ``v`` (every write that can change
# what a guard reads bumps it; unique index (_id, v)), and the case mirror compares
# (_id, route_rev, status). Queries by anything else only read small collections whose
# size follows the open work, not history: ``queue_waiting`` (waiting cases), ``route_sla``
# (cases with an SLA check pending), ``route_outbox`` (background writes whose events are
# not yet published); ``route_customers`` (per customer, who handled their cases) is read
# by _id.
INDEXES: tuple[IndexSpec, ...] = (
    IndexSpec(
        "people",
        (
            IndexModel([("presence", 1)], name="presence"),
            IndexModel([("open_cases", 1)], name="open_cases"),
            IndexModel([("roles", 1)], name="roles"),
            IndexModel([("team", 1)], name="team"),
        ),
    ),
    IndexSpec("queue", (IndexModel([("_id", 1), ("v", 1)], unique=True, name="id_v"),)),
    IndexSpec(
        "cases",
        (
            IndexModel(
                [("_id", 1), ("route_rev", 1), ("status", 1)],
                unique=True,
                name="id_route_rev_status",
            ),
        ),
    ),
    IndexSpec(
        WAITING,
        (IndexModel([("urgency", -1), ("enqueued_at", 1)], name="urgency_enqueued_at"),),
    ),
    IndexSpec(
        DUE,
        (
            IndexModel([("_id", 1), ("stamp", 1)], unique=True, name="id_stamp"),
            IndexModel([("sla_at", 1)], name="sla_at"),
        ),
    ),
    IndexSpec(PENDING, (IndexModel([("at", 1)], name="at"),)),
    IndexSpec(
        "lessons",
        (
            IndexModel([("resolved_at", 1)], name="resolved_at"),
            IndexModel([("case_id", 1)], name="case_id"),
        ),
    ),
    IndexSpec("digests", (IndexModel([("department", 1), ("period_start", -1)], name="dept"),)),
    IndexSpec(
        "spike_buckets",
        (
            IndexModel([("bucket", 1)], name="bucket"),
            IndexModel([("dimension", 1), ("value", 1), ("bucket", 1)], name="dim_value_bucket"),
            IndexModel([("expire_at", 1)], name="expire_at_ttl", expireAfterSeconds=0),
        ),
    ),
    IndexSpec(
        "spikes",
        (
            IndexModel([("active", 1)], name="active"),
            IndexModel([("outbox_at", 1)], name="outbox_at"),
        ),
    ),
)


def now_ms() -> datetime:
    """UTC now at the database's precision (ms), so stored and in-memory values compare."""
    now = utcnow()
    return now.replace(microsecond=now.microsecond // 1000 * 1000)


def _utc(value: datetime) -> datetime:
    return value if value.tzinfo else value.replace(tzinfo=UTC)


def outbox_entry(
    spec: EventSpec, payload: BaseModel, key: str, subject: str | None = None
) -> dict[str, Any]:
    return {
        "topic": spec.topic,
        "key": key,
        "subject": subject,
        "payload": payload.model_dump(mode="json", exclude_none=True),
    }


def to_outgoing(event_id: str, entry: Mapping[str, Any]) -> Outgoing:
    spec = SPEC_BY_TOPIC[entry["topic"]]
    assert spec.schema is not None
    return Outgoing(
        spec=spec,
        payload=spec.schema.model_validate(entry["payload"]),
        key=entry["key"],
        event_id=event_id,
        subject=entry.get("subject"),
    )


# -- directory --------------------------------------------------------------------------


def person_fields(person: Person) -> Document:
    data = person.model_dump(mode="json")
    data.pop("person_id")
    return data


async def upsert_person(store: Store, person: Person, now: datetime) -> Document | None:
    """Store a whole directory record; returns the document as it was before (or None).

    ``load`` and ``open_cases`` belong to assignment and are never overwritten here.
    """
    return await store["people"].find_one_and_update(
        {"_id": person.person_id},
        {
            "$set": {**person_fields(person), "updated_at": now},
            "$setOnInsert": {"load": 0, "open_cases": [], "last_assigned_at": EPOCH},
        },
        upsert=True,
        return_document=ReturnDocument.BEFORE,
    )


def load_people_file(path: Path) -> list[Person]:
    data = json.loads(path.read_text(encoding="utf-8"))
    records = data["people"] if isinstance(data, dict) else data
    return [Person.model_validate(record) for record in records]


async def seed_directory(store: Store, path: Path | str) -> int:
    """Load a people file (a JSON list of Person records, or ``{"people": [...]}``)."""
    people = load_people_file(Path(path))
    now = now_ms()
    for person in people:
        await upsert_person(store, person, now)
    log.info("seeded %d people from %s", len(people), path)
    return len(people)


class Router:
    """Route's handlers and background passes over one store."""

    def __init__(
        self,
        store: Store,
        settings: RouteSettings,
        publish: Publisher,
        subscriptions: lessons.Subscriptions,
        clock: Clock = now_ms,
    ) -> None:
        self.store = store
        self.settings = settings
        self.publish = publish
        self.subscriptions = subscriptions
        self.clock = clock
        self.token = uuid.uuid4().hex  # this replica, for leases
        self.wake = asyncio.Event()  # set when capacity may have freed up
        self.windows = spikes.Windows(
            settings.route_spike_window_seconds, settings.route_spike_baseline_seconds
        )

    # -- Kafka handlers -----------------------------------------------------------------

    async def on_classified(self, incoming: Incoming) -> list[Outgoing]:
        event: ComplaintClassified = incoming.payload
        now = self.clock()
        if event.case_is_new:
            await self._count_for_spikes(event)
        doc, fresh = await self._enqueue(event, incoming.event.id, now)
        if doc is None:
            return []
        assigned = None
        if doc.get("state") == "waiting":
            # A case that waited before may have a waiting entry to drop once assigned.
            assigned = await self._place(doc, unwait=not fresh)
            if assigned is not None:
                doc = assigned[0]  # as _assign left it: no need to read it again
        flags = event.classification.flags.model_dump()
        for kind in escalation.flag_escalations(flags):
            role, reason = escalation.FLAG_ROUTES[kind]
            doc = (
                await self._escalate(
                    doc, kind, role, reason, derived_id(event.case_id, "escalation", kind), now
                )
                or doc
            )
        # _assign's flush mirrored this very state a moment ago: mirroring it again would
        # repeat the same idempotent case updates (bench: 3 of ~15 commands per complaint).
        mirrored = assigned[0] if assigned is not None else None
        await self._flush("queue", doc, mirror=not _same_mirror(doc, mirrored))
        return []

    async def _place(
        self, doc: Document, *, unwait: bool = True
    ) -> tuple[Document, Document] | None:
        """A waiting case, in a handler: assign it now unless others come first; else enter
        it in queue_waiting. A crash anywhere here is repeated by the redelivery, whose
        flush publishes what the outbox holds (so no route_outbox marker is needed)."""
        ahead = await self._anyone_ahead(doc)
        if not ahead:
            assigned = await self._assign(doc, unwait=unwait, redelivered=True)
            if assigned is not None:
                return assigned
        # Still waiting (or taken meanwhile by another replica: the drain drops the entry).
        await self._wait_index(doc)
        if ahead:
            self.wake.set()  # others wait longer or matter more: the drain keeps the order
        return None

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

    async def on_resolved(self, incoming: Incoming) -> list[Outgoing]:
        event: CaseResolved = incoming.payload
        now = self.clock()
        resolved_at = _utc(event.resolved_at)
        before: dict[str, Any] = {}

        def close(d: Document | None) -> dict[str, Any] | None:
            if d is None or d.get("state") == "closed":
                return None
            reopened = d.get("reopened_at")
            if reopened is not None and _utc(reopened) > resolved_at:
                return None  # reopened after this resolution (the reopen got here first)
            before["state"] = d.get("state")
            return {
                "$set": {"state": "closed", "closed_at": event.resolved_at, "lease_until": EPOCH},
                "$unset": {"sla_next_at": ""},
            }

        closed, current = await self._cas(event.case_id, None, close, known=False)
        reopened = (current or {}).get("reopened_at")
        reopened_since = closed is None and reopened is not None and _utc(reopened) > resolved_at
        if reopened_since:
            log.info("case %s was reopened after this resolution; kept open", event.case_id)
        else:
            if closed is not None and before.get("state") == "waiting":
                await self._unwait(event.case_id, int(closed.get("rev", 0)))
            # Free the capacity wherever the case is held (also repairs a claim a crash left).
            # people is small (the directory); its open_cases follow the open load.
            async for holder in self.store["people"].find(
                {"open_cases": event.case_id}, {"_id": 1}
            ):
                await self._release_claim(event.case_id, holder["_id"])
        if event.lesson is not None:
            await self._share_lesson(event, incoming.event.id, now)
        self.wake.set()
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

    # -- keyed writes and the small indexes ----------------------------------------------

    async def _cas(
        self,
        case_id: str,
        doc: Document | None,
        update_for: Callable[[Document | None], dict[str, Any] | None],
        *,
        upsert: bool = False,
        known: bool = True,
    ) -> tuple[Document | None, Document | None]:
        """One guarded update of ``queue[case_id]`` by compare-and-set on its version.

        ``update_for(doc)`` is the update for that stored version, or None when the guard
        it checks fails. The write filters on ``{_id, v}`` (keyed by the unique index) and
        bumps ``v``: if anything changed the document since ``doc`` was read, it misses,
        and the document is read again and decided again. Returns (stored doc after the
        update or None, the latest version seen).
        """
        queue = self.store["queue"]
        if not known:
            doc = await queue.find_one({"_id": case_id})
        for _ in range(CAS_ATTEMPTS):
            update = update_for(doc)
            if update is None or (doc is None and not upsert):
                return None, doc
            version = (doc or {}).get("v")
            update = {**update, "$set": {**update.get("$set", {}), "v": int(version or 0) + 1}}
            try:
                stored = await queue.find_one_and_update(
                    {"_id": case_id, "v": version},
                    update,
                    upsert=doc is None,
                    return_document=ReturnDocument.AFTER,
                )
            except DuplicateKeyError:
                stored = None  # created meanwhile
            if stored is not None:
                return stored, stored
            doc = await queue.find_one({"_id": case_id})
        raise RuntimeError(f"queue entry {case_id} kept changing")

    async def _wait_index(self, doc: Mapping[str, Any], rev: int | None = None) -> str:
        """Enter (or refresh) a waiting case in ``queue_waiting``; returns the entry's stamp.

        Entries form a superset of the waiting cases: whoever moves a case *into* waiting
        writes the entry before its handler finishes (redelivery repeats it) or before the
        move itself (``_requeue``); stale entries are dropped by the drain after checking
        the queue document. An entry never goes back to an older rev.
        """
        rev = int(doc.get("rev", 0)) if rev is None else rev
        stamp = uuid.uuid4().hex
        entry = {
            "urgency": int(doc.get("urgency", 0)),
            "enqueued_at": doc.get("enqueued_at") or EPOCH,
            "category": (doc.get("req") or {}).get("category", "other"),
            "rev": rev,
            "stamp": stamp,
            "at": self.clock(),
        }
        with contextlib.suppress(DuplicateKeyError):  # a newer entry is there already
            await self.store[WAITING].update_one(
                {"_id": doc["_id"], "rev": {"$not": {"$gt": rev}}}, {"$set": entry}, upsert=True
            )
        return stamp

    async def _unwait(self, case_id: str, rev: int) -> None:
        """The case left waiting at ``rev``: drop its entry unless a newer one replaced it."""
        await self.store[WAITING].delete_one({"_id": case_id, "rev": {"$lte": rev}})

    async def _sla_due(self, case_id: str, sla_at: datetime) -> None:
        """Note in ``route_sla``, *before* the write that sets it, a case's next SLA check.

        The time only moves earlier here (``$min``): the sweep reads the case and sets the
        entry to what the case says, guarded by the stamp, which this fresh stamp defeats.
        """
        await self.store[DUE].update_one(
            {"_id": case_id},
            {"$set": {"stamp": uuid.uuid4().hex}, "$min": {"sla_at": sla_at}},
            upsert=True,
        )

    async def _outbox_marker(self, coll: str, doc_id: str) -> str:
        """Before a background write that stores events: a marker of its own in
        ``route_outbox``, dropped by _id once they are published; the outbox sweep
        publishes what a crash left behind one. (Handlers need none: the redelivery of
        their record flushes the outbox again.)"""
        key = f"{coll}:{doc_id}:{uuid.uuid4().hex}"
        await self.store[PENDING].insert_one(
            {"_id": key, "coll": coll, "doc_id": doc_id, "at": self.clock()}
        )
        return key

    async def _due_sla(self, entry: Mapping[str, Any], sla_at: datetime | None) -> None:
        """The SLA sweep read the case: its entry's next check is what the case says."""
        due = self.store[DUE]
        key = {"_id": entry["_id"], "stamp": entry.get("stamp")}  # keyed: unique (_id, stamp)
        if sla_at is not None:
            await due.update_one(key, {"$set": {"sla_at": sla_at}})
        else:
            await due.delete_one(key)

    # -- assignment ---------------------------------------------------------------------

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

    async def _anyone_ahead(self, doc: Document) -> bool:
        """A waiting case that comes first (more urgent, or as urgent and waiting longer).

        Reads ``queue_waiting`` (waiting cases only). A stale entry can only make this say
        yes: the case then waits for the drain, which is woken at once and drops the entry.
        """
        ahead = await self.store[WAITING].find_one(
            {
                "_id": {"$ne": doc["_id"]},
                "$or": [
                    {"urgency": {"$gt": doc["urgency"]}},
                    {"urgency": doc["urgency"], "enqueued_at": {"$lt": doc["enqueued_at"]}},
                ],
            },
            {"_id": 1},
        )
        return ahead is not None

    async def available_people(self) -> list[PersonView]:
        cursor = self.store["people"].find({"presence": "available"})
        return [PersonView.from_doc(d) async for d in cursor]

    async def _previous_handlers(self, doc: Document) -> tuple[str, ...]:
        """People who handled this customer, most recent first (this case's own first).

        From the customer's ``route_customers`` entry (by _id): their other cases, latest
        enqueued first (20 of them), each case's handlers latest first.
        """
        ordered: list[str] = list(reversed(doc.get("handled_by", [])))
        customer = doc.get("customer_id")
        if customer:
            known = await self.store[CUSTOMERS].find_one({"_id": customer})
            cases = [
                c
                for c in ((known or {}).get("cases") or {}).values()
                if c.get("case_id") != doc["_id"]
            ]
            cases.sort(key=lambda c: _utc(c.get("enqueued_at") or EPOCH), reverse=True)
            for other in cases[:20]:
                ordered.extend(reversed(other.get("handled_by", [])))
            if len(cases) > HANDLER_CASES_KEPT + 10:
                await self._forget_cases(customer, cases[HANDLER_CASES_KEPT:])
        return tuple(dict.fromkeys(ordered))

    async def _remember_handlers(self, doc: Mapping[str, Any]) -> None:
        """Record who handled this case under its customer (idempotent; runs in the flush
        of the assignment, so a crash before it is repeated by the outbox sweep)."""
        customer = doc.get("customer_id")
        if not customer:
            return
        key = f"cases.{_field_key(doc['_id'])}"
        await self.store[CUSTOMERS].update_one(
            {"_id": customer},
            {
                "$set": {
                    f"{key}.case_id": doc["_id"],
                    f"{key}.enqueued_at": doc.get("enqueued_at") or EPOCH,
                },
                "$addToSet": {f"{key}.handled_by": {"$each": list(doc.get("handled_by", []))}},
            },
            upsert=True,
        )

    async def _forget_cases(self, customer: str, cases: Sequence[Mapping[str, Any]]) -> None:
        unset = {f"cases.{_field_key(c['case_id'])}": "" for c in cases if c.get("case_id")}
        if unset:
            await self.store[CUSTOMERS].update_one({"_id": customer}, {"$unset": unset})

    def _requirement(self, doc: Document, previous: tuple[str, ...] = ()) -> Requirement:
        req = doc["req"]
        reopen = (doc.get("reopen") or {}) if req.get("reopened") else {}
        before = reopen.get("previous_assignee")
        return Requirement(
            case_id=doc["_id"],
            category=req["category"],
            language=req.get("language") or "und",
            channel=req.get("channel") or "",
            priority=req.get("priority") or "P4",
            profile=req.get("profile") or "",
            legal_threat=bool(req.get("legal_threat")),
            safety_threat=bool(req.get("safety_threat")),
            previous_handlers=previous,
            reopened=str(req.get("reopened") or ""),
            preferred=tuple(reopen.get("prefer") or ()),
            last_resort=frozenset([before] if before else []),
        )

    async def _assign(
        self,
        doc: Document,
        people: list[PersonView] | None = None,
        *,
        unwait: bool = True,
        redelivered: bool = False,
    ) -> tuple[Document, Document] | None:
        """Try to give one waiting case to the best free person: (queue doc, person doc).

        ``unwait``: the case may have a waiting entry to drop once assigned;
        ``redelivered``: called from a handler, whose redelivery repeats the flush.
        """
        now = self.clock()
        min_seniority = self.settings.route_senior_min_seniority
        people = people if people is not None else await self.available_people()
        if not rank(people, self._requirement(doc), now, min_seniority):
            await self._mark_queued(doc)
            return None
        lease_until = now + timedelta(seconds=self.settings.route_lease_seconds)
        before: dict[str, Any] = {}

        def lease(d: Document | None) -> dict[str, Any] | None:
            if d is None or d.get("state") != "waiting":
                return None
            if _utc(d.get("lease_until") or EPOCH) >= now:
                return None
            before["doc"] = d
            return {"$set": {"lease_until": lease_until, "lease_owner": self.token}}

        leased, _ = await self._cas(doc["_id"], doc, lease)
        if leased is None:
            return None  # another replica is on it, or it is no longer waiting
        earlier = before["doc"]
        # A claim can only be left held by an attempt that did not finish (its lease was
        # never reset) or by a hand-back/reopen of a case someone handled.
        maybe_held = _utc(earlier.get("lease_until") or EPOCH) > EPOCH or bool(
            earlier.get("handled_by")
        )
        req = self._requirement(leased, await self._previous_handlers(leased))
        choice, person_doc = await self._claim(
            leased["_id"], rank(people, req, now, min_seniority), maybe_held=maybe_held
        )
        if choice is None or person_doc is None:
            reset, current = await self._cas(
                leased["_id"],
                leased,
                lambda d: (
                    {"$set": {"lease_until": EPOCH}}
                    if d is not None and d.get("lease_owner") == self.token
                    else None
                ),
            )
            await self._mark_queued(reset or current or leased)
            return None
        seq = int(leased.get("seq", 0)) + 1
        person = choice.person
        event_id = derived_id(leased["_id"], "assigned", str(seq))
        enqueued = _utc(leased.get("enqueued_at") or now)
        assignment = {
            "person_id": person.person_id,
            "name": person.name,
            "team": person.team,
            "email": person.email,
            "reasons": choice.reasons,
            "continuity": choice.continuity,
            "assigned_at": now,
            "seq": seq,
            "event_id": event_id,
            "waited_seconds": max(0.0, (now - enqueued).total_seconds()),
        }
        payload = self._assigned_event(leased, assignment)
        update = {
            "$set": {
                "state": "assigned",
                "person_id": person.person_id,
                "assignment": assignment,
                "seq": seq,
                "lease_until": EPOCH,
                f"outbox.{event_id}": outbox_entry(ASSIGNED, payload, leased["_id"]),
            },
            "$min": {"outbox_at": now},
            "$inc": {"rev": 1},
            "$addToSet": {"handled_by": person.person_id},
            "$push": {
                "history": {
                    "seq": seq,
                    "action": "assigned",
                    "person_id": person.person_id,
                    "team": person.team,
                    "at": now,
                }
            },
        }
        marker = None if redelivered else await self._outbox_marker("queue", leased["_id"])
        done, _ = await self._cas(
            leased["_id"],
            leased,
            lambda d: (
                update
                if d is not None
                and d.get("state") == "waiting"
                and d.get("lease_owner") == self.token
                else None
            ),
        )
        if done is None:
            # Lost the lease or the case was resolved meanwhile: give the capacity back.
            await self._release_claim(leased["_id"], person.person_id)
            if marker is not None:
                await self.store[PENDING].delete_one({"_id": marker})
            return None
        metrics.assignments.labels(
            person.team, req.priority, "yes" if choice.continuity else "no"
        ).inc()
        # The first state route mirrors of a new case assigned at once: waiting since its
        # first enqueue (rev 1) and never marked queued.
        unmirrored = int(earlier.get("rev", 0)) == 1 and earlier.get("status_mirrored") is None
        flushed = await self._flush("queue", done, marker=marker, unmirrored=unmirrored)
        if unwait:
            await self._unwait(done["_id"], int(done.get("rev", 0)))
        return flushed or done, person_doc

    async def _claim(
        self, case_id: str, ranked: Sequence[Choice], *, maybe_held: bool = True
    ) -> tuple[Choice | None, Document | None]:
        people = self.store["people"]
        # A claim made before a crash, by someone still available, is reused as it stands.
        held = (
            await people.find_one({"open_cases": case_id, "presence": "available"})
            if maybe_held
            else None
        )
        if held is not None:
            for choice in ranked:
                if choice.person.person_id == held["_id"]:
                    return choice, held
            view = PersonView.from_doc(held)
            return Choice(view, False, ["claim recovered after a restart"]), held
        for choice in ranked:
            p = choice.person
            claimed = await people.find_one_and_update(
                {
                    "_id": p.person_id,
                    "presence": "available",
                    "max_concurrent_cases": p.max_cases,
                    "load": {"$lt": p.max_cases},
                    "open_cases": {"$ne": case_id},
                },
                {
                    "$inc": {"load": 1},
                    "$addToSet": {"open_cases": case_id},
                    "$set": {"last_assigned_at": self.clock()},
                },
                return_document=ReturnDocument.AFTER,
            )
            if claimed is not None:
                metrics.person_load_ratio.observe(_ratio(claimed))
                return choice, claimed
        return None, None

    async def _release_claim(self, case_id: str, person_id: str) -> None:
        released = await self.store["people"].find_one_and_update(
            {"_id": person_id, "open_cases": case_id},
            {"$pull": {"open_cases": case_id}, "$inc": {"load": -1}},
            return_document=ReturnDocument.AFTER,
        )
        if released is not None:
            metrics.person_load_ratio.observe(_ratio(released))

    def _assigned_event(self, doc: Document, assignment: Mapping[str, Any]) -> CaseAssigned:
        req, sla = doc["req"], doc.get("sla") or {}
        return CaseAssigned(
            case_id=doc["_id"],
            customer_id=doc.get("customer_id") or "",
            assignee=Assignee(
                person_id=assignment["person_id"],
                name=assignment["name"],
                team=assignment["team"],
                email=assignment.get("email"),
            ),
            reasons=assignment["reasons"],
            priority=req["priority"],
            category=req["category"],
            language=req.get("language") or "und",
            channel=req["channel"],
            continuity=assignment["continuity"],
            assigned_at=assignment["assigned_at"],
            waited_seconds=assignment["waited_seconds"],
            first_response_due=sla.get("first_response_due"),
            resolution_due=sla.get("resolution_due"),
        )

    async def _mark_queued(self, doc: Document) -> None:
        if doc.get("status_mirrored") == "queued":
            return
        await self._project(doc)
        # Only a flag for skipping this projection next time: it does not bump the version
        # and is dropped when the entry changed since ``doc`` (then projected again later).
        await self.store["queue"].update_one(
            {"_id": doc["_id"], "v": doc.get("v")}, {"$set": {"status_mirrored": "queued"}}
        )

    async def drain(self) -> int:
        """Assign waiting cases, most urgent then longest waiting first; returns how many.

        Reads ``queue_waiting``, then the entries' queue documents by _id; an entry whose
        case is no longer waiting is dropped (when its rev is not newer than the case's, or
        it is older than a lease: a move into waiting that never happened), one whose
        figures are out of date is refreshed.
        """
        now = self.clock()
        entries = (
            await self.store[WAITING]
            .find({})
            .sort([("urgency", -1), ("enqueued_at", 1)])
            .limit(self.settings.route_drain_batch)
            .to_list()
        )
        if not entries:
            return 0
        ids = [e["_id"] for e in entries]
        docs = {d["_id"]: d async for d in self.store["queue"].find({"_id": {"$in": ids}})}
        stale_before = now - timedelta(seconds=max(self.settings.route_lease_seconds, 30.0))
        waiting = []
        for entry in entries:
            doc = docs.get(entry["_id"])
            if doc is None or doc.get("state") != "waiting":
                newer = doc is not None and int(entry.get("rev") or 0) > int(doc.get("rev", 0))
                if not newer or _utc(entry.get("at") or EPOCH) < stale_before:
                    await self.store[WAITING].delete_one(
                        {"_id": entry["_id"], "stamp": entry.get("stamp")}
                    )
                continue
            if (
                entry.get("rev") != doc.get("rev")
                or entry.get("urgency") != doc.get("urgency")
                or _utc(entry.get("enqueued_at") or EPOCH) != _utc(doc.get("enqueued_at") or EPOCH)
            ):
                await self._wait_index(doc)
            waiting.append(doc)
        waiting.sort(key=lambda d: (-int(d.get("urgency", 0)), _utc(d.get("enqueued_at") or EPOCH)))
        if not waiting:
            return 0
        people = await self.available_people()
        assigned = 0
        for doc in waiting:
            if not any(p.load < p.max_cases for p in people):
                break
            if _utc(doc.get("lease_until") or EPOCH) > now:
                continue
            result = await self._assign(doc, people)
            if result is not None:
                assigned += 1
                updated = PersonView.from_doc(result[1])
                people = [updated if p.person_id == updated.person_id else p for p in people]
        return assigned

    # -- presence and hand-back --------------------------------------------------------

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

    # -- reopened cases -----------------------------------------------------------------

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

    # -- escalation ---------------------------------------------------------------------

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
        escalated = CaseEscalated(
            case_id=case_id,
            kind=kind,
            to_role=target.to_role,
            to_person_id=target.person.person_id if target.person else None,
            reason=reason,
            escalated_at=now,
        )
        update = {
            "$set": {
                f"outbox.{event_id}": outbox_entry(ESCALATED, escalated, case_id),
                **(extra_set or {}),
            },
            "$min": {"outbox_at": now},
            "$addToSet": {"escalation_ids": event_id},
            "$push": {"escalations": _escalation_record(escalated, event_id)},
        }

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

    # -- lessons and digests ------------------------------------------------------------

    async def _share_lesson(self, event: CaseResolved, event_id: str, now: datetime) -> None:
        assert event.lesson is not None
        lesson = lessons.masked(event.lesson)
        departments = self.subscriptions.departments_for(lesson.category.value, lesson.product)
        lesson_id = derived_id(event_id, "lesson")
        record = {
            "case_id": event.case_id,
            **lesson.model_dump(mode="json"),
            "departments": departments,
            "resolved_at": _utc(event.resolved_at),
            "resolved_by": event.resolved_by,
            "shared_at": now,
        }
        insert: dict[str, Any] = {**record, "outbox": {}}
        if departments:
            shared = LessonShared(
                case_id=event.case_id, departments=departments, lesson=lesson, shared_at=now
            )
            insert["outbox"] = {
                lesson_id: outbox_entry(LESSONS, shared, lesson.category.value, event.case_id)
            }
            insert["outbox_at"] = now
        await self.store["lessons"].update_one(
            {"_id": lesson_id}, {"$setOnInsert": insert}, upsert=True
        )
        await self.store["cases"].update_one(
            {"_id": event.case_id},
            {"$set": {"lesson": {**lesson.model_dump(mode="json"), "departments": departments}}},
            upsert=True,
        )
        stored = await self.store["lessons"].find_one({"_id": lesson_id})
        if stored is not None and stored.get("outbox"):
            metrics.lessons_shared.labels(lesson.category.value).inc()
            await self._flush("lessons", stored)

    async def produce_digests(self, now: datetime | None = None) -> list[Document]:
        """The digest of the last finished period, per department, produced once."""
        now = now or self.clock()
        period = self.settings.route_digest_period_seconds
        end_epoch = int(now.timestamp() // period * period)
        end = datetime.fromtimestamp(end_epoch, UTC)
        start = end - timedelta(seconds=period)
        before = start - timedelta(seconds=period)
        marker_id = f"period:{start.isoformat()}"
        digests = self.store["digests"]
        if await digests.find_one({"_id": marker_id}):
            return []
        fields = {"category": 1, "product": 1, "root_cause": 1, "remedy": 1, "departments": 1}
        rows = (
            await self.store["lessons"]
            .find({"resolved_at": {"$gte": before, "$lt": end}}, {**fields, "resolved_at": 1})
            .to_list()
        )
        current: dict[str, list[Document]] = defaultdict(list)
        previous: dict[str, list[Document]] = defaultdict(list)
        for row in rows:
            bucket = current if _utc(row["resolved_at"]) >= start else previous
            for department in row.get("departments", []):
                bucket[department].append(row)
        produced = []
        for department in self.subscriptions.departments:
            digest = lessons.build_digest(
                department, start, end, current[department], previous[department]
            )
            digest["produced_at"] = now
            await digests.update_one(
                {"_id": f"{department}:{start.isoformat()}"},
                {"$setOnInsert": digest},
                upsert=True,
            )
            produced.append(digest)
        await digests.update_one(
            {"_id": marker_id},
            {"$setOnInsert": {"kind": "marker", "period_start": start, "produced_at": now}},
            upsert=True,
        )
        log.info("lesson digests for %s: %d departments", start.isoformat(), len(produced))
        return produced

    # -- spikes -------------------------------------------------------------------------

    async def _count_for_spikes(self, event: ComplaintClassified) -> None:
        at = _utc(event.classified_at).timestamp()
        bucket = self.windows.bucket_of(at)
        expire_at = datetime.fromtimestamp(self.windows.expires(bucket), UTC)
        values = {
            "category": event.classification.category.value,
            "product": event.product,
            "region": event.region,
        }
        for dimension, value in values.items():
            if not value:
                continue
            value = value.strip().lower()
            # Keyed by _id; the set of case ids makes a redelivered event count once (the
            # bucket's count is the size of that set).
            for _ in range(2):  # a concurrent first insert of the bucket: add again
                with contextlib.suppress(DuplicateKeyError):
                    await self.store["spike_buckets"].update_one(
                        {"_id": f"{dimension}|{value}|{bucket}"},
                        {
                            "$addToSet": {"cases": event.case_id},
                            "$setOnInsert": {
                                "dimension": dimension,
                                "value": value,
                                "bucket": bucket,
                                "expire_at": expire_at,
                            },
                        },
                        upsert=True,
                    )
                    break

    async def detect_spikes(self, now: datetime | None = None) -> list[SpikeAlert]:
        now = now or self.clock()
        t = now.timestamp()
        w = self.windows
        threshold = self.settings.route_spike_threshold_sd
        min_count = self.settings.route_spike_min_count
        buckets = self.store["spike_buckets"]
        recent = await buckets.find({"bucket": {"$gte": w.window_start(t)}}).to_list()
        totals: Counter[tuple[str, str]] = Counter()
        examples: dict[tuple[str, str], list[str]] = defaultdict(list)
        for row in sorted(recent, key=lambda r: r["bucket"]):
            key = (row["dimension"], row["value"])
            totals[key] += _bucket_count(row)
            examples[key].extend(row.get("cases", []))
        active = {
            (d["dimension"], d["value"])
            async for d in self.store["spikes"].find({"active": True}, {"dimension": 1, "value": 1})
        }
        keys = {k for k, n in totals.items() if n >= min_count} | active
        raised = []
        for dimension, value in sorted(keys):
            history = buckets.find(
                {"dimension": dimension, "value": value, "bucket": {"$gte": w.horizon(t)}},
                {"bucket": 1, "count": 1, "cases": 1},
            )
            counts = {int(r["bucket"]): _bucket_count(r) async for r in history}
            stat = spikes.evaluate(counts, t, w)
            spike_id = f"{dimension}:{value}"
            if (dimension, value) in active:
                if spikes.has_ended(stat, threshold, min_count):
                    await self.store["spikes"].update_one(
                        {"_id": spike_id, "active": True},
                        {"$set": {"active": False, "ended_at": now}},
                    )
                continue
            if not spikes.is_spike(stat, threshold, min_count):
                continue
            alert = await self._raise_spike(
                dimension, value, stat, examples[(dimension, value)], now
            )
            if alert is not None:
                raised.append(alert)
        return raised

    async def _raise_spike(
        self,
        dimension: str,
        value: str,
        stat: spikes.SpikeStat,
        cases: Sequence[str],
        now: datetime,
    ) -> SpikeAlert | None:
        spike_id = f"{dimension}:{value}"
        alert_id = derived_id("spike", spike_id, now.isoformat())
        alert = SpikeAlert(
            alert_id=alert_id,
            dimension=dimension,  # type: ignore[arg-type]
            value=value,
            window_count=stat.window_count,
            baseline_mean=round(stat.baseline_mean, 3),
            baseline_stddev=round(stat.baseline_stddev, 3),
            z_score=round(stat.z_score, 2),
            example_case_ids=list(cases)[-self.settings.route_spike_examples :],
            raised_at=now,
        )
        record = alert.model_dump(mode="json")
        try:
            # Only an inactive (or new) spike can be raised: once per spike, across replicas.
            stored = await self.store["spikes"].find_one_and_update(
                {"_id": spike_id, "active": {"$ne": True}},
                {
                    "$set": {
                        "dimension": dimension,
                        "value": value,
                        "active": True,
                        "last_alert": record,
                        f"outbox.{alert_id}": outbox_entry(SPIKES, alert, spike_id),
                    },
                    "$min": {"outbox_at": now},
                    "$inc": {"alerts": 1},
                    "$push": {"history": record},
                },
                upsert=True,
                return_document=ReturnDocument.AFTER,
            )
        except DuplicateKeyError:
            return None
        if stored is None:
            return None
        metrics.spike_alerts.labels(dimension).inc()
        log.warning(
            "spike: %s=%s, %d cases, z=%.1f", dimension, value, stat.window_count, stat.z_score
        )
        await self._flush("spikes", stored)
        return alert

    # -- outbox and the case mirror -----------------------------------------------------

    async def _project(self, doc: Mapping[str, Any], *, unmirrored: bool = False) -> None:
        """Mirror route's fields onto the case document (idempotent, never backwards).

        Every state change bumps the queue document's ``rev``; the case remembers the rev
        it mirrors, so a slow writer holding an older state cannot overwrite a newer one.
        The case's (route_rev, status) is read by _id and the update compares exactly those
        (keyed by the unique index (_id, route_rev, status)): one atomic update of history,
        rev, assignment and status (was: a rev-guarded update and a status update).
        """
        cases = self.store["cases"]
        case_id = doc["_id"]
        history: dict[str, Any] = {
            "$addToSet": {
                "assignment_history": {"$each": doc.get("history", [])},
                "escalations": {"$each": doc.get("escalations", [])},
            }
        }
        state, rev = doc.get("state"), int(doc.get("rev", 0))
        status = {"assigned": "assigned", "waiting": "queued"}.get(state or "")
        if status is None:
            await cases.update_one({"_id": case_id}, history, upsert=True)
            return
        # ``unmirrored``: route never mirrored this case (a new case assigned at once), so
        # it is as ingest left it, open: try that without reading it first (a miss reads
        # it and decides again).
        guess: Document | None = None
        if unmirrored:
            guess = {"_id": case_id, "route_rev": None, "status": CaseStatus.OPEN.value}
        for _ in range(CAS_ATTEMPTS):
            case: Document | None
            if guess is not None:
                case, guess = guess, None
            else:
                case = await cases.find_one({"_id": case_id}, {"route_rev": 1, "status": 1})
            mirrored, current = (case or {}).get("route_rev"), (case or {}).get("status")
            if mirrored is not None and int(mirrored) > rev:
                # The case mirrors a newer rev: skipping this history is safe, as queue
                # history and escalations are only ever pushed, so the newer state's lists
                # hold these entries and its writer stored them with its rev.
                return
            update: dict[str, Any] = {**history, "$set": {"route_rev": rev}}
            if state == "assigned" and doc.get("assignment"):
                update["$set"]["assignment"] = doc["assignment"]
                update["$min"] = {"stages.assigned_at": doc["assignment"]["assigned_at"]}
            else:
                update["$unset"] = {"assignment": ""}
            if current not in FINAL_CASE_STATUSES:
                update["$set"]["status"] = status
            try:
                result = await cases.update_one(
                    {"_id": case_id, "route_rev": mirrored, "status": current},
                    update,
                    upsert=case is None,
                )
            except DuplicateKeyError:
                continue  # the case was created meanwhile: read it again
            if result.matched_count or result.upserted_id is not None:
                return
        log.warning("case %s kept changing while route mirrored rev %d", case_id, rev)

    async def _flush(
        self,
        collection: str,
        doc: Mapping[str, Any] | None,
        *,
        mirror: bool = True,
        marker: str | None = None,
        unmirrored: bool = False,
    ) -> Document:
        """Mirror (queue), publish the stored events, then drop them from the outbox.

        Returns the document as this left it (its outbox emptied). ``marker``: the
        route_outbox marker written before the events were stored, dropped at the end;
        ``unmirrored``: the case was never mirrored before (see ``_project``).
        """
        if not doc:
            return dict(doc or {})
        entries: Mapping[str, Any] = doc.get("outbox") or {}
        if mirror and collection == "queue" and "req" in doc:
            await self._project(doc, unmirrored=unmirrored)
            if any(e.get("topic") == ASSIGNED.topic for e in entries.values()):
                await self._remember_handlers(doc)
        if not entries:
            if marker is not None:
                await self.store[PENDING].delete_one({"_id": marker})
            return dict(doc)
        await self.publish([to_outgoing(eid, entry) for eid, entry in entries.items()])
        coll = self.store[collection]
        unset = {f"outbox.{eid}": "" for eid in entries}
        flushed = {k: v for k, v in doc.items() if k != "outbox_at"}
        flushed["outbox"] = {}
        if collection == "queue":
            # Usually nothing changed the entry since: empty the outbox and drop its
            # timestamp in one keyed update (the version compare). This does not bump the
            # version: it removes only what was published, which no guard depends on.
            cleared = await coll.update_one(
                {"_id": doc["_id"], "v": doc.get("v")}, {"$unset": {**unset, "outbox_at": ""}}
            )
            if not cleared.matched_count:
                # Changed meanwhile (maybe more events stored): drop only what was published.
                await coll.update_one({"_id": doc["_id"]}, {"$unset": unset})
        elif collection == "lessons":
            # A lesson's outbox is written once, with the lesson: nothing can be added.
            await coll.update_one({"_id": doc["_id"]}, {"$unset": {**unset, "outbox_at": ""}})
        else:  # spikes: a small collection, the guarded updates may scan it
            cleared = await coll.update_one(
                {"_id": doc["_id"], "outbox": dict(entries)},
                {"$unset": {**unset, "outbox_at": ""}},
            )
            if not cleared.matched_count:
                await coll.update_one({"_id": doc["_id"]}, {"$unset": unset})
                await coll.update_one(
                    {"_id": doc["_id"], "outbox": {}}, {"$unset": {"outbox_at": ""}}
                )
        if marker is not None:
            await self.store[PENDING].delete_one({"_id": marker})
        return flushed

    async def outbox_sweep(self) -> int:
        """Publish events a crash left stored but unpublished.

        Reads ``route_outbox`` (markers of background writes not yet published: normally
        none older than a moment) and ``spikes`` (small); a marker's document is read by
        _id and flushed, then the marker dropped.
        """
        now = self.clock()
        cutoff = now - timedelta(seconds=self.settings.route_outbox_grace_seconds)
        flushed = 0
        pending = self.store[PENDING]
        for mark in await pending.find({"at": {"$lte": cutoff}}).limit(50).to_list():
            # Claim it (keyed; the previous value says who won) so replicas do not both work.
            before = await pending.find_one_and_update({"_id": mark["_id"]}, {"$set": {"at": now}})
            if before is None or before.get("at") != mark.get("at"):
                continue
            doc = await self.store[mark["coll"]].find_one({"_id": mark["doc_id"]})
            if doc is not None and doc.get("outbox"):
                await self._flush(mark["coll"], doc, marker=mark["_id"])
                flushed += 1
            elif doc is not None and _utc(doc.get("lease_until") or EPOCH) > now:
                continue  # an assignment still in flight: it drops its own marker
            else:
                await pending.delete_one({"_id": mark["_id"]})
        spikes_coll = self.store["spikes"]
        for doc in await spikes_coll.find({"outbox_at": {"$lte": cutoff}}).limit(50).to_list():
            claimed = await spikes_coll.find_one_and_update(
                {"_id": doc["_id"], "outbox_at": doc["outbox_at"]},
                {"$set": {"outbox_at": now}},
                return_document=ReturnDocument.AFTER,
            )
            if claimed is not None:
                await self._flush("spikes", claimed)
                flushed += 1
        return flushed

    # -- gauges -------------------------------------------------------------------------

    async def refresh_gauges(self) -> None:
        people = [PersonView.from_doc(d) async for d in self.store["people"].find({})]
        per_team: Counter[str] = Counter()
        for p in people:
            per_team[p.team] += p.load
        for team, load in per_team.items():
            metrics.open_cases.labels(team).set(load)
        # A waiting case counts against the team with most people skilled in its category.
        skilled: dict[str, Counter[str]] = defaultdict(Counter)
        for p in people:
            if p.takes_cases:
                for category in p.skills:
                    if skill_level(p, category) > 0:
                        skilled[category][p.team] += 1
        waiting: Counter[str] = Counter({team: 0 for team in per_team})
        cursor = self.store[WAITING].find({}, {"category": 1}).limit(5000)
        async for doc in cursor:
            category = doc.get("category") or "other"
            teams = skilled.get(category)
            waiting[teams.most_common(1)[0][0] if teams else "none"] += 1
        for team, n in waiting.items():
            metrics.queue_length.labels(team).set(n)


_MIRRORED_FIELDS = ("rev", "state", "assignment", "history", "escalations")


def _same_mirror(doc: Mapping[str, Any], mirrored: Mapping[str, Any] | None) -> bool:
    """True when ``doc`` shows nothing ``_project`` would write beyond ``mirrored``."""
    return mirrored is not None and all(
        doc.get(name) == mirrored.get(name) for name in _MIRRORED_FIELDS
    )


def _bucket_count(row: Mapping[str, Any]) -> int:
    """Cases counted in a spike bucket (older buckets kept a separate count)."""
    return len(row["cases"]) if "cases" in row else int(row.get("count", 0))


def _field_key(case_id: str) -> str:
    """A case id usable as a field name (no dots, no leading $)."""
    return case_id.replace(".", "\uff0e").replace("$", "\uff04")


def _ratio(person_doc: Mapping[str, Any]) -> float:
    capacity = int(person_doc.get("max_concurrent_cases") or 0)
    return min(1.0, int(person_doc.get("load") or 0) / capacity) if capacity else 1.0


def _escalation_record(event: CaseEscalated, event_id: str) -> Document:
    return {
        "event_id": event_id,
        "kind": event.kind,
        "to_role": event.to_role,
        "to_person_id": event.to_person_id,
        "reason": event.reason,
        "at": event.escalated_at,
    }
