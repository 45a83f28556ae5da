"""Route's complaints.classified handler against the real MongoDB-protocol server: a poll
costs the same few commands whatever it holds; capacity holds when a poll's cases are
decided together, and when two replicas decide the same cases at once; a redelivered
poll, in another order, changes nothing twice and publishes what was left unpublished.
"""

from __future__ import annotations

import asyncio
from collections import Counter
from collections.abc import Sequence
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from pymongo import AsyncMongoClient

from services.route.directory import seed_directory
from services.route.handlers import Router
from services.route.lessons import Subscriptions
from services.route.settings import RouteSettings
from services.route.state import CUSTOMERS, INDEXES, WAITING, Clock, now_ms
from shared.batch import Incoming
from shared.events import envelope
from shared.events.pipeline import ComplaintClassified
from shared.service import Outgoing
from shared.settings import REPO_ROOT
from shared.store import Store
from tests.integration.route.conftest import add_people, classified, person
from tests.support import CommandCounter, polled

CATEGORIES = ("delivery", "billing_refund", "defective_product", "other")


class Published:
    """The router's publisher: what went out, and a way to fail it (a crash after the
    writes and before the broker acknowledged)."""

    def __init__(self) -> None:
        self.ids: list[str] = []
        self.fail = False

    async def __call__(self, out: Sequence[Outgoing]) -> None:
        if self.fail:
            raise ConnectionError("broker away")
        self.ids.extend(o.event_id for o in out)


async def router_with(
    settings: RouteSettings, listener: CommandCounter | None = None, clock: Clock = now_ms
) -> tuple[Router, Published]:
    store = Store(settings, extra_indexes=INDEXES)
    store._client = AsyncMongoClient(
        settings.mongodb_url.get_secret_value(),
        tz_aware=True,
        event_listeners=[listener] if listener else [],
    )
    await store.connect()
    published = Published()
    subscriptions = Subscriptions.load(settings.route_departments_path)
    return Router(store, settings, published, subscriptions, clock=clock), published


def record(event: ComplaintClassified, offset: int, event_id: str | None = None) -> Incoming:
    return polled(
        event,
        event_id=event_id or f"ev-{event.case_id}-{offset}",
        topic="complaints.classified",
        offset=offset,
        key=event.case_id,
    )


def flagged(event: ComplaintClassified, **flags: bool) -> ComplaintClassified:
    classification = event.classification
    update = {"flags": classification.flags.model_copy(update=flags)}
    return event.model_copy(update={"classification": classification.model_copy(update=update)})


def new_cases(n: int, tag: str) -> list[Incoming]:
    return [
        record(
            classified(
                f"{tag}-{i}",
                customer_id=f"cust-{tag}-{i % 7}",
                category=CATEGORIES[i % len(CATEGORIES)],
                score=20 + i,
                product=f"prod-{i % 3}",
                region="eu",
            ),
            i,
        )
        for i in range(n)
    ]


async def snapshot(store: Store) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for name in ("queue", "people", "cases", CUSTOMERS, WAITING, "spike_buckets"):
        out[name] = {d["_id"]: d async for d in store[name].find({})}
    return out


async def check_capacity(store: Store) -> dict[str, str]:
    """Loads within capacity and equal to the cases held; each assigned case held by its
    assignee only. Returns case -> assignee."""
    people = {d["_id"]: d async for d in store["people"].find({})}
    holders: Counter[str] = Counter()
    for doc in people.values():
        assert doc["load"] == len(doc["open_cases"]) <= doc["max_concurrent_cases"], doc
        holders.update(doc["open_cases"])
    assigned = {d["_id"]: d["person_id"] async for d in store["queue"].find({"state": "assigned"})}
    for case_id, person_id in assigned.items():
        assert case_id in people[person_id]["open_cases"]
    assert set(holders) == set(assigned) and set(holders.values()) <= {1}
    return assigned


async def test_a_poll_costs_the_same_few_commands_whatever_it_holds(
    rsettings: RouteSettings,
) -> None:
    listener = CommandCounter()
    router, published = await router_with(rsettings, listener)
    store = router.store
    try:
        await seed_directory(store, REPO_ROOT / "services/route/seed/people.json")
        listener.counts.clear()
        await router.handle_classified(new_cases(1, "one"))
        one = sum(listener.counts.values())
        listener.counts.clear()
        poll = new_cases(40, "many")
        await router.handle_classified(poll)
        many = dict(listener.counts)
        # One read of queue, people, waiting index and customers; one bulk write each of
        # SLA checks, spike buckets, claims, mirror and handlers; three of queue (entries
        # with leases, assignments, outbox emptied).
        assert many == {
            "find queue": 1,
            "find people": 1,
            "find queue_waiting": 1,
            "find route_customers": 1,
            "update route_sla": 1,
            "update spike_buckets": 1,
            "update queue": 3,
            "update people": 1,
            "update cases": 1,
            "update route_customers": 1,
        }
        assert one == sum(many.values()) == 12
        assigned = await check_capacity(store)
        assert len(assigned) == 41
        # One CaseAssigned per case, its id from the case and the assignment count.
        assert sorted(published.ids) == sorted(
            envelope.derived_id(case_id, "assigned", "1") for case_id in assigned
        )
        cases = {d["_id"]: d async for d in store["cases"].find({})}
        assert {c["status"] for c in cases.values()} == {"assigned"}
        assert all(c["assignment"]["person_id"] == assigned[k] for k, c in cases.items())
        assert await store[WAITING].count_documents({}) == 0

        # Further contacts on assigned cases: one read, one write.
        listener.counts.clear()
        again = [
            record(
                classified(
                    r.payload.case_id, customer_id=r.payload.customer_id, score=95
                ).model_copy(update={"case_is_new": False}),
                100 + i,
            )
            for i, r in enumerate(poll)
        ]
        await router.handle_classified(again)
        assert dict(listener.counts) == {"find queue": 1, "update queue": 1}
        doc = await store["queue"].find_one({"_id": "many-0"})
        assert doc is not None and doc["urgency"] == 95 and len(doc["classified_events"]) == 2
        print(
            f"\nroute, complaints.classified: {one} commands for a poll of 1 new case, "
            f"{sum(many.values())} for 40 ({sum(many.values()) / 40:.2f} per complaint); "
            f"2 for 40 further contacts"
        )
    finally:
        await store.close()


async def test_a_redelivered_poll_in_another_order_changes_nothing_twice(
    rsettings: RouteSettings,
) -> None:
    router, published = await router_with(rsettings)
    store = router.store
    try:
        skills = {c: 2 for c in CATEGORIES}
        await add_people(
            store, [person(f"p{i}", max_concurrent_cases=3, skills=skills) for i in range(3)]
        )
        poll = new_cases(12, "re")
        # Stored, then the broker goes away before the outbox is published: the poll
        # fails (the scaffold retries or Kafka redelivers it).
        published.fail = True
        with pytest.raises(ConnectionError):
            await router.handle_classified(poll)
        published.fail = False
        stored = await snapshot(store)
        assigned = await check_capacity(store)
        assert len(assigned) == 9  # three people, three cases each; three wait
        assert published.ids == []

        # Redelivered in reverse order: every stored CaseAssigned goes out (same ids),
        # nothing is assigned or counted again.
        await router.handle_classified(list(reversed(poll)))
        assert sorted(published.ids) == sorted(
            envelope.derived_id(case_id, "assigned", "1") for case_id in assigned
        )
        after = await snapshot(store)
        assert await check_capacity(store) == assigned
        for name in ("people", "spike_buckets", CUSTOMERS):
            assert after[name] == stored[name], name
        for case_id, doc in after["queue"].items():
            before = stored["queue"][case_id]
            # Only the outbox was emptied.
            same = {k: v for k, v in doc.items() if k not in ("outbox", "outbox_at")}
            assert same == {k: v for k, v in before.items() if k not in ("outbox", "outbox_at")}
            assert not doc.get("outbox")
        waiting = {d["_id"] for d in after["queue"].values() if d["state"] == "waiting"}
        assert waiting == {f"re-{i}" for i in range(3)}  # the least urgent wait
        assert {c["status"] for k, c in after["cases"].items() if k in waiting} == {"queued"}

        # Once more, shuffled: nothing to publish, nothing changes.
        published.ids.clear()
        await router.handle_classified([poll[5], poll[0], poll[11], *poll[6:11], *poll[1:5]])
        assert published.ids == []
        final = await snapshot(store)
        for name in ("queue", "people", "cases", CUSTOMERS, "spike_buckets"):
            assert final[name] == after[name], name
    finally:
        await store.close()


async def test_two_replicas_deciding_the_same_poll_never_over_assign(
    rsettings: RouteSettings,
) -> None:
    one, published_one = await router_with(rsettings)
    two, published_two = await router_with(rsettings)
    try:
        skills = {c: 2 for c in CATEGORIES}
        await add_people(
            one.store, [person(f"q{i}", max_concurrent_cases=2, skills=skills) for i in range(4)]
        )
        # A stale consumer after a rebalance: both replicas get the same records, one of
        # them in another order, and decide them at the same time.
        poll = new_cases(14, "two")
        extra = [record(classified(f"two-x{i}", score=60), 50 + i) for i in range(4)]
        await asyncio.gather(
            one.handle_classified(poll + extra[:2]),
            two.handle_classified(list(reversed(poll)) + extra[2:]),
        )
        assigned = await check_capacity(one.store)
        assert len(assigned) == 8  # four people, two cases each
        queue = {d["_id"]: d async for d in one.store["queue"].find({})}
        assert len(queue) == 18
        for doc in queue.values():
            assert len(doc["classified_events"]) == 1
            assert doc["seq"] == (1 if doc["state"] == "assigned" else 0)
        sent = Counter(published_one.ids + published_two.ids)
        assert set(sent) == {envelope.derived_id(c, "assigned", "1") for c in assigned}
    finally:
        await one.store.close()
        await two.store.close()


async def test_claims_left_by_a_crash_before_the_assignments_are_reused(
    rsettings: RouteSettings,
) -> None:
    router, _ = await router_with(rsettings)
    store = router.store
    try:
        skills = {c: 2 for c in CATEGORIES}
        await add_people(
            store, [person(f"c{i}", max_concurrent_cases=2, skills=skills) for i in range(3)]
        )
        poll = new_cases(8, "cr")
        store_entries = router._store_entries
        calls = 0

        async def die_at_the_assignments(plans: Any) -> set[str]:
            nonlocal calls
            calls += 1
            if calls == 2:  # the entries and leases are stored, the claims made
                raise ConnectionError("killed")
            return await store_entries(plans)

        router._store_entries = die_at_the_assignments  # type: ignore[method-assign]
        with pytest.raises(ConnectionError):
            await router.handle_classified(poll)
        people = {d["_id"]: d async for d in store["people"].find({})}
        claimed = {c for d in people.values() for c in d["open_cases"]}
        assert len(claimed) == 6 and sum(d["load"] for d in people.values()) == 6
        assert await store["queue"].count_documents({"state": "assigned"}) == 0

        # The process restarted (another replica token) after its leases expired: the
        # redelivered poll, in another order, assigns each case to the person it holds.
        later = envelope.utcnow() + timedelta(seconds=rsettings.route_lease_seconds + 1)
        restarted = Router(store, rsettings, Published(), router.subscriptions, clock=lambda: later)
        await restarted.handle_classified(list(reversed(poll)))
        assigned = await check_capacity(store)
        assert set(assigned) == claimed
        people = {d["_id"]: d async for d in store["people"].find({})}
        assert sum(d["load"] for d in people.values()) == 6
        for case_id, person_id in assigned.items():
            assert case_id in people[person_id]["open_cases"]
    finally:
        await store.close()


# The seed's lawyers work weekdays 08-17 in Helsinki and New York: a Tuesday at 14:00
# UTC has both on shift, so the escalation names a person whatever the day CI runs.
LEGAL_ON_SHIFT = datetime(2026, 12, 8, 14, 0, tzinfo=UTC)
LEGAL_OFF_SHIFT = datetime(2026, 12, 13, 3, 0, tzinfo=UTC)  # a Sunday night


async def test_flag_escalations_are_decided_with_the_poll(rsettings: RouteSettings) -> None:
    listener = CommandCounter()
    router, published = await router_with(rsettings, listener, clock=lambda: LEGAL_ON_SHIFT)
    store = router.store
    try:
        await seed_directory(store, REPO_ROOT / "services/route/seed/people.json")
        poll = new_cases(10, "fl")
        flags = {2: {"legal_threat": True}, 5: {"safety_threat": True}}
        for i, flag in flags.items():
            poll[i] = record(flagged(poll[i].payload, **flag), i)
        listener.counts.clear()
        await router.handle_classified(poll)
        assert sum(listener.counts.values()) == 12  # as without flags
        kinds = {"fl-2": "legal_threat", "fl-5": "safety_threat"}
        escalations = {envelope.derived_id(c, "escalation", k) for c, k in kinds.items()}
        assert escalations <= set(published.ids)
        cases = {d["_id"]: d async for d in store["cases"].find({"_id": {"$in": list(kinds)}})}
        for case_id, kind in kinds.items():
            (entry,) = cases[case_id]["escalations"]
            assert entry["kind"] == kind and entry["to_person_id"]
            assert cases[case_id]["status"] == "assigned"
        published.ids.clear()
        await router.handle_classified(list(reversed(poll)))  # redelivered
        assert published.ids == []
        doc = await store["queue"].find_one({"_id": "fl-5"})
        assert doc is not None and len(doc["escalations"]) == 1
    finally:
        await store.close()


async def test_a_flag_escalation_with_no_one_on_shift_goes_to_the_role(
    rsettings: RouteSettings,
) -> None:
    router, published = await router_with(rsettings, clock=lambda: LEGAL_OFF_SHIFT)
    store = router.store
    try:
        await seed_directory(store, REPO_ROOT / "services/route/seed/people.json")
        (case,) = new_cases(1, "off")
        await router.handle_classified([record(flagged(case.payload, legal_threat=True), 0)])
        doc = await store["cases"].find_one({"_id": "off-0"})
        assert doc is not None
        (entry,) = doc["escalations"]
        # The CRM's on-call rota takes a role no one holds at this hour.
        assert (entry["kind"], entry["to_role"], entry["to_person_id"]) == (
            "legal_threat",
            "legal",
            None,
        )
        assert envelope.derived_id("off-0", "escalation", "legal_threat") in published.ids
    finally:
        await store.close()
