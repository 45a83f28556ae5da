"""Route's state: its collections, their indexes, and the keyed writes every part uses.

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

The parts of the router (see handlers.py) build on ``RouteState``.
"""

from __future__ import annotations

import asyncio
import contextlib
import uuid
from collections.abc import Awaitable, Callable, Mapping, Sequence
from datetime import UTC, datetime
from typing import Any

from pydantic import BaseModel
from pymongo import IndexModel, ReturnDocument, UpdateOne
from pymongo.errors import DuplicateKeyError

from shared.events.catalogue import CATALOGUE, EventSpec
from shared.events.envelope import utcnow
from shared.events.pipeline import CaseEscalated
from shared.service import Outgoing
from shared.store import Document, IndexSpec, Store
from shared.updates import difference
from shared.writes import bulk_write_conflicts

from . import lessons, spikes
from .assignment import EPOCH
from .settings import RouteSettings

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


def _field_key(case_id: str) -> str:
    """A case id usable as a field name (no dots, no leading $)."""
    return case_id.replace(".", "\uff0e").replace("$", "\uff04")


def _escalation_record(event: CaseEscalated, event_id: str) -> Document:
    return {
        "event_id": event_id,
        "kind": event.kind,
        "to_role": event.to_role,
        "to_person_id": event.to_person_id,
        "reason": event.reason,
        "at": event.escalated_at,
    }


def remember_handlers_op(doc: Mapping[str, Any]) -> tuple[Document, Document] | None:
    """(filter, upsert) recording under the case's customer who handled it."""
    customer = doc.get("customer_id")
    if not customer:
        return None
    key = f"cases.{_field_key(doc['_id'])}"
    return {"_id": customer}, {
        "$set": {
            f"{key}.case_id": doc["_id"],
            f"{key}.enqueued_at": doc.get("enqueued_at") or EPOCH,
        },
        "$addToSet": {f"{key}.handled_by": {"$each": list(doc.get("handled_by", []))}},
    }


class RouteState:
    """What a Router holds, and its keyed writes on route's own collections.

    The other parts (outbox, dispatch, handback, escalations, ...) build on these.
    """

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

    # -- reads --------------------------------------------------------------------------

    async def _by_id(
        self, collection: str, ids: Sequence[str], projection: Mapping[str, Any] | None = None
    ) -> dict[str, Document]:
        """The documents of ``ids`` in one ``$in`` read, by _id (the misses left out)."""
        if not ids:
            return {}
        cursor = self.store[collection].find({"_id": {"$in": list(ids)}}, projection)
        return {doc["_id"]: doc async for doc in cursor}

    async def _store_versions(
        self, changes: Sequence[tuple[str, Document | None, Document]]
    ) -> set[str]:
        """(case id, entry as read, entry as decided) in one unordered bulk of queue
        updates, each guarded by the version read (``{_id, v}``, bumped; an upsert, so a
        guard that fails is a duplicate ``_id``); the ids whose guard failed, to decide
        again from a fresh read."""
        ops: list[UpdateOne] = []
        for case_id, stored, doc in changes:
            version = (stored or {}).get("v")
            change = difference(stored, {**doc, "v": int(version or 0) + 1})
            ops.append(UpdateOne({"_id": case_id, "v": version}, change, upsert=True))
        _, failed = await bulk_write_conflicts(self.store["queue"], ops)
        return {changes[i][0] for i in failed}

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

    # -- customers: who handled their cases (continuity) ----------------------------

    async def _previous_handlers(self, doc: Document) -> tuple[str, ...]:
        """People who handled this customer, most recent first (this case's own first),
        from the customer's ``route_customers`` entry (by _id)."""
        customer = doc.get("customer_id")
        known = await self.store[CUSTOMERS].find_one({"_id": customer}) if customer else None
        return await self._handlers_from(doc, known)

    async def _handlers_from(
        self, doc: Mapping[str, Any], known: Mapping[str, Any] | None
    ) -> tuple[str, ...]:
        """``_previous_handlers`` from the customer's entry as read (``known``): their
        other cases, latest enqueued first (20 of them), each case's handlers latest
        first. An entry grown past the cases kept is trimmed."""
        ordered: list[str] = list(reversed(doc.get("handled_by", [])))
        customer = doc.get("customer_id")
        if customer:
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
        op = remember_handlers_op(doc)
        if op is not None:
            await self.store[CUSTOMERS].update_one(*op, upsert=True)

    async def _forget_cases(self, customer: str, cases: Sequence[Mapping[str, Any]]) -> None:
        unset = {f"cases.{_field_key(c['case_id'])}": "" for c in cases if c.get("case_id")}
        if unset:
            await self.store[CUSTOMERS].update_one({"_id": customer}, {"$unset": unset})
