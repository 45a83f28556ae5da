#!/usr/bin/env python3
"""Conformance and speed check for the local MongoDB-protocol server.

Checks the MongoDB features the amends services rely on (required) and a set of
features they might be tempted to use (optional, reported only), then measures
rough throughput with pymongo (sync).

    python deploy/local/mongo_conformance.py [--url URL] [--json] [--no-speed]
    python deploy/local/mongo_conformance.py --phase write    # durability, part 1
    python deploy/local/mongo_conformance.py --phase verify   # ... after a restart

Exit status: 0 all required checks passed, 1 a required check failed,
2 the server could not be reached.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import random
import sys
import threading
import time
import traceback
import uuid
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any

import pymongo
from pymongo import (
    ASCENDING,
    DESCENDING,
    InsertOne,
    MongoClient,
    ReturnDocument,
    UpdateOne,
)
from pymongo.errors import BulkWriteError, DuplicateKeyError, PyMongoError

DEFAULT_URL = os.environ.get(
    "MONGODB_URL",
    "mongodb://127.0.0.1:{}/?directConnection=true&retryWrites=false"
    "&serverSelectionTimeoutMS=5000".format(os.environ.get("MONGO_PORT", "27017")),
)

DURABILITY_DB = "amends_durability_check"
DURABILITY_N = 500


class CheckFailed(Exception):
    pass


def expect(cond: bool, msg: str) -> None:
    if not cond:
        raise CheckFailed(msg)


# --------------------------------------------------------------------------- checks
# Each check gets a fresh collection and returns a short detail string (or None).


def check_crud(db) -> str:
    c = db.crud
    r = c.insert_one(
        {"name": "a", "n": 1, "tags": ["x"], "at": datetime(2024, 1, 2, 3, 4, 5, 678000)}
    )
    expect(r.acknowledged and r.inserted_id is not None, "insert_one not acknowledged")
    r2 = c.insert_many([{"name": "b", "n": 2}, {"name": "c", "n": 3}, {"name": "d", "n": 4}])
    expect(len(r2.inserted_ids) == 3, "insert_many ids")
    d = c.find_one({"_id": r.inserted_id})
    expect(d is not None and d["name"] == "a", f"find_one by _id: {d}")
    expect(d["at"] == datetime(2024, 1, 2, 3, 4, 5, 678000), f"datetime round trip: {d['at']!r}")
    got = [
        x["name"] for x in c.find({"n": {"$gte": 2}}, {"name": 1}).sort("n", DESCENDING).limit(2)
    ]
    expect(got == ["d", "c"], f"find/sort/limit/projection: {got}")
    got = [x["name"] for x in c.find({"name": {"$in": ["a", "c"]}}).sort("name", ASCENDING).skip(1)]
    expect(got == ["c"], f"find $in/skip: {got}")
    u = c.update_one({"name": "b"}, {"$set": {"n": 20}})
    expect(u.matched_count == 1 and u.modified_count == 1, f"update_one counts {u.raw_result}")
    um = c.update_many({"n": {"$lt": 10}}, {"$set": {"small": True}})
    expect(um.matched_count == 3 and um.modified_count == 3, f"update_many {um.raw_result}")
    rp = c.replace_one({"name": "c"}, {"name": "c", "n": 30})
    expect(rp.modified_count == 1, "replace_one")
    expect(c.find_one({"name": "c"}).get("small") is None, "replace_one kept old fields")
    expect(c.count_documents({}) == 4, "count_documents")
    expect(c.count_documents({"small": True}) == 2, "count_documents with filter")
    dl = c.delete_one({"name": "a"})
    expect(dl.deleted_count == 1, "delete_one")
    dm = c.delete_many({"n": {"$gte": 20}})
    expect(dm.deleted_count == 2, f"delete_many {dm.deleted_count}")
    expect(c.count_documents({}) == 1, "count after deletes")
    return "insert_one/insert_many/find/sort/skip/limit/projection/update/replace/delete/count ok"


def check_unique_index(db) -> str:
    c = db.uniq
    c.create_index([("email", ASCENDING)], unique=True, name="email_unique")
    c.insert_one({"email": "a@example.org"})
    try:
        c.insert_one({"email": "a@example.org"})
    except DuplicateKeyError as e:
        details = e.details or {}
        kv = details.get("keyValue")
        # insert_many / bulk path must raise BulkWriteError with code 11000 too
        try:
            c.insert_many([{"email": "b@example.org"}, {"email": "a@example.org"}], ordered=True)
            raise CheckFailed("insert_many with duplicate did not raise")
        except BulkWriteError as be:
            codes = [w.get("code") for w in be.details.get("writeErrors", [])]
            expect(codes == [11000], f"insert_many duplicate codes {codes}")
        # upsert that collides must also raise DuplicateKeyError
        try:
            c.update_one(
                {"email": "zzz", "x": 1}, {"$set": {"email": "a@example.org"}}, upsert=True
            )
            raise CheckFailed("upsert creating a duplicate did not raise")
        except DuplicateKeyError:
            pass
        expect(c.count_documents({}) == 2, f"documents after duplicates: {c.count_documents({})}")
        return f"code={e.code} keyValue={kv if kv is not None else 'ABSENT'}"
    raise CheckFailed("duplicate insert_one did not raise DuplicateKeyError")


def check_find_one_and_update_sort(db) -> str:
    c = db.claim
    c.create_index([("status", ASCENDING), ("due", ASCENDING)])
    base = datetime(2024, 1, 1)
    c.insert_many(
        [
            {"_id": i, "status": "pending", "due": base + timedelta(minutes=(7 * i) % 10)}
            for i in range(10)
        ]
    )
    got = c.find_one_and_update(
        {"status": "pending"},
        {"$set": {"status": "claimed", "owner": "w1"}, "$inc": {"attempts": 1}},
        sort=[("due", ASCENDING)],
        return_document=ReturnDocument.AFTER,
    )
    expect(got is not None, "nothing returned")
    expect(
        got["_id"] == 0 and got["status"] == "claimed" and got["attempts"] == 1, f"AFTER doc {got}"
    )
    got2 = c.find_one_and_update(
        {"status": "pending"},
        {"$set": {"status": "claimed"}},
        sort=[("due", DESCENDING)],
        return_document=ReturnDocument.BEFORE,
    )
    expect(got2["_id"] == 7 and got2["status"] == "pending", f"BEFORE/desc doc {got2}")
    none = c.find_one_and_update({"status": "nope"}, {"$set": {"x": 1}})
    expect(none is None, "no match should return None")
    up = c.find_one_and_update(
        {"_id": 100}, {"$set": {"status": "new"}}, upsert=True, return_document=ReturnDocument.AFTER
    )
    expect(up is not None and up["_id"] == 100, f"find_one_and_update upsert {up}")
    return "sort asc/desc, AFTER/BEFORE, no-match None, upsert ok"


def check_update_operators(db) -> str:
    c = db.ops
    c.insert_one({"_id": "k", "n": 1, "arr": [1]})
    c.update_one(
        {"_id": "k"},
        {"$inc": {"n": 2, "m": 5}, "$push": {"arr": 2}, "$set": {"s": "x", "sub.f": 1}},
    )
    d = c.find_one({"_id": "k"})
    expect(d["n"] == 3 and d["m"] == 5, f"$inc {d}")
    expect(d["arr"] == [1, 2], f"$push {d}")
    expect(d["s"] == "x" and d["sub"] == {"f": 1}, f"$set / dotted $set {d}")
    c.update_one({"_id": "k"}, {"$push": {"arr": {"$each": [3, 4]}}})
    expect(c.find_one({"_id": "k"})["arr"] == [1, 2, 3, 4], "$push $each")
    # $setOnInsert: applied on insert, ignored on update
    c.update_one({"_id": "soi"}, {"$setOnInsert": {"created": 1}, "$set": {"v": 1}}, upsert=True)
    c.update_one({"_id": "soi"}, {"$setOnInsert": {"created": 2}, "$set": {"v": 2}}, upsert=True)
    d = c.find_one({"_id": "soi"})
    expect(d["created"] == 1 and d["v"] == 2, f"$setOnInsert {d}")
    return "$inc $push($each) $set(dotted) $setOnInsert ok"


def check_upsert(db) -> str:
    c = db.ups
    r = c.update_one({"key": "a"}, {"$set": {"v": 1}}, upsert=True)
    expect(r.upserted_id is not None and r.matched_count == 0, f"first upsert {r.raw_result}")
    d = c.find_one({"key": "a"})
    expect(
        d is not None and d["_id"] == r.upserted_id and d["v"] == 1,
        f"upserted doc {d} vs {r.upserted_id}",
    )
    r2 = c.update_one({"key": "a"}, {"$set": {"v": 2}}, upsert=True)
    expect(r2.upserted_id is None and r2.matched_count == 1, f"second upsert {r2.raw_result}")
    r3 = c.update_one({"_id": "explicit"}, {"$set": {"v": 3}}, upsert=True)
    expect(r3.upserted_id == "explicit", f"upsert by _id returns {r3.upserted_id!r}")
    expect(c.count_documents({}) == 2, "document count")
    return f"upserted_id={r.upserted_id!r} (type {type(r.upserted_id).__name__}), by _id ok"


def check_aggregation(db) -> str:
    c = db.agg
    c.insert_many(
        [
            {"lang": "fi", "sev": 3, "ch": "email"},
            {"lang": "fi", "sev": 1, "ch": "chat"},
            {"lang": "en", "sev": 2, "ch": "email"},
            {"lang": "en", "sev": 5, "ch": "email"},
            {"lang": "et", "sev": 4, "ch": "phone"},
            {"lang": "de", "sev": 9, "ch": "fax"},
        ]
    )
    out = list(
        c.aggregate(
            [
                {"$match": {"ch": {"$in": ["email", "chat", "phone"]}}},
                {"$group": {"_id": "$lang", "n": {"$sum": 1}, "total": {"$sum": "$sev"}}},
                {"$sort": {"total": -1, "_id": 1}},
            ]
        )
    )
    expect(
        out
        == [
            {"_id": "en", "n": 2, "total": 7},
            {"_id": "et", "n": 1, "total": 4},
            {"_id": "fi", "n": 2, "total": 4},
        ],
        f"$match/$group/$sort -> {out}",
    )
    return "$match/$group($sum)/$sort ok"


def opt_group_accumulators(db) -> str:
    c = db.acc
    c.insert_many([{"g": "a", "v": 1}, {"g": "a", "v": 3}, {"g": "b", "v": 2}])
    out = list(
        c.aggregate(
            [
                {"$sort": {"v": 1}},
                {
                    "$group": {
                        "_id": "$g",
                        "mx": {"$max": "$v"},
                        "mn": {"$min": "$v"},
                        "avg": {"$avg": "$v"},
                        "first": {"$first": "$v"},
                        "all": {"$push": "$v"},
                        "set": {"$addToSet": "$g"},
                    }
                },
                {"$sort": {"_id": 1}},
            ]
        )
    )
    expect(
        out
        == [
            {"_id": "a", "mx": 3, "mn": 1, "avg": 2.0, "first": 1, "all": [1, 3], "set": ["a"]},
            {"_id": "b", "mx": 2, "mn": 2, "avg": 2.0, "first": 2, "all": [2], "set": ["b"]},
        ],
        f"{out}",
    )
    return "$max $min $avg $first $push $addToSet ok"


def check_ttl_index(db) -> str:
    c = db.ttl
    name = c.create_index([("expire_at", ASCENDING)], expireAfterSeconds=0)
    c.create_index([("created", ASCENDING)], expireAfterSeconds=3600, name="created_ttl")
    info = c.index_information()
    expect(name in info, f"index {name} not listed: {list(info)}")
    expect(info[name].get("expireAfterSeconds") == 0, f"expireAfterSeconds missing: {info[name]}")
    expect(info["created_ttl"].get("expireAfterSeconds") == 3600, f"{info['created_ttl']}")
    return "created; expireAfterSeconds listed"


def check_compound_index(db) -> str:
    c = db.comp
    name = c.create_index([("tenant", ASCENDING), ("status", ASCENDING), ("due", DESCENDING)])
    c.insert_many(
        [
            {"tenant": t, "status": s, "due": i}
            for t in ("a", "b")
            for s in ("open", "done")
            for i in range(50)
        ]
    )
    info = c.index_information()
    expect(
        name in info and info[name]["key"] == [("tenant", 1), ("status", 1), ("due", -1)], f"{info}"
    )
    got = [
        d["due"] for d in c.find({"tenant": "b", "status": "open"}).sort("due", DESCENDING).limit(3)
    ]
    expect(got == [49, 48, 47], f"query on compound index: {got}")
    hinted = list(c.find({"tenant": "a", "status": "done", "due": {"$gte": 45}}).hint(name))
    expect(len(hinted) == 5, f"hinted query returned {len(hinted)}")
    return f"{name}; query + hint ok"


def check_bulk_write_upserts(db) -> str:
    c = db.bulk
    c.create_index([("ext_id", ASCENDING)], unique=True)
    ops = [
        UpdateOne({"ext_id": i}, {"$set": {"v": i}, "$setOnInsert": {"c": 1}}, upsert=True)
        for i in range(100)
    ]
    r = c.bulk_write(ops, ordered=False)
    expect(r.upserted_count == 100 and r.matched_count == 0, f"first bulk {r.bulk_api_result}")
    expect(
        len(r.upserted_ids) == 100 and sorted(r.upserted_ids) == list(range(100)),
        "upserted_ids map",
    )
    ops = [UpdateOne({"ext_id": i}, {"$set": {"v": -i}}, upsert=True) for i in range(50, 150)]
    r = c.bulk_write(ops, ordered=False)
    expect(r.upserted_count == 50 and r.matched_count == 50, f"second bulk {r.bulk_api_result}")
    expect(c.count_documents({}) == 150, "count after bulk")
    expect(c.find_one({"ext_id": 60})["v"] == -60, "bulk update applied")
    # unordered bulk with one duplicate keeps going and reports the error
    try:
        c.bulk_write([InsertOne({"ext_id": 1}), InsertOne({"ext_id": 1000})], ordered=False)
        raise CheckFailed("bulk with duplicate did not raise")
    except BulkWriteError as e:
        codes = [w.get("code") for w in e.details.get("writeErrors", [])]
        expect(codes == [11000], f"write errors {codes}")
    expect(
        c.count_documents({"ext_id": {"$in": [1, 1000]}}) == 2,
        "unordered bulk did not go on after error",
    )
    return "100 upserts, 50 matched + 50 upserted, unordered bulk goes on after a duplicate"


def opt_bulk_error_counts(db) -> str:
    c = db.bulkc
    c.create_index([("ext_id", ASCENDING)], unique=True)
    c.insert_one({"ext_id": 1})
    try:
        c.bulk_write([InsertOne({"ext_id": 1}), InsertOne({"ext_id": 2})], ordered=False)
        raise CheckFailed("no error")
    except BulkWriteError as e:
        expect(e.details["nInserted"] == 1, f"nInserted={e.details['nInserted']} (expected 1)")
    return "BulkWriteError.details nInserted correct"


# ---- optional (reported, not required)


def opt_count_only(db) -> str:
    c = db.cnt
    c.insert_many([{"x": i % 3} for i in range(30)])
    cnt = list(c.aggregate([{"$match": {"x": 1}}, {"$count": "n"}]))
    expect(cnt == [{"n": 10}], f"$count {cnt}")
    return "ok"


def opt_facet_only(db) -> str:
    c = db.fac
    c.insert_many([{"x": i % 3} for i in range(30)])
    fac = list(c.aggregate([{"$facet": {"a": [{"$match": {"x": 0}}, {"$count": "n"}]}}]))
    expect(fac == [{"a": [{"n": 10}]}], f"$facet {fac}")
    return "ok"


def opt_lookup(db) -> str:
    db.l1.insert_many([{"_id": 1, "cid": "c1"}, {"_id": 2, "cid": "c2"}])
    db.l2.insert_many([{"_id": "c1", "name": "x"}])
    out = list(
        db.l1.aggregate(
            [
                {"$lookup": {"from": "l2", "localField": "cid", "foreignField": "_id", "as": "c"}},
                {"$sort": {"_id": 1}},
            ]
        )
    )
    expect([len(d["c"]) for d in out] == [1, 0], f"$lookup {out}")
    return "ok"


def opt_agg_misc(db) -> str:
    c = db.aggm
    c.insert_many([{"t": ["a", "b"], "d": datetime(2024, 5, 6, 7), "v": i} for i in range(4)])
    out = list(
        c.aggregate(
            [
                {"$unwind": "$t"},
                {"$group": {"_id": "$t", "n": {"$sum": 1}, "s": {"$sum": "$v"}}},
                {
                    "$project": {
                        "_id": 1,
                        "n": 1,
                        "s2": {"$multiply": ["$s", 2]},
                        "label": {"$concat": ["$_id", "!"]},
                    }
                },
                {"$sort": {"_id": 1}},
                {"$limit": 5},
            ]
        )
    )
    expect(
        out
        == [
            {"_id": "a", "n": 4, "s2": 12, "label": "a!"},
            {"_id": "b", "n": 4, "s2": 12, "label": "b!"},
        ],
        f"{out}",
    )
    return "$unwind/$project($multiply,$concat)/$limit ok"


def opt_agg_dates(db) -> str:
    c = db.aggd
    c.insert_many([{"d": datetime(2024, 5, 6, 7)}])
    out = list(
        c.aggregate(
            [
                {
                    "$project": {
                        "_id": 0,
                        "day": {"$dateToString": {"format": "%Y-%m-%d", "date": "$d"}},
                    }
                }
            ]
        )
    )
    expect(out == [{"day": "2024-05-06"}], f"{out}")
    return "$dateToString ok"


def opt_more_update_ops(db) -> str:
    c = db.ops2
    c.insert_one({"_id": 1, "a": [1, 2, 2, 3], "n": 5, "s": "x", "o": {"p": 1, "q": 2}})
    c.update_one(
        {"_id": 1},
        {
            "$addToSet": {"a": 4},
            "$unset": {"s": ""},
            "$min": {"n": 3},
            "$currentDate": {"ts": True},
        },
    )
    c.update_one({"_id": 1}, {"$pull": {"a": 2}, "$max": {"n": 10}, "$rename": {"o.p": "o.r"}})
    d = c.find_one({"_id": 1})
    expect(
        d["a"] == [1, 3, 4] and d["n"] == 10 and "s" not in d and isinstance(d["ts"], datetime),
        f"{d}",
    )
    expect(d["o"] == {"q": 2, "r": 1}, f"$rename {d['o']}")
    return "$addToSet $pull $unset $min $max $currentDate $rename ok"


def opt_push_slice(db) -> str:
    c = db.ops3
    c.insert_one({"_id": 1, "h": [1, 2, 3]})
    c.update_one({"_id": 1}, {"$push": {"h": {"$each": [4, 5], "$slice": -3}}})
    d = c.find_one({"_id": 1})
    expect(d["h"] == [3, 4, 5], f"{d}")
    return "ok"


def opt_array_filters(db) -> str:
    c = db.af
    c.insert_one({"_id": 1, "steps": [{"k": "a", "done": False}, {"k": "b", "done": False}]})
    c.update_one({"_id": 1}, {"$set": {"steps.$[s].done": True}}, array_filters=[{"s.k": "b"}])
    d = c.find_one({"_id": 1})
    expect([s["done"] for s in d["steps"]] == [False, True], f"{d}")
    return "ok"


def opt_positional(db) -> str:
    c = db.pos
    c.insert_one({"_id": 1, "steps": [{"k": "a", "done": False}, {"k": "b", "done": False}]})
    c.update_one({"_id": 1, "steps.k": "b"}, {"$set": {"steps.$.done": True}})
    d = c.find_one({"_id": 1})
    expect([s["done"] for s in d["steps"]] == [False, True], f"{d}")
    return "ok"


def opt_query_ops(db) -> str:
    c = db.q
    c.insert_many(
        [
            {"_id": 1, "s": "Hello", "arr": [{"a": 1, "b": 2}], "x": None},
            {"_id": 2, "s": "world", "arr": [{"a": 1, "b": 3}]},
            {"_id": 3, "s": "help", "arr": []},
        ]
    )
    expect(
        [d["_id"] for d in c.find({"s": {"$regex": "^hel", "$options": "i"}}).sort("_id")]
        == [1, 3],
        "$regex",
    )
    expect(
        [d["_id"] for d in c.find({"arr": {"$elemMatch": {"a": 1, "b": 3}}})] == [2], "$elemMatch"
    )
    expect(sorted(d["_id"] for d in c.find({"x": {"$exists": False}})) == [2, 3], "$exists")
    expect(
        sorted(d["_id"] for d in c.find({"$or": [{"_id": 1}, {"s": "help"}], "_id": {"$ne": 2}}))
        == [1, 3],
        "$or/$ne",
    )
    expect(sorted(d["_id"] for d in c.find({"arr": {"$size": 0}})) == [3], "$size")
    expect(sorted(c.distinct("arr.a")) == [1], "distinct")
    return "$regex $elemMatch $exists $or $ne $size distinct ok"


def opt_expr_query(db) -> str:
    c = db.expr
    c.insert_many([{"_id": 1, "a": 1, "b": 2}, {"_id": 2, "a": 3, "b": 2}])
    got = [d["_id"] for d in c.find({"$expr": {"$gt": ["$a", "$b"]}})]
    expect(got == [2], f"$expr {got}")
    return "ok"


def opt_partial_index(db) -> str:
    c = db.pidx
    c.create_index(
        [("k", ASCENDING)], unique=True, partialFilterExpression={"k": {"$exists": True}}
    )
    c.insert_many([{"x": 1}, {"x": 2}])
    return "ok"


def opt_sparse_unique(db) -> str:
    c = db.sidx
    c.create_index([("k", ASCENDING)], unique=True, sparse=True)
    c.insert_many([{"x": 1}, {"x": 2}])
    return "ok"


def opt_explain_index(db) -> str:
    c = db.expl
    name = c.create_index([("a", ASCENDING), ("b", ASCENDING)])
    c.insert_many([{"a": i % 10, "b": i} for i in range(200)])
    plan = c.find({"a": 3, "b": {"$gt": 5}}).explain()
    text = json.dumps(plan, default=str)
    used = name in text or "IXSCAN" in text or "Index Scan" in text or "Index Only Scan" in text
    expect(used, f"no sign of index use in explain: {text[:300]}")
    return "explain shows index use"


def opt_ttl_expiry(db, wait: float) -> str:
    c = db.ttlx
    c.create_index([("expire_at", ASCENDING)], expireAfterSeconds=0)
    c.insert_one({"expire_at": datetime.now(UTC) - timedelta(seconds=10)})
    deadline = time.monotonic() + wait
    while time.monotonic() < deadline:
        if c.count_documents({}) == 0:
            return f"expired document removed within {wait:.0f}s"
        time.sleep(2)
    raise CheckFailed(f"expired document still present after {wait:.0f}s")


def opt_transactions(db) -> str:
    client = db.client
    db.txn.insert_one({"_id": 0})
    with client.start_session() as s, s.start_transaction():
        db.txn.insert_one({"_id": 1}, session=s)
        db.txn.update_one({"_id": 0}, {"$set": {"t": 1}}, session=s)
    expect(db.txn.count_documents({}) == 2, "commit")
    return "multi-document transaction committed"


def opt_change_streams(db) -> str:
    c = db.cs
    c.insert_one({"_id": 0})
    events: list[Any] = []
    with c.watch(max_await_time_ms=500) as stream:

        def later():
            time.sleep(0.3)
            c.insert_one({"_id": 1})

        t = threading.Thread(target=later)
        t.start()
        deadline = time.monotonic() + 5
        while time.monotonic() < deadline and not events:
            ev = stream.try_next()
            if ev is not None:
                events.append(ev)
        t.join()
    expect(bool(events) and events[0]["operationType"] == "insert", f"events {events}")
    return "insert event received"


def opt_large_doc(db) -> str:
    c = db.big
    blob = "x" * (4 * 1024 * 1024)
    c.insert_one({"_id": 1, "blob": blob})
    expect(len(c.find_one({"_id": 1})["blob"]) == len(blob), "roundtrip")
    return "4 MiB document ok"


def opt_collation(db) -> str:
    c = db.coll
    c.insert_many([{"s": "b"}, {"s": "A"}, {"s": "a"}])
    got = [d["s"] for d in c.find().sort("s", 1).collation({"locale": "en", "strength": 2})]
    expect(got[:2] in (["A", "a"], ["a", "A"]) and got[2] == "b", f"{got}")
    return "ok"


def opt_rename_collection(db) -> str:
    db.rn.insert_one({"_id": 1})
    db.rn.rename("rn2")
    expect(db.rn2.count_documents({}) == 1, "rename")
    return "ok"


def opt_write_concern_majority(db) -> str:
    from pymongo import WriteConcern

    c = db.get_collection("wc", write_concern=WriteConcern(w="majority", j=True))
    c.insert_one({"_id": 1})
    return "w=majority,j=true accepted"


# bulk_write runs last (after optional checks and speed): on FerretDB 1.24 it wedges the server.
REQUIRED: list[tuple[str, Callable]] = [
    ("crud", check_crud),
    ("unique_index_duplicate_key", check_unique_index),
    ("find_one_and_update_sort_after", check_find_one_and_update_sort),
    ("update_ops_inc_push_set_setoninsert", check_update_operators),
    ("upsert_update_one", check_upsert),
    ("aggregate_match_group_sort", check_aggregation),
    ("ttl_index_create", check_ttl_index),
    ("compound_index_query", check_compound_index),
    ("bulk_write_upserts_unordered", check_bulk_write_upserts),
]

OPTIONAL: list[tuple[str, Callable]] = [
    ("aggregate_group_max_min_avg_first_push", opt_group_accumulators),
    ("aggregate_count", opt_count_only),
    ("aggregate_facet", opt_facet_only),
    ("aggregate_lookup", opt_lookup),
    ("aggregate_unwind_project_expr", opt_agg_misc),
    ("aggregate_dateToString", opt_agg_dates),
    ("update_ops_addToSet_pull_unset_min_max_rename", opt_more_update_ops),
    ("update_push_slice", opt_push_slice),
    ("update_positional_$", opt_positional),
    ("update_array_filters", opt_array_filters),
    ("query_regex_elemMatch_exists_or_size_distinct", opt_query_ops),
    ("query_$expr", opt_expr_query),
    ("index_partial_unique", opt_partial_index),
    ("index_sparse_unique", opt_sparse_unique),
    ("explain_shows_index", opt_explain_index),
    ("collation", opt_collation),
    ("rename_collection", opt_rename_collection),
    ("write_concern_majority", opt_write_concern_majority),
    ("large_document_4MiB", opt_large_doc),
    ("bulk_error_nInserted_count", opt_bulk_error_counts),
    ("transactions", opt_transactions),
    ("change_streams", opt_change_streams),
]


def run_check(db, name: str, fn: Callable, required: bool) -> dict:
    t0 = time.perf_counter()
    try:
        detail = fn(db)
        status = "PASS"
    except CheckFailed as e:
        status, detail = "FAIL", str(e)
    except PyMongoError as e:
        status, detail = "FAIL", f"{type(e).__name__}: {e}"
    except Exception as e:  # a bug in the server reply shape, etc.
        status, detail = "FAIL", f"{type(e).__name__}: {e} | {traceback.format_exc(limit=2)!r}"
    return {
        "name": name,
        "required": required,
        "status": status,
        "detail": str(detail)[:400],
        "seconds": round(time.perf_counter() - t0, 3),
    }


# --------------------------------------------------------------------------- speed


def _doc(i: int) -> dict:
    return {
        "k": i,
        "status": "pending",
        "channel": "email",
        "lang": "fi",
        "text": "Tilaukseni saapui rikkinäisenä, haluan hyvityksen. " * 3,
        "tags": ["refund", "damaged"],
        "created": datetime(2024, 1, 1) + timedelta(seconds=i),
    }


def _proc_cpu(pids: list[int]) -> float:
    """CPU seconds (user+system, children included) used so far by these processes."""
    total = 0.0
    tick = os.sysconf("SC_CLK_TCK")
    wanted = set(pids)
    for entry in os.listdir("/proc"):  # direct children too (PostgreSQL backends)
        if entry.isdigit():
            try:
                with open(f"/proc/{entry}/stat") as f:
                    if int(f.read().rsplit(")", 1)[1].split()[1]) in pids:
                        wanted.add(int(entry))
            except (OSError, IndexError, ValueError):
                pass
    for pid in wanted:
        try:
            with open(f"/proc/{pid}/stat") as f:
                fields = f.read().rsplit(")", 1)[1].split()
            total += sum(int(x) for x in fields[11:15]) / tick
        except (OSError, IndexError, ValueError):
            pass
    return total


def run_speed(db, seconds: float, server_pids: list[int] | None = None) -> dict:
    res: dict[str, Any] = {}
    pids = server_pids or []
    c = db.speed
    c.drop()
    c.create_index([("k", ASCENDING)])

    server_cpu: dict[str, float] = {}

    def loop(fn: Callable[[int], None]) -> tuple[int, float, float]:
        n = 0
        cpu0 = time.process_time()
        scpu0 = _proc_cpu(pids)
        t0 = time.perf_counter()
        end = t0 + seconds
        while time.perf_counter() < end:
            fn(n)
            n += 1
        wall = time.perf_counter() - t0
        server_cpu["last"] = _proc_cpu(pids) - scpu0
        return n, wall, time.process_time() - cpu0

    def rec(name: str, n: int, wall: float, cpu: float, unit: int = 1) -> None:
        res[name] = {
            "ops_per_s": round(n * unit / wall, 1),
            "ops": n * unit,
            "seconds": round(wall, 2),
            "client_cpu_s": round(cpu, 2),
        }
        if pids:
            scpu = server_cpu["last"]
            res[name]["server_cpu_s"] = round(scpu, 2)
            res[name]["ops_per_server_cpu_s"] = round(n * unit / scpu, 1) if scpu > 0 else None

    n, wall, cpu = loop(lambda i: c.insert_one(_doc(i)))
    rec("insert_one", n, wall, cpu)
    base = n

    batch = 1000
    n, wall, cpu = loop(lambda i: c.insert_many([_doc(base + i * batch + j) for j in range(batch)]))
    rec("insert_many_docs(batch=1000)", n, wall, cpu, batch)
    total = c.estimated_document_count()
    ids = [d["_id"] for d in c.find({}, {"_id": 1}).limit(20000)]
    rnd = random.Random(1)

    n, wall, cpu = loop(
        lambda i: c.update_one({"_id": rnd.choice(ids)}, {"$inc": {"n": 1}, "$set": {"st": "x"}})
    )
    rec("update_one_by_id", n, wall, cpu)

    maxk = min(total, 20000)
    n, wall, cpu = loop(lambda i: c.find_one({"k": rnd.randrange(maxk)}))
    rec("find_one_indexed", n, wall, cpu)

    n, wall, cpu = loop(lambda i: c.find_one({"_id": rnd.choice(ids)}))
    rec("find_one_by_id", n, wall, cpu)

    u = db.speed_upsert
    u.drop()
    prefix = uuid.uuid4().hex[:8]
    n, wall, cpu = loop(
        lambda i: u.update_one(
            {"_id": f"{prefix}-{i}"}, {"$set": {"v": i}, "$setOnInsert": {"c": 1}}, upsert=True
        )
    )
    rec("upsert_new_by_id", n, wall, cpu)
    m = n
    n, wall, cpu = loop(
        lambda i: u.update_one(
            {"_id": f"{prefix}-{i % max(m, 1)}"}, {"$inc": {"v": 1}}, upsert=True
        )
    )
    rec("upsert_existing_by_id", n, wall, cpu)

    # the "claim the next due item" pattern, over a queue of 5000 pending items
    q = db.speed_claim
    q.drop()
    q.create_index([("status", ASCENDING), ("due", ASCENDING)])
    for s in range(0, 5000, 1000):
        q.insert_many([{"status": "pending", "due": s + j} for j in range(1000)])
    n, wall, cpu = loop(
        lambda i: q.find_one_and_update(
            {"status": "pending"},
            {"$set": {"status": "claimed"}},
            sort=[("due", ASCENDING)],
            return_document=ReturnDocument.AFTER,
        )
    )
    rec("claim_find_one_and_update_sorted(queue=5000)", n, wall, cpu)

    res["_collection_docs"] = total
    for name in ("speed", "speed_upsert", "speed_claim"):
        db.drop_collection(name)
    return res


# --------------------------------------------------------------------------- durability


def phase_write(client, n: int) -> dict:
    db = client[DURABILITY_DB]
    client.drop_database(DURABILITY_DB)
    nonce = uuid.uuid4().hex
    c = db.docs
    c.create_index([("k", ASCENDING)], unique=True, name="k_unique")
    c.create_index([("exp", ASCENDING)], expireAfterSeconds=86400, name="exp_ttl")
    half = n // 2
    for i in range(half):
        c.insert_one({"_id": i, "k": i, "v": i * 2, "nonce": nonce, "exp": datetime.now(UTC)})
    c.insert_many([{"_id": i, "k": i, "v": i * 2, "nonce": nonce} for i in range(half, n)])
    c.update_many({"_id": {"$lt": 10}}, {"$set": {"upd": True}})
    c.delete_one({"_id": n - 1})
    db.meta.insert_one({"_id": "meta", "nonce": nonce, "n": n - 1})
    return {"nonce": nonce, "written": n - 1}


def phase_verify(client, nonce: str | None) -> dict:
    db = client[DURABILITY_DB]
    meta = db.meta.find_one({"_id": "meta"})
    expect(meta is not None, "meta document missing")
    if nonce:
        expect(meta["nonce"] == nonce, f"nonce {meta['nonce']} != {nonce}")
    n = meta["n"]
    docs = list(db.docs.find({}).sort("_id", ASCENDING))
    expect(len(docs) == n, f"{len(docs)} documents, expected {n}")
    for i, d in enumerate(docs):
        expect(d["_id"] == i and d["v"] == i * 2 and d["nonce"] == meta["nonce"], f"doc {i}: {d}")
        expect(bool(d.get("upd")) == (i < 10), f"update lost on doc {i}")
    info = db.docs.index_information()
    expect("k_unique" in info and info["k_unique"].get("unique"), f"unique index lost: {info}")
    expect(info.get("exp_ttl", {}).get("expireAfterSeconds") == 86400, f"ttl index lost: {info}")
    try:
        db.docs.insert_one({"k": 0})
        raise CheckFailed("unique index not enforced after restart")
    except DuplicateKeyError:
        pass
    return {"verified": n, "nonce": meta["nonce"]}


# --------------------------------------------------------------------------- main


def server_info(client) -> dict:
    bi = client.admin.command("buildInfo")
    try:
        hello = client.admin.command("hello")
    except PyMongoError:
        hello = client.admin.command("isMaster")
    return {
        "version": bi.get("version"),
        "ferretdb": bi.get("ferretdbVersion") or (bi.get("ferretdb") or {}).get("version"),
        "maxWireVersion": hello.get("maxWireVersion"),
        "setName": hello.get("setName"),
        "logicalSessionTimeoutMinutes": hello.get("logicalSessionTimeoutMinutes"),
    }


def main() -> int:
    ap = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    ap.add_argument(
        "--url", default=DEFAULT_URL, help="MongoDB URL (default: $MONGODB_URL or %(default)s)"
    )
    ap.add_argument(
        "--json", action="store_true", help="print one JSON document instead of a table"
    )
    ap.add_argument("--phase", choices=["all", "write", "verify"], default="all")
    ap.add_argument("--nonce", help="with --phase verify: the nonce printed by --phase write")
    ap.add_argument("--durability-docs", type=int, default=DURABILITY_N)
    ap.add_argument("--no-speed", action="store_true")
    ap.add_argument("--speed-seconds", type=float, default=3.0)
    ap.add_argument("--no-optional", action="store_true")
    ap.add_argument(
        "--ttl-wait",
        type=float,
        default=0.0,
        help="also check that an expired document is removed within this many seconds (optional)",
    )
    ap.add_argument("--db", default=f"amends_conformance_{os.getpid()}")
    ap.add_argument(
        "--server-pid",
        type=int,
        action="append",
        help="server process id(s) on this machine: also report server CPU per operation",
    )
    ap.add_argument("--only", help="comma-separated check names to run (default: all)")
    ap.add_argument(
        "--op-timeout",
        type=float,
        default=30.0,
        help="client-side timeout per operation, seconds (pymongo timeoutMS)",
    )
    args = ap.parse_args()

    client: MongoClient = MongoClient(args.url, timeoutMS=int(args.op_timeout * 1000))
    try:
        client.admin.command("ping")
        info = server_info(client)
    except PyMongoError as e:
        print(f"cannot reach {args.url}: {e}", file=sys.stderr)
        return 2

    out: dict[str, Any] = {"url": args.url, "server": info, "pymongo": pymongo.version}

    if args.phase == "write":
        out["durability_write"] = phase_write(client, args.durability_docs)
        print(
            json.dumps(out) if args.json else f"WRITE ok nonce={out['durability_write']['nonce']}"
        )
        return 0
    if args.phase == "verify":
        try:
            out["durability_verify"] = phase_verify(client, args.nonce)
        except CheckFailed as e:
            out["durability_verify"] = {"error": str(e)}
            print(json.dumps(out) if args.json else f"VERIFY FAIL {e}")
            return 1
        print(json.dumps(out) if args.json else f"VERIFY ok {out['durability_verify']}")
        return 0

    results = []
    client.drop_database(args.db)
    db = client[args.db]
    try:
        only = set(args.only.split(",")) if args.only else None
        last = [(n, f) for n, f in REQUIRED if n == "bulk_write_upserts_unordered"]
        for name, fn in REQUIRED:
            if (only is None or name in only) and (name, fn) not in last:
                results.append(run_check(db, name, fn, True))
        if not args.no_optional:
            for name, fn in OPTIONAL:
                if only is None or name in only:
                    results.append(run_check(db, name, fn, False))
            if args.ttl_wait > 0:
                results.append(
                    run_check(db, "ttl_expiry", lambda d: opt_ttl_expiry(d, args.ttl_wait), False)
                )
        if not args.no_speed and only is None:
            try:
                out["speed"] = run_speed(db, args.speed_seconds, args.server_pid)
            except PyMongoError as e:
                out["speed_error"] = f"{type(e).__name__}: {e}"
        for name, fn in last:
            if only is None or name in only:
                results.append(run_check(db, name, fn, True))
        out["checks"] = results
    finally:
        with contextlib.suppress(PyMongoError):
            client.drop_database(args.db)

    failed_required = [r["name"] for r in results if r["required"] and r["status"] != "PASS"]
    out["required_failed"] = failed_required
    if args.json:
        print(json.dumps(out, indent=2, default=str))
    else:
        print(f"server: {info}  url: {args.url}")
        for r in results:
            tag = "required" if r["required"] else "optional"
            print(f"{r['status']:4}  {tag:8}  {r['name']:48} {r['detail']}")
        if "speed_error" in out:
            print("speed measurement failed:", out["speed_error"])
        if "speed" in out:
            print("speed (ops/s, single client, sync pymongo):")
            for k, v in out["speed"].items():
                if not k.startswith("_"):
                    extra = ""
                    if v.get("ops_per_server_cpu_s"):
                        extra = f"  [{v['ops_per_server_cpu_s']} ops per server CPU-second]"
                    print(
                        f"  {k:46} {v['ops_per_s']:>10}/s"
                        f"  ({v['ops']} ops in {v['seconds']} s){extra}"
                    )
        print("RESULT:", "PASS" if not failed_required else f"FAIL ({', '.join(failed_required)})")
    return 1 if failed_required else 0


if __name__ == "__main__":
    sys.exit(main())
