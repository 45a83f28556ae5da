"""A CFPB-style CSV of any size and a full read of a topic, for the replay tests."""

from __future__ import annotations

import csv
from datetime import date, timedelta
from pathlib import Path
from typing import Any

from aiokafka import AIOKafkaConsumer, TopicPartition

from shared.settings import Settings

HEADER = [
    "Date received",
    "Product",
    "Sub-product",
    "Issue",
    "Sub-issue",
    "Consumer complaint narrative",
    "Company public response",
    "Company",
    "State",
    "ZIP code",
    "Tags",
    "Consumer consent provided?",
    "Submitted via",
    "Date sent to company",
    "Company response to consumer",
    "Timely response?",
    "Consumer disputed?",
    "Complaint ID",
]
VIA = ["Web", "Phone", "Referral", "Postal mail", "Email"]


def write_cfpb_csv(path: Path, rows: int) -> Path:
    start = date(2019, 1, 1)
    with path.open("w", newline="", encoding="utf-8") as handle:
        writer = csv.writer(handle)
        writer.writerow(HEADER)
        for n in range(1, rows + 1):
            day = start + timedelta(days=n % 1500)
            narrative = (
                f"Complaint number {n}: the bank charged me twice.\nPlease refund." if n % 3 else ""
            )
            writer.writerow(
                [
                    day.isoformat(),
                    "Checking or savings account",
                    "Checking account",
                    "Managing an account",
                    "Deposits and withdrawals",
                    narrative,
                    "",
                    "EXAMPLE BANK",
                    "NY",
                    "10001",
                    "",
                    "Consent provided",
                    VIA[n % len(VIA)],
                    day.isoformat(),
                    "Closed with explanation",
                    "Yes",
                    "",
                    str(5_000_000 + n),
                ]
            )
    return path


async def read_topic(settings: Settings, topic: str) -> list[Any]:
    """Every record of ``topic`` now (up to its end offsets)."""
    consumer = AIOKafkaConsumer(
        bootstrap_servers=settings.kafka_bootstrap_servers,
        group_id=None,
        enable_auto_commit=False,
    )
    await consumer.start()
    try:
        name = settings.topic(topic)
        cluster = await consumer._client.fetch_all_metadata()
        partitions = [TopicPartition(name, p) for p in cluster.partitions_for_topic(name) or ()]
        consumer.assign(partitions)
        await consumer.seek_to_beginning(*partitions)
        end = await consumer.end_offsets(partitions)
        records: list[Any] = []
        pending = {tp for tp in partitions if end[tp] > 0}
        while pending:
            batch = await consumer.getmany(*pending, timeout_ms=500, max_records=5000)
            for tp, recs in batch.items():
                records.extend(r for r in recs if r.offset < end[tp])
                if await consumer.position(tp) >= end[tp]:
                    pending.discard(tp)
        return records
    finally:
        await consumer.stop()


def ce_ids(records: list[Any]) -> list[str]:
    return [dict(r.headers)["ce_id"].decode() for r in records]
