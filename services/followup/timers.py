"""Durable timers in the ``timers`` collection.

A timer is one document keyed by a deterministic id (so scheduling twice is a no-op).
Replicas take due timers with an atomic ``find_one_and_update`` that moves them from
``pending`` to ``firing`` under a lease: only one replica wins each timer. A replica that
dies while firing leaves the lease to expire; another replica then claims the timer again,
so a timer fires late rather than never. Both claim queries match on ``state`` first (an
indexed, selective key: done timers are never scanned). Who wins a timer is decided by a
unique insert into ``timer_claims`` (see ``_claim``).

States: pending -> firing -> done | cancelled | failed.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from pymongo import IndexModel
from pymongo.asynchronous.collection import AsyncCollection
from pymongo.errors import DuplicateKeyError

from shared.store import Document, IndexSpec, Store

log = logging.getLogger(__name__)

COLLECTION = "timers"
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
    def claims(self) -> AsyncCollection[Document]:
        return self._store[CLAIMS]

    async def schedule(
        self,
        timer_id: str,
        case_id: str,
        kind: str,
        due_at: datetime,
        payload: dict[str, Any] | None = None,
    ) -> bool:
        """Create the timer unless it exists (any state): True if this call created it."""
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
        return result.upserted_id is not None

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

    async def complete(self, timer_id: str, owner: str, now: datetime) -> bool:
        """Mark the timer done; False if the lease was lost (another replica re-fired it)."""
        result = await self.collection.update_one(
            {"_id": timer_id, "state": FIRING, "owner": owner},
            {"$set": {"state": DONE, "fired_at": now}, "$unset": {"lease_until": ""}},
        )
        return result.modified_count == 1

    async def release(self, timer: Timer, owner: str, *, retry_at: datetime, give_up: bool) -> None:
        """After a failed firing: back to pending at ``retry_at``, or ``failed`` for good."""
        update: dict[str, Any] = (
            {"$set": {"state": FAILED}, "$unset": {"lease_until": ""}}
            if give_up
            else {"$set": {"state": PENDING, "due_at": retry_at}, "$unset": {"lease_until": ""}}
        )
        await self.collection.update_one(
            {"_id": timer.timer_id, "state": FIRING, "owner": owner}, update
        )

    async def cancel(self, case_id: str, kinds: list[str] | tuple[str, ...]) -> int:
        """Cancel the case's pending timers of these kinds (a firing one finishes)."""
        result = await self.collection.update_many(
            {"case_id": case_id, "kind": {"$in": list(kinds)}, "state": PENDING},
            {"$set": {"state": CANCELLED}},
        )
        return result.modified_count

    async def cancel_one(self, timer_id: str) -> bool:
        result = await self.collection.update_one(
            {"_id": timer_id, "state": PENDING}, {"$set": {"state": CANCELLED}}
        )
        return result.modified_count == 1

    async def get(self, timer_id: str) -> Document | None:
        return await self.collection.find_one({"_id": timer_id})
