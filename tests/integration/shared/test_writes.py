"""shared.writes against the real server: a failed guard is a conflict for that one key,
the other statements of the bulk write hold; rounds redo only the conflicted items."""

from __future__ import annotations

from collections.abc import Sequence

import pytest
from pymongo import UpdateOne

from shared.store import Store
from shared.writes import guarded_bulk_write, in_conflict_rounds


def bump(doc_id: str, read_version: int | None) -> UpdateOne:
    guard = {"version": read_version} if read_version else {"version": {"$exists": False}}
    return UpdateOne(
        {"_id": doc_id, **guard}, {"$set": {"version": (read_version or 0) + 1}}, upsert=True
    )


async def test_a_stale_guard_conflicts_alone(store: Store) -> None:
    docs = store["writes_test"]
    await docs.insert_one({"_id": "b", "version": 2})
    # "a" is new (guard: absent), "b" was read at version 1 but is at 2 now: stale.
    conflicted = await guarded_bulk_write(docs, [("a", bump("a", None)), ("b", bump("b", 1))])
    assert conflicted == {"b"}
    assert await docs.find_one({"_id": "a"}) == {"_id": "a", "version": 1}
    assert await docs.find_one({"_id": "b"}) == {"_id": "b", "version": 2}
    # Written again from what is stored now, it holds; repeated, it changes nothing twice.
    assert await guarded_bulk_write(docs, [("b", bump("b", 2))]) == set()
    assert await guarded_bulk_write(docs, [("b", bump("b", 2))]) == {"b"}
    assert await docs.find_one({"_id": "b"}) == {"_id": "b", "version": 3}


async def test_rounds_redo_only_the_conflicted_and_give_up(store: Store) -> None:
    docs = store["writes_test"]
    await docs.insert_one({"_id": "busy", "version": 5})
    seen: list[list[str]] = []

    async def attempt(ids: Sequence[str]) -> set[str]:
        seen.append(list(ids))
        current = {d["_id"]: d.get("version") async for d in docs.find({"_id": {"$in": ids}})}
        # "busy" is always read one version behind: another writer keeps changing it.
        writes = [
            (i, bump(i, (current.get(i) or 0) - 1 if i == "busy" else current.get(i))) for i in ids
        ]
        return await guarded_bulk_write(docs, writes)

    with pytest.raises(RuntimeError, match="busy"):
        await in_conflict_rounds(["quiet", "busy"], lambda i: i, attempt, rounds=3)
    assert seen == [["quiet", "busy"], ["busy"], ["busy"]]
    assert await docs.find_one({"_id": "quiet"}) == {"_id": "quiet", "version": 1}
