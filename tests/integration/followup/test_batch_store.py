"""followup's batch handlers against the real MongoDB-protocol server: a poll of any size
costs the same few commands (one read and at most one write per collection); a
redelivered poll, in another order, changes nothing and announces the same events; two
writers of one case (a stale consumer after a rebalance, or two of followup's topics)
never lose or repeat an effect."""

from __future__ import annotations

import asyncio
import uuid
from collections import Counter
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from pymongo import AsyncMongoClient

from services.followup import answers, firing, progress
from services.followup.context import Followup
from services.followup.loop import fire_due_timers
from services.followup.poll import apply
from services.followup.schedule import PROMISE, timer_id
from services.followup.settings import FollowupSettings
from services.followup.timers import (
    CLAIM_INDEXES,
    DONE_INDEXES,
    TIMER_INDEXES,
    Timer,
    TimerStore,
)
from shared.batch import Handled, Incoming, Outgoing
from shared.events import envelope
from shared.events.catalogue import ACTIVITY, ASSIGNED, RECEIVED, RESOLVED, EventSpec
from shared.events.complaint import SurveyAnswer
from shared.events.lifecycle import CaseActivity, CaseResolved
from shared.settings import Settings
from shared.store import Store
from tests.integration.followup.conftest import assigned, received, seed_case
from tests.support import CommandCounter

NOW = datetime(2026, 3, 4, 9, 0, tzinfo=UTC)
WRITES = ("update ", "insert ", "delete ")  # "name collection" prefixes


@dataclass
class Counted:
    ctx: Followup
    commands: CommandCounter


@pytest.fixture
async def counted(store: Store, settings: Settings) -> AsyncIterator[Counted]:
    # ``store`` drops this test's database afterwards.
    fsettings = FollowupSettings(**settings.model_dump())
    indexed = Store(fsettings, [TIMER_INDEXES, DONE_INDEXES, CLAIM_INDEXES])
    await indexed.connect()  # creates the timers' indexes
    await indexed.close()
    commands = CommandCounter()
    fstore = Store(fsettings)
    fstore._client = AsyncMongoClient(
        fsettings.mongodb_url.get_secret_value(), tz_aware=True, event_listeners=[commands]
    )
    ctx = Followup(settings=fsettings, store=fstore, timers=TimerStore(fstore), clock=lambda: NOW)
    yield Counted(ctx, commands)
    await fstore.close()


def incoming(spec: EventSpec, payload: Any, offset: int) -> Incoming:
    event_id = uuid.uuid5(uuid.NAMESPACE_URL, f"{spec.topic}/{offset}/{payload.case_id}").hex
    event = envelope.encode(payload, event_type=spec.event_type, source="/tests", event_id=event_id)
    # Three partitions, keyed by case: a case's records are in one, in offset order.
    partition = sum(payload.case_id.encode()) % 3
    return Incoming(event, payload, spec.topic, partition, offset, payload.case_id.encode(), 0)


Handler = Callable[[Followup, Sequence[Incoming]], Awaitable[Handled]]


@dataclass
class Poll:
    name: str
    handler: Handler
    records: list[Incoming]


def lifecycle(cases: list[str]) -> list[Poll]:
    """Every poll a case's life sends followup, each holding the records of ``cases``."""

    def poll(name: str, handler: Handler, spec: EventSpec, payloads: list[Any]) -> Poll:
        return Poll(name, handler, [incoming(spec, p, i) for i, p in enumerate(payloads)])

    def answer(i: int, case: str) -> Any:
        score = 5 if i % 2 else 1  # half satisfied (closed), half not (reopened)
        survey = SurveyAnswer(kind="csat", score=score, scale_max=5)
        return received(case, f"cu-{case}", survey=survey, at=NOW + timedelta(hours=3))

    public = {"channel": "social", "public": True}
    return [
        # Public complaints while nothing of the customer's was resolved: nothing to do.
        poll(
            "received (public)",
            answers.on_received,
            RECEIVED,
            [received(c, f"cu-{c}", at=NOW, **public) for c in cases],
        ),
        poll(
            "assigned",
            progress.on_assigned,
            ASSIGNED,
            [assigned(c, f"cu-{c}", resolution_in=86400, at=NOW) for c in cases],
        ),
        poll(
            "activity (response, promise)",
            progress.on_activity,
            ACTIVITY,
            [
                activity
                for c in cases
                for activity in (
                    CaseActivity(case_id=c, kind="first_response", at=NOW + timedelta(minutes=5)),
                    CaseActivity(
                        case_id=c,
                        kind="promise_made",
                        at=NOW,
                        promise_id=f"p-{c}",
                        promise_text="we will call you back tomorrow",
                    ),
                )
            ],
        ),
        poll(
            "activity (promise kept)",
            progress.on_activity,
            ACTIVITY,
            [
                CaseActivity(
                    case_id=c, kind="promise_kept", at=NOW + timedelta(hours=1), promise_id=f"p-{c}"
                )
                for c in cases
            ],
        ),
        poll(
            "resolved",
            progress.on_resolved,
            RESOLVED,
            [CaseResolved(case_id=c, resolved_at=NOW + timedelta(hours=2)) for c in cases],
        ),
        poll(
            "received (survey answers)",
            answers.on_received,
            RECEIVED,
            [answer(i, c) for i, c in enumerate(cases)],
        ),
        poll(
            "received (public, case watched)",
            answers.on_received,
            RECEIVED,
            [received(c, f"cu-{c}", at=NOW + timedelta(hours=4), **public) for c in cases],
        ),
    ]


# Per poll, whatever its size: one read per collection, at most one write per collection
# (cancelling timers: one read of the pending ones, one insert into timers_done, one delete).
EXPECTED = {
    "received (public)": {"find": 1},  # resolved_cases
    "assigned": {"find": 1, "update": 2},  # cases; cases, timers
    "activity (response, promise)": {"find": 1, "update": 2},
    "activity (promise kept)": {"find": 2, "update": 1, "insert": 1, "delete": 1},
    # resolved_cases, cases and timers written; the interim timers cancelled
    "resolved": {"find": 2, "update": 3, "insert": 1, "delete": 1},
    # resolved_cases, cases, people read; the survey timers cancelled
    "received (survey answers)": {"find": 4, "update": 1, "insert": 1, "delete": 1},
    # resolved_cases, cases, the (already cancelled) survey timers of the reopened ones
    "received (public, case watched)": {"find": 3, "update": 1},
}


async def seed(store: Store, cases: list[str]) -> None:
    for c in cases:
        await seed_case(
            store,
            c,
            customer_id=f"cu-{c}",
            public=True,
            channel="social",
            opened_at=NOW - timedelta(hours=1),
        )
    await store["people"].update_one(
        {"_id": "aino"}, {"$set": {"supervisor_id": "sam"}}, upsert=True
    )


async def run(counted: Counted, polls: list[Poll]) -> dict[str, tuple[Counter[str], Handled]]:
    done = {}
    for poll in polls:
        counted.commands.clear()
        handled = await poll.handler(counted.ctx, poll.records)
        assert not handled.rejected
        done[poll.name] = (counted.commands.by_name(), handled)
    return done


async def snapshot(store: Store) -> dict[str, list[Any]]:
    names = ("cases", "timers", "resolved_cases")
    state = {n: await store[n].find({}, sort=[("_id", 1)]).to_list() for n in names}
    # When a timer was recorded finished is the one field a redelivery may not repeat.
    state["timers_done"] = [
        {k: v for k, v in d.items() if k != "finished_at"}
        for d in await store["timers_done"].find({}, sort=[("_id", 1)]).to_list()
    ]
    return state


async def test_a_poll_costs_the_same_commands_whatever_its_size(
    counted: Counted, store: Store
) -> None:
    per_size = {}
    for size in (4, 40):
        cases = [f"n{size}-c{i}" for i in range(size)]
        await seed(store, cases)
        done = await run(counted, lifecycle(cases))
        per_size[size] = {name: dict(counts) for name, (counts, _) in done.items()}
        events = {name: len(handled.outgoing) for name, (_, handled) in done.items()}
        # Half the answers thank the customer, half escalate (and reopen the case); a
        # public complaint then reopens the closed half.
        assert events["received (survey answers)"] == size
        assert events["received (public, case watched)"] == size // 2
    assert per_size[4] == per_size[40] == EXPECTED
    total = sum(sum(c.values()) for c in EXPECTED.values())
    print(f"\nfollowup: {total} commands per poll set; {total / 40:.2f} per complaint at 40")

    case = await store["cases"].find_one({"_id": "n40-c1"})  # satisfied, then reopened
    assert case is not None
    assert case["followup"]["answer_contacts"] and case["followup"]["reopen_contacts"]
    assert case["status"] == "reopened" and case["followup"]["cycle"] == 1
    assert case["measures"]["reopens"] == 1 and case["measures"]["csat"] == 5
    assert [p["state"] for p in case["promises"]] == ["kept"]
    assert case["stages"]["first_response_at"] == NOW + timedelta(minutes=5)
    kept = await counted.ctx.timers.get(timer_id("n40-c1", PROMISE, "p-n40-c1"))
    assert kept is not None and kept["state"] == "cancelled"


def another_order(records: list[Incoming]) -> list[Incoming]:
    """The same records as another poll would bring them: partitions in another order
    and interleaved otherwise, each case's records still in offset order."""
    by_case: dict[bytes | None, list[Incoming]] = {}
    for record in records:
        by_case.setdefault(record.key, []).append(record)
    return [r for key in sorted(by_case, key=lambda k: (k or b"")[::-1]) for r in by_case[key]]


def announced(handled: Handled) -> dict[str, Outgoing]:
    return {o.event_id: o for o in handled.outgoing}


async def test_a_redelivered_poll_in_another_order_changes_nothing_twice(
    counted: Counted, store: Store
) -> None:
    cases = [f"c{i}" for i in range(8)]
    await seed(store, cases)
    for poll in lifecycle(cases):
        counted.commands.clear()
        first = await poll.handler(counted.ctx, poll.records)
        wrote = {k for k in counted.commands.counts if k.startswith(WRITES)}
        stored = await snapshot(store)
        # Kafka brings the poll again (the commit was lost), its partitions in another order.
        counted.commands.clear()
        again = await poll.handler(counted.ctx, another_order(poll.records))
        assert not again.rejected
        assert counted.commands.counts["update cases"] == 0, poll.name  # read, not written
        # Only timers may be asked for again (upserts that find them): nothing else written.
        assert {k for k in counted.commands.counts if k.startswith(WRITES)} <= wrote & {
            "update timers"
        }, poll.name
        assert await snapshot(store) == stored, poll.name
        # The same events: same ids, same content (the clock is fixed).
        assert announced(again) == announced(first), poll.name


def promise_made(promise_id: str, offset: int) -> Incoming:
    activity = CaseActivity(
        case_id="x", kind="promise_made", at=NOW, promise_id=promise_id, promise_text="by friday"
    )
    return incoming(ACTIVITY, activity, offset)


async def test_a_stale_writer_decides_again_instead_of_overwriting(
    counted: Counted, store: Store
) -> None:
    await seed(store, ["x"])
    ctx = counted.ctx
    # B reads the case; A (the new owner after a rebalance, or another of followup's
    # topics) writes it; then B writes what it decided on the state it read.
    stale = await progress.by_case(progress.activity)(ctx, [(0, promise_made("p1", 1))])
    await progress.on_activity(ctx, [promise_made("p0", 0)])
    outgoing: dict[int, list[Outgoing]] = {}
    assert await apply(ctx, list(stale.plans.values()), outgoing) == {"x"}
    case = await store["cases"].find_one({"_id": "x"})
    assert case is not None and case["followup"]["promise_ids"] == ["p0"]  # B wrote nothing
    assert await ctx.timers.get(timer_id("x", PROMISE, "p1")) is None  # nor its timer
    # As the scaffold runs B's handler: its guard fails, it re-reads and decides again.
    counted.commands.clear()
    assert not (await progress.on_activity(ctx, [promise_made("p1", 1)])).rejected
    case = await store["cases"].find_one({"_id": "x"})
    assert case is not None and case["followup"]["rev"] == 2
    assert [p["promise_id"] for p in case["promises"]] == ["p0", "p1"]
    assert await ctx.timers.get(timer_id("x", PROMISE, "p1")) is not None

    # The timer loop is a writer too: a promise broken while a "kept" was being decided.
    kept = incoming(
        ACTIVITY, CaseActivity(case_id="x", kind="promise_kept", at=NOW, promise_id="p0"), 2
    )
    stale = await progress.by_case(progress.activity)(ctx, [(2, kept)])
    timer = await ctx.timers.get(timer_id("x", PROMISE, "p0"))
    assert timer is not None
    assert len(await firing.fire(ctx, Timer.from_document(timer))) == 2  # broken: escalated
    assert await apply(ctx, list(stale.plans.values()), outgoing) == {"x"}
    await progress.on_activity(ctx, [kept])
    case = await store["cases"].find_one({"_id": "x"})
    assert case is not None
    assert [p["state"] for p in case["promises"]] == ["kept_late", "open"]  # not "kept"


async def test_concurrent_writers_of_one_case_keep_every_effect(
    counted: Counted, store: Store
) -> None:
    await seed(store, ["x"])
    ctx = counted.ctx
    handled = await asyncio.gather(
        *(progress.on_activity(ctx, [promise_made(f"p{i}", i)]) for i in range(4))
    )
    assert all(not h.rejected for h in handled)
    case = await store["cases"].find_one({"_id": "x"})
    assert case is not None and case["followup"]["rev"] == 4
    assert sorted(p["promise_id"] for p in case["promises"]) == ["p0", "p1", "p2", "p3"]
    assert sorted(case["followup"]["promise_ids"]) == ["p0", "p1", "p2", "p3"]
    for i in range(4):
        assert await ctx.timers.get(timer_id("x", PROMISE, f"p{i}")) is not None


async def test_a_timer_round_reads_its_cases_and_completes_its_timers_at_once(
    counted: Counted, store: Store
) -> None:
    cases = sorted(f"t{i}" for i in range(12))
    await seed(store, cases)
    ctx = counted.ctx
    await progress.on_assigned(ctx, lifecycle(cases)[1].records)
    await store["timers"].update_many({}, {"$set": {"due_at": NOW - timedelta(seconds=1)}})
    published: list[Outgoing] = []

    async def publish(outs: Sequence[Outgoing]) -> None:
        published.extend(outs)

    counted.commands.clear()
    assert await fire_due_timers(ctx, publish, "replica-a") == len(cases)
    on = counted.commands.counts
    # Claiming stays per timer (a unique insert arbitrates between replicas); reading the
    # cases and finishing the timers is once per round.
    assert on["find cases"] == 1
    assert on["insert timers_done"] == 1 and on["delete timers"] == 1
    # Due pending ones, lapsed leases (fewer due than a round takes), those still ours.
    assert on["find timers"] == 3
    assert sorted(o.payload.case_id for o in published) == cases
    assert await store["timers_done"].count_documents({"state": "done"}) == len(cases)
    # Each fired interim update planned the next one.
    assert await store["timers"].count_documents({"state": "pending"}) == len(cases)
