"""The delivery guarantees of the scaffold, one test each, against the real servers:

* offsets are committed only after the handler's effects are stored (and its output
  published): a record whose handler has not finished is not committed;
* a handler that stored its effect but whose output was not published (a crash, Kafka
  away) publishes again on redelivery, with the same event id, and stores nothing twice;
* records of one partition (one case) are handled one after another, in offset order.

Retries with backoff then the dead-letter topic, and outages redelivered rather than
dead-lettered, are proven in tests/integration/shared/test_scaffold.py.
"""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Sequence
from typing import Any

from aiokafka.admin import AIOKafkaAdminClient
from aiokafka.errors import KafkaConnectionError

from services.ingest.app import build_service as build_ingest
from services.ingest.settings import IngestSettings
from shared import intake_log
from shared.events import catalogue, envelope
from shared.events.envelope import derived_id
from shared.events.examples import EXAMPLES
from shared.service import Handled, Incoming, Outgoing, Service
from shared.settings import Settings
from shared.store import Store
from tests.support import consume_all, intake_headers, produce, running, wait_for

EMAIL = b"""\
From: Redelivery Tester <redelivery.tester@example.com>
To: support@example.com
Subject: broken kettle
Message-ID: <redelivery-1@example.com>
Date: Tue, 24 Nov 2026 09:15:00 +0200
Content-Type: text/plain; charset="utf-8"

The kettle I bought last week leaks. Please replace it.
"""


def received_headers(event_id: str) -> dict[str, str]:
    return envelope.CloudEvent(
        type=catalogue.RECEIVED.event_type, source="/tests", id=event_id, data=b""
    ).headers()


async def committed(settings: Settings, service: str, topic: str) -> dict[int, int]:
    admin = AIOKafkaAdminClient(bootstrap_servers=settings.kafka_bootstrap_servers)
    await admin.start()
    try:
        offsets = await admin.list_consumer_group_offsets(settings.group_id(service))
    finally:
        await admin.close()
    wanted = settings.topic(topic)
    return {tp.partition: meta.offset for tp, meta in offsets.items() if tp.topic == wanted}


async def test_offsets_are_committed_only_after_the_handler_finished(
    settings: Settings, store: Store
) -> None:
    release = asyncio.Event()
    started = asyncio.Event()

    async def slow(records: Sequence[Incoming]) -> Handled:
        started.set()
        await release.wait()
        for incoming in records:
            await store["effects"].update_one(
                {"_id": incoming.event.id}, {"$inc": {"n": 1}}, upsert=True
            )
        return Handled()

    service = Service("commit-test", settings)
    service.consume_batch(catalogue.RECEIVED, slow)
    body = EXAMPLES[catalogue.RECEIVED.topic].model_dump_json().encode()
    async with running(service):
        await produce(
            settings, catalogue.RECEIVED.topic, body, headers=received_headers("c1"), key=b"k"
        )
        await asyncio.wait_for(started.wait(), timeout=30)
        await asyncio.sleep(1.0)
        before = await committed(settings, "commit-test", catalogue.RECEIVED.topic)
        assert all(offset <= 0 for offset in before.values()), before  # nothing committed
        release.set()

        async def after() -> dict[int, int] | None:
            offsets = await committed(settings, "commit-test", catalogue.RECEIVED.topic)
            return offsets if any(o == 1 for o in offsets.values()) else None

        await wait_for(after, timeout=30)
    assert (await store["effects"].find_one({"_id": "c1"}) or {}).get("n") == 1


class PublishFailsOnce(Service):
    """The effect is stored, then publishing fails once (Kafka away, or a crash)."""

    failures = 0

    async def publish(self, outgoing: Sequence[Outgoing]) -> None:
        if outgoing and self.failures == 0:
            self.failures += 1
            raise KafkaConnectionError("broker went away after the handler stored its effect")
        await super().publish(outgoing)


async def test_stored_but_unpublished_output_is_published_on_redelivery(
    settings: Settings, store: Store
) -> None:
    values = {k: getattr(settings, k) for k in type(settings).model_fields}
    ingest_settings = IngestSettings(**values)
    real = build_ingest(ingest_settings)
    handler = real._consumers[settings.topic(catalogue.INTAKE.topic)][1]  # type: ignore[attr-defined]
    service = PublishFailsOnce("ingest", ingest_settings)
    service.consume_batch(catalogue.INTAKE, handler)
    service.declare_publisher(catalogue.RECEIVED)
    intake_id = f"redelivery-{uuid.uuid4().hex[:8]}"
    headers = intake_headers("email", intake_id)
    headers["content-type"] = "application/octet-stream"
    async with running(service):
        await produce(settings, catalogue.INTAKE.topic, EMAIL, headers=headers, key=b"k")
        records = await consume_all(settings, catalogue.RECEIVED.topic, expect=1, timeout=60)
    assert service.failures == 1  # the first publish did fail
    ids = {dict(r.headers)["ce_id"].decode() for r in records}
    assert ids == {derived_id(intake_id, "received")}  # the same id as the lost one
    # One poll log holding the record once (the retried poll wrote the same document).
    assert await store["intake_log"].count_documents({"ids": intake_id}) == 1
    assert (await intake_log.read(store, ids=[intake_id]))[intake_id]["outcome"] == "new_case"
    cases = await store["cases"].find({}).to_list()
    assert len(cases) == 1 and cases[0]["contact_count"] == 1


async def test_records_of_one_case_are_handled_in_order_one_poll_at_a_time(
    settings: Settings, store: Store
) -> None:
    seen: list[str] = []
    running_now = 0
    overlap = False

    async def poll(records: Sequence[Incoming]) -> Handled:
        nonlocal running_now, overlap
        running_now += 1
        overlap = overlap or running_now > 1
        await asyncio.sleep(0.005)
        seen.extend(incoming.event.id for incoming in records)
        running_now -= 1
        return Handled()

    service = Service("order-test", settings)
    service.consume_batch(catalogue.RECEIVED, poll)
    body = EXAMPLES[catalogue.RECEIVED.topic].model_dump_json().encode()
    ids = [f"o{n:03d}" for n in range(60)]
    async with running(service):
        from aiokafka import AIOKafkaProducer

        producer = AIOKafkaProducer(bootstrap_servers=settings.kafka_bootstrap_servers)
        await producer.start()
        try:
            for event_id in ids:
                await producer.send(
                    settings.topic(catalogue.RECEIVED.topic),
                    body,
                    key=b"one-case-id",
                    headers=[(k, v.encode()) for k, v in received_headers(event_id).items()],
                )
            await producer.flush()
        finally:
            await producer.stop()

        async def all_seen() -> Any:
            return len(seen) >= len(ids)

        await wait_for(all_seen, timeout=60)
    assert seen == ids
    assert not overlap
