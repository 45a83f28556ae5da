"""Reopened cases: followup's dissatisfied/reopened escalations are routed back, once."""

from __future__ import annotations

import asyncio
import uuid
from datetime import timedelta
from typing import Any

from services.route.settings import RouteSettings
from shared.events.catalogue import ESCALATED, RESOLVED
from shared.events.common import Priority
from shared.events.envelope import utcnow
from shared.events.lifecycle import CaseResolved
from shared.events.pipeline import CaseEscalated
from tests.integration.route.conftest import (
    add_people,
    classified,
    classify,
    events_of,
    person,
    route_running,
    send,
)
from tests.support import wait_for

TEAM = [
    person("agent", seniority=2, supervisor_id="boss"),
    person("senior", seniority=4),
    person("boss", roles=["supervisor"], seniority=5),
]


def reopened(case_id: str, kind: str = "dissatisfied", **over: object) -> CaseEscalated:
    values: dict[str, object] = {
        "case_id": case_id,
        "kind": kind,
        "to_role": "supervisor",
        "to_person_id": "boss",
        "reason": "customer rated the resolution 2/5; case reopened at priority P2",
        "escalated_at": utcnow(),
        "priority": Priority.P2,
    }
    values.update(over)
    return CaseEscalated(**values)  # type: ignore[arg-type]


async def test_dissatisfied_case_is_requeued_and_assigned_to_a_senior_once(
    rsettings: RouteSettings,
) -> None:
    async with route_running(rsettings) as (service, _):
        store = service.store
        queue, people = store["queue"], store["people"]
        await add_people(store, TEAM)
        await classify(service, classified("sad", priority="P3", score=30))
        first: Any = await wait_for(lambda: queue.find_one({"_id": "sad", "state": "assigned"}))
        assert first["person_id"] == "agent"  # a P3 case: the junior is fine
        resolved = CaseResolved(case_id="sad", resolved_at=utcnow(), resolved_by="agent")
        await send(service, RESOLVED, [resolved])
        await wait_for(lambda: queue.find_one({"_id": "sad", "state": "closed"}))
        await wait_for(lambda: people.find_one({"_id": "agent", "load": 0}))

        event_id = uuid.uuid4().hex
        await send(service, ESCALATED, [reopened("sad")], event_id=event_id)
        doc: Any = await wait_for(
            lambda: queue.find_one({"_id": "sad", "state": "assigned", "person_id": "senior"})
        )
        assert doc["req"]["priority"] == "P2" and doc["req"]["reopened"] == "dissatisfied"
        assert doc["urgency"] >= 45 and doc["reopen"]["previous_assignee"] == "agent"
        assert doc["reopen"]["prefer"] == ["boss"]
        assert doc["sla"]["first_response_due"] > first["sla"]["first_response_due"]
        events = await events_of(rsettings, "complaints.assigned", expect=2)
        again = [d for _, d in events if d["assignee"]["person_id"] == "senior"]
        assert len(again) == 1 and again[0]["priority"] == "P2"
        assert "case reopened (dissatisfied)" in again[0]["reasons"][0]
        assert any("reopened" in r and "seniority 4" in r for r in again[0]["reasons"])
        case: Any = await wait_for(
            lambda: store["cases"].find_one({"_id": "sad", "assignment.person_id": "senior"})
        )
        assert case["status"] == "assigned"
        assert [h["action"] for h in case["assignment_history"]].count("reopened") == 1

        # Redelivery, route's own kinds and followup's broken promises change nothing.
        await send(service, ESCALATED, [reopened("sad")], event_id=event_id)
        for kind in ("sla_breach", "handback", "manager_requested", "promise_broken"):
            await send(service, ESCALATED, [reopened("sad", kind)])
        await asyncio.sleep(2.0)
        after: Any = await queue.find_one({"_id": "sad"})
        assert (after["state"], after["person_id"], after["seq"], after["rev"]) == (
            "assigned",
            "senior",
            doc["seq"],
            doc["rev"],
        )
        assert after["reopen_ids"] == [event_id]
        events = await events_of(rsettings, "complaints.assigned", expect=2)
        assert len(events) == 2, events
        senior: Any = await people.find_one({"_id": "senior"})
        assert senior["load"] == 1 and senior["open_cases"] == ["sad"]


async def test_reopen_before_the_resolution_reaches_route(rsettings: RouteSettings) -> None:
    """followup reopens the case before route saw it resolved: the stale resolution that
    arrives afterwards neither closes the reopened case nor frees its new assignee."""
    async with route_running(rsettings) as (service, _):
        store = service.store
        queue, people = store["queue"], store["people"]
        await add_people(store, TEAM)
        await classify(service, classified("late", priority="P4", score=10))
        await wait_for(lambda: queue.find_one({"_id": "late", "person_id": "agent"}))
        resolved_at = utcnow()
        # followup's own field, written when it saw the resolution.
        await store["cases"].update_one(
            {"_id": "late"}, {"$set": {"stages.resolved_at": resolved_at}}
        )
        escalated = reopened(
            "late", "reopened", priority=None, escalated_at=resolved_at + timedelta(seconds=5)
        )
        await send(service, ESCALATED, [escalated])
        doc: Any = await wait_for(lambda: queue.find_one({"_id": "late", "person_id": "senior"}))
        assert doc["req"]["priority"] == "P2"  # P4 raised one step, but at least P2
        await wait_for(lambda: people.find_one({"_id": "agent", "load": 0}))

        await send(service, RESOLVED, [CaseResolved(case_id="late", resolved_at=resolved_at)])
        await asyncio.sleep(2.0)
        doc = await queue.find_one({"_id": "late"})
        assert (doc["state"], doc["person_id"]) == ("assigned", "senior")
        senior: Any = await people.find_one({"_id": "senior"})
        assert senior["open_cases"] == ["late"]
