"""Helpers for followup's integration tests: real Kafka and MongoDB, timers shortened."""

from __future__ import annotations

import time
import uuid
from collections.abc import AsyncIterator, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

import orjson
import pytest
from aiokafka import AIOKafkaConsumer

from services.followup.settings import FollowupSettings
from shared.events import envelope
from shared.events.catalogue import ASSIGNED, RECEIVED, EventSpec
from shared.events.common import Category, Channel, Priority
from shared.events.complaint import Author, Contact, SurveyAnswer
from shared.events.pipeline import Assignee, CaseAssigned, ComplaintReceived
from shared.service import Outgoing, Service
from shared.store import Store
from tests.support import isolated_settings

# Long enough never to fire during a test unless a test shortens it on purpose.
NEVER = 3600.0


def followup_settings(**overrides: Any) -> FollowupSettings:
    values: dict[str, Any] = {
        **isolated_settings().model_dump(),
        "followup_poll_interval_seconds": 0.2,
        "followup_lease_seconds": 10.0,
        "followup_interim_share": 0.5,
        "followup_interim_cadence_seconds": NEVER,
        "followup_survey_delay_seconds": NEVER,
        "followup_reminder_delay_seconds": NEVER,
        "followup_no_response_close_seconds": NEVER,
        "followup_watch_seconds": NEVER,
        "followup_advocate_reach": 10_000,
    }
    values.update(overrides)
    return FollowupSettings(**values)


@pytest.fixture
async def cleanup(servers_up: None) -> AsyncIterator[list[FollowupSettings]]:
    """Tests append the settings they used; their databases are dropped afterwards."""
    used: list[FollowupSettings] = []
    yield used
    for settings in used:
        store = Store(settings)
        await store.client.drop_database(settings.mongodb_database)
        await store.close()


def now() -> datetime:
    return envelope.utcnow()


async def seed_case(
    store: Store,
    case_id: str,
    *,
    customer_id: str,
    opened_at: datetime | None = None,
    channel: str = "email",
    public: bool = False,
    name: str | None = "Maria Virtanen",
    reach: int | None = None,
    priority: str = "P3",
    language: str = "en",
) -> None:
    """A case as ingest, classify and route leave it (their fields, not followup's)."""
    opened_at = opened_at or now()
    await store["cases"].insert_one(
        {
            "_id": case_id,
            "customer_id": customer_id,
            "opened_at": opened_at,
            "status": "assigned",
            "language": language,
            "public": public,
            "channels": [channel],
            "priority": priority,
            "contacts": [
                {
                    "contact_id": f"{case_id}-c1",
                    "channel": channel,
                    "public": public,
                    "reach": reach,
                    "author": {"name": name} if name else {},
                    "received_at": opened_at,
                }
            ],
            "stages": {"received_at": opened_at},
        }
    )


def assigned(
    case_id: str,
    customer_id: str,
    *,
    resolution_in: float,
    person_id: str = "aino",
    team: str = "care",
    channel: str = "email",
    language: str = "en",
    at: datetime | None = None,
) -> CaseAssigned:
    at = at or now()
    return CaseAssigned(
        case_id=case_id,
        customer_id=customer_id,
        assignee=Assignee(person_id=person_id, name="Aino Laine", team=team),
        reasons=["test"],
        priority=Priority.P3,
        category=Category.DELIVERY,
        language=language,
        channel=Channel(channel),
        continuity=False,
        assigned_at=at,
        first_response_due=at + timedelta(seconds=resolution_in / 4),
        resolution_due=at + timedelta(seconds=resolution_in),
    )


def received(
    case_id: str,
    customer_id: str,
    *,
    channel: str = "email",
    public: bool = False,
    survey: SurveyAnswer | None = None,
    reach: int | None = None,
    at: datetime | None = None,
) -> ComplaintReceived:
    at = at or now()
    return ComplaintReceived(
        case_id=case_id,
        customer_id=customer_id,
        contact=Contact(
            contact_id=uuid.uuid4().hex,
            source="survey" if survey else channel,
            channel=Channel.SURVEY if survey else Channel(channel),
            text="survey answer" if survey else "still broken, again!",
            public=public,
            author=Author(name="Maria Virtanen"),
            reach=reach,
            survey=survey,
            received_at=at,
        ),
        case_is_new=False,
        contact_count=2,
        repeat_contacts=1,
        case_opened_at=at,
    )


async def send(service: Service, spec: EventSpec, *payloads: Any) -> list[str]:
    """Publish input events as their producer would (a fresh CloudEvent id each)."""
    ids = [uuid.uuid4().hex for _ in payloads]
    await service.publish(
        [
            Outgoing(spec=spec, payload=p, key=p.case_id, event_id=i)
            for p, i in zip(payloads, ids, strict=True)
        ]
    )
    return ids


async def assign(service: Service, *payloads: CaseAssigned) -> None:
    await send(service, ASSIGNED, *payloads)


async def receive(service: Service, *payloads: ComplaintReceived) -> None:
    await send(service, RECEIVED, *payloads)


@dataclass(frozen=True)
class Record:
    event_id: str
    data: dict[str, Any]


async def read_topic(
    settings: FollowupSettings,
    topic: str,
    *,
    at_least: int,
    settle: float = 1.5,
    timeout: float = 30.0,
) -> list[Record]:
    """Every record of ``topic`` once ``at_least`` arrived and nothing more came for
    ``settle`` seconds (so a test sees duplicates, not just the first N)."""
    consumer = AIOKafkaConsumer(
        settings.topic(topic),
        bootstrap_servers=settings.kafka_bootstrap_servers,
        auto_offset_reset="earliest",
        enable_auto_commit=False,
        group_id=None,
    )
    await consumer.start()
    records: list[Record] = []
    try:
        deadline = time.monotonic() + timeout
        quiet_since = time.monotonic()
        while time.monotonic() < deadline:
            batch = await consumer.getmany(timeout_ms=200)
            for recs in batch.values():
                for rec in recs:
                    headers = {k: v.decode() for k, v in rec.headers}
                    records.append(Record(headers["ce_id"], orjson.loads(rec.value)))
                    quiet_since = time.monotonic()
            if len(records) >= at_least and time.monotonic() - quiet_since >= settle:
                break
    finally:
        await consumer.stop()
    if len(records) < at_least:
        raise AssertionError(f"{topic}: got {len(records)} records, expected {at_least}")
    return records


def of_kind(records: Sequence[Record], kind: str) -> list[Record]:
    return [r for r in records if r.data.get("kind") == kind]
