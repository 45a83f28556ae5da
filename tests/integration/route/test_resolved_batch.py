"""Route's complaints.resolved handler against the real MongoDB-protocol server: a poll of
resolutions costs the same few commands whatever it holds (cases closed, capacity freed,
lessons shared); a redelivered poll, in another order, frees nothing twice and publishes
only what was left unpublished.
"""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from typing import Any

import pytest

from services.route.directory import seed_directory
from services.route.handlers import Router
from services.route.settings import RouteSettings
from services.route.state import WAITING
from shared.batch import Incoming
from shared.events import envelope
from shared.events.common import Category
from shared.events.lifecycle import CaseResolved, Lesson
from shared.settings import REPO_ROOT
from shared.store import Store
from tests.integration.route.conftest import add_people, person
from tests.integration.route.test_classified_batch import (
    CATEGORIES,
    check_capacity,
    new_cases,
    router_with,
)
from tests.support import CommandCounter, polled


def resolution(case_id: str, offset: int, *, lesson: bool = True) -> Incoming:
    event = CaseResolved(
        case_id=case_id,
        resolved_at=envelope.utcnow(),
        resolved_by="someone",
        lesson=Lesson(
            category=Category("delivery"),
            product="parcel box",
            root_cause="courier lost it; call +358 40 123 4567",
            fix="resent",
        )
        if lesson
        else None,
    )
    return polled(
        event, event_id=f"res-{case_id}", topic="complaints.resolved", offset=offset, key=case_id
    )


async def loads(store: Store) -> dict[str, tuple[int, list[str]]]:
    return {d["_id"]: (d["load"], d["open_cases"]) async for d in store["people"].find({})}


async def snapshot(store: Store) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for name in ("queue", "people", "cases", "lessons", WAITING):
        out[name] = {d["_id"]: d async for d in store[name].find({})}
    return out


async def resolve(router: Router, records: Sequence[Incoming]) -> None:
    handled = await router.handle_resolved(records)
    assert not handled.rejected and not handled.outgoing


async def test_a_poll_of_resolutions_costs_the_same_few_commands(
    rsettings: RouteSettings,
) -> None:
    listener = CommandCounter()
    router, published = await router_with(rsettings, listener)
    store = router.store
    try:
        await seed_directory(store, REPO_ROOT / "services/route/seed/people.json")
        await router.handle_classified(new_cases(41, "rs"))
        assigned = await check_capacity(store)
        assert len(assigned) == 41
        published.ids.clear()

        counts: dict[int, dict[str, int]] = {}
        done = 0
        for n in (1, 40):
            poll = [resolution(f"rs-{done + i}", i) for i in range(n)]
            if n > 1:  # one route never saw: nothing to close, its lesson still shared
                poll[-1] = resolution("never-routed", n)
            listener.counts.clear()
            await resolve(router, poll)
            counts[n] = dict(listener.counts)
            done += n - (n > 1)
        # One read of queue, lessons and people; one bulk write of queue (closes), lessons
        # (inserted), cases (lessons mirrored), people (claims freed), lessons (outboxes
        # emptied).
        expected = {
            "find queue": 1,
            "find lessons": 1,
            "find people": 1,
            "update queue": 1,
            "update lessons": 2,
            "update cases": 1,
            "update people": 1,
        }
        assert counts[1] == counts[40] == expected
        assert set(await check_capacity(store)) == {"rs-40"}
        queue = {d["_id"]: d async for d in store["queue"].find({})}
        assert {d["state"] for k, d in queue.items() if k != "rs-40"} == {"closed"}
        lessons = {d["_id"]: d async for d in store["lessons"].find({})}
        assert len(lessons) == 41 and not any(d.get("outbox") for d in lessons.values())
        assert sorted(published.ids) == sorted(lessons)  # each shared once
        cases = {d["_id"]: d async for d in store["cases"].find({"lesson": {"$exists": True}})}
        assert len(cases) == 41 and "never-routed" in cases
        for lesson in lessons.values():
            assert lesson["departments"] and "+358" not in lesson["root_cause"]
            assert cases[lesson["case_id"]]["lesson"]["departments"] == lesson["departments"]
        total = sum(counts[40].values())
        print(
            f"\nroute, complaints.resolved: {sum(counts[1].values())} commands for a poll of "
            f"1 resolution, {total} for 40 ({total / 40:.2f} per resolution)"
        )
    finally:
        await store.close()


async def test_a_waiting_case_resolved_leaves_the_waiting_index(
    rsettings: RouteSettings,
) -> None:
    listener = CommandCounter()
    router, _ = await router_with(rsettings, listener)
    store = router.store
    try:
        skills = {c: 2 for c in CATEGORIES}
        await add_people(store, [person("w0", max_concurrent_cases=2, skills=skills)])
        await router.handle_classified(new_cases(5, "wt"))
        assigned = await check_capacity(store)
        waiting = {f"wt-{i}" for i in range(5)} - set(assigned)
        assert len(assigned) == 2 and await store[WAITING].count_documents({}) == 3
        listener.counts.clear()
        await resolve(router, [resolution(c, i, lesson=False) for i, c in enumerate(waiting)])
        assert listener.counts["delete queue_waiting"] == 1
        assert await store[WAITING].count_documents({}) == 0
        assert await check_capacity(store) == assigned  # nothing freed: none was held
        # A drain now has nothing to give: the closed cases stay closed.
        assert await router.drain() == 0
    finally:
        await store.close()


async def test_a_redelivered_poll_of_resolutions_in_another_order_frees_nothing_twice(
    rsettings: RouteSettings,
) -> None:
    router, published = await router_with(rsettings)
    store = router.store
    try:
        skills = {c: 2 for c in CATEGORIES}
        await add_people(
            store, [person(f"r{i}", max_concurrent_cases=3, skills=skills) for i in range(3)]
        )
        await router.handle_classified(new_cases(12, "rd"))
        assigned = await check_capacity(store)
        assert len(assigned) == 9
        published.ids.clear()
        poll = [resolution(c, i) for i, c in enumerate(sorted(assigned)[:6])]
        # The closes, claims and lessons stored, then the broker goes away before the
        # lessons are published: the poll fails (retried, or redelivered by Kafka).
        published.fail = True
        with pytest.raises(ConnectionError):
            await resolve(router, poll)
        published.fail = False
        stored = await snapshot(store)
        held = await check_capacity(store)
        assert set(held) == set(assigned) - {r.payload.case_id for r in poll}
        assert sum(load for load, _ in (await loads(store)).values()) == 3
        assert published.ids == []

        # Meanwhile the drain gives the freed capacity to the waiting cases.
        assert await router.drain() == 3
        after_drain = await check_capacity(store)
        assert len(after_drain) == 6
        published.ids.clear()

        # Redelivered in reverse order: the lessons go out (same ids), nothing is closed or
        # freed again (the new claims stand).
        await resolve(router, list(reversed(poll)))
        lesson_ids = sorted(envelope.derived_id(r.event.id, "lesson") for r in poll)
        assert sorted(published.ids) == lesson_ids
        assert await check_capacity(store) == after_drain
        after = await snapshot(store)
        for case_id in (r.payload.case_id for r in poll):
            assert after["queue"][case_id] == stored["queue"][case_id]
        assert not any(d.get("outbox") for d in after["lessons"].values())

        # Once more, shuffled: nothing to publish, nothing changes.
        published.ids.clear()
        await resolve(router, [poll[3], poll[0], poll[5], poll[1], poll[4], poll[2]])
        assert published.ids == []
        final = await snapshot(store)
        for name in ("queue", "people", "cases", "lessons"):
            assert final[name] == after[name], name
    finally:
        await store.close()


async def test_two_replicas_resolving_the_same_poll_free_each_claim_once(
    rsettings: RouteSettings,
) -> None:
    one, published_one = await router_with(rsettings)
    two, published_two = await router_with(rsettings)
    try:
        skills = {c: 2 for c in CATEGORIES}
        await add_people(
            one.store, [person(f"t{i}", max_concurrent_cases=2, skills=skills) for i in range(3)]
        )
        await one.handle_classified(new_cases(10, "tw"))
        assigned = await check_capacity(one.store)
        assert len(assigned) == 6
        published_one.ids.clear()
        # A stale consumer after a rebalance: both replicas get the same resolutions, one
        # of them in another order, while the first also drains what is freed.
        poll = [resolution(c, i) for i, c in enumerate(sorted(assigned)[:4])]
        await asyncio.gather(
            resolve(one, poll), resolve(two, list(reversed(poll))), one.drain(), two.drain()
        )
        await one.drain()
        after = await check_capacity(one.store)  # loads equal the cases held, within capacity
        resolved = {r.payload.case_id for r in poll}
        assert not resolved & set(after)
        assert len(after) == 6  # two left assigned, four of the waiting took the freed places
        queue = {
            d["_id"]: d async for d in one.store["queue"].find({"_id": {"$in": list(resolved)}})
        }
        assert {d["state"] for d in queue.values()} == {"closed"}
        lesson_ids = {envelope.derived_id(r.event.id, "lesson") for r in poll}
        assert set(published_one.ids + published_two.ids) >= lesson_ids
        assert await one.store["lessons"].count_documents({}) == 4
    finally:
        await one.store.close()
        await two.store.close()
