"""followup and route together: an unsatisfied answer reopens the case, route assigns it
again to a senior, and followup starts a new plan from that assignment."""

from __future__ import annotations

from typing import Any

from services.followup.app import build_service
from services.followup.settings import FollowupSettings
from services.route.app import build
from shared.events.catalogue import ESCALATED, FOLLOWUP_REQUESTS, RESOLVED
from shared.events.complaint import SurveyAnswer
from shared.events.lifecycle import CaseResolved
from tests.integration.followup.conftest import (
    followup_settings,
    now,
    read_topic,
    receive,
    received,
    seed_case,
    send,
)
from tests.integration.route.conftest import add_people, classified, classify, person
from tests.integration.route.conftest import route_settings as make_route_settings
from tests.support import running, wait_for

TEAM = [
    person("agent", seniority=2, supervisor_id="boss"),
    person("senior", seniority=4),
    person("boss", roles=["supervisor"], seniority=5),
]


async def test_unsatisfied_answer_reopens_and_route_assigns_it_again(
    cleanup: list[FollowupSettings],
) -> None:
    fsettings = followup_settings(
        followup_survey_delay_seconds=0.3, followup_reminder_delay_seconds=30.0
    )
    cleanup.append(fsettings)
    shared = ("topic_prefix", "mongodb_database", "consumer_group_prefix")
    rsettings = make_route_settings(**{name: getattr(fsettings, name) for name in shared})
    route_service, _ = build(rsettings)
    async with running(build_service(fsettings)) as followup, running(route_service) as route:
        store = followup.store
        cases = store["cases"]
        await add_people(store, TEAM)
        # As ingest and classify leave it; route assigns it to the (junior) agent.
        await seed_case(store, "c-loop", customer_id="cu-loop", priority="P3")
        await classify(route, classified("c-loop", customer_id="cu-loop", priority="P3"))
        await wait_for(
            lambda: cases.find_one({"_id": "c-loop", "followup.assignee.person_id": "agent"})
        )
        resolved = CaseResolved(case_id="c-loop", resolved_at=now(), resolved_by="agent")
        await send(followup, RESOLVED, resolved)
        await wait_for(
            lambda: cases.find_one(
                {"_id": "c-loop", "status": "resolved", "followup.survey_sent_at": {"$ne": None}}
            )
        )
        survey = SurveyAnswer(kind="csat", score=2, scale_max=5, case_id="c-loop")
        await receive(followup, received("c-loop", "cu-loop", survey=survey))  # as ingest would

        (escalation,) = await read_topic(fsettings, ESCALATED.topic, at_least=1)
        assert escalation.data["kind"] == "dissatisfied" and escalation.data["priority"] == "P2"
        assert escalation.data["to_person_id"] == "boss"
        doc: Any = await wait_for(
            lambda: cases.find_one(
                {
                    "_id": "c-loop",
                    "followup.cycle": 1,
                    "followup.assignee.person_id": "senior",
                    "followup.priority": "P2",
                }
            )
        )
        assert doc["satisfaction"]["outcome"] == "dissatisfied"
        assert doc["assignment"]["person_id"] == "senior" and doc["status"] == "assigned"
        assert any("case reopened (dissatisfied)" in r for r in doc["assignment"]["reasons"])
        timer: Any = await wait_for(
            lambda: store["timers"].find_one(
                {"case_id": "c-loop", "kind": "interim", "payload.cycle": 1}
            )
        )
        assert timer["state"] == "pending"
        agent: Any = await store["people"].find_one({"_id": "agent"})
        assert agent["load"] == 0
        requests = await read_topic(fsettings, FOLLOWUP_REQUESTS.topic, at_least=1)
        assert [r.data["kind"] for r in requests] == ["survey_request"]
