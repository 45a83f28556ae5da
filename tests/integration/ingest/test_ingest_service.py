"""ingest against the real Kafka and MongoDB-protocol server: every channel's fixture in,
ComplaintReceived out; merging, repeat contacts, duplicates, dead letters, HTTP intake."""

from __future__ import annotations

import base64
import hashlib
import hmac
import time
import uuid
from collections.abc import AsyncIterator
from datetime import UTC, datetime
from typing import Any

import httpx
import orjson
import pytest
from pydantic import SecretStr

from services.ingest.adapters import adapter_for
from services.ingest.app import build_service
from services.ingest.intake_http import sign_generic
from services.ingest.settings import IngestSettings
from shared import intake_log
from shared.events import catalogue
from shared.events.envelope import derived_id
from shared.events.pipeline import ComplaintReceived
from shared.store import Store
from tests.support import consume_all, intake_headers, isolated_settings, produce, running, wait_for
from tests.unit.ingest.fixtures import CHANNEL_FIXTURES, fixture, meta

SECRETS = {"zendesk": "zd-secret", "yelp": "yelp-secret", "hubspot": "hs-secret"}


@pytest.fixture
async def settings(servers_up: None) -> AsyncIterator[IngestSettings]:
    base = isolated_settings()
    values = {name: getattr(base, name) for name in type(base).model_fields}
    ingest = IngestSettings(
        **values,
        max_payload_bytes=20_000,
        webhook_secrets={k: SecretStr(v) for k, v in SECRETS.items()},
    )
    yield ingest
    store = Store(ingest)
    await store.client.drop_database(ingest.mongodb_database)
    await store.close()


async def send(
    settings: IngestSettings,
    source: str,
    payload: bytes,
    event_id: str | None = None,
    content_type: str | None = None,
) -> str:
    event_id = event_id or uuid.uuid4().hex
    headers = intake_headers(source, event_id)
    # As the HTTP intake writes them: the payload's type in ce_datacontenttype, and an
    # opaque Kafka content-type (the scaffold's FastStream subscriber decodes JSON- and
    # text-typed bodies itself and stalls on a malformed one: see the ingest report).
    headers["content-type"] = "application/octet-stream"
    if content_type:
        headers["ce_datacontenttype"] = content_type
    await produce(settings, catalogue.INTAKE.topic, payload, headers=headers, key=source.encode())
    return event_id


async def logged(store: Store, count: int) -> list[dict[str, Any]]:
    async def probe() -> list[dict[str, Any]]:
        docs = list((await intake_log.read(store)).values())
        return docs if len(docs) >= count else []

    return await wait_for(probe, timeout=60)


def received(records: list[Any]) -> dict[str, ComplaintReceived]:
    events = [ComplaintReceived.model_validate_json(r.value) for r in records]
    return {str(e.contact.intake_event_id): e for e in events}


async def test_every_channel_fixture_through_the_running_service(settings: IngestSettings) -> None:
    service = build_service(settings)
    async with running(service):
        sent: dict[str, str] = {}
        for name, (source, _) in CHANNEL_FIXTURES.items():
            content_type = CHANNEL_FIXTURES[name][1]
            sent[await send(settings, source, fixture(name), content_type=content_type)] = name
        log = await logged(service.store, len(sent))
        outcomes = {doc["_id"]: doc["outcome"] for doc in log}
        expected_praise = {"trustpilot_praise.json", "survey_csat_praise.json"}
        assert {sent[i] for i, o in outcomes.items() if o == "praise"} == expected_praise
        complaints = len(sent) - len(expected_praise)
        records = await consume_all(settings, catalogue.RECEIVED.topic, expect=complaints)
        events = received(records)
        assert len(events) == complaints
        for event_id, name in sent.items():
            if name in expected_praise:
                continue
            source, content_type = CHANNEL_FIXTURES[name]
            expected = adapter_for(source)(fixture(name), meta(source, content_type))
            assert expected is not None
            event = events[event_id]
            got = event.contact
            assert got.contact_id == expected.contact_id, name
            assert got.text == expected.text, name
            assert got.channel == expected.channel and got.source == expected.source, name
            assert got.author == expected.author, name
            assert got.public == expected.public and got.reach == expected.reach, name
            assert got.attachments == expected.attachments, name
            assert got.thread == expected.thread, name
            assert (got.product, got.region) == (expected.product, expected.region), name
            assert got.raw_ref is not None and got.raw_ref.topic.endswith("complaints.intake")
            assert got.language != "und" and got.language_confidence > 0.5, name
            case = await service.store["cases"].find_one({"_id": event.case_id})
            assert case is not None and expected.contact_id in case["contact_ids"], name
            assert case["status"] in ("open", "queued", "assigned")
        languages = {e.contact.language for e in events.values()}
        assert {"en", "fi", "et", "id", "tr", "fa", "de", "fr", "es"} <= languages
        # Key and event id follow the contract.
        for record in records:
            event = ComplaintReceived.model_validate_json(record.value)
            headers = {k: v.decode() for k, v in record.headers}
            assert record.key.decode() == event.case_id
            assert headers["ce_id"] == derived_id(str(event.contact.intake_event_id), "received")
            assert headers["ce_type"] == catalogue.RECEIVED.event_type


def form(submission: str, text: str, email: str | None = None, phone: str | None = None) -> bytes:
    fields = {"submission_id": submission, "message": text, "name": "Maija Virtanen"}
    if email:
        fields["email"] = email
    if phone:
        fields["phone"] = phone
    fields["submitted_at"] = datetime.now(UTC).isoformat()
    return orjson.dumps({"form_id": "contact", "fields": fields})


async def test_merging_repeat_contacts_duplicates_and_dead_letters(
    settings: IngestSettings,
) -> None:
    service = build_service(settings)
    store = service.store
    now = datetime.now(UTC)
    email = fixture("email_multipart.eml").replace(
        b"Tue, 24 Nov 2026 08:15:00 +0200", now.strftime("%a, %d %b %Y %H:%M:%S +0000").encode()
    )
    call = orjson.loads(fixture("phone_call_record.json"))
    call["started_at"] = now.isoformat()
    async with running(service):
        # 1. a web form with email and phone links both identities to one customer
        first = await send(
            settings,
            "webform",
            form(
                "f-1", "Tilaus 10452 puuttuu yhä.", "maija.virtanen@example.fi", "+358 40 123 4567"
            ),
        )
        await logged(store, 1)
        # 2. email (email only) and 3. phone call (phone only): the same customer's case
        second = await send(settings, "email", email)
        third = await send(settings, "phone", orjson.dumps(call))
        await logged(store, 3)
        # 4. exact duplicate of the email (same Message-ID), other intake id: dropped
        duplicate = await send(settings, "email", email)
        # 5. redelivery of the phone intake record (same intake id): same output again
        await send(settings, "phone", orjson.dumps(call), event_id=third)
        # 6. a detractor survey answer naming the case
        case_id = (await intake_log.read(store, ids=[first]))[first]["case_id"]
        survey = {
            "response_id": "s-1",
            "kind": "csat",
            "score": 1,
            "scale_max": 5,
            "comment": "Ei vieläkään mitään.",
            "case_id": case_id,
            "respondent": {"email": "other@example.fi"},
        }
        fifth = await send(settings, "survey", orjson.dumps(survey))
        # 7. malformed inputs, and a good record after them (no stall)
        bad = {
            await send(settings, "email", fixture("email_malformed.bin")): "unparseable_mime",
            await send(settings, "nosuch", b"{}"): "unknown_source",
            await send(settings, "yelp", b'{"id": "y1", "rating": 1}'): "missing_field",
            await send(settings, "twitter", b'{"data": "\xff\xfe"}'): "bad_encoding",
            await send(settings, "webform", b"x" * 25_000): "oversized",
        }
        last = await send(
            settings,
            "webform",
            form("f-2", "Toinen asia: lasku on väärin.", "someone.else@example.fi"),
        )
        log = {d["_id"]: d for d in await logged(store, 6)}
        assert log[first]["outcome"] == "new_case"
        assert log[second]["outcome"] == "merged" and log[second]["case_id"] == case_id
        assert log[third]["outcome"] == "merged" and log[third]["case_id"] == case_id
        assert log[duplicate]["outcome"] == "duplicate"
        assert log[fifth]["outcome"] == "merged" and log[fifth]["case_id"] == case_id
        assert log[last]["outcome"] == "new_case" and log[last]["case_id"] != case_id
        case = await store["cases"].find_one({"_id": case_id})
        assert case["contact_count"] == 4 and case["repeat_contacts"] == 3
        assert len(case["contacts"]) == 4 == len(set(case["contact_ids"]))
        assert set(case["channels"]) == {"web", "email", "phone", "survey"}
        # 4 events for the case (+1 repeated by the redelivery, same id), 1 for the other
        records = await consume_all(settings, catalogue.RECEIVED.topic, expect=6)
        by_id: dict[str, list[ComplaintReceived]] = {}
        for record in records:
            ce_id = dict(record.headers)["ce_id"].decode()
            by_id.setdefault(ce_id, []).append(ComplaintReceived.model_validate_json(record.value))
        assert len(by_id) == 5
        redelivered = by_id[derived_id(third, "received")]
        assert len(redelivered) == 2 and redelivered[0] == redelivered[1]
        counts = sorted((e[0].contact_count, e[0].repeat_contacts) for e in by_id.values())
        assert counts == [(1, 0), (1, 0), (2, 1), (3, 2), (4, 3)]
        letters = await consume_all(settings, "complaints.intake.dlq", expect=len(bad))
        reasons = {
            dict(r.headers)["ce_id"].decode(): dict(r.headers)["x-dlq-reason"].decode()
            for r in letters
        }
        assert reasons == bad
        oversized = next(r for r in letters if dict(r.headers)["x-dlq-reason"] == b"oversized")
        assert oversized.value == b"x" * 25_000  # the original bytes


def zendesk_headers(body: bytes, secret: str, stamp: str | None = None) -> dict[str, str]:
    stamp = stamp or datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
    digest = hmac.new(secret.encode(), stamp.encode() + body, hashlib.sha256).digest()
    return {
        "X-Zendesk-Webhook-Signature": base64.b64encode(digest).decode(),
        "X-Zendesk-Webhook-Signature-Timestamp": stamp,
        "Content-Type": "application/json",
    }


async def test_http_intake(settings: IngestSettings) -> None:
    service = build_service(settings)
    app = service.asgi()  # built before the broker starts, as `run` does
    async with running(service):
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://ingest.test") as http:
            body = fixture("zendesk_ticket_created.json")
            ok = await http.post(
                "/intake/zendesk", content=body, headers=zendesk_headers(body, SECRETS["zendesk"])
            )
            assert ok.status_code == 202, ok.text
            # 202 means it is in Kafka already:
            intake = await consume_all(settings, catalogue.INTAKE.topic, expect=1, timeout=5)
            assert intake[0].value == body
            forged = await http.post(
                "/intake/zendesk", content=body, headers=zendesk_headers(body, "wrong")
            )
            assert forged.status_code == 401
            yelp = fixture("yelp_review.json")
            signed = await http.post(
                "/intake/yelp", content=yelp, headers=sign_generic(SECRETS["yelp"].encode(), yelp)
            )
            assert signed.status_code == 202
            stale = sign_generic(SECRETS["yelp"].encode(), yelp, timestamp=int(time.time()) - 3600)
            assert (await http.post("/intake/yelp", content=yelp, headers=stale)).status_code == 401
            batch = fixture("hubspot_webhook_batch.json")
            stamp = str(int(time.time() * 1000))
            message = b"POST" + b"http://ingest.test/intake/hubspot" + batch + stamp.encode()
            signature = base64.b64encode(
                hmac.new(SECRETS["hubspot"].encode(), message, hashlib.sha256).digest()
            ).decode()
            hub = await http.post(
                "/intake/hubspot",
                content=batch,
                headers={"X-HubSpot-Signature-v3": signature, "X-HubSpot-Request-Timestamp": stamp},
            )
            assert hub.status_code == 202 and hub.json()["accepted"] == 1
            big = b"{" + b" " * 30_000 + b"}"
            assert (await http.post("/intake/yelp", content=big)).status_code == 413
            assert (await http.post("/intake/nosuch", content=b"{}")).status_code == 404
            assert (
                await http.post("/intake/glassdoor", content=b"{}")
            ).status_code == 401  # no secret
            received_records = await consume_all(settings, catalogue.RECEIVED.topic, expect=3)
            sources = sorted(
                ComplaintReceived.model_validate_json(r.value).contact.source
                for r in received_records
            )
            assert sources == ["hubspot", "yelp", "zendesk"]
            letters = await consume_all(settings, "complaints.intake.dlq", expect=4)
            reasons = sorted(dict(r.headers)["x-dlq-reason"].decode() for r in letters)
            assert reasons == [
                "invalid_signature",
                "invalid_signature",
                "invalid_signature",
                "oversized",
            ]
            metrics = (await http.get("/metrics")).text
            assert 'amends_intake_http_requests_total{source="zendesk",status="202"}' in metrics
            assert "amends_complaints_received_total" in metrics


async def test_sample_stream_is_fully_accounted_for(settings: IngestSettings) -> None:
    from cli.samples import iter_sample_records, load_stream

    service = build_service(settings)
    records = list(iter_sample_records(len(load_stream()), "sample"))
    async with running(service):
        for record in records:
            headers = intake_headers(record.source_format, record.event_id)
            headers["content-type"] = record.content_type  # as `amends run` sends them
            headers["ce_datacontenttype"] = record.media_type
            key = record.key.encode() if record.key else None
            await produce(settings, catalogue.INTAKE.topic, record.value, headers=headers, key=key)

        async def accounted() -> dict[str, int]:
            outcomes: dict[str, int] = {}
            for doc in (await intake_log.read(service.store)).values():
                outcomes[doc["outcome"]] = outcomes.get(doc["outcome"], 0) + 1
            outcomes["dead_letter"] = await service.store["dead_letters"].count_documents({})
            return outcomes if sum(outcomes.values()) == len(records) else {}

        outcomes = await wait_for(accounted, timeout=90)
    assert outcomes["duplicate"] == 2
    assert outcomes["praise"] == 4
    assert outcomes["dead_letter"] == 6
    assert outcomes["merged"] >= 12
    assert outcomes.get("ignored", 0) == 0
