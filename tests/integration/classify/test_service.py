"""classify in-process against the real Kafka and MongoDB: event out, case fields stored,
redelivery idempotent, a repeat contact re-scores the case."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import orjson

from services.classify.app import build_service
from shared.events import catalogue, envelope
from shared.events.complaint import Author, Contact
from shared.events.pipeline import ComplaintClassified, ComplaintReceived
from shared.settings import Settings
from shared.store import Store
from tests.support import consume_all, produce, running, wait_for

OPENED = datetime(2025, 3, 4, 7, 0, tzinfo=UTC)  # Tuesday 09:00 in Helsinki


def received(n: int, text: str, *, public: bool = False) -> ComplaintReceived:
    return ComplaintReceived(
        case_id="case-1",
        customer_id="cust-1",
        contact=Contact(
            contact_id=f"contact-{n}",
            source="email" if not public else "twitter",
            channel="email" if not public else "social",
            text=text,
            language="fi",
            public=public,
            reach=20_000 if public else None,
            author=Author(customer_tier="gold"),
            received_at=OPENED + timedelta(hours=5 * (n - 1)),
        ),
        case_is_new=n == 1,
        contact_count=n,
        repeat_contacts=n - 1,
        case_opened_at=OPENED,
        customer_tier="gold",
    )


async def publish(settings: Settings, event: ComplaintReceived, event_id: str) -> None:
    cloud = envelope.encode(
        event,
        event_type=catalogue.RECEIVED.event_type,
        source="/tests/ingest",
        event_id=event_id,
    )
    await produce(
        settings, catalogue.RECEIVED.topic, cloud.data, headers=cloud.headers(), key=b"case-1"
    )


def decode(record: object) -> tuple[str, ComplaintClassified]:
    headers = envelope.decode_headers(record.headers)  # type: ignore[attr-defined]
    return headers["ce_id"], ComplaintClassified.model_validate_json(record.value)  # type: ignore[attr-defined]


async def test_classifies_stores_and_rescores(settings: Settings, store: Store) -> None:
    # ingest owns the case; it exists before complaints.received is published.
    await store["cases"].insert_one(
        {
            "_id": "case-1",
            "customer_id": "cust-1",
            "opened_at": OPENED,
            "status": "open",
            "customer_tier": "gold",
        }
    )
    first = received(1, "Tuote on rikki. Haastan teidät oikeuteen, asianajajani on tiedossa.")
    service = build_service(settings)
    async with running(service):
        await publish(settings, first, "ev-1")
        await publish(settings, first, "ev-1")  # redelivered: same output, nothing twice
        records = await consume_all(settings, catalogue.CLASSIFIED.topic, expect=2)
        ids = {decode(r)[0] for r in records}
        assert ids == {envelope.derived_id("ev-1", "classified")}
        _, event = decode(records[0])
        c = event.classification
        assert event.case_id == "case-1" and event.contact_id == "contact-1"
        assert c.flags.legal_threat and c.profile.value == "litigant"
        assert c.urgency.priority.value in ("P1", "P2")
        assert abs(sum(p.points for p in c.urgency.contributions) - c.urgency.score) <= 0.5
        assert {p.signal for p in c.urgency.contributions} >= {"legal_threat", "customer_tier"}
        assert c.category.value == "defective_product"
        assert "involve_legal" in c.hints
        assert event.sla.calendar == "helsinki" and event.sla.first_response_due > OPENED

        case = await store["cases"].find_one({"_id": "case-1"})
        assert case is not None
        assert case["urgency_score"] == c.urgency.score
        assert case["priority"] == c.urgency.priority.value
        assert case["category"] == "defective_product"
        assert case["profile"] == "litigant"
        assert case["flags"]["legal_threat"] is True
        assert case["sla"]["first_response_due"] == event.sla.first_response_due
        assert case["stages"]["classified_at"] is not None
        assert case["classification"]["hints"] == c.hints
        assert len(case["classification_history"]) == 1
        assert case["status"] == "open"  # not ours: untouched

        # followup marks a promise broken; then the same customer writes again, in
        # public, five hours later: urgency rises, flags stay, deadlines only tighten.
        await store["cases"].update_one(
            {"_id": "case-1"},
            {"$push": {"promises": {"promise_id": "p1", "state": "broken", "due_at": OPENED}}},
        )
        second = received(2, "Edelleen ei vastausta!", public=True)
        await publish(settings, second, "ev-2")
        records = await consume_all(settings, catalogue.CLASSIFIED.topic, expect=3)
        _, rescored = decode(records[-1])
        r = rescored.classification
        assert r.urgency.score > c.urgency.score
        assert r.flags.legal_threat
        assert {"repeat_contacts", "public", "reach", "time_waited", "broken_promises"} <= {
            p.signal for p in r.urgency.contributions
        }
        assert "answer_publicly_then_private" in r.hints
        assert rescored.sla.first_response_due <= event.sla.first_response_due

        async def stored_twice() -> object:
            doc = await store["cases"].find_one({"_id": "case-1"})
            return doc if doc and len(doc["classification_history"]) == 2 else None

        case = await wait_for(stored_twice)
        assert case["urgency_score"] == r.urgency.score  # type: ignore[index]
    body = orjson.loads(records[-1].value)
    assert body["classification"]["urgency"]["contributions"]


async def test_product_and_region_flow_from_the_source_to_route(
    settings: Settings, store: Store
) -> None:
    """A CFPB-style web form's Product and State reach ComplaintClassified and the case;
    a later contact that names neither keeps the case's."""
    from services.ingest.adapters import adapter_for
    from tests.unit.ingest.fixtures import CHANNEL_FIXTURES, fixture, meta

    source, content_type = CHANNEL_FIXTURES["webform_cfpb.json"]
    contact = adapter_for(source)(fixture("webform_cfpb.json"), meta(source, content_type))
    assert contact is not None
    await store["cases"].insert_one(
        {"_id": "case-1", "customer_id": "cust-1", "opened_at": OPENED, "status": "open"}
    )
    first = received(1, "placeholder").model_copy(update={"contact": contact})
    second = received(2, "Still no answer about the double charge.")
    assert second.contact.product is None and second.contact.region is None
    service = build_service(settings)
    async with running(service):
        await publish(settings, first, "ev-1")
        await publish(settings, first, "ev-1")  # redelivered: rebuilt with the same fields
        await publish(settings, second, "ev-2")
        records = await consume_all(settings, catalogue.CLASSIFIED.topic, expect=3)
        events = [decode(r)[1] for r in records]
        assert [(e.contact_id, e.product, e.region) for e in events] == [
            (contact.contact_id, "Credit card", "CA"),
            (contact.contact_id, "Credit card", "CA"),
            ("contact-2", "Credit card", "CA"),  # from the case
        ]
        case = await store["cases"].find_one({"_id": "case-1"})
        assert case is not None and (case["product"], case["region"]) == ("Credit card", "CA")
