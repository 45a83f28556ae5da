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

import contextlib
import logging
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from pymongo import IndexModel
from pymongo.asynchronous.collection import AsyncCollection
from pymongo.errors import DuplicateKeyError

from shared.events.envelope import utcnow
from shared.store import Document, IndexSpec, Store

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
        """Create the timer unless it exists (any state): True if this call created it.
        ``first_time``: the caller knows the timer was never asked for before, so it cannot
        have finished (skips the read of ``timers_done``)."""
        try:
            result = await self.collection.update_one(
                {"_id": timer_id},
                {
                    "$setOnInsert": {
                        "case_id": case_id,
                        "kind": kind,
                        "due_at": due_at,
                        "payload": payload or {},
                        "state": PENDING,
                        "attempts": 0,
                    }
                },
                upsert=True,
            )
        except DuplicateKeyError:
            return False  # a concurrent upsert of the same id won: same timer
        if result.upserted_id is None:
            return False
        if first_time:
            return True
        # New in ``timers``, but it may have finished already (a redelivered event asks
        # again). A finished timer is recorded before it leaves ``timers``, so this check
        # after our insert cannot miss one that finished before it.
        if await self.done.find_one({"_id": timer_id}, {"_id": 1}) is not None:
            await self.collection.delete_one({"_id": timer_id, "state": PENDING, "attempts": 0})
            return False
        return True

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
        await self._record(_document(timer), DONE, now)
        result = await self.collection.delete_one(
            {"_id": timer.timer_id, "state": FIRING, "owner": owner}
        )
        return result.deleted_count == 1

    async def release(self, timer: Timer, owner: str, *, retry_at: datetime, give_up: bool) -> None:
        """After a failed firing: back to pending at ``retry_at``, or ``failed`` for good."""
        guard = {"_id": timer.timer_id, "state": FIRING, "owner": owner}
        if give_up:
            await self._record(_document(timer), FAILED)
            if not (await self.collection.delete_one(guard)).deleted_count:
                await self.done.delete_one({"_id": timer.timer_id, "state": FAILED})
            return
        await self.collection.update_one(
            guard, {"$set": {"state": PENDING, "due_at": retry_at}, "$unset": {"lease_until": ""}}
        )

    async def cancel(self, case_id: str, kinds: list[str] | tuple[str, ...]) -> int:
        """Cancel the case's pending timers of these kinds (a firing one finishes)."""
        docs = await self.collection.find(
            {"case_id": case_id, "kind": {"$in": list(kinds)}, "state": PENDING}
        ).to_list()
        return await self._cancel(docs)

    async def cancel_one(self, timer_id: str) -> bool:
        doc = await self.collection.find_one({"_id": timer_id, "state": PENDING})
        return await self._cancel([doc] if doc is not None else []) == 1

    async def _cancel(self, docs: list[Document]) -> int:
        if not docs:
            return 0
        ids = [d["_id"] for d in docs]
        for doc in docs:
            await self._record(doc, CANCELLED)
        result = await self.collection.delete_many({"_id": {"$in": ids}, "state": PENDING})
        if result.deleted_count < len(ids):
            # Claimed meanwhile: those fire and finish as done, not cancelled.
            live = await self.collection.find({"_id": {"$in": ids}}, {"_id": 1}).to_list()
            if live:
                await self.done.delete_many(
                    {"_id": {"$in": [d["_id"] for d in live]}, "state": CANCELLED}
                )
        return result.deleted_count

    async def _record(self, doc: Document, state: str, at: datetime | None = None) -> None:
        """The finished timer in ``timers_done`` (kept if an earlier attempt wrote it)."""
        record = {k: v for k, v in doc.items() if k != "lease_until"}
        record.update(state=state, finished_at=at or utcnow())
        if state == DONE:
            record["fired_at"] = record["finished_at"]
        with contextlib.suppress(DuplicateKeyError):
            await self.done.insert_one(record)

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
