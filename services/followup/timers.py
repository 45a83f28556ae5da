"""Durable timers: ``timers`` holds the live ones, ``timers_done`` the finished ones.

A timer is one document keyed by a deterministic id (so scheduling twice is a no-op, also
after it fired: ``schedule`` checks ``timers_done``). Replicas take due timers from
``timers`` and move them from ``pending`` to ``firing`` under a lease: only one replica
wins each timer. A replica that dies while firing leaves the lease to expire; another
replica then claims the timer again, so a timer fires late rather than never. Who wins a
timer is decided by a unique insert into ``timer_claims`` (see ``_claim``).

A finished timer (done, cancelled, failed) is first recorded in ``timers_done`` and then
deleted from ``timers`` (guarded by its state and owner), so ``timers`` only ever holds
pending and firing timers and the poll (``claim_many``: by ``state`` and ``due_at``, which
the local MongoDB-protocol server can only answer by reading the collection) costs the
same however many timers fired before. A crash between the two writes leaves a timer in
both: it is still live and finishes again (same ids, same record).

States: pending -> firing -> done | cancelled | failed.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from pymongo import IndexModel, UpdateOne
from pymongo.asynchronous.collection import AsyncCollection
from pymongo.errors import BulkWriteError, DuplicateKeyError

from shared.events.envelope import utcnow
from shared.store import Document, IndexSpec, Store
from shared.writes import duplicate_key_errors

log = logging.getLogger(__name__)

COLLECTION = "timers"
DONE_COLLECTION = "timers_done"
CLAIMS = "timer_claims"
CLAIM_RETENTION_SECONDS = 7 * 86400

PENDING = "pending"
FIRING = "firing"
DONE = "done"
CANCELLED = "cancelled"
FAILED = "failed"

TIMER_INDEXES = IndexSpec(
    COLLECTION,
    (
        IndexModel([("state", 1), ("due_at", 1)], name="state_due"),
        IndexModel([("state", 1), ("lease_until", 1)], name="state_lease"),
        IndexModel([("case_id", 1), ("kind", 1)], name="case_kind"),
    ),
)
DONE_INDEXES = IndexSpec(
    DONE_COLLECTION, (IndexModel([("case_id", 1), ("kind", 1)], name="case_kind"),)
)
# One document per firing attempt: only the audit trail, so old ones may go.
CLAIM_INDEXES = IndexSpec(
    CLAIMS,
    (
        IndexModel(
            [("claimed_at", 1)], expireAfterSeconds=CLAIM_RETENTION_SECONDS, name="claimed_ttl"
        ),
    ),
)


@dataclass(frozen=True, slots=True)
class Timer:
    timer_id: str
    case_id: str
    kind: str
    due_at: datetime
    payload: dict[str, Any] = field(default_factory=dict)
    attempts: int = 0
    owner: str | None = None

    @classmethod
    def from_document(cls, doc: Document) -> Timer:
        return cls(
            timer_id=doc["_id"],
            case_id=doc["case_id"],
            kind=doc["kind"],
            due_at=doc["due_at"],
            payload=dict(doc.get("payload") or {}),
            attempts=int(doc.get("attempts", 0)),
            owner=doc.get("owner"),
        )


@dataclass(frozen=True, slots=True)
class TimerSpec:
    """A timer to create unless it exists. ``first_time``: the caller knows it was never
    asked for before, so it cannot have finished (no read of ``timers_done``)."""

    timer_id: str
    case_id: str
    kind: str
    due_at: datetime
    payload: dict[str, Any] = field(default_factory=dict)
    first_time: bool = False


class TimerStore:
    """Schedule, claim, complete and cancel durable timers."""

    def __init__(self, store: Store) -> None:
        self._store = store

    @property
    def collection(self) -> AsyncCollection[Document]:
        return self._store[COLLECTION]

    @property
    def done(self) -> AsyncCollection[Document]:
        return self._store[DONE_COLLECTION]

    @property
    def claims(self) -> AsyncCollection[Document]:
        return self._store[CLAIMS]

    async def schedule(
        self,
        timer_id: str,
        case_id: str,
        kind: str,
        due_at: datetime,
        payload: dict[str, Any] | None = None,
        *,
        first_time: bool = False,
    ) -> bool:
        """Create the timer unless it exists (any state): True if this call created it."""
        spec = TimerSpec(timer_id, case_id, kind, due_at, payload or {}, first_time)
        return timer_id in await self.schedule_many([spec])

    async def schedule_many(self, specs: Sequence[TimerSpec]) -> set[str]:
        """``schedule`` for many timers: one bulk of upserts, then (for the new ones not
        known to be first asked for) one read of ``timers_done``. Returns the ids created."""
        unique: dict[str, TimerSpec] = {}
        for spec in specs:
            unique.setdefault(spec.timer_id, spec)  # asked twice: the first one counts
        specs = list(unique.values())
        if not specs:
            return set()
        ops = [
            UpdateOne(
                {"_id": s.timer_id},
                {
                    "$setOnInsert": {
                        "case_id": s.case_id,
                        "kind": s.kind,
                        "due_at": s.due_at,
                        "payload": s.payload,
                        "state": PENDING,
                        "attempts": 0,
                    }
                },
                upsert=True,
            )
            for s in specs
        ]
        try:
            result = await self.collection.bulk_write(ops, ordered=False)
            upserted = result.upserted_ids or {}
        except BulkWriteError as exc:
            duplicate_key_errors(exc)
            # A concurrent upsert of the same id won: same timer, not ours.
            upserted = {u["index"]: u["_id"] for u in exc.details.get("upserted") or []}
        created = {specs[i].timer_id for i in upserted}
        # New in ``timers``, but maybe finished already (a redelivered event asks again):
        # a finished timer is recorded before it leaves ``timers``, so this read after
        # our insert cannot miss one.
        unsure = [s.timer_id for s in specs if s.timer_id in created and not s.first_time]
        if unsure:
            finished = [
                d["_id"] async for d in self.done.find({"_id": {"$in": unsure}}, {"_id": 1})
            ]
            if finished:
                await self.collection.delete_many(
                    {"_id": {"$in": finished}, "state": PENDING, "attempts": 0}
                )
                created.difference_update(finished)
        return created

    async def claim_due(self, now: datetime, owner: str, lease_seconds: float) -> Timer | None:
        """Take one due timer for ``owner`` (the most overdue first); None when none is due."""
        claimed = await self.claim_many(now, owner, lease_seconds, limit=1)
        return claimed[0] if claimed else None

    async def claim_many(
        self, now: datetime, owner: str, lease_seconds: float, *, limit: int
    ) -> list[Timer]:
        """Claim up to ``limit`` due timers: pending ones whose time came, and firing ones
        whose lease ran out (their replica died: they fire late rather than never)."""
        candidates = await self.collection.find(
            {"state": PENDING, "due_at": {"$lte": now}}, sort=[("due_at", 1)], limit=limit
        ).to_list()
        if len(candidates) < limit:
            candidates += await self.collection.find(
                {"state": FIRING, "lease_until": {"$lt": now}},
                sort=[("lease_until", 1)],
                limit=limit - len(candidates),
            ).to_list()
        claimed: list[Timer] = []
        for doc in candidates:
            timer = await self._claim(doc, now, owner, lease_seconds)
            if timer is not None:
                claimed.append(timer)
        return claimed

    async def _claim(
        self, doc: Document, now: datetime, owner: str, lease_seconds: float
    ) -> Timer | None:
        # The arbiter is a unique insert ("<timer>#<attempt>"), not a guarded update: the
        # MongoDB-protocol server FerretDB 1.24 lets two concurrent guarded updates
        # (or find_one_and_update calls) both succeed, but never two inserts of one _id.
        lease_until = now + timedelta(seconds=lease_seconds)
        attempt = int(doc.get("attempts", 0)) + 1
        while True:
            try:
                await self.claims.insert_one(
                    {
                        "_id": f"{doc['_id']}#{attempt}",
                        "timer_id": doc["_id"],
                        "owner": owner,
                        "claimed_at": now,
                        "lease_until": lease_until,
                    }
                )
                break
            except DuplicateKeyError:
                held = await self.claims.find_one({"_id": f"{doc['_id']}#{attempt}"})
                if held is not None and held["lease_until"] >= now:
                    return None  # another replica holds it
                attempt += 1  # that claimer died before taking the timer over: next attempt
        taken = await self.collection.update_one(
            # Seen as due, but done or cancelled since (we read a stale candidate): leave it.
            {"_id": doc["_id"], "state": {"$in": [PENDING, FIRING]}, "attempts": {"$lt": attempt}},
            {
                "$set": {
                    "state": FIRING,
                    "owner": owner,
                    "lease_until": lease_until,
                    "claimed_at": now,
                    "attempts": attempt,
                }
            },
        )
        if not taken.modified_count:
            return None
        return Timer.from_document({**doc, "state": FIRING, "owner": owner, "attempts": attempt})

    async def complete(self, timer: Timer, owner: str, now: datetime) -> bool:
        """Record the timer done and drop it from ``timers``; False if the lease was lost
        (another replica re-fired it: it finishes it too)."""
        return timer.timer_id in await self.complete_many([timer], owner, now)

    async def complete_many(self, timers: Sequence[Timer], owner: str, now: datetime) -> set[str]:
        """``complete`` for a round's timers: one read of those still ours, one insert into
        ``timers_done``, one delete. Returns the ids completed: not those whose lease was
        lost (another replica re-fired them and completes them too)."""
        if not timers:
            return set()
        guard = {"_id": {"$in": [t.timer_id for t in timers]}, "state": FIRING, "owner": owner}
        ours = {d["_id"] async for d in self.collection.find(guard, {"_id": 1})}
        await self._record_many([_document(t) for t in timers], DONE, now)
        await self.collection.delete_many(guard)
        return ours

    async def release(self, timer: Timer, owner: str, *, retry_at: datetime, give_up: bool) -> None:
        """After a failed firing: back to pending at ``retry_at``, or ``failed`` for good."""
        guard = {"_id": timer.timer_id, "state": FIRING, "owner": owner}
        if give_up:
            await self._record_many([_document(timer)], FAILED)
            if not (await self.collection.delete_one(guard)).deleted_count:
                await self.done.delete_one({"_id": timer.timer_id, "state": FAILED})
            return
        await self.collection.update_one(
            guard, {"$set": {"state": PENDING, "due_at": retry_at}, "$unset": {"lease_until": ""}}
        )

    async def cancel_many(self, timer_ids: Iterable[str]) -> int:
        """Cancel those of these timers that are pending (a firing one finishes): one read,
        then one insert into ``timers_done`` and one delete for all of them."""
        ids = list(dict.fromkeys(timer_ids))
        if not ids:
            return 0
        docs = await self.collection.find({"_id": {"$in": ids}, "state": PENDING}).to_list()
        if not docs:
            return 0
        found = [d["_id"] for d in docs]
        await self._record_many(docs, CANCELLED)
        result = await self.collection.delete_many({"_id": {"$in": found}, "state": PENDING})
        if result.deleted_count < len(found):
            # Claimed meanwhile: those fire and finish as done, not cancelled.
            live = await self.collection.find({"_id": {"$in": found}}, {"_id": 1}).to_list()
            if live:
                await self.done.delete_many(
                    {"_id": {"$in": [d["_id"] for d in live]}, "state": CANCELLED}
                )
        return int(result.deleted_count)

    async def cancel_one(self, timer_id: str) -> bool:
        return await self.cancel_many([timer_id]) == 1

    async def _record_many(
        self, docs: Sequence[Document], state: str, at: datetime | None = None
    ) -> None:
        """Finished timers in ``timers_done`` (those an earlier attempt wrote are kept)."""
        at = at or utcnow()
        records = []
        for doc in docs:
            record = {k: v for k, v in doc.items() if k != "lease_until"}
            record.update(state=state, finished_at=at)
            if state == DONE:
                record["fired_at"] = at
            records.append(record)
        try:
            await self.done.insert_many(records, ordered=False)
        except BulkWriteError as exc:
            duplicate_key_errors(exc)  # finished already: recorded by the first

    async def get(self, timer_id: str) -> Document | None:
        """The timer, live or finished."""
        live = await self.collection.find_one({"_id": timer_id})
        return live if live is not None else await self.done.find_one({"_id": timer_id})


def _document(timer: Timer) -> Document:
    return {
        "_id": timer.timer_id,
        "case_id": timer.case_id,
        "kind": timer.kind,
        "due_at": timer.due_at,
        "payload": dict(timer.payload),
        "attempts": timer.attempts,
        "owner": timer.owner,
    }
