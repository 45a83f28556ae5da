"""Every escalation path: safety, legal, manager, SLA warning/reassign/breach."""

from __future__ import annotations

import asyncio
import uuid
from datetime import timedelta

from services.route.settings import RouteSettings
from shared.events.catalogue import ACTIVITY, CLASSIFIED, PRESENCE
from shared.events.directory import PresenceChanged
from shared.events.envelope import utcnow
from shared.events.lifecycle import CaseActivity
from tests.integration.route.conftest import (
    add_people,
    classified,
    events_of,
    person,
    route_running,
    route_settings,
    send,
)
from tests.support import wait_for

TEAM = [
    person("agent", seniority=3, supervisor_id="boss"),
    person("boss", roles=["supervisor"], seniority=5),
    person("other-boss", roles=["supervisor"], seniority=5, team="elsewhere"),
    person("sec", roles=["security_oncall"], team="security"),
    person("lawyer", roles=[], team="legal"),
]


async def test_threats_and_manager_requests_escalate_once(rsettings: RouteSettings) -> None:
    async with route_running(rsettings) as (service, _):
        store = service.store
        await add_people(store, TEAM)
        safety = classified("safety", flags={"safety_threat": True}, priority="P1", score=95)
        event_id = uuid.uuid4().hex
        await send(service, CLASSIFIED, [safety], event_id=event_id)
        await send(service, CLASSIFIED, [safety], event_id=event_id)  # redelivery
        again = safety.model_copy(update={"contact_id": "second-contact"})
        await send(service, CLASSIFIED, [again])  # another contact, same threat
        await send(service, CLASSIFIED, [classified("legal", flags={"legal_threat": True})])
        await send(service, CLASSIFIED, [classified("manager")])
        cases = store["cases"]
        await wait_for(lambda: cases.find_one({"_id": "manager", "status": "assigned"}))
        note = "wants to talk to someone in charge"
        activity = CaseActivity(case_id="manager", kind="manager_requested", at=utcnow(), note=note)
        await send(service, ACTIVITY, [activity])

        events = await events_of(rsettings, "complaints.escalated", expect=3)
        got = {d["case_id"]: d for _, d in events}
        assert (got["safety"]["kind"], got["safety"]["to_role"]) == (
            "safety_threat",
            "security_oncall",
        )
        assert got["safety"]["to_person_id"] == "sec"
        assert (got["legal"]["to_role"], got["legal"]["to_person_id"]) == ("legal", "lawyer")
        assert (got["manager"]["to_role"], got["manager"]["to_person_id"]) == (
            "supervisor",
            "boss",
        )
        assert note in got["manager"]["reason"]
        safety_doc = await wait_for(
            lambda: cases.find_one({"_id": "safety", "escalations": {"$ne": []}})
        )
        assert [e["kind"] for e in safety_doc["escalations"]] == ["safety_threat"]
        assert safety_doc["assignment"]["person_id"] == "agent"
        await asyncio.sleep(1.0)
        events = await events_of(rsettings, "complaints.escalated", expect=3)
        assert len(events) == 3, events
        assigned = await events_of(rsettings, "complaints.assigned", expect=3)
        assert sorted(d["case_id"] for _, d in assigned) == ["legal", "manager", "safety"]


async def test_sla_warning_reassignment_and_breach(servers_up: None) -> None:
    settings = route_settings(route_sla_warning_fraction=0.5)
    async with route_running(settings) as (service, _):
        store = service.store
        cases = store["cases"]
        await add_people(
            store,
            [
                person("a", supervisor_id="boss"),
                person("b", supervisor_id="boss"),
                person("boss", roles=["supervisor"]),
            ],
        )
        await send(service, CLASSIFIED, [classified("late", due_in=timedelta(seconds=3))])
        doc = await wait_for(lambda: cases.find_one({"_id": "late", "status": "assigned"}))
        assert doc["assignment"]["person_id"] == "a"
        await send(service, CLASSIFIED, [classified("away", due_in=timedelta(seconds=5))])
        doc = await wait_for(lambda: cases.find_one({"_id": "away", "status": "assigned"}))
        assert doc["assignment"]["person_id"] == "b"
        await send(service, PRESENCE, [PresenceChanged(person_id="b", presence="away")])
        await send(service, CLASSIFIED, [classified("answered", due_in=timedelta(seconds=3))])
        await wait_for(lambda: cases.find_one({"_id": "answered", "status": "assigned"}))
        answered = CaseActivity(case_id="answered", kind="first_response", at=utcnow())
        await send(service, ACTIVITY, [answered])

        # "away" is taken from b (away) before its deadline and given to a.
        doc = await wait_for(
            lambda: cases.find_one({"_id": "away", "assignment.person_id": "a"}), timeout=20
        )
        warning = next(e for e in doc["escalations"] if e["kind"] == "sla_warning")
        assert warning["to_role"] == "supervisor" and "reassigned" in warning["reason"]
        await send(
            service, ACTIVITY, [CaseActivity(case_id="away", kind="first_response", at=utcnow())]
        )
        events = await events_of(settings, "complaints.escalated", expect=3, timeout=20)
        by = sorted(
            (d["case_id"], d["kind"], d["to_role"], d.get("to_person_id")) for _, d in events
        )
        assert by == [
            ("away", "sla_warning", "supervisor", "boss"),
            ("late", "sla_breach", "supervisor", "boss"),
            ("late", "sla_warning", "assignee", "a"),
        ]
        await asyncio.sleep(6.0)  # past every deadline: nothing more for answered cases
        events = await events_of(settings, "complaints.escalated", expect=3)
        assert len(events) == 3, events
        queue = await store["queue"].find_one({"_id": "late"})
        assert queue["sla_stage"] == "breached"
        assert (await store["queue"].find_one({"_id": "answered"}))["sla_stage"] == "responded"
    drop = service.store
    await drop.connect()
    await drop.client.drop_database(settings.mongodb_database)
    await drop.close()
