"""classify's batch handler against the real MongoDB-protocol server: a poll costs one
read and one bulk write whatever it holds; contacts of one case are decided in order;
a redelivered poll writes nothing and announces the same events; two writers of one
case (a stale consumer after a rebalance) never store a contact twice."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta
from typing import Any

from pymongo import AsyncMongoClient

from services.classify.handlers import handle_received
from services.classify.settings import ClassifySettings
from services.classify.sla import Policy
from services.classify.text.model import MODEL_DIR, TextModel
from shared.batch import Incoming
from shared.events import catalogue, envelope
from shared.events.complaint import Contact
from shared.events.pipeline import ComplaintClassified, ComplaintReceived
from shared.settings import Settings
from shared.store import Store
from tests.support import CommandCounter, polled

OPENED = datetime(2025, 3, 4, 7, 0, tzinfo=UTC)
MODEL = TextModel.load(MODEL_DIR)
POLICY = Policy.load(ClassifySettings().sla_policy_path)


def counted_store(settings: Settings) -> tuple[Store, CommandCounter]:
    listener = CommandCounter()
    store = Store(settings)
    store._client = AsyncMongoClient(
        settings.mongodb_url.get_secret_value(), tz_aware=True, event_listeners=[listener]
    )
    return store, listener


class _HeldWrites:
    """A collection whose first ``writers`` bulk writes wait until all have arrived."""

    def __init__(self, collection: Any, writers: int) -> None:
        self._collection = collection
        self.name = collection.name
        self._all_read = asyncio.Barrier(writers)
        self._held = writers

    def find(self, *args: Any, **kwargs: Any) -> Any:
        return self._collection.find(*args, **kwargs)

    async def bulk_write(self, *args: Any, **kwargs: Any) -> Any:
        if self._held > 0:
            self._held -= 1
            await asyncio.wait_for(self._all_read.wait(), 30)
        return await self._collection.bulk_write(*args, **kwargs)


class ReadsBeforeWrites:
    """A store whose ``cases`` collection holds its first ``writers`` bulk writes until
    all of them have arrived: every writer's read then comes before any write (a handler
    writes only after its read). Later writes go straight through."""

    def __init__(self, store: Store, writers: int) -> None:
        self._store = store
        self._cases = _HeldWrites(store["cases"], writers)

    def __getitem__(self, name: str) -> Any:
        return self._cases if name == "cases" else self._store[name]


def incoming(case: str, n: int, text: str, offset: int) -> Incoming:
    payload = ComplaintReceived(
        case_id=case,
        customer_id=f"cust-{case}",
        contact=Contact(
            contact_id=f"{case}-contact-{n}",
            source="email",
            channel="email",
            text=text,
            language="en",
            received_at=OPENED + timedelta(hours=n),
        ),
        case_is_new=n == 1,
        contact_count=n,
        repeat_contacts=n - 1,
        case_opened_at=OPENED,
    )
    return polled(
        payload,
        event_id=f"ev-{case}-{n}",
        topic="amends.complaint.received",
        offset=offset,
        key=case,
        event_type=catalogue.RECEIVED.event_type,
    )


async def handle(store: Store, records: list[Incoming]) -> list[Any]:
    handled = await handle_received(store, records, policy=POLICY, model=MODEL)
    assert not handled.rejected
    return handled.outgoing


async def test_a_poll_is_one_read_and_one_bulk_write(settings: Settings, store: Store) -> None:
    counted, commands = counted_store(settings)
    poll = [
        incoming(f"case-{c}", n, "The parcel never came and nobody answers.", 10 * c + n)
        for c in range(20)
        for n in (1, 2)
    ]
    out = await handle(counted, poll)
    assert commands.by_name() == {"find": 1, "update": 1}
    # One event per contact, in poll order, with ids derived from the input events.
    assert [o.event_id for o in out] == [
        envelope.derived_id(r.event.id, "classified") for r in poll
    ]
    case = await store["cases"].find_one({"_id": "case-3"})
    assert case is not None and case["classified_count"] == 2
    history = case["classification_history"]
    assert [e["contact_id"] for e in history] == ["case-3-contact-1", "case-3-contact-2"]
    # The second contact was decided seeing the first: it is a repeat on the same case.
    second: ComplaintClassified = out[1].payload
    signals = {p.signal for p in second.classification.urgency.contributions}
    assert "repeat_contacts" in signals
    assert case["urgency_score"] == second.classification.urgency.score

    # Redelivered, in another order and mixed with a new contact: the stored contacts
    # are announced again unchanged, only the new one is written.
    commands.counts.clear()
    again = [poll[3], incoming("case-3", 3, "Still nothing.", 99), poll[0]]
    out2 = await handle(counted, again)
    assert commands.by_name() == {"find": 1, "update": 1}
    by_id = {o.event_id: o.payload for o in out}
    a, b = out2[0].payload.model_dump(), by_id[out2[0].event_id].model_dump()
    assert {k: (a[k], b[k]) for k in a if a[k] != b[k]} == {}
    assert out2[0].payload == by_id[out2[0].event_id]
    assert out2[2].payload == by_id[out2[2].event_id]
    case = await store["cases"].find_one({"_id": "case-3"})
    assert case is not None and case["classified_count"] == 3
    assert len(case["classification_history"]) == 3

    commands.counts.clear()
    await handle(counted, poll)  # all stored: a read, no write
    assert commands.by_name() == {"find": 1}
    await counted.close()


async def test_two_writers_of_one_case_store_each_contact_once(
    settings: Settings, store: Store
) -> None:
    counted, commands = counted_store(settings)
    await store["cases"].insert_one({"_id": "case-x", "opened_at": OPENED})
    first = [incoming("case-x", 1, "Broken on arrival.", 1)]
    second = [incoming("case-x", 2, "Broken on arrival, again.", 2)]
    # Both read the case before either writes: one write's guard fails and that writer
    # re-reads and re-decides instead of overwriting or appending twice.
    gated = ReadsBeforeWrites(counted, writers=2)
    out = await asyncio.gather(handle(gated, first), handle(gated, second))  # type: ignore[arg-type]
    assert [len(o) for o in out] == [1, 1]
    assert commands.by_name()["update"] == 3 and commands.by_name()["find"] == 3
    case = await store["cases"].find_one({"_id": "case-x"})
    assert case is not None and case["classified_count"] == 2
    assert sorted(e["contact_id"] for e in case["classification_history"]) == [
        "case-x-contact-1",
        "case-x-contact-2",
    ]
    await counted.close()
