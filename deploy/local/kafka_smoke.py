#!/usr/bin/env python3
"""End-to-end smoke test of the local broker with aiokafka (see deploy/local/KAFKA.md).

    python deploy/local/kafka_smoke.py run    --topic T --group G --count 1000
    python deploy/local/kafka_smoke.py verify --topic T --group G --count 1000  # after a restart

`run`: creates T (admin), produces --count records with an idempotent producer (acks=all),
consumes them in consumer group G with manual commit, checks the committed offsets, checks a
restarted member of G gets nothing more, lists/describes the group, then a transactional
producer + read_committed consumer round trip, and a compressed (gzip/lz4/zstd/snappy where
installed) batch.
`verify`: T still holds --count records and G's committed offsets still sum to --count.
Prints one line per check and exits non-zero on the first failure.
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import os
import sys
import time
import uuid

from aiokafka import AIOKafkaConsumer, AIOKafkaProducer
from aiokafka.admin import AIOKafkaAdminClient, NewTopic
from aiokafka.structs import TopicPartition


def ok(msg: str) -> None:
    print(f"{time.strftime('%H:%M:%S')} ok   {msg}", flush=True)


async def count_records(bootstrap: str, topic: str, isolation: str = "read_uncommitted") -> int:
    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap)
    await admin.start()
    try:
        desc = await admin.describe_topics([topic])
    finally:
        await admin.close()
    tps = [TopicPartition(topic, p["partition"]) for p in desc[0]["partitions"]]
    assert tps, f"topic {topic} not found: {desc}"
    c = AIOKafkaConsumer(
        bootstrap_servers=bootstrap, enable_auto_commit=False, isolation_level=isolation
    )
    await c.start()
    try:
        c.assign(tps)
        await c.seek_to_beginning(*tps)
        end = await c.end_offsets(tps)
        n = 0
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            # position() reaches end even across transaction markers / aborted records.
            if all([await c.position(tp) >= end[tp] for tp in tps]):
                break
            batch = await c.getmany(timeout_ms=1000, max_records=10_000)
            n += sum(len(v) for v in batch.values())
        return n
    finally:
        await c.stop()


async def committed_total(bootstrap: str, group: str, topic: str) -> int:
    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap)
    await admin.start()
    try:
        offs = await admin.list_consumer_group_offsets(group)
        return sum(m.offset for tp, m in offs.items() if tp.topic == topic and m.offset > 0)
    finally:
        await admin.close()


async def run(a: argparse.Namespace) -> None:
    b = a.bootstrap
    admin = AIOKafkaAdminClient(bootstrap_servers=b)
    await admin.start()
    try:
        await admin.create_topics(
            [NewTopic(a.topic, num_partitions=a.partitions, replication_factor=1)]
        )
        desc = await admin.describe_topics([a.topic])
        assert len(desc[0]["partitions"]) == a.partitions, desc
        ok(f"admin create_topics/describe_topics {a.topic} ({a.partitions} partitions)")
    finally:
        await admin.close()

    # Idempotent producer, many small records.
    t0 = time.monotonic()
    prod = AIOKafkaProducer(
        bootstrap_servers=b,
        enable_idempotence=True,
        acks="all",
        linger_ms=5,
        max_batch_size=64 * 1024,
    )
    await prod.start()
    try:
        futs = []
        for i in range(a.count):
            futs.append(
                await prod.send(
                    a.topic,
                    key=str(i % 97).encode(),
                    value=f"complaint-{i:07d}".encode(),
                    headers=[("h", b"1")],
                )
            )
            if len(futs) >= 5000:
                await asyncio.gather(*futs)
                futs.clear()
        await asyncio.gather(*futs)
    finally:
        await prod.stop()
    dt = time.monotonic() - t0
    ok(f"idempotent producer sent {a.count} records in {dt:.1f}s ({a.count / dt:,.0f}/s)")

    # Consumer group with manual commit.
    t0 = time.monotonic()
    cons = AIOKafkaConsumer(
        a.topic,
        bootstrap_servers=b,
        group_id=a.group,
        enable_auto_commit=False,
        auto_offset_reset="earliest",
        max_poll_records=5000,
    )
    await cons.start()
    seen = 0
    try:
        deadline = time.monotonic() + 120
        while seen < a.count and time.monotonic() < deadline:
            batch = await cons.getmany(timeout_ms=1000)
            for recs in batch.values():
                seen += len(recs)
                assert recs[0].headers == (("h", b"1"),), recs[0].headers
            if batch:
                await cons.commit()
    finally:
        await cons.stop()
    assert seen == a.count, f"consumed {seen} of {a.count}"
    ok(
        f"group {a.group} consumed {seen} records with manual commit in "
        f"{time.monotonic() - t0:.1f}s"
    )
    total = await committed_total(b, a.group, a.topic)
    assert total == a.count, f"committed offsets sum {total} != {a.count}"
    ok(f"committed offsets of {a.group} sum to {total}")

    # A new member of the same group resumes at the committed offsets: nothing left.
    cons = AIOKafkaConsumer(
        a.topic,
        bootstrap_servers=b,
        group_id=a.group,
        enable_auto_commit=False,
        auto_offset_reset="earliest",
    )
    await cons.start()
    try:
        extra = 0
        for _ in range(3):
            batch = await cons.getmany(timeout_ms=1000)
            extra += sum(len(v) for v in batch.values())
    finally:
        await cons.stop()
    assert extra == 0, f"group re-read {extra} records after commit"
    ok("restarted group member resumed at committed offsets (0 re-delivered)")

    admin = AIOKafkaAdminClient(bootstrap_servers=b)
    await admin.start()
    try:
        groups = await admin.list_consumer_groups()
        assert any(g[0] == a.group for g in groups), groups
        await admin.describe_consumer_groups([a.group])
        ok("admin list_consumer_groups/describe_consumer_groups")
    finally:
        await admin.close()

    # Transactions: committed batch visible to read_committed, aborted one is not.
    ttopic = f"{a.topic}.tx"
    prod = AIOKafkaProducer(bootstrap_servers=b, transactional_id=f"smoke-{uuid.uuid4().hex[:8]}")
    await prod.start()
    try:
        async with prod.transaction():
            for i in range(10):
                await prod.send(ttopic, f"tx-{i}".encode())
        await prod.begin_transaction()
        for i in range(5):
            await prod.send(ttopic, f"aborted-{i}".encode())
        await prod.abort_transaction()
    finally:
        await prod.stop()
    n = await count_records(b, ttopic, "read_committed")
    assert n == 10, f"read_committed saw {n} records, expected 10"
    ok("transactional producer: commit + abort, read_committed sees exactly 10")

    # Compression codecs that the client has libraries for.
    codecs = ["gzip"]
    for mod, codec in (
        ("lz4", "lz4"),
        ("cramjam", "snappy"),
        ("cramjam", "zstd"),
        ("zstandard", "zstd"),
    ):
        try:
            __import__(mod)
        except ImportError:
            continue
        if codec not in codecs:
            codecs.append(codec)
    for codec in codecs:
        ctopic = f"{a.topic}.{codec}"
        prod = AIOKafkaProducer(bootstrap_servers=b, compression_type=codec)
        await prod.start()
        try:
            for i in range(100):
                await prod.send(ctopic, f"c-{i}".encode() * 10)
            await prod.flush()
        finally:
            await prod.stop()
        n = await count_records(b, ctopic)
        assert n == 100, (codec, n)
    ok(f"compressed batches round-trip: {', '.join(codecs)}")


async def verify(a: argparse.Namespace) -> None:
    n = await count_records(a.bootstrap, a.topic)
    assert n == a.count, f"{a.topic} holds {n} records, expected {a.count}"
    ok(f"{a.topic} still holds {n} records")
    total = await committed_total(a.bootstrap, a.group, a.topic)
    assert total == a.count, f"committed offsets sum {total} != {a.count}"
    ok(f"group {a.group} committed offsets still sum to {total}")


def main() -> int:
    ap = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    ap.add_argument("mode", choices=["run", "verify"])
    ap.add_argument(
        "--bootstrap",
        default=os.environ.get(
            "KAFKA_BOOTSTRAP_SERVERS", f"127.0.0.1:{os.environ.get('KAFKA_PORT', '9092')}"
        ),
    )
    ap.add_argument("--topic", default=f"smoke-{uuid.uuid4().hex[:8]}")
    ap.add_argument("--group", default="smoke-group")
    ap.add_argument("--count", type=int, default=1000)
    ap.add_argument("--partitions", type=int, default=4)
    a = ap.parse_args()
    logging.basicConfig(
        level=logging.WARNING, format="%(asctime)s %(levelname)s %(name)s: %(message)s"
    )
    print(f"topic={a.topic} group={a.group} count={a.count} bootstrap={a.bootstrap}")
    try:
        asyncio.run(run(a) if a.mode == "run" else verify(a))
    except AssertionError as exc:
        print(f"FAIL {exc}", file=sys.stderr)
        return 1
    print("smoke: all checks passed")
    return 0


if __name__ == "__main__":
    sys.exit(main())
