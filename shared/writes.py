"""Exactly-once writes for batch handlers: one unordered bulk write of guarded upserts
per collection, and rounds that redo only what another writer changed meanwhile.

A handler writes each document with an update whose filter carries a guard -- the version
of the document it read (e.g. ``classified_count``), or ``$exists: False`` for one it
did not find -- and ``upsert=True``. If the document changed since the read, the filter
matches nothing and the upsert collides with the existing ``_id``: a duplicate-key error
for that one statement, which says "read it again and decide again", never a second
copy. A redelivered poll finds its effects stored and writes nothing (or only what is
missing). See docs/architecture.md, "Exactly-once effects without bookkeeping round trips".
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Hashable, Sequence
from typing import Any, TypeVar

from pymongo.errors import BulkWriteError
from pymongo.results import BulkWriteResult

DUPLICATE_KEY = 11000
# A case changed by another writer between our read and our write is read and decided
# again; more rounds than this means something keeps writing it (raised: the poll retries).
CONFLICT_ROUNDS = 5

K = TypeVar("K", bound=Hashable)
T = TypeVar("T")


def duplicate_key_errors(exc: BulkWriteError) -> list[dict[str, Any]]:
    """The write errors of a failed unordered bulk write when every one is a duplicate
    key (a failed guard, or an insert that lost a race): the caller's to decide. Any other
    error, or a write-concern error, is raised again: an outage or a bug."""
    errors: list[dict[str, Any]] = exc.details.get("writeErrors") or []
    if exc.details.get("writeConcernErrors") or any(e.get("code") != DUPLICATE_KEY for e in errors):
        raise exc
    return errors


async def bulk_write_conflicts(
    collection: Any, ops: Sequence[Any]
) -> tuple[BulkWriteResult | None, set[int]]:
    """One unordered bulk write of guarded updates: (its result, or None when some
    failed; the indexes of the ops that failed on a duplicate key). A guarded upsert
    whose guard no longer holds fails that way (it tries to insert an _id that exists):
    a conflict for the caller to decide again. Any other error (and any write-concern
    error) raises: that is an outage or a bug, and the poll is retried or bisected."""
    if not ops:
        return None, set()
    try:
        return await collection.bulk_write(list(ops), ordered=False), set()
    except BulkWriteError as exc:
        return None, {int(e["index"]) for e in duplicate_key_errors(exc)}


async def guarded_bulk_write(collection: Any, writes: Sequence[tuple[K, Any]]) -> set[K]:
    """``bulk_write_conflicts`` of ``(key, operation)`` pairs: the keys whose guard failed."""
    _, failed = await bulk_write_conflicts(collection, [operation for _, operation in writes])
    return {writes[i][0] for i in failed}


async def bulk_write_retrying_duplicates(
    collection: Any, ops: Sequence[Any], attempts: int = 2
) -> None:
    """An unordered bulk write of idempotent upserts; those that fail on a duplicate key
    (two first inserts of one _id at once) are sent again, as they then update."""
    for _ in range(attempts):
        _, failed = await bulk_write_conflicts(collection, ops)
        if not failed:
            return
        ops = [op for i, op in enumerate(ops) if i in failed]
    raise RuntimeError(f"{collection.name}: {len(ops)} upserts kept failing on duplicate keys")


async def in_conflict_rounds(
    items: Sequence[T],
    key: Callable[[T], K],
    attempt: Callable[[Sequence[T]], Awaitable[set[K]]],
    *,
    rounds: int = CONFLICT_ROUNDS,
) -> None:
    """Run ``attempt`` (read, decide, write) on ``items``, then again on the items whose
    key it returns as conflicted, until none are; raises if they keep conflicting."""
    pending = items
    for _ in range(rounds):
        conflicted = await attempt(pending)
        if not conflicted:
            return
        pending = [item for item in pending if key(item) in conflicted]
    raise RuntimeError(
        f"{sorted(map(str, conflicted))[:5]} kept changing while written ({rounds} rounds)"
    )
