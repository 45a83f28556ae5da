"""Route's decisions over the store: assignment, queue, escalation, lessons, spikes.

State lives in route's own collections; the case document only mirrors route's fields
(assignment, assignment_history, escalations, status queued/assigned, stages.assigned_at,
lesson), written idempotently from that state.

* ``queue`` (one document per case): the request, ``state`` waiting / assigned / closed,
  the SLA stage and its next check time, who handled it, the escalations, and an
  *outbox*: every event route emits is first stored, in the same single-document atomic
  update as the decision it announces, under ``outbox.<event id>``. It is then published
  and removed; a sweep re-publishes entries left behind by a crash (same event id, so
  consumers drop the duplicate). No decision can be stored without its event.
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
from shared.events.common import Channel
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
OUTBOX_COLLECTIONS = ("queue", "lessons", "spikes")

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
    IndexSpec(
        "queue",
        (
            IndexModel(
                [("state", 1), ("urgency", -1), ("enqueued_at", 1)], name="state_urgency_waiting"
            ),
            IndexModel([("customer_id", 1)], name="customer_id"),
            IndexModel([("sla_next_at", 1)], name="sla_next_at"),
            IndexModel([("outbox_at", 1)], name="outbox_at"),
        ),
    ),
    IndexSpec(
        "lessons",
        (
            IndexModel([("resolved_at", 1)], name="resolved_at"),
            IndexModel([("case_id", 1)], name="case_id"),
            IndexModel([("outbox_at", 1)], name="outbox_at"),
        ),
    ),
    IndexSpec("digests", (IndexModel([("department", 1), ("period_start", -1)], name="dept"),)),
    IndexSpec(
        "spike_buckets",
        (
            IndexModel([("bucket", 1)], name="bucket"),
            IndexModel([("dimension", 1), ("value", 1), ("bucket", 1)], name="dim_value_bucket"),
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
        doc = await self._enqueue(event, incoming.event.id, now)
        if doc is None:
            return []
        assigned = None
        if doc.get("state") == "waiting" and not await self._anyone_ahead(doc):
            assigned = await self._assign(doc)
        elif doc.get("state") == "waiting":
            self.wake.set()  # others wait longer or matter more: the drain keeps the order
        doc = await self.store["queue"].find_one({"_id": event.case_id}) or doc
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
        if activity.kind == "first_response":
            # Answered: the SLA sweep has nothing more to do for this case.
            await self.store["queue"].update_one(
                {"_id": activity.case_id, "sla_stage": {"$in": ["pending", "warned"]}},
                {
                    "$set": {"sla_stage": "responded", "responded_at": activity.at},
                    "$unset": {"sla_next_at": ""},
                },
            )
        elif activity.kind == "manager_requested":
            doc = await self.store["queue"].find_one({"_id": activity.case_id}) or {
                "_id": activity.case_id
            }
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
        queue = self.store["queue"]
        resolved_at = _utc(event.resolved_at)
        closed = await queue.update_one(
            {
                "_id": event.case_id,
                "state": {"$ne": "closed"},
                # Reopened after this resolution (the reopen reached route first): keep it.
                "reopened_at": {"$not": {"$gt": resolved_at}},
            },
            {
                "$set": {"state": "closed", "closed_at": event.resolved_at, "lease_until": EPOCH},
                "$unset": {"sla_next_at": ""},
            },
        )
        reopened_since = not closed.matched_count and await queue.find_one(
            {"_id": event.case_id, "reopened_at": {"$gt": resolved_at}}, {"_id": 1}
        )
        if reopened_since:
            log.info("case %s was reopened after this resolution; kept open", event.case_id)
        else:
            # Free the capacity wherever the case is held (also repairs a claim a crash left).
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
        if doc.get("state") == "waiting" and not await self._anyone_ahead(doc):
            await self._assign(doc)
        elif doc.get("state") == "waiting":
            self.wake.set()
        return []

    # -- assignment ---------------------------------------------------------------------

    async def _enqueue(
        self, event: ComplaintClassified, event_id: str, now: datetime
    ) -> Document | None:
        queue = self.store["queue"]
        case_id = event.case_id
        doc = await queue.find_one({"_id": case_id})
        if doc is not None and event_id in doc.get("classified_events", []):
            return doc  # redelivery: the decision is stored; flushing repeats its events
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
        if (
            doc is not None
            and doc.get("state") not in ("waiting", "assigned")
            and event.channel is Channel.SURVEY
            and not event.case_is_new
        ):
            # A survey answer about a resolved case: whether it reopens the case is
            # followup's call (complaints.escalated, kind dissatisfied), not a new entry.
            return (
                await queue.find_one_and_update(
                    {"_id": case_id, "classified_events": {"$ne": event_id}},
                    {"$addToSet": {"classified_events": event_id}},
                    return_document=ReturnDocument.AFTER,
                )
                or doc
            )
        if doc is None or doc.get("state") not in ("waiting", "assigned"):
            # A new case, or a resolved one that came back: (re)start its queue entry.
            start = _utc(event.classified_at)
            due = _utc(event.sla.first_response_due)
            warn_at = escalation.sla_warn_at(start, due, self.settings.route_sla_warning_fraction)
            try:
                return await queue.find_one_and_update(
                    {
                        "_id": case_id,
                        "state": {"$nin": ["waiting", "assigned"]},
                        "classified_events": {"$ne": event_id},
                    },
                    {
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
                    },
                    upsert=True,
                    return_document=ReturnDocument.AFTER,
                )
            except DuplicateKeyError:
                return await queue.find_one({"_id": case_id})
        # Another contact on a case already queued or assigned: urgency can only rise.
        update: dict[str, Any] = {
            "$addToSet": {"classified_events": event_id},
            "$max": {"urgency": urgency},
        }
        if urgency > int(doc.get("urgency", 0)):
            earlier = doc.get("req") or {}
            if earlier.get("reopened"):  # still a reopened case, at its raised priority
                request["reopened"] = earlier["reopened"]
                request["priority"] = escalation.more_urgent(
                    str(request["priority"]), earlier.get("priority")
                )
            update["$set"] = {"req": request}
        return (
            await queue.find_one_and_update(
                {"_id": case_id, "classified_events": {"$ne": event_id}},
                update,
                return_document=ReturnDocument.AFTER,
            )
            or doc
        )

    async def _anyone_ahead(self, doc: Document) -> bool:
        ahead = await self.store["queue"].find_one(
            {
                "state": "waiting",
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
        """People who handled this customer, most recent first (this case's own first)."""
        ordered: list[str] = list(reversed(doc.get("handled_by", [])))
        customer = doc.get("customer_id")
        if customer:
            cursor = (
                self.store["queue"]
                .find({"customer_id": customer, "_id": {"$ne": doc["_id"]}}, {"handled_by": 1})
                .sort("enqueued_at", -1)
                .limit(20)
            )
            async for other in cursor:
                ordered.extend(reversed(other.get("handled_by", [])))
        return tuple(dict.fromkeys(ordered))

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
        self, doc: Document, people: list[PersonView] | None = None
    ) -> tuple[Document, Document] | None:
        """Try to give one waiting case to the best free person: (queue doc, person doc)."""
        queue = self.store["queue"]
        now = self.clock()
        min_seniority = self.settings.route_senior_min_seniority
        people = people if people is not None else await self.available_people()
        if not rank(people, self._requirement(doc), now, min_seniority):
            await self._mark_queued(doc)
            return None
        leased = await queue.find_one_and_update(
            {"_id": doc["_id"], "state": "waiting", "lease_until": {"$lt": now}},
            {
                "$set": {
                    "lease_until": now + timedelta(seconds=self.settings.route_lease_seconds),
                    "lease_owner": self.token,
                }
            },
            return_document=ReturnDocument.AFTER,
        )
        if leased is None:
            return None  # another replica is on it, or it is no longer waiting
        req = self._requirement(leased, await self._previous_handlers(leased))
        choice, person_doc = await self._claim(leased["_id"], rank(people, req, now, min_seniority))
        if choice is None or person_doc is None:
            await queue.update_one(
                {"_id": leased["_id"], "lease_owner": self.token}, {"$set": {"lease_until": EPOCH}}
            )
            await self._mark_queued(leased)
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
        done = await queue.find_one_and_update(
            {"_id": leased["_id"], "state": "waiting", "lease_owner": self.token},
            {
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
            },
            return_document=ReturnDocument.AFTER,
        )
        if done is None:
            # Lost the lease or the case was resolved meanwhile: give the capacity back.
            await self._release_claim(leased["_id"], person.person_id)
            return None
        metrics.assignments.labels(
            person.team, req.priority, "yes" if choice.continuity else "no"
        ).inc()
        await self._flush("queue", done)
        return done, person_doc

    async def _claim(
        self, case_id: str, ranked: Sequence[Choice]
    ) -> tuple[Choice | None, Document | None]:
        people = self.store["people"]
        # A claim made before a crash, by someone still available, is reused as it stands.
        held = await people.find_one({"open_cases": case_id, "presence": "available"})
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
        await self.store["queue"].update_one(
            {"_id": doc["_id"], "state": "waiting"}, {"$set": {"status_mirrored": "queued"}}
        )

    async def drain(self) -> int:
        """Assign waiting cases, most urgent then longest waiting first; returns how many."""
        now = self.clock()
        waiting = (
            await self.store["queue"]
            .find({"state": "waiting"})
            .sort([("urgency", -1), ("enqueued_at", 1)])
            .limit(self.settings.route_drain_batch)
            .to_list()
        )
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
    ) -> Document | None:
        now = self.clock()
        escalated = CaseEscalated(
            case_id=case_id,
            kind=kind,
            to_role=to_role,
            to_person_id=to_person_id,
            reason=reason,
            escalated_at=now,
        )
        doc = await self.store["queue"].find_one_and_update(
            {
                "_id": case_id,
                "state": "assigned",
                "person_id": person_id,
                "escalation_ids": {"$ne": event_id},
                **(extra_filter or {}),
            },
            {
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
            },
            return_document=ReturnDocument.AFTER,
        )
        if doc is not None:
            metrics.escalations.labels(kind).inc()
            await self._flush("queue", doc)
        return doc

    # -- reopened cases -----------------------------------------------------------------

    async def _reopen(self, event: CaseEscalated, event_id: str) -> Document:
        """Store the reopen once (guarded by the event id and the state it was decided on);
        a redelivery finds it stored and only repeats the flush."""
        queue = self.store["queue"]
        for _ in range(5):
            doc = await queue.find_one({"_id": event.case_id})
            if doc is None or "req" not in doc:
                raise Rejected("unknown_case", f"case {event.case_id} was never routed")
            if event_id in doc.get("reopen_ids", []):
                await self._flush("queue", doc)
                return doc
            update, release = await self._reopen_update(doc, event, event_id)
            guard = {"state": doc.get("state"), "person_id": doc.get("person_id")}
            stored = await queue.find_one_and_update(
                {"_id": doc["_id"], "reopen_ids": {"$ne": event_id}, **guard},
                update,
                return_document=ReturnDocument.AFTER,
            )
            if stored is None:
                continue  # assigned, resolved or reopened meanwhile: decide again
            if release:
                await self._release_claim(doc["_id"], release)
            log.info(
                "case %s reopened (%s): %s at %s",
                doc["_id"],
                event.kind,
                stored.get("state"),
                stored["req"]["priority"],
            )
            await self._flush("queue", stored)
            return stored
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
        try:
            stored = await self.store["queue"].find_one_and_update(
                {"_id": case_id, "escalation_ids": {"$ne": event_id}},
                {
                    "$set": {
                        f"outbox.{event_id}": outbox_entry(ESCALATED, escalated, case_id),
                        **(extra_set or {}),
                    },
                    "$min": {"outbox_at": now},
                    "$addToSet": {"escalation_ids": event_id},
                    "$push": {"escalations": _escalation_record(escalated, event_id)},
                },
                upsert=True,
                return_document=ReturnDocument.AFTER,
            )
        except DuplicateKeyError:
            return None  # already escalated for this event
        if stored is not None:
            metrics.escalations.labels(kind).inc()
        return stored

    async def sla_sweep(self) -> int:
        """Warn (remind, reassign) before a first-response breach; escalate at breach."""
        now = self.clock()
        queue = self.store["queue"]
        due = await queue.find({"sla_next_at": {"$lte": now}}).limit(100).to_list()
        handled = 0
        for doc in due:
            stage = doc.get("sla_stage")
            if stage not in ("pending", "warned"):
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
            # The stage move is the claim: one replica wins, the other's filter misses.
            guard = {"sla_stage": stage, "sla_next_at": doc["sla_next_at"]}
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
        stored = await self.store["queue"].find_one_and_update(
            {"_id": doc["_id"], "escalation_ids": {"$ne": event_id}, **guard},
            {
                "$set": {
                    f"outbox.{event_id}": outbox_entry(ESCALATED, escalated, doc["_id"]),
                    **next_set,
                },
                "$min": {"outbox_at": now},
                "$addToSet": {"escalation_ids": event_id},
                "$push": {"escalations": _escalation_record(escalated, event_id)},
            },
            return_document=ReturnDocument.AFTER,
        )
        if stored is not None:
            metrics.escalations.labels(action.kind).inc()
            await self._flush("queue", stored)
        return stored

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
        values = {
            "category": event.classification.category.value,
            "product": event.product,
            "region": event.region,
        }
        for dimension, value in values.items():
            if not value:
                continue
            value = value.strip().lower()
            # The case id guard makes a redelivered event count once.
            with contextlib.suppress(DuplicateKeyError):
                await self.store["spike_buckets"].update_one(
                    {"_id": f"{dimension}|{value}|{bucket}", "cases": {"$ne": event.case_id}},
                    {
                        "$inc": {"count": 1},
                        "$push": {"cases": event.case_id},
                        "$setOnInsert": {"dimension": dimension, "value": value, "bucket": bucket},
                    },
                    upsert=True,
                )

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
            totals[key] += int(row.get("count", 0))
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
                {"bucket": 1, "count": 1},
            )
            counts = {int(r["bucket"]): int(r.get("count", 0)) async for r in history}
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

    async def _project(self, doc: Mapping[str, Any]) -> None:
        """Mirror route's fields onto the case document (idempotent, never backwards).

        Every state change bumps the queue document's ``rev``; the case remembers the rev
        it mirrors, so a slow writer holding an older state cannot overwrite a newer one.
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
        # One update for the history and the rev-guarded fields (was two). When the case
        # already mirrors a newer rev, skipping this history is safe: queue history and
        # escalations are only ever pushed, so the newer state's lists hold these entries
        # and its writer added them in the same atomic update that stored its rev.
        update: dict[str, Any] = {**history, "$set": {"route_rev": rev}}
        if state == "assigned" and doc.get("assignment"):
            update["$set"]["assignment"] = doc["assignment"]
            update["$min"] = {"stages.assigned_at": doc["assignment"]["assigned_at"]}
        else:
            update["$unset"] = {"assignment": ""}
        try:
            newer = await cases.update_one(
                {"_id": case_id, "route_rev": {"$not": {"$gt": rev}}}, update, upsert=True
            )
        except DuplicateKeyError:
            return  # the case exists and mirrors a newer rev: nothing of ours to add
        if newer.matched_count or newer.upserted_id is not None:
            await cases.update_one(
                {"_id": case_id, "route_rev": rev, "status": {"$nin": FINAL_CASE_STATUSES}},
                {"$set": {"status": status}},
            )

    async def _flush(
        self, collection: str, doc: Mapping[str, Any] | None, *, mirror: bool = True
    ) -> None:
        """Mirror (queue), publish the stored events, then drop them from the outbox."""
        if not doc:
            return
        entries: Mapping[str, Any] = doc.get("outbox") or {}
        if mirror and collection == "queue" and "req" in doc:
            await self._project(doc)
        if not entries:
            return
        await self.publish([to_outgoing(eid, entry) for eid, entry in entries.items()])
        coll = self.store[collection]
        unset = {f"outbox.{eid}": "" for eid in entries}
        # Usually the outbox holds exactly what was just published: empty it and drop its
        # timestamp in one update (was always two). Anything added meanwhile makes the
        # exact match miss, and the two guarded updates below handle it as before.
        cleared = await coll.update_one(
            {"_id": doc["_id"], "outbox": dict(entries)}, {"$unset": {**unset, "outbox_at": ""}}
        )
        if cleared.matched_count:
            return
        await coll.update_one({"_id": doc["_id"]}, {"$unset": unset})
        await coll.update_one({"_id": doc["_id"], "outbox": {}}, {"$unset": {"outbox_at": ""}})

    async def outbox_sweep(self) -> int:
        """Publish events a crash left stored but unpublished."""
        now = self.clock()
        cutoff = now - timedelta(seconds=self.settings.route_outbox_grace_seconds)
        flushed = 0
        for name in OUTBOX_COLLECTIONS:
            coll = self.store[name]
            for doc in await coll.find({"outbox_at": {"$lte": cutoff}}).limit(50).to_list():
                claimed = await coll.find_one_and_update(
                    {"_id": doc["_id"], "outbox_at": doc["outbox_at"]},
                    {"$set": {"outbox_at": now}},
                    return_document=ReturnDocument.AFTER,
                )
                if claimed is not None:
                    await self._flush(name, claimed)
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
        cursor = self.store["queue"].find({"state": "waiting"}, {"req.category": 1}).limit(5000)
        async for doc in cursor:
            category = (doc.get("req") or {}).get("category", "other")
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
