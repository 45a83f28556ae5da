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

DUPLICATE_KEY = 11000
# A case changed by another writer between our read and our write is read and decided
# again; more rounds than this means something keeps writing it (raised: the poll retries).
CONFLICT_ROUNDS = 5

K = TypeVar("K", bound=Hashable)
T = TypeVar("T")


async def guarded_bulk_write(collection: Any, writes: Sequence[tuple[K, Any]]) -> set[K]:
    """One unordered bulk write of ``(key, operation)``; the keys whose guard failed.

    Any error other than a duplicate key (and any write-concern error) is raised: that is
    an outage or a bug, not a conflict, and the poll is retried or bisected for it.
    """
    if not writes:
        return set()
    try:
        await collection.bulk_write([operation for _, operation in writes], ordered=False)
    except BulkWriteError as exc:
        errors = exc.details.get("writeErrors") or []
        if exc.details.get("writeConcernErrors") or any(
            e.get("code") != DUPLICATE_KEY for e in errors
        ):
            raise
        return {writes[e["index"]][0] for e in errors}
    return set()


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
