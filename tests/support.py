"""Helpers for tests that talk to the real local Kafka and MongoDB-protocol server."""

from __future__ import annotations

import asyncio
import os
import time
import uuid
from collections import Counter
from collections.abc import AsyncIterator, Awaitable, Callable, Mapping
from contextlib import asynccontextmanager
from datetime import UTC, datetime
from typing import Any, TypeVar

from aiokafka import AIOKafkaConsumer, AIOKafkaProducer
from pymongo import monitoring

from shared.batch import Incoming
from shared.events import envelope
from shared.events.common import Channel
from shared.events.complaint import Contact
from shared.events.pipeline import ComplaintReceived
from shared.service import Service
from shared.settings import REPO_ROOT, Settings

T = TypeVar("T")

DB_COMMANDS = ("find", "update", "insert", "delete", "aggregate", "findAndModify")


class CommandCounter(monitoring.CommandListener):
    """The database commands a client sends (pass it in ``event_listeners``): ``counts``
    by "name collection" (``"update cases"``), ``by_name()`` by name alone."""

    def __init__(self) -> None:
        self.counts: Counter[str] = Counter()

    def started(self, event: monitoring.CommandStartedEvent) -> None:
        name = event.command_name
        if name in DB_COMMANDS:
            self.counts[f"{name} {event.command.get(name)}"] += 1

    def succeeded(self, event: monitoring.CommandSucceededEvent) -> None:
        pass

    def failed(self, event: monitoring.CommandFailedEvent) -> None:
        pass

    def by_name(self) -> Counter[str]:
        names: Counter[str] = Counter()
        for key, n in self.counts.items():
            names[key.split(" ", 1)[0]] += n
        return names

    def clear(self) -> None:
        self.counts.clear()


def complaint_received(case_id: str, text: str, *, at: datetime | None = None) -> ComplaintReceived:
    """A new case's first contact, by email: the smallest valid complaints.received."""
    now = at or datetime.now(UTC)
    return ComplaintReceived(
        case_id=case_id,
        customer_id="cust-1",
        contact=Contact(
            contact_id=f"contact-{case_id}",
            source="email",
            channel=Channel.EMAIL,
            text=text,
            received_at=now,
        ),
        case_is_new=True,
        contact_count=1,
        repeat_contacts=0,
        case_opened_at=now,
    )


def polled(
    payload: Any,
    *,
    event_id: str | None = None,
    topic: str = "t",
    offset: int = 0,
    key: str | None = None,
    event_type: str = "test",
) -> Incoming:
    """One record of a poll as a batch handler gets it (decoded, validated), for calling
    handlers directly; a random event id unless one is given."""
    event = envelope.CloudEvent(
        type=event_type, source="/tests", id=event_id or uuid.uuid4().hex, data=b""
    )
    return Incoming(
        event=event,
        payload=payload,
        topic=topic,
        partition=0,
        offset=offset,
        key=key.encode() if key is not None else None,
        timestamp_ms=0,
    )


# Topic prefixes handed out in this process: tests/conftest.py deletes their topics when
# the session ends (each test's topics are its own; left behind, a few thousand test runs
# give the shared local broker more partitions than it has file descriptors).
ISSUED_TOPIC_PREFIXES: set[str] = set()


def isolated_settings(**overrides: Any) -> Settings:
    """Settings with a topic prefix and database of their own: tests never collide."""
    tag = uuid.uuid4().hex[:10]
    ISSUED_TOPIC_PREFIXES.add(f"t{tag}.")
    values: dict[str, Any] = {
        "topic_prefix": f"t{tag}.",
        "mongodb_database": f"amends_test_{tag}",
        "consumer_group_prefix": f"t{tag}",
        "batch_timeout_ms": 20,
        "retry_backoff_seconds": 0.05,
        "log_json": False,
    }
    values.update(overrides)
    return Settings(**values)


def service_env(settings: Settings, **extra: str) -> dict[str, str]:
    """The environment of the services run as processes (``python -m services.<name>``)
    on this test's own topics, consumer groups and database."""
    return {
        **os.environ,
        "AMENDS_TOPIC_PREFIX": settings.topic_prefix,
        "AMENDS_MONGODB_DATABASE": settings.mongodb_database,
        "AMENDS_CONSUMER_GROUP_PREFIX": settings.consumer_group_prefix,
        "AMENDS_BATCH_TIMEOUT_MS": "20",
        "AMENDS_ROUTE_SEED_PATH": str(REPO_ROOT / "services/route/seed/people.json"),
        "PYTHONPATH": str(REPO_ROOT),
        **extra,
    }


@asynccontextmanager
async def running(service: Service) -> AsyncIterator[Service]:
    """Run a service in this process against the real broker and database."""
    await service.start()
    await service.broker.start()
    await service.started()
    try:
        yield service
    finally:
        await service.broker.stop()
        await service.stop()


async def wait_for(
    probe: Callable[[], Awaitable[T]], *, timeout: float = 30.0, interval: float = 0.1
) -> T:
    """Poll ``probe`` until it returns something truthy; fail after ``timeout`` seconds."""
    deadline = time.monotonic() + timeout
    last: T | None = None
    while time.monotonic() < deadline:
        last = await probe()
        if last:
            return last
        await asyncio.sleep(interval)
    raise AssertionError(f"condition not met within {timeout} s (last value: {last!r})")


async def produce(
    settings: Settings,
    topic: str,
    value: bytes,
    *,
    headers: Mapping[str, str] | None = None,
    key: bytes | None = None,
) -> None:
    producer = AIOKafkaProducer(bootstrap_servers=settings.kafka_bootstrap_servers)
    await producer.start()
    try:
        await producer.send_and_wait(
            settings.topic(topic),
            value,
            key=key,
            headers=[(k, v.encode()) for k, v in (headers or {}).items()],
        )
    finally:
        await producer.stop()


def intake_headers(source_format: str, event_id: str | None = None) -> dict[str, str]:
    event = envelope.CloudEvent(
        type="amends.intake.v1",
        source=f"/tests/{source_format}",
        id=event_id or uuid.uuid4().hex,
        data=b"",
        extensions={"sourceformat": source_format},
    )
    return event.headers()


async def consume_all(
    settings: Settings, topic: str, *, expect: int, timeout: float = 30.0
) -> list[Any]:
    """Read ``expect`` records of ``topic`` from the beginning (fails on timeout)."""
    consumer = AIOKafkaConsumer(
        settings.topic(topic),
        bootstrap_servers=settings.kafka_bootstrap_servers,
        auto_offset_reset="earliest",
        enable_auto_commit=False,
        group_id=None,
    )
    await consumer.start()
    records: list[Any] = []
    try:
        deadline = time.monotonic() + timeout
        while len(records) < expect and time.monotonic() < deadline:
            batch = await consumer.getmany(timeout_ms=200)
            for recs in batch.values():
                records.extend(recs)
    finally:
        await consumer.stop()
    if len(records) < expect:
        raise AssertionError(f"{topic}: got {len(records)} records, expected {expect}")
    return records
