#!/usr/bin/env python3
"""Protocol-level readiness probe for the local Kafka broker (deploy/local/kafka.sh).

Exits 0 as soon as the broker answers a Metadata request (via aiokafka's
AIOKafkaAdminClient.describe_cluster) that lists at least one broker and a
controller id, i.e. the KRaft broker has caught up and is unfenced.
With --produce it additionally round-trips one record through a probe topic
(idempotent producer + consumer), which proves the data path, not just metadata.

Exit codes: 0 ready, 1 not ready before --timeout, 2 the watched --pid died.

    python deploy/local/wait_kafka.py --bootstrap 127.0.0.1:9092 --timeout 90
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import logging
import os
import sys
import time
import uuid

from aiokafka import AIOKafkaConsumer, AIOKafkaProducer
from aiokafka.admin import AIOKafkaAdminClient

PROBE_TOPIC = "__amends_probe"


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    # A zombie (exited, not yet reaped) still answers kill(0).
    with contextlib.suppress(OSError), open(f"/proc/{pid}/stat") as fh:
        if fh.read().rsplit(")", 1)[1].split()[0] == "Z":
            return False
    return True


async def _describe(bootstrap: str, attempt_timeout: float) -> dict:
    admin = AIOKafkaAdminClient(
        bootstrap_servers=bootstrap,
        client_id="amends-wait-kafka",
        request_timeout_ms=int(attempt_timeout * 1000),
    )
    try:
        await asyncio.wait_for(admin.start(), attempt_timeout)
        info = await asyncio.wait_for(admin.describe_cluster(), attempt_timeout)
    finally:
        with contextlib.suppress(Exception):
            await admin.close()
    if not info.get("brokers") or info.get("controller_id", -1) in (None, -1):
        raise RuntimeError(f"cluster not ready yet: {info}")
    return info


async def _roundtrip(bootstrap: str, attempt_timeout: float) -> None:
    payload = uuid.uuid4().hex.encode()
    producer = AIOKafkaProducer(
        bootstrap_servers=bootstrap,
        enable_idempotence=True,
        acks="all",
        request_timeout_ms=int(attempt_timeout * 1000),
    )
    await asyncio.wait_for(producer.start(), attempt_timeout)
    try:
        md = await asyncio.wait_for(producer.send_and_wait(PROBE_TOPIC, payload), attempt_timeout)
    finally:
        await producer.stop()
    consumer = AIOKafkaConsumer(bootstrap_servers=bootstrap, enable_auto_commit=False)
    await asyncio.wait_for(consumer.start(), attempt_timeout)
    try:
        from aiokafka.structs import TopicPartition

        tp = TopicPartition(md.topic, md.partition)
        consumer.assign([tp])
        consumer.seek(tp, md.offset)
        deadline = time.monotonic() + attempt_timeout
        while time.monotonic() < deadline:
            batch = await consumer.getmany(tp, timeout_ms=500)
            for rec in batch.get(tp, []):
                if rec.value == payload:
                    return
        raise RuntimeError("probe record not read back")
    finally:
        await consumer.stop()


async def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    ap.add_argument(
        "--bootstrap", default=os.environ.get("KAFKA_BOOTSTRAP_SERVERS", "127.0.0.1:9092")
    )
    ap.add_argument("--timeout", type=float, default=90.0, help="overall seconds (default 90)")
    ap.add_argument("--interval", type=float, default=0.5, help="seconds between attempts")
    ap.add_argument("--pid", type=int, default=0, help="give up early if this pid exits")
    ap.add_argument("--produce", action="store_true", help="also round-trip a probe record")
    ap.add_argument("--once", action="store_true", help="single attempt (for status)")
    ap.add_argument("-q", "--quiet", action="store_true")
    args = ap.parse_args()

    # aiokafka logs every refused connection at ERROR while the broker boots.
    logging.basicConfig(level=logging.CRITICAL)

    start = time.monotonic()
    deadline = start + args.timeout
    last_err: BaseException | None = None
    while True:
        if args.pid and not _pid_alive(args.pid):
            print(f"wait_kafka: broker process {args.pid} exited", file=sys.stderr)
            return 2
        remaining = deadline - time.monotonic()
        attempt_timeout = max(1.0, min(10.0, remaining))
        try:
            info = await _describe(args.bootstrap, attempt_timeout)
            if args.produce:
                await _roundtrip(args.bootstrap, max(attempt_timeout, 10.0))
            if not args.quiet:
                brokers = ",".join(
                    f"{b['node_id']}@{b['host']}:{b['port']}" for b in info["brokers"]
                )
                print(
                    f"wait_kafka: ready after {time.monotonic() - start:.1f}s "
                    f"cluster_id={info.get('cluster_id')} controller={info.get('controller_id')} "
                    f"brokers={brokers}{' produce+consume ok' if args.produce else ''}"
                )
            return 0
        except Exception as exc:
            last_err = exc
        if args.once or time.monotonic() + args.interval >= deadline:
            break
        await asyncio.sleep(args.interval)
    if not args.quiet:
        print(
            f"wait_kafka: not ready at {args.bootstrap} after {time.monotonic() - start:.1f}s: "
            f"{type(last_err).__name__}: {last_err}",
            file=sys.stderr,
        )
    return 1


if __name__ == "__main__":
    sys.exit(asyncio.run(main()))
