"""Durable timers: they survive a restart, fire late after a crash, and fire once when
several replicas race for them."""

from __future__ import annotations

import asyncio
from collections import Counter
from datetime import timedelta

from services.followup.app import build_service
from services.followup.schedule import INTERIM, timer_id
from services.followup.settings import FollowupSettings
from services.followup.timers import TimerStore
from shared.events.catalogue import FOLLOWUP_REQUESTS
from tests.integration.followup.conftest import (
    assign,
    assigned,
    followup_settings,
    now,
    read_topic,
    seed_case,
)
from tests.support import running, wait_for


async def test_a_timer_scheduled_before_a_restart_fires_once_after_it(
    cleanup: list[FollowupSettings],
) -> None:
    settings = followup_settings()
    cleanup.append(settings)
    tid = timer_id("c-restart", INTERIM, 0, 0)
    async with running(build_service(settings)) as first:
        await seed_case(first.store, "c-restart", customer_id="cu-r")
        # Interim update due half way to a resolution due in 6 s: in 3 s.
        await assign(first, assigned("c-restart", "cu-r", resolution_in=6.0))
        timer = await wait_for(lambda: first.store["timers"].find_one({"_id": tid}))
        assert timer["state"] == "pending"
    # The service is down when the timer comes due.
    down_until = timer["due_at"] + timedelta(seconds=1)
    await asyncio.sleep(max(0.0, (down_until - now()).total_seconds()))
    async with running(build_service(settings)) as second:
        done = await wait_for(
            lambda: second.store["timers_done"].find_one({"_id": tid, "state": "done"}), timeout=20
        )
        assert done["attempts"] == 1
        assert done["fired_at"] > done["due_at"]  # late, not never
        records = await read_topic(settings, FOLLOWUP_REQUESTS.topic, at_least=1, settle=2.0)
        assert [r.data["kind"] for r in records] == ["interim_update"]


async def test_a_timer_held_by_a_crashed_replica_fires_after_its_lease(
    cleanup: list[FollowupSettings],
) -> None:
    settings = followup_settings(followup_lease_seconds=1.0)
    cleanup.append(settings)
    tid = timer_id("c-crash", INTERIM, 0, 0)
    async with running(build_service(settings)) as service:
        await seed_case(service.store, "c-crash", customer_id="cu-c")
        timers = TimerStore(service.store)
        # Schedule it in the past and let a "replica" claim it and die without firing.
        await timers.schedule(
            tid, "c-crash", INTERIM, now() - timedelta(seconds=5), {"cycle": 0, "seq": 0}
        )
        claimed = await timers.claim_many(now(), "dead-replica", 1.0, limit=10)
        if not claimed:  # the running service was quicker: it fired normally
            claimed_by_service = await service.store["timers"].find_one({"_id": tid})
            assert claimed_by_service is not None
        done = await wait_for(
            lambda: service.store["timers_done"].find_one({"_id": tid, "state": "done"}),
            timeout=20,
        )
        assert done["owner"] != "dead-replica"
        records = await read_topic(settings, FOLLOWUP_REQUESTS.topic, at_least=1, settle=2.0)
        assert [r.data["kind"] for r in records] == ["interim_update"]


async def test_two_replicas_fire_each_due_timer_exactly_once(
    cleanup: list[FollowupSettings],
) -> None:
    settings = followup_settings(followup_timer_batch=5)
    cleanup.append(settings)
    cases = [f"c-race-{i:02d}" for i in range(30)]
    a, b = build_service(settings), build_service(settings)
    async with running(a), running(b):
        for case_id in cases:
            await seed_case(a.store, case_id, customer_id=f"cu-{case_id}")
        timers = TimerStore(a.store)
        due = now() + timedelta(seconds=1)  # all due at the same moment
        for case_id in cases:
            await timers.schedule(
                timer_id(case_id, INTERIM, 0, 0), case_id, INTERIM, due, {"cycle": 0, "seq": 0}
            )
        records = await read_topic(
            settings, FOLLOWUP_REQUESTS.topic, at_least=len(cases), settle=3.0, timeout=60
        )
        ids = Counter(r.event_id for r in records)
        assert len(records) == len(cases), f"duplicates: {[i for i, n in ids.items() if n > 1]}"
        assert {r.data["case_id"] for r in records} == set(cases)
        seq0 = {"kind": INTERIM, "payload.seq": 0}
        docs = [d async for d in a.store["timers_done"].find(seq0)]
        assert all(d["state"] == "done" and d["attempts"] == 1 for d in docs)
        assert await a.store["timers"].count_documents(seq0) == 0  # only live timers there
        owners = Counter(d["owner"] for d in docs)
        assert sum(owners.values()) == len(cases)
