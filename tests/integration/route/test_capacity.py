"""Capacity: two replicas racing, the priority queue, later assignment, hand-back."""

from __future__ import annotations

import asyncio
from collections import Counter
from typing import Any

from services.route.settings import RouteSettings
from shared.events.catalogue import DIRECTORY, PRESENCE, RESOLVED
from shared.events.directory import PersonUpdated, PresenceChanged
from shared.events.envelope import utcnow
from shared.events.lifecycle import CaseResolved
from tests.integration.route.conftest import (
    add_people,
    classified,
    classify,
    count_is,
    events_of,
    person,
    route_running,
    send,
)
from tests.support import wait_for


async def test_two_replicas_never_over_assign(rsettings: RouteSettings) -> None:
    async with (
        route_running(rsettings) as (one, router_one),
        route_running(rsettings) as (_two, router_two),
    ):
        store = one.store
        await add_people(store, [person(p, max_concurrent_cases=2) for p in ("p1", "p2", "p3")])
        await classify(one, *(classified(f"race-{i}", score=10 + i) for i in range(16)))
        cases = store["cases"]
        await wait_for(count_is(cases, {"status": "assigned"}, 6), timeout=60)
        await wait_for(count_is(cases, {"status": "queued"}, 10), timeout=60)
        before = [d["_id"] async for d in store["queue"].find({"state": "waiting"})]
        # Both replicas drain the same queue onto one new person at the same time.
        await add_people(store, [person("p4", max_concurrent_cases=3)])
        await asyncio.gather(*(r.drain() for r in (router_one, router_two) for _ in range(3)))
        await asyncio.sleep(1.0)  # let background drains of both replicas run too

        people = {d["_id"]: d async for d in store["people"].find({})}
        for doc in people.values():
            assert doc["load"] <= doc["max_concurrent_cases"], doc
            assert doc["load"] == len(doc["open_cases"]), doc
        assert sum(d["load"] for d in people.values()) == 9
        assert people["p4"]["load"] == 3
        assigned = {
            d["_id"]: d["person_id"] async for d in store["queue"].find({"state": "assigned"})
        }
        assert len(assigned) == 9
        for case_id, person_id in assigned.items():
            assert case_id in people[person_id]["open_cases"]
        # The most urgent of the waiting cases went first.
        most_urgent = sorted(before, key=lambda c: int(c.split("-")[1]))[-3:]
        assert sorted(set(assigned) & set(before)) == sorted(most_urgent)
        events = await events_of(rsettings, "complaints.assigned", expect=9)
        per_case = Counter(data["case_id"] for _, data in events)
        assert set(per_case) == set(assigned) and set(per_case.values()) == {1}


async def test_queue_waits_then_assigns_by_urgency(rsettings: RouteSettings) -> None:
    async with route_running(rsettings) as (service, _):
        store = service.store
        cases = store["cases"]
        await add_people(store, [person("solo", max_concurrent_cases=1)])
        await classify(service, classified("first", score=30))
        await wait_for(lambda: cases.find_one({"_id": "first", "status": "assigned"}))
        await classify(service, classified("older-low", score=40))
        await wait_for(lambda: cases.find_one({"_id": "older-low", "status": "queued"}))
        await classify(service, classified("newer-high", score=80, priority="P2"))
        await wait_for(lambda: cases.find_one({"_id": "newer-high", "status": "queued"}))

        await send(service, RESOLVED, [CaseResolved(case_id="first", resolved_at=utcnow())])
        doc = await wait_for(lambda: cases.find_one({"_id": "newer-high", "status": "assigned"}))
        assert doc["assignment"]["person_id"] == "solo"
        assert (await cases.find_one({"_id": "older-low"}))["status"] == "queued"

        await send(service, RESOLVED, [CaseResolved(case_id="newer-high", resolved_at=utcnow())])
        doc = await wait_for(lambda: cases.find_one({"_id": "older-low", "status": "assigned"}))
        assert doc["assignment"]["waited_seconds"] > 0

        # Nobody speaks Finnish until a Finnish speaker comes on: then at once.
        await classify(service, classified("finnish", language="fi"))
        await wait_for(lambda: cases.find_one({"_id": "finnish", "status": "queued"}))
        late = person("fi-late", languages=["fi"]).model_copy(update={"presence": "offline"})
        await send(service, DIRECTORY, [PersonUpdated(person=late)])
        await wait_for(lambda: store["people"].find_one({"_id": "fi-late"}))
        await asyncio.sleep(1.0)
        assert (await cases.find_one({"_id": "finnish"}))["status"] == "queued"
        await send(service, PRESENCE, [PresenceChanged(person_id="fi-late", presence="available")])
        doc = await wait_for(lambda: cases.find_one({"_id": "finnish", "status": "assigned"}))
        assert doc["assignment"]["person_id"] == "fi-late"

        events = await events_of(rsettings, "complaints.assigned", expect=4)
        solo = [d for _, d in events if d["assignee"]["person_id"] == "solo"]
        solo.sort(key=lambda d: d["assigned_at"])  # partitions do not keep a global order
        assert [d["case_id"] for d in solo] == ["first", "newer-high", "older-low"]


async def test_going_offline_hands_cases_back(rsettings: RouteSettings) -> None:
    async with route_running(rsettings) as (service, _):
        store = service.store
        cases = store["cases"]
        await add_people(store, [person("leaver"), person("stayer")])
        await send(service, PRESENCE, [PresenceChanged(person_id="stayer", presence="away")])
        await wait_for(lambda: store["people"].find_one({"_id": "stayer", "presence": "away"}))
        await classify(service, classified("h1"), classified("h2"))
        await wait_for(count_is(cases, {"assignment.person_id": "leaver"}, 2))

        await send(service, PRESENCE, [PresenceChanged(person_id="stayer", presence="available")])
        await send(service, PRESENCE, [PresenceChanged(person_id="leaver", presence="offline")])
        await wait_for(count_is(cases, {"assignment.person_id": "stayer"}, 2))
        leaver = await store["people"].find_one({"_id": "leaver"})
        assert leaver["load"] == 0 and leaver["open_cases"] == []
        doc = await cases.find_one({"_id": "h1"})
        actions = [(h["action"], h["person_id"]) for h in doc["assignment_history"]]
        assert ("released", "leaver") in actions and actions[-1] == ("assigned", "stayer")
        handbacks = await events_of(rsettings, "complaints.escalated", expect=2)
        assert sorted(d["case_id"] for _, d in handbacks) == ["h1", "h2"]
        assert {d["kind"] for _, d in handbacks} == {"handback"}


async def test_event_left_in_outbox_by_a_crash_is_republished(rsettings: RouteSettings) -> None:
    from datetime import timedelta

    from services.route.state import PENDING, outbox_entry
    from shared.events.catalogue import ESCALATED
    from shared.events.pipeline import CaseEscalated

    async with route_running(rsettings) as (service, router):
        queue = service.store["queue"]
        stale = utcnow() - timedelta(minutes=5)
        event = CaseEscalated(
            case_id="crashed", kind="handback", to_role="queue", reason="test", escalated_at=stale
        )
        # As if the process died between storing a background decision and publishing it:
        # the marker written before the decision, then the decision with its event.
        await service.store[PENDING].insert_one(
            {"_id": "queue:crashed:m1", "coll": "queue", "doc_id": "crashed", "at": stale}
        )
        await queue.insert_one(
            {
                "_id": "crashed",
                "outbox": {"evt-1": outbox_entry(ESCALATED, event, "crashed")},
                "outbox_at": stale,
            }
        )
        await router.outbox_sweep()  # or the background sweep gets there first
        events = await events_of(rsettings, "complaints.escalated", expect=1)
        assert events[0][0] == "evt-1" and events[0][1]["case_id"] == "crashed"
        doc = await wait_for(lambda: queue.find_one({"_id": "crashed", "outbox": {}}))
        assert "outbox_at" not in doc
        assert await service.store[PENDING].count_documents({}) == 0
        assert await router.outbox_sweep() == 0


async def test_two_replicas_under_load_keep_capacity_and_assign_each_case_once(
    rsettings: RouteSettings,
) -> None:
    """Two replicas share the classified stream (polls of many cases, decided at once)
    while cases are resolved and capacity frees: at no moment does anyone hold more cases
    than their capacity, and no case is ever held by two people or announced twice."""
    skills = {c: 2 for c in ("delivery", "billing_refund", "defective_product", "other")}
    async with (
        route_running(rsettings) as (one, _),
        route_running(rsettings) as (two, _),
    ):
        store = one.store
        await add_people(
            store, [person(f"w{i}", max_concurrent_cases=3, skills=skills) for i in range(5)]
        )
        violations: list[Any] = []
        stop = asyncio.Event()

        async def watch() -> None:
            while not stop.is_set():
                holders: Counter[str] = Counter()
                async for doc in store["people"].find({}):
                    if not doc["load"] == len(doc["open_cases"]) <= doc["max_concurrent_cases"]:
                        violations.append(doc)
                    holders.update(doc["open_cases"])
                violations.extend(c for c, n in holders.items() if n > 1)
                await asyncio.sleep(0.05)

        async def resolve() -> None:
            # Resolve a few assigned cases now and then: capacity frees, the drains and
            # the poll handlers of both replicas compete for it.
            resolved: set[str] = set()
            while not stop.is_set():
                await asyncio.sleep(0.3)
                docs = store["queue"].find({"state": "assigned"}, {"_id": 1}).limit(4)
                ids = [d["_id"] async for d in docs if d["_id"] not in resolved]
                resolved.update(ids)
                events = [CaseResolved(case_id=c, resolved_at=utcnow()) for c in ids]
                if events:
                    await send(two, RESOLVED, events)

        watcher = asyncio.create_task(watch())
        resolver = asyncio.create_task(resolve())
        try:
            categories = list(skills)
            for burst in range(6):
                events = [
                    classified(
                        f"load-{burst}-{i}", category=categories[i % 4], score=10 + (i * 7) % 80
                    )
                    for i in range(25)
                ]
                await classify(one if burst % 2 else two, *events)
                await asyncio.sleep(0.4)
            # Every case is routed: assigned, waiting, or resolved.
            await wait_for(
                count_is(
                    store["queue"], {"state": {"$in": ["waiting", "assigned", "closed"]}}, 150
                ),
                timeout=90,
            )
            await asyncio.sleep(1.0)
        finally:
            stop.set()
            await asyncio.gather(watcher, resolver)
        assert violations == []
        assigned = {
            d["_id"]: d["person_id"] async for d in store["queue"].find({"state": "assigned"})
        }
        people = {d["_id"]: d async for d in store["people"].find({})}
        for case_id, person_id in assigned.items():
            assert case_id in people[person_id]["open_cases"]
        held = [c for d in people.values() for c in d["open_cases"]]
        assert sorted(held) == sorted(assigned)
        # Each assignment announced once: one CaseAssigned per (case, assignment count),
        # and no case's assignment count above the times it was assigned.
        seqs = {d["_id"]: d.get("seq", 0) async for d in store["queue"].find({})}
        expected = sum(seqs.values())
        assert expected >= 15  # the people's capacity, at least once over
        events = await events_of(rsettings, "complaints.assigned", expect=expected)
        per_case = Counter(data["case_id"] for _, data in events)
        assert per_case == Counter({c: n for c, n in seqs.items() if n})
        for doc in [d async for d in store["queue"].find({})]:
            assigned_history = [h for h in doc.get("history", []) if h["action"] == "assigned"]
            assert len(assigned_history) == doc.get("seq", 0)
