"""bench.opcount's document counts against the real MongoDB-protocol server: each kind of
write the services send, with the documents it really leaves in the collection."""

from __future__ import annotations

from typing import Any

import pytest
from pymongo import AsyncMongoClient, DeleteOne, InsertOne, UpdateOne
from pymongo.errors import BulkWriteError

from bench.opcount import Listener
from shared.settings import Settings


async def test_counts_match_what_the_server_stored(servers_up: None, settings: Settings) -> None:
    listener = Listener()
    client: AsyncMongoClient[Any] = AsyncMongoClient(
        settings.mongodb_url.get_secret_value(), event_listeners=[listener]
    )
    coll = client[settings.mongodb_database].docs
    try:
        await coll.insert_many([{"_id": i, "v": 0} for i in range(3)])  # 3 inserted
        await coll.update_one({"_id": 0}, {"$set": {"v": 0}})  # no change: nothing
        await coll.update_one({"_id": 0}, {"$set": {"v": 1}})  # 1 modified
        await coll.update_one({"_id": 9}, {"$set": {"v": 1}}, upsert=True)  # 1 upserted
        await coll.bulk_write(
            [
                UpdateOne({"_id": 1}, {"$set": {"v": 5}}),  # 1 modified
                UpdateOne({"_id": 10}, {"$set": {"v": 5}}, upsert=True),  # 1 upserted
                InsertOne({"_id": 12}),  # 1 inserted
                DeleteOne({"_id": 2}),  # 1 deleted
            ],
            ordered=False,
        )
        await coll.find_one_and_update({"_id": 0}, {"$set": {"v": 7}})  # 1 modified
        await coll.find_one_and_update({"_id": 20}, {"$set": {"v": 7}}, upsert=True)  # 1 up
        await coll.find_one_and_update({"_id": 21}, {"$set": {"v": 7}})  # no match
        await coll.find_one_and_delete({"_id": 20})  # 1 deleted
        await coll.find_one_and_delete({"_id": 999})  # nothing
        with pytest.raises(BulkWriteError):  # ordered: 40 stored, stops at the duplicate
            await coll.insert_many([{"_id": 40}, {"_id": 1}, {"_id": 41}], ordered=True)
        with pytest.raises(BulkWriteError):  # unordered: 50 and 51 stored
            await coll.insert_many([{"_id": 50}, {"_id": 1}, {"_id": 51}], ordered=False)
        stored = sorted([d["_id"] async for d in coll.find({}, {"_id": 1})])
    finally:
        await client.drop_database(settings.mongodb_database)
        await client.close()
    assert stored == [0, 1, 9, 10, 12, 40, 50, 51]
    snap = listener.snapshot()
    totals = {kind: sum(snap[kind].values()) for kind in ("inserted", "upserted", "deleted")}
    assert totals == {"inserted": 7, "upserted": 3, "deleted": 2}
    assert snap["modified"] == {"update docs": 2, "findAndModify docs": 1}
    assert snap["upserted"] == {"update docs": 2, "findAndModify docs": 1}
    assert snap["count"]["insert docs"] == 4
