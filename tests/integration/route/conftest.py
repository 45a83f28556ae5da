"""Helpers for route's integration tests: real Kafka and MongoDB, service in-process."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator, Iterable, Sequence
from contextlib import asynccontextmanager
from datetime import datetime, timedelta
from typing import Any

import pytest

from services.route.app import build
from services.route.directory import upsert_person
from services.route.handlers import Router
from services.route.settings import RouteSettings
from shared.events import envelope
from shared.events.catalogue import CLASSIFIED, EventSpec
from shared.events.common import Category, Channel, CustomerProfile, Priority
from shared.events.directory import Person, Shift
from shared.events.pipeline import (
    Classification,
    ComplaintClassified,
    Flags,
    SlaClock,
    Urgency,
)
from shared.service import Outgoing, Service
from shared.store import Store
from tests.support import consume_all, isolated_settings, running

ALWAYS = Shift(timezone="UTC", days=[0, 1, 2, 3, 4, 5, 6], start="00:00", end="24:00")


def route_settings(**overrides: Any) -> RouteSettings:
    base = isolated_settings().model_dump()
    values: dict[str, Any] = {
        **base,
        "route_drain_interval_seconds": 0.5,
        "route_sla_sweep_seconds": 0.2,
        "route_outbox_sweep_seconds": 0.5,
        "route_outbox_grace_seconds": 5.0,
        "route_spike_check_seconds": 3600.0,
        "route_digest_check_seconds": 3600.0,
        "route_metrics_seconds": 3600.0,
        "route_lease_seconds": 10.0,
    }
    values.update(overrides)
    return RouteSettings(**values)


@pytest.fixture
async def rsettings(servers_up: None) -> AsyncIterator[RouteSettings]:
    settings = route_settings()
    yield settings
    store = Store(settings)
    await store.client.drop_database(settings.mongodb_database)
    await store.close()


@asynccontextmanager
async def route_running(settings: RouteSettings) -> AsyncIterator[tuple[Service, Router]]:
    service, router = build(settings)
    async with running(service):
        yield service, router


def person(pid: str, **over: Any) -> Person:
    values: dict[str, Any] = {
        "person_id": pid,
        "name": pid.title(),
        "team": "support",
        "roles": ["agent"],
        "skills": {"delivery": 3},
        "languages": ["en"],
        "seniority": 2,
        "max_concurrent_cases": 3,
        "shift": ALWAYS,
    }
    values.update(over)
    return Person(**values)


async def add_people(store: Store, people: Iterable[Person]) -> None:
    for p in people:
        await upsert_person(store, p, envelope.utcnow())


def classified(
    case_id: str | None = None,
    *,
    customer_id: str | None = None,
    category: str = "delivery",
    language: str = "en",
    channel: str = "email",
    priority: str = "P3",
    score: int = 50,
    profile: str = "legitimately_unhappy",
    flags: dict[str, bool] | None = None,
    due_in: timedelta = timedelta(hours=4),
    at: datetime | None = None,
    product: str | None = None,
    region: str | None = None,
) -> ComplaintClassified:
    at = at or envelope.utcnow()
    return ComplaintClassified(
        case_id=case_id or f"case-{uuid.uuid4().hex[:8]}",
        customer_id=customer_id or f"cust-{uuid.uuid4().hex[:8]}",
        contact_id=uuid.uuid4().hex,
        channel=Channel(channel),
        language=language,
        public=False,
        case_is_new=True,
        classification=Classification(
            urgency=Urgency(score=score, priority=Priority(priority), contributions=[]),
            category=Category(category),
            profile=CustomerProfile(profile),
            flags=Flags(**(flags or {})),
            hints=[],
            model_version="test",
        ),
        sla=SlaClock(
            policy="test",
            calendar="24x7",
            first_response_due=at + due_in,
            resolution_due=at + due_in * 6,
        ),
        classified_at=at,
        product=product,
        region=region,
    )


async def send(
    service: Service, spec: EventSpec, payloads: Sequence[Any], *, event_id: str | None = None
) -> list[str]:
    ids = []
    outgoing = []
    for payload in payloads:
        eid = event_id or uuid.uuid4().hex
        ids.append(eid)
        key = getattr(payload, "case_id", None) or getattr(payload, "person_id", None) or eid
        if spec.topic == "people.directory":
            key = payload.person.person_id
        outgoing.append(Outgoing(spec=spec, payload=payload, key=key, event_id=eid))
    await service.publish(outgoing)
    return ids


async def classify(service: Service, *events: ComplaintClassified) -> None:
    await send(service, CLASSIFIED, events)


async def events_of(
    settings: RouteSettings, topic: str, expect: int, timeout: float = 30.0
) -> list[tuple[str, dict[str, Any]]]:
    """(ce_id, data) of at least ``expect`` distinct events of ``topic``, first copy of each.

    Delivery is at-least-once: the same event (same id) may be published twice, e.g. by
    a handler and the drain flushing one outbox; consumers drop the copy by id, so do we.
    """
    import time

    import orjson

    deadline = time.monotonic() + timeout
    wanted = expect
    while True:
        left = max(1.0, deadline - time.monotonic())
        records = await consume_all(settings, topic, expect=wanted, timeout=left)
        distinct: dict[str, dict[str, Any]] = {}
        for record in records:
            headers = {k: v.decode() for k, v in record.headers}
            distinct.setdefault(headers["ce_id"], orjson.loads(record.value))
        if len(distinct) >= expect or time.monotonic() > deadline:
            return list(distinct.items())
        wanted = len(records) + 1


def count_is(collection: Any, query: dict[str, Any], n: int) -> Any:
    """A wait_for probe: ``query`` matches exactly ``n`` documents."""

    async def probe() -> bool:
        return await collection.count_documents(query) == n

    return probe
