"""ingest's keyed lookups (``case_keys``) over the real database, handler called directly:
a contact pinned before a crash still lands on exactly one case, a redelivery after a
crash before ``intake_log`` rebuilds the same event, a reply finds its thread by key, and
an exact duplicate with another intake id is dropped."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta

import orjson
import pytest

from services.ingest.cases import CASE_KEYS, pin_key
from services.ingest.handlers import INTAKE_LOG, handle_intake, normalise
from services.ingest.settings import IngestSettings
from shared.events.envelope import CloudEvent
from shared.service import Incoming, Outgoing
from shared.settings import Settings
from shared.store import Store


@pytest.fixture
def ingest_settings(settings: Settings) -> IngestSettings:
    # No merge window: only a thread (or a pin) puts two contacts on one case.
    return IngestSettings(**settings.model_dump(), merge_window_hours=0.0)


@pytest.fixture
async def db(store: Store) -> AsyncIterator[Store]:
    yield store  # ``store`` drops this test's database afterwards


def record(source: str, payload: bytes, event_id: str | None = None) -> Incoming:
    event = CloudEvent(
        type="amends.complaint.intake",
        source="/tests",
        id=event_id or uuid.uuid4().hex,
        data=payload,
        extensions={"sourceformat": source},
    )
    return Incoming(event, None, "complaints.intake", 0, 0, None, 0)


def form(submission: str, text: str, email: str) -> bytes:
    fields = {"submission_id": submission, "message": text, "name": "Maija Virtanen"}
    fields.update(email=email, submitted_at=datetime.now(UTC).isoformat())
    return orjson.dumps({"form_id": "contact", "fields": fields})


def email(message_id: str, text: str, in_reply_to: str | None = None, minutes: int = 0) -> bytes:
    sent = datetime.now(UTC) - timedelta(minutes=minutes)
    lines = [
        "From: Ann Customer <ann.customer@example.com>",
        "To: support@example.com",
        "Subject: Order 10452",
        f"Message-ID: {message_id}",
        f"Date: {sent.strftime('%a, %d %b %Y %H:%M:%S +0000')}",
        'Content-Type: text/plain; charset="utf-8"',
    ]
    if in_reply_to:
        lines += [f"In-Reply-To: {in_reply_to}", f"References: {in_reply_to}"]
    return ("\r\n".join(lines) + "\r\n\r\n" + text + "\r\n").encode()


async def handle(db: Store, settings: IngestSettings, incoming: Incoming) -> list[Outgoing]:
    return await handle_intake(db, incoming, settings)


async def outcome(db: Store, incoming: Incoming) -> dict:
    logged = await db[INTAKE_LOG].find_one({"_id": incoming.event.id})
    assert logged is not None
    return logged


async def test_a_contact_pinned_before_a_crash_lands_on_one_case(
    db: Store, ingest_settings: IngestSettings
) -> None:
    first = record("webform", form("k-1", "Tilaus puuttuu.", "maija@example.fi"))
    (opened,) = await handle(db, ingest_settings, first)
    case_id = opened.payload.case_id
    # The second record was pinned to that case, then its process died before the push;
    # by the redelivery that case is no longer the one to join (no merge window here).
    second = record("webform", form("k-2", "Vieläkin puuttuu.", "maija@example.fi"))
    contact = normalise(second, ingest_settings)
    assert contact is not None
    await db[CASE_KEYS].insert_one(
        {
            "_id": pin_key(contact.contact_id),
            "case_id": case_id,
            "intake_event_id": second.event.id,
            "customer_id": opened.payload.customer_id,
        }
    )
    (received,) = await handle(db, ingest_settings, second)
    assert received.payload.case_id != case_id and received.payload.case_is_new
    # The pin follows the contact (compare-and-set), which is on exactly one case.
    pin = await db[CASE_KEYS].find_one({"_id": pin_key(contact.contact_id)})
    assert pin is not None and pin["case_id"] == received.payload.case_id
    holding = [c["_id"] async for c in db["cases"].find({"contact_ids": contact.contact_id})]
    assert holding == [received.payload.case_id]
    # Crashed again before intake_log: the redelivery rebuilds the same event.
    await db[INTAKE_LOG].delete_one({"_id": second.event.id})
    (again,) = await handle(db, ingest_settings, second)
    assert again.event_id == received.event_id and again.payload == received.payload
    case = await db["cases"].find_one({"_id": received.payload.case_id})
    assert case is not None and case["contact_ids"] == [contact.contact_id]
    assert (await outcome(db, second))["outcome"] == "new_case"


async def test_a_reply_joins_its_thread_and_a_duplicate_is_dropped(
    db: Store, ingest_settings: IngestSettings
) -> None:
    original = record(
        "email", email("<thread-1@example.com>", "My order never arrived.", minutes=10)
    )
    (opened,) = await handle(db, ingest_settings, original)
    unrelated = record(
        "email", email("<other-1@example.com>", "And the invoice is wrong.", minutes=5)
    )
    (other,) = await handle(db, ingest_settings, unrelated)
    assert other.payload.case_id != opened.payload.case_id  # no merge window
    reply = record(
        "email",
        email("<thread-2@example.com>", "Still nothing.", in_reply_to="<thread-1@example.com>"),
    )
    (joined,) = await handle(db, ingest_settings, reply)
    assert joined.payload.case_id == opened.payload.case_id
    assert joined.payload.contact_count == 2
    # The same message again under another intake id: an exact duplicate.
    copy = record("email", reply.event.data)
    assert await handle(db, ingest_settings, copy) == []
    logged = await outcome(db, copy)
    assert logged["outcome"] == "duplicate" and logged["case_id"] == opened.payload.case_id
    case = await db["cases"].find_one({"_id": opened.payload.case_id})
    assert case is not None and case["contact_count"] == 2
    # A redelivery of the reply (intake_log written) returns the same event.
    (again,) = await handle(db, ingest_settings, reply)
    assert again.event_id == joined.event_id
