"""Route reads and writes the growing collections (queue, cases) by key only.

The local MongoDB-protocol server uses an index only when a filter's fields are exactly
those of a unique index (``_id``; ``(_id, v)`` on queue; ``(_id, route_rev, status)`` on
cases): anything else reads the whole collection, so route's rate would fall as cases
accumulate. This drives the router's handlers and passes directly and checks every filter
it sends to those two collections; and that stale index entries are repaired.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import timedelta
from typing import Any

from pymongo import AsyncMongoClient, monitoring

from services.route.handlers import Router
from services.route.lessons import Subscriptions
from services.route.settings import RouteSettings
from services.route.state import CUSTOMERS, DUE, INDEXES, PENDING, WAITING
from shared.events import envelope
from shared.events.common import Priority
from shared.events.directory import PresenceChanged
from shared.events.lifecycle import CaseActivity, CaseResolved
from shared.events.pipeline import CaseEscalated
from shared.service import Incoming, Outgoing
from shared.store import Store
from tests.integration.route.conftest import add_people, classified, person
from tests.support import polled

KEYED = ({"_id"}, {"_id", "v"}, {"_id", "route_rev", "status"})


class Filters(monitoring.CommandListener):
    def __init__(self) -> None:
        self.seen: list[tuple[str, str, dict[str, Any]]] = []

    def started(self, event: monitoring.CommandStartedEvent) -> None:
        cmd = event.command
        coll = cmd.get(event.command_name)
        if coll not in ("queue", "cases"):
            return
        name = event.command_name
        if name == "find":
            filters = [cmd.get("filter") or {}]
        elif name == "findAndModify":
            filters = [cmd.get("query") or {}]
        elif name == "update":
            filters = [u["q"] for u in cmd["updates"]]
        elif name == "delete":
            filters = [d["q"] for d in cmd["deletes"]]
        elif name in ("insert", "createIndexes", "listIndexes"):
            filters = []
        else:
            filters = [{"<command>": name}]
        self.seen.extend((name, coll, dict(f)) for f in filters)

    def succeeded(self, event: Any) -> None:
        pass

    def failed(self, event: Any) -> None:
        pass


def incoming(payload: Any, event_id: str | None = None) -> Incoming:
    return polled(payload, event_id=event_id)


async def router_with(settings: RouteSettings, listener: Filters) -> tuple[Router, list[str]]:
    store = Store(settings, extra_indexes=INDEXES)
    store._client = AsyncMongoClient(  # the same client, plus the listener
        settings.mongodb_url.get_secret_value(), tz_aware=True, event_listeners=[listener]
    )
    await store.connect()
    published: list[str] = []

    async def publish(out: Sequence[Outgoing]) -> None:
        published.extend(o.event_id for o in out)

    router = Router(store, settings, publish, Subscriptions.load(settings.route_departments_path))
    return router, published


async def state_of(queue: Any, case_id: str) -> str | None:
    doc = await queue.find_one({"_id": case_id})
    return None if doc is None else doc.get("state")


def unkeyed(seen: list[tuple[str, str, dict[str, Any]]]) -> list[Any]:
    bad = []
    for name, coll, query in seen:
        by_operator = isinstance(query.get("_id"), dict) and set(query["_id"]) != {"$in"}
        if set(query) not in KEYED or by_operator:
            bad.append((name, coll, query))
    return bad


async def test_every_queue_and_case_filter_is_keyed(rsettings: RouteSettings) -> None:
    listener = Filters()
    router, published = await router_with(rsettings, listener)
    store = router.store
    try:
        await add_people(
            store, [person("solo", max_concurrent_cases=1, seniority=4, supervisor_id="boss")]
        )
        at = envelope.utcnow()
        # Assigned at once; then two wait (no capacity), one of them soon warned.
        await router.handle_classified([incoming(classified("k1", customer_id="c1", at=at))])
        await router.handle_classified([incoming(classified("k2", customer_id="c1", score=20))])
        soon = classified("k3", score=90, priority="P2", due_in=timedelta(seconds=1))
        await router.handle_classified([incoming(soon)])
        again = classified("k2", customer_id="c1", score=60)
        await router.handle_classified([incoming(again)])  # urgency rises
        assert await store[WAITING].count_documents({}) == 2
        queue = store["queue"]
        assert await state_of(queue, "k1") == "assigned"
        await router.sla_sweep()  # k3's warning time has passed
        await router.handle_activity(
            [incoming(CaseActivity(case_id="k1", kind="first_response", at=envelope.utcnow()))]
        )
        resolved = CaseResolved(case_id="k1", resolved_at=envelope.utcnow(), resolved_by="solo")
        await router.handle_resolved([incoming(resolved)])
        assert await router.drain() == 1  # k3: more urgent than k2
        assert await state_of(queue, "k3") == "assigned"
        await router.handle_presence(
            [incoming(PresenceChanged(person_id="solo", presence="offline"))]
        )
        await router.handle_presence(
            [incoming(PresenceChanged(person_id="solo", presence="available"))]
        )
        await router.drain()
        reopen = CaseEscalated(
            case_id="k1",
            kind="dissatisfied",
            to_role="supervisor",
            reason="unhappy",
            escalated_at=envelope.utcnow(),
            priority=Priority.P2,
        )
        await router.handle_escalated([incoming(reopen)])
        await router.outbox_sweep()
        await router.refresh_gauges()
    finally:
        await store.close()
    assert listener.seen, "no commands seen"
    assert unkeyed(listener.seen) == []
    assert published  # events went out
    # k2 (customer c1) was handled after k1 by the same customer: continuity is recorded.
    store = Store(rsettings)
    try:
        customer = await store[CUSTOMERS].find_one({"_id": "c1"})
        assert customer is not None and "k1" in {c["case_id"] for c in customer["cases"].values()}
        # Nothing left behind: no unpublished marker, and every waiting entry is waiting.
        assert await store[PENDING].count_documents({}) == 0
        async for entry in store[WAITING].find({}):
            doc = await store["queue"].find_one({"_id": entry["_id"]})
            assert doc is not None and doc["state"] == "waiting"
        assert await store[DUE].count_documents({}) >= 1
    finally:
        await store.close()


async def test_stale_waiting_entry_is_dropped_and_does_not_hold_up_others(
    rsettings: RouteSettings,
) -> None:
    router, _ = await router_with(rsettings, Filters())
    store = router.store
    try:
        await add_people(store, [person("p1", max_concurrent_cases=5)])
        await router.handle_classified([incoming(classified("done", score=99))])
        queue = store["queue"]
        done = await queue.find_one({"_id": "done"})
        assert done is not None and done["state"] == "assigned"
        # As if a crash left its entry behind after the assignment.
        await store[WAITING].insert_one(
            {
                "_id": "done",
                "urgency": 99,
                "enqueued_at": done["enqueued_at"],
                "category": "delivery",
                "rev": 1,
                "stamp": "old",
                "at": envelope.utcnow(),
            }
        )
        # A new case sees someone "ahead" and waits for the drain, which drops the entry.
        await router.handle_classified([incoming(classified("next", score=10))])
        assert router.wake.is_set()
        assert await router.drain() == 1
        assert await state_of(queue, "next") == "assigned"
        assert await store[WAITING].count_documents({}) == 0
    finally:
        await store.close()


async def test_sla_sweep_publishes_what_a_crash_left_before_its_sync(
    rsettings: RouteSettings,
) -> None:
    from services.route.state import outbox_entry
    from shared.events.catalogue import ESCALATED

    router, published = await router_with(rsettings, Filters())
    store = router.store
    try:
        now = envelope.utcnow()
        stale = now - timedelta(minutes=5)
        event = CaseEscalated(
            case_id="late", kind="sla_warning", to_role="assignee", reason="t", escalated_at=stale
        )
        # The sweep stored a warning (stage moved on) and died before publishing it and
        # before moving the case's route_sla entry on: the entry is still due.
        await store["queue"].insert_one(
            {
                "_id": "late",
                "state": "assigned",
                "sla_stage": "warned",
                "sla_next_at": now + timedelta(hours=1),
                "outbox": {"evt-9": outbox_entry(ESCALATED, event, "late")},
                "outbox_at": stale,
                "rev": 2,
                "v": 3,
            }
        )
        await store[DUE].insert_one({"_id": "late", "sla_at": stale, "stamp": "s"})
        await router.sla_sweep()
        assert published == ["evt-9"]
        doc = await store["queue"].find_one({"_id": "late"})
        assert doc is not None and doc["outbox"] == {} and "outbox_at" not in doc
        entry = await store[DUE].find_one({"_id": "late"})
        assert entry is not None and entry["sla_at"] > now  # moved on to the case's next check
    finally:
        await store.close()
