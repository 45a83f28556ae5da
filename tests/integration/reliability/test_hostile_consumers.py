"""Hostile records on every topic every service consumes, against the real servers: each
gets a dead letter with a reason (in ``<topic>.dlq`` and ``dead_letters``), and a good
event sent after them on the same partition is still handled: no poison pill stalls a
partition, no bad record stops a service.

Garbage: invalid UTF-8, JSON nested 200 000 deep, the wrong schema, a 900 kB value, an
empty (tombstone) value, missing CloudEvents headers, the wrong event type, a header that
is not UTF-8; for intake also an unknown source, an oversized record and broken formats.
"""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from typing import Any

import pytest

from shared import metrics
from shared.events import catalogue, envelope
from shared.events.catalogue import EventSpec, dead_letter_topic
from shared.events.examples import AT, CASE, CONTACT, CUSTOMER, EXAMPLES
from shared.service import Service
from shared.settings import Settings
from shared.store import Store
from tests.support import isolated_settings, running, wait_for

KEY = b"hostile-key"  # one key: garbage and the good event share a partition (order)

Headers = dict[str, str | bytes]


def ce_headers(spec: EventSpec, event_id: str | None = None, **extra: str) -> Headers:
    event = envelope.CloudEvent(
        type=spec.event_type,
        source="/tests/hostile",
        id=event_id or uuid.uuid4().hex,
        data=b"",
        extensions=extra,
    )
    return dict(event.headers())


def garbage(spec: EventSpec) -> list[tuple[str, bytes | None, Headers, str]]:
    """(name, value, headers, expected reason) for a schema'd topic."""
    good = EXAMPLES[spec.topic].model_dump_json().encode()
    nested = b"[" * 200_000 + b"]" * 200_000
    huge = b'{"unexpected": "' + b"x" * 900_000 + b'"}'
    return [
        ("invalid_utf8", b'{"case_id": "\xff\xfe\xc3\x28"}', ce_headers(spec), "invalid_schema"),
        ("deeply_nested", nested, ce_headers(spec), "invalid_schema"),
        ("wrong_schema", b'{"foo": "bar", "n": [1, 2, 3]}', ce_headers(spec), "invalid_schema"),
        ("huge_value", huge, ce_headers(spec), "invalid_schema"),
        ("tombstone", None, ce_headers(spec), "invalid_schema"),
        ("no_ce_headers", good, {"content-type": "application/json"}, "not_a_cloudevent"),
        (
            "wrong_type",
            good,
            {**ce_headers(spec), "ce_type": "amends.something.else.v1"},
            "unexpected_type",
        ),
        (
            "header_not_utf8",
            good,
            {**ce_headers(spec), "ce_subject": b"\xff\xfe"},
            "invalid_header",
        ),
        (
            "html_script_wrong_schema",
            b'{"case_id": "<script>alert(1)</script>"}',
            ce_headers(spec),
            "invalid_schema",
        ),
    ]


def intake_garbage(max_payload: int) -> list[tuple[str, bytes | None, Headers, str]]:
    spec = catalogue.INTAKE

    def intake(source: str) -> Headers:
        headers = ce_headers(spec, sourceformat=source)
        headers["content-type"] = "application/octet-stream"
        return headers

    nested = b'{"ticket":' * 20_000 + b"1" + b"}" * 20_000
    return [
        ("no_ce_headers", b"{}", {"content-type": "application/octet-stream"}, "not_a_cloudevent"),
        ("header_not_utf8", b"{}", {**intake("zendesk"), "ce_id": b"\xff"}, "invalid_header"),
        ("unknown_source", b"{}", intake("myspace"), "unknown_source"),
        ("invalid_utf8_json", b'{"text": "\xff\xfe"}', intake("zendesk"), ""),
        ("deeply_nested_json", nested, intake("zendesk"), ""),
        ("wrong_schema_json", b'{"foo": 1}', intake("trustpilot"), ""),
        ("oversized", b"x" * (max_payload + 10), intake("email"), "oversized"),
        ("not_a_mime_message", b"\x00\x01\x02 hello", intake("email"), ""),
        ("tombstone", None, intake("webform"), ""),
        (
            "attachments_flood",
            b'{"attachments": [' + b"{}," * 50_000 + b"{}]}",
            intake("zendesk"),
            "",
        ),
    ]


GOOD_EMAIL = b"""\
From: Hostile Tester <hostile.tester@example.com>
To: support@example.com
Subject: <script>alert('x')</script> still broken
Message-ID: <hostile-good-1@example.com>
Date: Tue, 24 Nov 2026 09:15:00 +0200
Content-Type: text/plain; charset="utf-8"

My order never arrived <b>and</b> <img src=x onerror=alert(1)> nobody answers.
"""


async def seed_case(store: Store) -> None:
    """The examples' case, so followup and route handle the good events for real."""
    contact = CONTACT.model_dump(mode="json", exclude_none=True)
    contact["received_at"] = AT
    await store["cases"].update_one(
        {"_id": CASE},
        {
            "$setOnInsert": {
                "customer_id": CUSTOMER,
                "opened_at": AT,
                "updated_at": AT,
                "contacts": [contact],
                "contact_ids": [CONTACT.contact_id],
                "contact_count": 1,
                "channels": ["email"],
                "language": "fi",
                "status": "open",
                "stages": {"received_at": AT},
            }
        },
        upsert=True,
    )


def processed(service: str, topic: str, outcome: str) -> float:
    return metrics.messages_processed.labels(service, topic, outcome)._value.get()


async def send(
    settings: Settings, topic: str, value: bytes | None, headers: Headers, key: bytes = KEY
) -> None:
    from aiokafka import AIOKafkaProducer

    producer = AIOKafkaProducer(
        bootstrap_servers=settings.kafka_bootstrap_servers, max_request_size=2_000_000
    )
    await producer.start()
    try:
        await producer.send_and_wait(
            settings.topic(topic),
            value,
            key=key,
            headers=[(k, v if isinstance(v, bytes) else v.encode()) for k, v in headers.items()],
        )
    finally:
        await producer.stop()


def build(name: str, settings: Settings) -> Service:
    values = {k: getattr(settings, k) for k in type(settings).model_fields}
    if name == "ingest":
        from services.ingest.app import build_service as ingest
        from services.ingest.settings import IngestSettings

        return ingest(IngestSettings(**values, max_payload_bytes=600_000))
    if name == "classify":
        from services.classify.app import build_service as classify

        return classify(settings)
    if name == "route":
        from services.route.app import build_service as route
        from services.route.settings import RouteSettings

        return route(RouteSettings(**values))
    from services.followup.app import build_service as followup
    from services.followup.settings import FollowupSettings

    return followup(FollowupSettings(**values))


def consumed_specs(service: Service) -> list[EventSpec]:
    consumers = getattr(service, "_consumers", None)
    if consumers:
        return sorted({spec for spec, _ in consumers.values()}, key=lambda s: s.topic)
    return [s for s in catalogue.CATALOGUE if s.topic in getattr(service, "_topics", set())]


@pytest.fixture
async def service_settings(servers_up: None) -> AsyncIterator[Settings]:
    settings = isolated_settings()
    yield settings
    store = Store(settings)
    await store.client.drop_database(settings.mongodb_database)
    await store.close()


@pytest.mark.parametrize("name", ["ingest", "classify", "route", "followup"])
async def test_garbage_on_every_consumed_topic_is_dead_lettered_and_the_next_event_handled(
    service_settings: Settings, name: str
) -> None:
    settings = service_settings
    service = build(name, settings)
    specs = consumed_specs(service)
    assert specs, f"{name} consumes nothing?"
    store = service.store
    async with running(service):
        await seed_case(store)
        expected: dict[str, list[tuple[str, str]]] = {}
        good_before: dict[str, float] = {}
        for spec in specs:
            topic = spec.topic
            records = intake_garbage(600_000) if spec.schema is None else garbage(spec)
            expected[topic] = [(n, r) for n, _, _, r in records]
            good_before[topic] = processed(name, topic, "ok")
            for _, value, headers, _ in records:
                await send(settings, topic, value, headers)
            # Then one good event on the same partition.
            if spec.schema is None:
                headers = ce_headers(spec, sourceformat="email")
                headers["content-type"] = "application/octet-stream"
                await send(settings, topic, GOOD_EMAIL, headers)
            else:
                example = EXAMPLES[topic]
                await send(settings, topic, example.model_dump_json().encode(), ce_headers(spec))

        for spec in specs:
            topic = spec.topic
            full_topic = settings.topic(topic)

            async def letters(full_topic: str = full_topic, n: int = len(expected[topic])) -> Any:
                docs = await store["dead_letters"].find({"topic": full_topic}).to_list()
                return docs if len(docs) >= n else None

            docs = await wait_for(letters, timeout=60)
            docs.sort(key=lambda d: d["offset"])
            assert len(docs) == len(expected[topic]), [d["reason"] for d in docs]
            for (case, want), doc in zip(expected[topic], docs, strict=True):
                assert doc["reason"], f"{topic} {case}: dead letter without a reason"
                assert doc["detail"], f"{topic} {case}: dead letter without a detail"
                if want:
                    assert doc["reason"] == want, f"{topic} {case}: {doc['reason']} != {want}"

            async def handled(topic: str = topic) -> bool:
                return processed(name, topic, "ok") > good_before[topic]

            await wait_for(handled, timeout=60)

        # The dead-letter topics carry the reasons too (what `amends dlq` reads).
        from tests.support import consume_all

        for spec in specs:
            dlq_records = await consume_all(
                settings, dead_letter_topic(spec.topic), expect=len(expected[spec.topic])
            )
            for dlq_record in dlq_records:
                dlq_headers = dict(dlq_record.headers)
                assert dlq_headers["x-dlq-reason"] and dlq_headers["x-dlq-original-topic"]
        readiness = await service.readiness()
        assert all(readiness.values()), readiness
