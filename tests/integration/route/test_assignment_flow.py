"""Directory, matching, continuity and fair tie-breaking against the real servers."""

from __future__ import annotations

from datetime import UTC, datetime

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


async def test_directory_is_loaded_and_updated_through_events(rsettings: RouteSettings) -> None:
    async with route_running(rsettings) as (service, _):
        people = service.store["people"]
        aino = person(
            "aino",
            skills={"delivery": 4, "billing_refund": 2},
            languages=["fi", "en"],
            channels=["email", "chat"],
            seniority=3,
            authority_limits={"refund": 200, "gift_card": 30},
            max_concurrent_cases=4,
            supervisor_id="boss",
        )
        await send(service, DIRECTORY, [PersonUpdated(person=aino)])
        doc = await wait_for(lambda: people.find_one({"_id": "aino"}))
        assert doc["skills"] == {"delivery": 4, "billing_refund": 2}
        assert doc["authority_limits"]["refund"] == 200
        assert doc["shift"]["timezone"] == "UTC" and doc["load"] == 0
        await send(service, PRESENCE, [PresenceChanged(person_id="aino", presence="away")])
        await wait_for(lambda: people.find_one({"_id": "aino", "presence": "away"}))
        # A later whole record replaces the directory fields but keeps the load.
        changed = aino.model_copy(update={"seniority": 4, "presence": "available"})
        await send(service, DIRECTORY, [PersonUpdated(person=changed)])
        doc = await wait_for(lambda: people.find_one({"_id": "aino", "seniority": 4}))
        assert doc["presence"] == "available" and doc["open_cases"] == []


async def test_skill_language_and_seniority_matching(rsettings: RouteSettings) -> None:
    async with route_running(rsettings) as (service, _):
        await add_people(
            service.store,
            [
                person("fi-junior", skills={"delivery": 4}, languages=["fi"], seniority=1),
                person("fi-senior", skills={"delivery": 2}, languages=["fi"], seniority=4),
                person("en-expert", skills={"delivery": 5}, languages=["en"], seniority=5),
                person("fi-billing", skills={"billing_refund": 5}, languages=["fi"]),
                person("fi-phone", skills={"delivery": 5}, languages=["fi"], channels=["phone"]),
            ],
        )
        plain = classified("c-plain", language="fi")
        p1 = classified("c-p1", language="fi", priority="P1", score=90)
        litigant = classified("c-law", language="fi", profile="litigant")
        billing = classified("c-bill", language="fi", category="billing_refund")
        persian = classified("c-fa", language="fa")
        await classify(service, plain, p1, litigant, billing, persian)
        cases = service.store["cases"]
        # A case can wait a moment behind a more urgent one being assigned: wait for the end.
        await wait_for(count_is(cases, {"status": "assigned"}, 4))
        await wait_for(count_is(cases, {"status": "queued"}, 1))
        expected = {
            "c-plain": "fi-junior",  # highest skill among fi email people
            "c-p1": "fi-senior",  # P1 needs seniority >= 3
            "c-law": "fi-senior",  # litigant needs seniority too
            "c-bill": "fi-billing",
        }
        for case_id, person_id in expected.items():
            doc = await cases.find_one({"_id": case_id})
            assert doc["status"] == "assigned", doc
            assert doc["assignment"]["person_id"] == person_id, (case_id, doc["assignment"])
            assert doc["stages"]["assigned_at"] is not None
            assert doc["assignment_history"][0]["person_id"] == person_id
        assert (await cases.find_one({"_id": "c-fa"}))["status"] == "queued"
        law = await cases.find_one({"_id": "c-law"})
        assert any(
            "seniority 4 >= 3" in r and "litigant" in r for r in law["assignment"]["reasons"]
        )

        events = await events_of(rsettings, "complaints.assigned", expect=4)
        by_case = {data["case_id"]: data for _, data in events}
        assert {c: d["assignee"]["person_id"] for c, d in by_case.items()} == expected
        assert any("speaks fi" in r for r in by_case["c-plain"]["reasons"])
        assert by_case["c-p1"]["priority"] == "P1" and by_case["c-p1"]["first_response_due"]


async def test_continuity_and_round_robin(rsettings: RouteSettings) -> None:
    async with route_running(rsettings) as (service, _):
        await add_people(service.store, [person("a"), person("b"), person("c")])
        cases = service.store["cases"]
        people = service.store["people"]

        async def assign_and_resolve(case_id: str, customer: str) -> str:
            await classify(service, classified(case_id, customer_id=customer))
            doc = await wait_for(lambda: cases.find_one({"_id": case_id, "status": "assigned"}))
            await send(
                service,
                RESOLVED,
                [CaseResolved(case_id=case_id, resolved_at=utcnow())],
            )
            await wait_for(count_is(people, {"load": {"$gt": 0}}, 0))
            return doc["assignment"]["person_id"]

        # Equally fit people take turns (round robin on the last assignment).
        order = [await assign_and_resolve(f"rr-{i}", f"cust-{i}") for i in range(4)]
        assert order[:3] == ["a", "b", "c"] and order[3] == "a"
        # The customer of rr-1 comes back: b again, although round robin says b is not next.
        person_id = await assign_and_resolve("again", "cust-1")
        assert person_id == "b"
        doc = await cases.find_one({"_id": "again"})
        assert doc["assignment"]["continuity"] is True
        assert "handled this customer before" in doc["assignment"]["reasons"]
        events = await events_of(rsettings, "complaints.assigned", expect=5)
        last = next(d for _, d in events if d["case_id"] == "again")
        assert last["continuity"] is True
        rr = next(d for _, d in events if d["case_id"] == "rr-1")
        assert any("round robin" in r for r in rr["reasons"])
        assert datetime.fromisoformat(last["assigned_at"]).tzinfo == UTC or last["assigned_at"]
