"""Raw Kafka and raw MongoDB rates on the same machine and servers, in the same run."""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import statistics
import time
import uuid
from datetime import UTC, datetime
from typing import Any

import orjson
from aiokafka import AIOKafkaConsumer
from aiokafka.admin import AIOKafkaAdminClient, NewTopic
from pymongo import AsyncMongoClient, UpdateOne

from bench.figures import fig, log
from bench.growth import case_document
from bench.machine import load_average
from bench.workload import producer_for, workload
from shared.settings import Settings

STAMP = b"2026-01-01T00:00:00+00:00"


async def baseline_kafka(settings: Settings, messages: int) -> dict[str, Any]:
    tag = uuid.uuid4().hex[:6]
    topic = f"bench{tag}.baseline"
    admin = AIOKafkaAdminClient(bootstrap_servers=settings.kafka_bootstrap_servers)
    await admin.start()
    await admin.create_topics([NewTopic(topic, settings.topic_partitions, 1)])
    records = workload(min(messages, 2000), f"base{tag}")
    payload_bytes = statistics.fmean(len(r.value) for r in records)
    consumer = AIOKafkaConsumer(
        topic,
        bootstrap_servers=settings.kafka_bootstrap_servers,
        group_id=f"bench{tag}-baseline",
        auto_offset_reset="earliest",
        enable_auto_commit=False,
        max_poll_records=500,
    )
    await consumer.start()
    producer = producer_for(settings)
    await producer.start()
    got = 0
    try:
        # Let the group settle on the empty topic before timing.
        deadline = time.monotonic() + 20
        while not consumer.assignment() and time.monotonic() < deadline:
            await consumer.getmany(timeout_ms=200)

        async def consume() -> float:
            nonlocal got
            while got < messages:
                batch = await consumer.getmany(timeout_ms=500, max_records=500)
                got += sum(len(v) for v in batch.values())
                if batch:
                    await consumer.commit()
            return time.perf_counter()

        consuming = asyncio.create_task(consume())
        started = time.perf_counter()
        futures = []
        for i in range(messages):
            r = records[i % len(records)]
            headers = [*r.headers, ("ce_id", f"{tag}-{i}".encode()), ("ce_time", STAMP)]
            futures.append(await producer.send(topic, r.value, key=r.key, headers=headers))
        await asyncio.gather(*futures)
        produced = time.perf_counter()
        consumed = await asyncio.wait_for(consuming, timeout=300)
    finally:
        await producer.stop()
        await consumer.stop()
        with contextlib.suppress(Exception):
            await admin.delete_topics([topic])
        await admin.close()
    return {
        "messages": fig(messages, "messages"),
        "mean_value_size": fig(payload_bytes, "bytes"),
        "producer": "aiokafka, acks=all, idempotent, linger 5 ms, no compression (the scaffold's)",
        "consumer": "aiokafka consumer group, getmany(500), commit per batch",
        "produce_rate": fig(messages / (produced - started), "messages/s"),
        "one_hop_rate": fig(messages / (consumed - started), "messages/s"),
    }


async def baseline_mongodb(settings: Settings, count: int) -> dict[str, Any]:
    client: AsyncMongoClient[Any] = AsyncMongoClient(
        settings.mongodb_url.get_secret_value(), tz_aware=True
    )
    tag = uuid.uuid4().hex[:6]
    db = client[f"amends_bench_base{tag}"]
    coll = db.cases
    now = datetime.now(UTC).replace(microsecond=0)
    docs = [case_document(i, tag, now) for i in range(count)]

    async def run(label: str, fn: Any) -> float:
        started = time.perf_counter()
        await fn()
        return count / (time.perf_counter() - started)

    def body(d: dict[str, Any]) -> dict[str, Any]:
        return {k: v for k, v in d.items() if k != "_id"}

    async def sequential() -> None:
        for d in docs:
            await coll.update_one({"_id": d["_id"]}, {"$set": body(d)}, upsert=True)

    async def concurrent() -> None:
        queue = list(docs)

        async def worker() -> None:
            while queue:
                d = queue.pop()
                await coll.update_one({"_id": d["_id"]}, {"$set": body(d)}, upsert=True)

        await asyncio.gather(*(worker() for _ in range(8)))

    async def bulk() -> None:
        for start in range(0, count, 500):
            await coll.bulk_write(
                [
                    UpdateOne({"_id": d["_id"]}, {"$set": body(d)}, upsert=True)
                    for d in docs[start : start + 500]
                ],
                ordered=False,
            )

    try:
        new_seq = await run("new", sequential)
        existing_seq = await run("existing", sequential)
        await coll.drop()
        new_conc = await run("new8", concurrent)
        await coll.drop()
        new_bulk = await run("bulk", bulk)
        read_started = time.perf_counter()
        for d in docs[: min(count, 2000)]:
            await coll.find_one({"_id": d["_id"]})
        find_rate = min(count, 2000) / (time.perf_counter() - read_started)
    finally:
        await client.drop_database(db.name)
        await client.close()
    return {
        "documents": fig(count, "case documents"),
        "document_size": fig(len(orjson.dumps(docs[0], default=str)), "bytes (JSON)"),
        "upsert_new_sequential": fig(
            new_seq, "upserts/s", note="update_one $set upsert by _id, 1 in flight"
        ),
        "upsert_existing_sequential": fig(existing_seq, "upserts/s"),
        "upsert_new_8_in_flight": fig(new_conc, "upserts/s"),
        "upsert_new_bulk_500": fig(
            new_bulk, "upserts/s", note="bulk_write UpdateOne upserts, unordered"
        ),
        "find_one_by_id": fig(find_rate, "reads/s"),
    }


async def part_baseline(settings: Settings, args: argparse.Namespace) -> dict[str, Any]:
    log("baseline: Kafka one hop ...")
    kafka = await baseline_kafka(settings, args.kafka_messages)
    log(f"  {kafka['one_hop_rate']['value']} msg/s one hop")
    log("baseline: MongoDB upserts by _id ...")
    mongo = await baseline_mongodb(settings, args.mongo_docs)
    log(f"  {mongo['upsert_new_sequential']['value']} upserts/s (1 in flight)")
    return {"kafka": kafka, "mongodb": mongo, "load_average": load_average()}
