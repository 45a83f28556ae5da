"""Handlers and the timer loop called directly over the real database (no broker):
redelivery changes nothing twice and rebuilds the same event ids; a crash between
publishing and marking a timer done re-fires it with the same ids."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator, Sequence
from datetime import timedelta
from typing import Any

import pytest

from services.followup import answers, firing, progress
from services.followup.context import Followup
from services.followup.loop import fire_due_timers
from services.followup.schedule import INTERIM, PROMISE, timer_id
from services.followup.settings import FollowupSettings
from services.followup.timers import CLAIM_INDEXES, TIMER_INDEXES, Timer, TimerStore
from shared.events import envelope
from shared.events.catalogue import ACTIVITY, ASSIGNED, RECEIVED, RESOLVED
from shared.events.complaint import SurveyAnswer
from shared.events.lifecycle import CaseActivity, CaseResolved
from shared.service import Incoming, Outgoing
from shared.settings import Settings
from shared.store import Store
from tests.integration.followup.conftest import assigned, now, received, seed_case


@pytest.fixture
async def ctx(store: Store, settings: Settings) -> AsyncIterator[Followup]:
    # ``store`` drops this test's database afterwards.
    fsettings = FollowupSettings(
        **settings.model_dump(),
        followup_survey_delay_seconds=0.0,
        followup_lease_seconds=0.5,
    )
    fstore = Store(fsettings, [TIMER_INDEXES, CLAIM_INDEXES])
    await fstore.connect()
    yield Followup(settings=fsettings, store=fstore, timers=TimerStore(fstore))
    await fstore.close()


def incoming(spec: Any, payload: Any, event_id: str | None = None) -> Incoming:
    event = envelope.encode(
        payload, event_type=spec.event_type, source="/tests", event_id=event_id or uuid.uuid4().hex
    )
    return Incoming(event, payload, spec.topic, 0, 0, None, 0)


def ids(outs: Sequence[Outgoing]) -> list[str]:
    return [o.event_id for o in outs]


async def test_an_unknown_case_is_rejected_alone(ctx: Followup) -> None:
    await seed_case(ctx.store, "c0", customer_id="cu0")
    unknown = incoming(ASSIGNED, assigned("nope", "x", resolution_in=9))
    known = incoming(ASSIGNED, assigned("c0", "cu0", resolution_in=9))
    handled = await progress.on_assigned(ctx, [unknown, known])
    assert [(r.payload.case_id, reason.reason) for r, reason in handled.rejected] == [
        ("nope", "unknown_case")
    ]
    doc = await ctx.store["cases"].find_one({"_id": "c0"})
    assert doc is not None and doc["followup"]["scheduled"] is True


async def test_redelivered_events_change_nothing_twice(ctx: Followup) -> None:
    await seed_case(ctx.store, "c1", customer_id="cu1")
    assign = incoming(ASSIGNED, assigned("c1", "cu1", resolution_in=3600))
    for _ in range(2):
        assert (await progress.on_assigned(ctx, [assign])).outgoing == []
    promise = incoming(
        ACTIVITY,
        CaseActivity(case_id="c1", kind="promise_made", at=now(), promise_text="call tomorrow"),
    )
    for _ in range(2):
        await progress.on_activity(ctx, [promise])
    doc = await ctx.store["cases"].find_one({"_id": "c1"})
    assert doc is not None and len(doc["promises"]) == 1
    promise_id = doc["promises"][0]["promise_id"]
    due = doc["promises"][0]["due_at"]
    assert timedelta(hours=23) < due - doc["promises"][0]["made_at"] <= timedelta(days=1)
    assert await ctx.timers.get(timer_id("c1", PROMISE, promise_id)) is not None
    resolved = incoming(RESOLVED, CaseResolved(case_id="c1", resolved_at=now()))
    for _ in range(2):
        await progress.on_resolved(ctx, [resolved])
    assert await ctx.store["timers"].count_documents({"case_id": "c1", "kind": "survey"}) == 1
    # The interim timer is cancelled by the resolution.
    interim = await ctx.timers.get(timer_id("c1", INTERIM, 0, 0))
    assert interim is not None and interim["state"] == "cancelled"
    answer = incoming(
        RECEIVED,
        received("c1", "cu1", survey=SurveyAnswer(kind="csat", score=1, scale_max=5)),
    )
    first = (await answers.on_received(ctx, [answer])).outgoing
    again = (await answers.on_received(ctx, [answer])).outgoing
    assert ids(first) == ids(again) and len(first) == 1  # same escalation id, rebuilt
    doc = await ctx.store["cases"].find_one({"_id": "c1"})
    assert doc is not None
    assert doc["status"] == "reopened" and doc["followup"]["cycle"] == 1
    assert doc["measures"]["reopens"] == 1  # not 2


async def test_a_crash_between_publishing_and_done_refires_with_the_same_ids(
    ctx: Followup,
) -> None:
    await seed_case(ctx.store, "c2", customer_id="cu2")
    await progress.on_assigned(ctx, [incoming(ASSIGNED, assigned("c2", "cu2", resolution_in=3600))])
    tid = timer_id("c2", INTERIM, 0, 0)
    await ctx.store["timers"].update_one({"_id": tid}, {"$set": {"due_at": now()}})
    published: list[list[str]] = []

    async def crash(outs: Sequence[Outgoing]) -> None:
        published.append(ids(outs))
        raise ConnectionError("broker went away mid-publish")

    with pytest.raises(ConnectionError):
        await fire_due_timers(ctx, crash, "replica-a")
    timer = await ctx.timers.get(tid)
    assert timer is not None and timer["state"] == "firing"  # not done: it will fire again

    async def ok(outs: Sequence[Outgoing]) -> None:
        if outs:
            published.append(ids(outs))

    # Within the lease nobody else takes it; after the lease another replica does.
    assert await fire_due_timers(ctx, ok, "replica-b") == 0
    ctx.clock = lambda: envelope.utcnow() + timedelta(seconds=1)
    assert await fire_due_timers(ctx, ok, "replica-b") == 1
    assert published[0] == published[1] and len(published[0]) == 1
    timer = await ctx.timers.get(tid)
    assert timer is not None and timer["state"] == "done" and timer["attempts"] == 2


async def test_a_timer_does_nothing_once_its_case_moved_on(ctx: Followup) -> None:
    await seed_case(ctx.store, "c3", customer_id="cu3")
    await progress.on_assigned(ctx, [incoming(ASSIGNED, assigned("c3", "cu3", resolution_in=3600))])
    await ctx.store["cases"].update_one({"_id": "c3"}, {"$set": {"status": "resolved"}})
    timer = await ctx.timers.get(timer_id("c3", INTERIM, 0, 0))
    assert timer is not None
    assert await firing.fire(ctx, Timer.from_document(timer)) == []


async def test_finished_timers_leave_the_polled_collection_and_stay_finished(
    ctx: Followup,
) -> None:
    timers = ctx.timers
    due = now() - timedelta(seconds=1)
    fired, cancelled = timer_id("c5", INTERIM, 0, 0), timer_id("c5", PROMISE, "p1")
    assert await timers.schedule(fired, "c5", INTERIM, due, {"cycle": 0, "seq": 0})
    assert await timers.schedule(cancelled, "c5", PROMISE, now() + timedelta(hours=1))
    (claimed,) = await timers.claim_many(now(), "replica-a", 5.0, limit=5)
    assert claimed.timer_id == fired
    assert await timers.complete(claimed, "replica-a", now())
    assert await timers.cancel_one(cancelled)
    # Only live timers are polled; the finished ones are kept in timers_done.
    assert await ctx.store["timers"].count_documents({"case_id": "c5"}) == 0
    states = {d["_id"]: d["state"] async for d in ctx.store["timers_done"].find({"case_id": "c5"})}
    assert states == {fired: "done", cancelled: "cancelled"}
    # A redelivered event asking for them again creates nothing: they do not fire twice.
    assert not await timers.schedule(fired, "c5", INTERIM, due, {"cycle": 0, "seq": 0})
    assert not await timers.schedule(cancelled, "c5", PROMISE, due)
    assert await ctx.store["timers"].count_documents({"case_id": "c5"}) == 0
    assert await timers.claim_many(now(), "replica-b", 5.0, limit=5) == []
    # A replica that lost the lease cannot complete it (nor remove it).
    again = await timers.get(fired)
    assert again is not None and again["state"] == "done" and again["attempts"] == 1
    assert not await timers.complete(claimed, "replica-b", now())
