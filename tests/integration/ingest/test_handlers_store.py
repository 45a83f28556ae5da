"""ingest's batch handler against the real MongoDB-protocol server, called directly: a
poll costs the same few commands whatever it holds; contacts of one customer in one poll
merge as they would one by one; a redelivered poll, in another order, creates nothing
twice and announces the same events; a crash between the customers' and the cases'
writes still puts each contact on exactly one case; a reply finds its thread, an exact
duplicate is dropped, an unreadable record is rejected with its reason."""

from __future__ import annotations

import asyncio
import uuid
from collections import Counter
from collections.abc import Sequence
from datetime import UTC, datetime, timedelta
from typing import Any

import orjson
import pytest
from pymongo import AsyncMongoClient

from services.ingest.handlers import INTAKE_LOG, handle_intake, normalise
from services.ingest.settings import IngestSettings
from shared import intake_log
from shared.batch import Handled, Incoming
from shared.events.envelope import CloudEvent
from shared.settings import Settings
from shared.store import Store
from tests.support import CommandCounter
from tests.unit.ingest.fixtures import fixture


@pytest.fixture
def ingest_settings(settings: Settings) -> IngestSettings:
    return IngestSettings(**settings.model_dump())


@pytest.fixture
async def counted(ingest_settings: IngestSettings, store: Store) -> Any:
    """A store whose client counts commands (``store`` drops the database after)."""
    listener = CommandCounter()
    counted = Store(ingest_settings)
    counted._client = AsyncMongoClient(
        ingest_settings.mongodb_url.get_secret_value(),
        tz_aware=True,
        event_listeners=[listener],
    )
    yield counted, listener
    await counted.close()


_offsets: Counter[int] = Counter()


def record(
    source: str, payload: bytes, event_id: str | None = None, partition: int = 0
) -> Incoming:
    event = CloudEvent(
        type="amends.complaint.intake",
        source="/tests",
        id=event_id or uuid.uuid4().hex,
        data=payload,
        extensions={"sourceformat": source},
    )
    _offsets[partition] += 1
    return Incoming(event, None, "complaints.intake", partition, _offsets[partition], None, 0)


def form(submission: str, text: str, email: str, minutes: int = 0) -> bytes:
    sent = datetime.now(UTC) - timedelta(minutes=minutes)
    fields = {"submission_id": submission, "message": text, "name": "Maija Virtanen"}
    fields.update(email=email, submitted_at=sent.isoformat())
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


async def handle(db: Store, settings: IngestSettings, records: Sequence[Incoming]) -> Handled:
    return await handle_intake(db, records, settings)


def events(handled: Handled) -> dict[str, Any]:
    return {o.event_id: o.payload for o in handled.outgoing}


async def holding(db: Store) -> dict[str, list[str]]:
    """Contact id -> the cases holding it."""
    out: dict[str, list[str]] = {}
    async for case in db["cases"].find({}, {"contact_ids": 1}):
        for contact_id in case["contact_ids"]:
            out.setdefault(contact_id, []).append(case["_id"])
    return out


def mixed_poll(n: int) -> list[Incoming]:
    """``n`` customers, each with a web form and, 20 minutes later, a second one (on
    another partition): a new case and a merge per customer."""
    records = []
    for i in range(n):
        tag = uuid.uuid4().hex[:6]
        address = f"cust{i}-{tag}@example.fi"
        records.append(
            record("webform", form(f"a{i}-{tag}", "Tilaus puuttuu.", address, 30), partition=0)
        )
        records.append(
            record("webform", form(f"b{i}-{tag}", "Vieläkin puuttuu.", address, 10), partition=1)
        )
    return records


async def test_a_poll_is_a_constant_number_of_commands(
    counted: Any, ingest_settings: IngestSettings, store: Store
) -> None:
    db, commands = counted
    small, large = mixed_poll(5), mixed_poll(60)
    await handle(db, ingest_settings, small)
    per_small = dict(commands.counts)
    commands.counts.clear()
    handled = await handle(db, ingest_settings, large)
    # 120 complaints cost what 10 did: one read of identities, customers (and cases
    # when a customer's state names one), one bulk each of claims, customers, cases and
    # intake_log.
    assert dict(commands.counts) == per_small
    assert dict(commands.counts) == {
        "find customer_identities": 1,
        "update customer_identities": 1,
        "find customers": 1,
        "update customers": 1,
        "update cases": 1,
        "update intake_log": 1,
    }
    assert len(handled.outgoing) == 120 and not handled.rejected
    # Two contacts of one customer in one poll: one case, the second a repeat contact.
    counts = Counter((e.case_is_new, e.contact_count) for e in events(handled).values())
    assert counts == {(True, 1): 60, (False, 2): 60}
    assert await store["cases"].count_documents({}) == 65
    assert all(len(c) == 1 for c in (await holding(store)).values())


async def test_a_redelivered_poll_in_another_order_creates_nothing_twice(
    counted: Any, ingest_settings: IngestSettings, store: Store
) -> None:
    db, commands = counted
    original = email("<t-1@example.com>", "My order never arrived.", minutes=30)
    poll = [
        *mixed_poll(4),
        record("email", original, partition=2),
        record(
            "email", email("<t-2@example.com>", "Still nothing.", "<t-1@example.com>"), partition=3
        ),
        record("webform", b'{"form_id": "contact"}', partition=2),  # no message: rejected
    ]
    first = await handle(db, ingest_settings, poll)
    assert [(i.event.id, r.reason) for i, r in first.rejected] == [
        (poll[-1].event.id, "missing_field")
    ]
    cases = await store["cases"].count_documents({})
    assert cases == 5 and len(first.outgoing) == 10
    before = {d["_id"]: d async for d in store["customers"].find({})}

    # Redelivered in reverse order and in two polls of other boundaries.
    commands.counts.clear()
    again = Handled()
    backwards = list(reversed(poll))
    again.extend(await handle(db, ingest_settings, backwards[:4]))
    again.extend(await handle(db, ingest_settings, backwards[4:]))
    assert events(again) == events(first)
    assert sorted(o.event_id for o in again.outgoing) == sorted(o.event_id for o in first.outgoing)
    # Nothing written but the (unchanged) intake log: no customer, no case.
    assert not any(k.startswith(("update customers", "update cases")) for k in commands.counts)
    assert await store["cases"].count_documents({}) == cases
    assert {d["_id"]: d async for d in store["customers"].find({})} == before
    assert all(len(c) == 1 for c in (await holding(store)).values())
    # One log document per poll; each record's outcome read once.
    assert await store[INTAKE_LOG].count_documents({}) == 3
    assert len(await intake_log.read(store)) == len(poll) - 1


async def test_a_crash_between_the_customer_and_the_case_writes(
    ingest_settings: IngestSettings, store: Store
) -> None:
    # Customer state says where each contact goes, but the cases were never written
    # (the process died between the two bulk writes); redelivered in the other order.
    poll = mixed_poll(3)
    first = await handle(store, ingest_settings, poll)
    assert len(first.outgoing) == 6
    await store["cases"].delete_many({})
    await store[INTAKE_LOG].delete_many({})
    again = await handle(store, ingest_settings, list(reversed(poll)))
    assert len(again.outgoing) == 6
    held = await holding(store)
    contacts = {e.contact.contact_id for e in events(first).values()}
    assert set(held) == contacts and all(len(c) == 1 for c in held.values())
    assert await store["cases"].count_documents({}) == 3  # one per customer
    outcomes = Counter(d["outcome"] for d in (await intake_log.read(store)).values())
    assert outcomes == {"new_case": 3, "merged": 3}


async def test_a_contact_pinned_to_a_case_that_does_not_hold_it(
    ingest_settings: IngestSettings, store: Store
) -> None:
    settings = ingest_settings.model_copy(update={"merge_window_hours": 0.0})
    first = record("webform", form("k-1", "Tilaus puuttuu.", "maija@example.fi"))
    (opened,) = (await handle(store, settings, [first])).outgoing
    case_id = opened.payload.case_id
    # The second record was pinned to that case, then its process died before the push;
    # by the redelivery that case is no longer the one to join (no merge window here).
    second = record("webform", form("k-2", "Vieläkin puuttuu.", "maija@example.fi"))
    contact = normalise(second, settings)
    assert contact is not None
    await store["customers"].update_one(
        {"_id": opened.payload.customer_id},
        {
            "$set": {f"pins.{contact.contact_id}": {"case": case_id, "intake": second.event.id}},
            "$inc": {"ingest_v": 1},
        },
    )
    (received,) = (await handle(store, settings, [second])).outgoing
    assert received.payload.case_id != case_id and received.payload.case_is_new
    customer = await store["customers"].find_one({"_id": opened.payload.customer_id})
    assert customer is not None
    assert customer["pins"][contact.contact_id]["case"] == received.payload.case_id
    assert (await holding(store))[contact.contact_id] == [received.payload.case_id]
    # Redelivered again: the same event, nothing moved.
    (again,) = (await handle(store, settings, [second])).outgoing
    assert again.event_id == received.event_id and again.payload == received.payload


async def test_a_reply_joins_its_thread_and_a_duplicate_is_dropped(
    ingest_settings: IngestSettings, store: Store
) -> None:
    settings = ingest_settings.model_copy(update={"merge_window_hours": 0.0})
    original = record(
        "email", email("<thread-1@example.com>", "My order never arrived.", minutes=10)
    )
    (opened,) = (await handle(store, settings, [original])).outgoing
    unrelated = record(
        "email", email("<other-1@example.com>", "And the invoice is wrong.", minutes=5)
    )
    reply = record(
        "email",
        email("<thread-2@example.com>", "Still nothing.", in_reply_to="<thread-1@example.com>"),
    )
    # The same message again under another intake id, in the same poll: a duplicate.
    copy = record("email", reply.event.data)
    other, joined = (await handle(store, settings, [unrelated, reply, copy])).outgoing
    assert other.payload.case_id != opened.payload.case_id  # no merge window
    assert joined.payload.case_id == opened.payload.case_id
    assert joined.payload.contact_count == 2
    logged = (await intake_log.read(store, ids=[copy.event.id]))[copy.event.id]
    assert logged["outcome"] == "duplicate" and logged["case_id"] == opened.payload.case_id
    case = await store["cases"].find_one({"_id": opened.payload.case_id})
    assert case is not None and case["contact_count"] == 2
    # A redelivery of the reply returns the same event.
    (again,) = (await handle(store, settings, [reply])).outgoing
    assert again.event_id == joined.event_id and again.payload == joined.payload


class HeldCustomerWrites(Store):
    """The real store, except that the first customers bulk write waits for ``go``: a
    consumer that read a customer and is slow to write (stale after a rebalance)."""

    def __init__(self, settings: Settings) -> None:
        super().__init__(settings)
        self.reached, self.go = asyncio.Event(), asyncio.Event()

    def __getitem__(self, name: str) -> Any:
        collection = super().__getitem__(name)
        if name != "customers" or self.go.is_set():
            return collection
        held = self

        class Held:
            def __getattr__(self, attr: str) -> Any:
                return getattr(collection, attr)

            async def bulk_write(self, *args: Any, **kwargs: Any) -> Any:
                held.reached.set()
                await held.go.wait()
                return await collection.bulk_write(*args, **kwargs)

        return Held()


async def test_two_writers_of_one_customer_store_each_contact_once(
    ingest_settings: IngestSettings, store: Store
) -> None:
    db = store
    address = f"both-{uuid.uuid4().hex[:6]}@example.fi"
    a = record("webform", form(f"w1-{address}", "Tilaus puuttuu.", address, 20), partition=0)
    b = record("webform", form(f"w2-{address}", "Vieläkin puuttuu.", address, 10), partition=1)
    # The slow consumer reads the (new) customer and decides b; the other handles a
    # meanwhile; the slow one's write then fails its guard: it reads again and merges.
    slow = HeldCustomerWrites(ingest_settings)
    late = asyncio.create_task(handle(slow, ingest_settings, [b]))
    await asyncio.wait_for(slow.reached.wait(), 10)
    (first,) = (await handle(db, ingest_settings, [a])).outgoing
    slow.go.set()
    (second,) = (await late).outgoing
    await slow.close()
    assert first.payload.case_id == second.payload.case_id
    assert (first.payload.contact_count, second.payload.contact_count) == (1, 2)
    assert all(len(c) == 1 for c in (await holding(store)).values())
    (customer,) = await store["customers"].find({}).to_list()
    assert customer["ingest_v"] == 2 and len(customer["pins"]) == 2
    assert await store["cases"].count_documents({}) == 1


def survey(case_id: str, response: str, score: int, respondent: str) -> bytes:
    return orjson.dumps(
        {
            "response_id": response,
            "kind": "csat",
            "score": score,
            "scale_max": 5,
            "comment": "Ei vieläkään mitään." if score < 3 else "Kiitos, hyvin hoidettu!",
            "case_id": case_id,
            "respondent": {"email": respondent},
        }
    )


async def test_a_survey_joins_the_case_it_names_and_praise_is_recorded_once(
    ingest_settings: IngestSettings, store: Store
) -> None:
    opened_by = record("webform", form(f"s-{uuid.uuid4().hex[:6]}", "Missä tilaus?", "a@x.fi"))
    (opened,) = (await handle(store, ingest_settings, [opened_by])).outgoing
    case_id = opened.payload.case_id
    # Answered from another address (another customer): still joins the case it names.
    answer = record("survey", survey(case_id, "r-1", 1, "other@x.fi"))
    praise = record("trustpilot", fixture("trustpilot_praise.json"))
    copy = record("trustpilot", praise.event.data)  # the same review, another intake id
    poll = [answer, praise, copy]
    (joined,) = (await handle(store, ingest_settings, poll)).outgoing
    assert joined.payload.case_id == case_id and joined.payload.contact_count == 2
    assert joined.payload.customer_id == opened.payload.customer_id  # the case's customer
    outcomes = {k: v["outcome"] for k, v in (await intake_log.read(store)).items()}
    assert [outcomes[r.event.id] for r in poll] == ["merged", "praise", "duplicate"]
    assert await store["praise"].count_documents({}) == 1
    customers = {d["_id"]: d async for d in store["customers"].find({})}
    # Redelivered, reversed: the same event, nothing new stored.
    (again,) = (await handle(store, ingest_settings, list(reversed(poll)))).outgoing
    assert again.event_id == joined.event_id and again.payload == joined.payload
    assert {d["_id"]: d async for d in store["customers"].find({})} == customers
    assert await store["praise"].count_documents({}) == 1
    case = await store["cases"].find_one({"_id": case_id})
    assert case is not None and case["contact_count"] == 2
