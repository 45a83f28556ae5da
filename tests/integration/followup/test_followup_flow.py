"""Every follow-up path against the real broker and database, timers shortened to ~1 s."""

from __future__ import annotations

import asyncio
from datetime import timedelta
from typing import Any

from services.followup.app import build_service
from services.followup.measures import aggregate_measures, fold
from services.followup.settings import FollowupSettings
from shared.events.catalogue import ACTIVITY, ESCALATED, FOLLOWUP_REQUESTS, RESOLVED
from shared.events.complaint import SurveyAnswer
from shared.events.lifecycle import CaseActivity, CaseResolved
from tests.integration.followup.conftest import (
    assign,
    assigned,
    followup_settings,
    now,
    of_kind,
    read_topic,
    receive,
    received,
    seed_case,
    send,
)
from tests.support import running, wait_for

NEVER_S = 3600.0


async def _case(service: Any, case_id: str, **query: Any) -> dict[str, Any] | None:
    doc: dict[str, Any] | None = await service.store["cases"].find_one({"_id": case_id, **query})
    return doc


async def test_interim_updates_repeat_until_resolution(cleanup: list[FollowupSettings]) -> None:
    settings = followup_settings(followup_interim_cadence_seconds=1.5)
    cleanup.append(settings)
    async with running(build_service(settings)) as service:
        await seed_case(service.store, "c-slow", customer_id="cu-1", language="fi")
        # Resolution due in 2 s: half way (1 s) the customer gets an interim update.
        await assign(service, assigned("c-slow", "cu-1", resolution_in=2.0, language="fi"))
        doc = await wait_for(lambda: _case(service, "c-slow", **{"followup.scheduled": True}))
        assert doc["stages"]["followup_scheduled_at"] is not None
        records = await read_topic(settings, FOLLOWUP_REQUESTS.topic, at_least=2, settle=0.1)
        updates = of_kind(records, "interim_update")
        assert len(updates) >= 2 and len({r.event_id for r in updates}) == len(updates)
        first = updates[0].data
        assert first["language"] == "fi" and first["case_id"] == "c-slow"
        assert first["message"].startswith("Hei Maria Virtanen,")
        assert "Aino" in first["message"] and first["customer_id"] == "cu-1"
        await send(service, RESOLVED, CaseResolved(case_id="c-slow", resolved_at=now()))
        await wait_for(lambda: _case(service, "c-slow", status="resolved"))
        before = len(
            of_kind(
                await read_topic(settings, FOLLOWUP_REQUESTS.topic, at_least=2), "interim_update"
            )
        )
        await asyncio.sleep(2.5)  # more than a cadence: no update after resolution
        after = of_kind(
            await read_topic(settings, FOLLOWUP_REQUESTS.topic, at_least=2), "interim_update"
        )
        assert len(after) == before
        pending = await service.store["timers"].count_documents(
            {"case_id": "c-slow", "kind": "interim", "state": "pending"}
        )
        assert pending == 0


async def test_a_broken_promise_escalates_to_assignee_and_supervisor(
    cleanup: list[FollowupSettings],
) -> None:
    settings = followup_settings()
    cleanup.append(settings)
    async with running(build_service(settings)) as service:
        await service.store["people"].insert_one(
            {"_id": "aino", "name": "Aino Laine", "team": "care", "supervisor_id": "boss"}
        )
        await seed_case(service.store, "c-prom", customer_id="cu-2")
        await assign(service, assigned("c-prom", "cu-2", resolution_in=NEVER_S))
        await wait_for(lambda: _case(service, "c-prom", **{"followup.scheduled": True}))
        t = now()
        await send(
            service,
            ACTIVITY,
            CaseActivity(case_id="c-prom", kind="first_response", at=t, by_person_id="aino"),
            CaseActivity(
                case_id="c-prom",
                kind="promise_made",
                at=t,
                by_person_id="aino",
                promise_id="p-stock",
                promise_text="tell the customer when the item is back in stock",
                promise_due=t + timedelta(seconds=1),
            ),
            CaseActivity(
                case_id="c-prom",
                kind="promise_made",
                at=t,
                by_person_id="aino",
                promise_id="p-call",
                promise_text="call back tomorrow",
                promise_due=t + timedelta(seconds=1.5),
            ),
            CaseActivity(case_id="c-prom", kind="promise_kept", at=t, promise_id="p-call"),
        )
        records = await read_topic(settings, ESCALATED.topic, at_least=2, settle=2.0)
        assert len(records) == 2  # the kept promise raised nothing
        by_role = {r.data["to_role"]: r.data for r in records}
        assert by_role["assignee"]["to_person_id"] == "aino"
        assert by_role["supervisor"]["to_person_id"] == "boss"
        assert {r.data["kind"] for r in records} == {"promise_broken"}
        assert "back in stock" in by_role["assignee"]["reason"]
        doc = await _case(service, "c-prom")
        assert doc is not None
        states = {p["promise_id"]: p["state"] for p in doc["promises"]}
        assert states == {"p-stock": "broken", "p-call": "kept"}
        assert doc["stages"]["first_response_at"] is not None
        assert doc["measures"]["first_response_sla"] == "met"
        assert doc["measures"]["ttfr_seconds"] >= 0


async def _resolve_and_wait_for_survey(
    service: Any, settings: FollowupSettings, case_id: str, customer_id: str, **case: Any
) -> None:
    await seed_case(service.store, case_id, customer_id=customer_id, **case)
    await assign(service, assigned(case_id, customer_id, resolution_in=NEVER_S))
    await wait_for(lambda: _case(service, case_id, **{"followup.scheduled": True}))
    await send(service, RESOLVED, CaseResolved(case_id=case_id, resolved_at=now()))
    await wait_for(lambda: _case(service, case_id, **{"followup.survey_sent_at": {"$exists": 1}}))


async def test_satisfied_answer_closes_thanks_and_invites_a_high_reach_advocate(
    cleanup: list[FollowupSettings],
) -> None:
    settings = followup_settings(followup_survey_delay_seconds=0.5)
    cleanup.append(settings)
    async with running(build_service(settings)) as service:
        await _resolve_and_wait_for_survey(
            service, settings, "c-happy", "cu-3", reach=50_000, channel="social", public=True
        )
        survey = SurveyAnswer(kind="csat", score=5, scale_max=5, comment="great", case_id="c-happy")
        await receive(service, received("c-new", "cu-3", survey=survey))
        doc = await wait_for(lambda: _case(service, "c-happy", status="closed"))
        assert doc["followup"]["closed_reason"] == "satisfied"
        assert doc["followup"]["advocate"] is True
        assert doc["satisfaction"]["score"] == 5 and doc["satisfaction"]["comment"] == "great"
        assert doc["measures"]["csat"] == 5
        records = await read_topic(settings, FOLLOWUP_REQUESTS.topic, at_least=3)
        kinds = sorted(r.data["kind"] for r in records)
        assert kinds == ["advocacy", "survey_request", "thank_you"]
        # No reminder, no "no response" close: the answer cancelled them.
        states = {
            t["kind"]: t["state"]
            async for t in service.store["timers"].find({"case_id": "c-happy"})
        }
        assert states.get("reminder") in (None, "cancelled")


async def test_satisfied_customer_with_small_reach_is_thanked_not_invited(
    cleanup: list[FollowupSettings],
) -> None:
    settings = followup_settings(followup_survey_delay_seconds=0.3)
    cleanup.append(settings)
    async with running(build_service(settings)) as service:
        await _resolve_and_wait_for_survey(service, settings, "c-ok", "cu-4", reach=20)
        # No case id on the answer: matched to the customer's recently resolved case.
        survey = SurveyAnswer(kind="csat", score=4, scale_max=5)
        await receive(service, received("c-other", "cu-4", survey=survey))
        doc = await wait_for(lambda: _case(service, "c-ok", status="closed"))
        assert not doc["followup"].get("advocate")
        records = await read_topic(settings, FOLLOWUP_REQUESTS.topic, at_least=2)
        assert sorted(r.data["kind"] for r in records) == ["survey_request", "thank_you"]


async def test_unsatisfied_answer_reopens_with_raised_urgency_and_routes_back(
    cleanup: list[FollowupSettings],
) -> None:
    settings = followup_settings(
        followup_survey_delay_seconds=0.3, followup_reminder_delay_seconds=1.0
    )
    cleanup.append(settings)
    async with running(build_service(settings)) as service:
        await _resolve_and_wait_for_survey(service, settings, "c-sad", "cu-5", priority="P3")
        survey = SurveyAnswer(kind="csat", score=2, scale_max=5, case_id="c-sad")
        await receive(service, received("c-sad", "cu-5", survey=survey))
        doc = await wait_for(lambda: _case(service, "c-sad", status="reopened"))
        assert doc["followup"]["cycle"] == 1 and doc["measures"]["reopens"] == 1
        assert doc["followup"]["reopen_priority"] == "P2"
        assert doc["satisfaction"]["outcome"] == "dissatisfied"
        (escalation,) = await read_topic(settings, ESCALATED.topic, at_least=1)
        assert escalation.data["kind"] == "dissatisfied"
        assert escalation.data["priority"] == "P2"
        # Route assigns it again: a new follow-up plan for the new cycle.
        await assign(service, assigned("c-sad", "cu-5", resolution_in=NEVER_S))
        await wait_for(
            lambda: service.store["timers"].find_one(
                {"case_id": "c-sad", "kind": "interim", "payload.cycle": 1}
            )
        )
        await asyncio.sleep(1.5)  # past the reminder delay: the answer cancelled it
        records = await read_topic(settings, FOLLOWUP_REQUESTS.topic, at_least=1)
        assert [r.data["kind"] for r in records] == ["survey_request"]


async def test_no_answer_gets_one_reminder_then_closes_as_no_response(
    cleanup: list[FollowupSettings],
) -> None:
    settings = followup_settings(
        followup_survey_delay_seconds=0.3,
        followup_reminder_delay_seconds=0.7,
        followup_no_response_close_seconds=0.7,
    )
    cleanup.append(settings)
    async with running(build_service(settings)) as service:
        await _resolve_and_wait_for_survey(service, settings, "c-quiet", "cu-6")
        doc = await wait_for(lambda: _case(service, "c-quiet", status="closed"), timeout=15)
        assert doc["followup"]["closed_reason"] == "no_response"
        assert doc["satisfaction"]["outcome"] == "no_response"
        records = await read_topic(settings, FOLLOWUP_REQUESTS.topic, at_least=2, settle=1.0)
        assert [r.data["kind"] for r in records] == ["survey_request", "survey_reminder"]


async def test_public_complaint_in_the_watch_window_reopens_the_case(
    cleanup: list[FollowupSettings],
) -> None:
    settings = followup_settings(followup_watch_seconds=60.0)
    cleanup.append(settings)
    async with running(build_service(settings)) as service:
        await seed_case(
            service.store,
            "c-pub",
            customer_id="cu-7",
            channel="social",
            public=True,
            priority="P2",
        )
        await assign(service, assigned("c-pub", "cu-7", resolution_in=NEVER_S, channel="social"))
        await wait_for(lambda: _case(service, "c-pub", **{"followup.scheduled": True}))
        await send(service, RESOLVED, CaseResolved(case_id="c-pub", resolved_at=now()))
        doc = await wait_for(lambda: _case(service, "c-pub", status="resolved"))
        assert doc["followup"]["watch_channels"] == ["social"]
        # Not reopened by: another customer's post, a private email, a post elsewhere.
        await receive(
            service,
            received("c-x", "cu-other", channel="social", public=True),
            received("c-y", "cu-7", channel="email"),
            received("c-z", "cu-7", channel="review", public=True),
        )
        await asyncio.sleep(1.0)
        assert await _case(service, "c-pub", status="resolved")
        await receive(service, received("c-new", "cu-7", channel="social", public=True))
        doc = await wait_for(lambda: _case(service, "c-pub", status="reopened"))
        assert doc["followup"]["reopen_reason"] == "public_complaint"
        assert doc["followup"]["reopen_priority"] == "P1"
        (escalation,) = await read_topic(settings, ESCALATED.topic, at_least=1)
        assert escalation.data["kind"] == "reopened" and escalation.data["priority"] == "P1"


async def test_measures_per_case_and_per_team_and_channel(
    cleanup: list[FollowupSettings],
) -> None:
    settings = followup_settings()
    cleanup.append(settings)
    async with running(build_service(settings)) as service:
        opened = now() - timedelta(minutes=10)
        await seed_case(service.store, "m-1", customer_id="cu-8", opened_at=opened)
        await seed_case(
            service.store, "m-2", customer_id="cu-9", opened_at=opened, channel="survey"
        )
        await assign(
            service,
            assigned("m-1", "cu-8", resolution_in=NEVER_S, team="care"),
            assigned("m-2", "cu-9", resolution_in=NEVER_S, team="care", channel="survey"),
        )
        # Topics are ordered only within themselves: let each step land before the next,
        # as a CRM's first response and resolution come long after the assignment.
        for case_id in ("m-1", "m-2"):
            await wait_for(
                lambda c=case_id: _case(
                    service, c, **{"stages.followup_scheduled_at": {"$exists": True}}
                )
            )
        await send(
            service,
            ACTIVITY,
            CaseActivity(case_id="m-1", kind="first_response", at=opened + timedelta(minutes=2)),
        )
        await wait_for(
            lambda: _case(service, "m-1", **{"stages.first_response_at": {"$exists": True}})
        )
        await send(service, RESOLVED, CaseResolved(case_id="m-1", resolved_at=now()))
        doc = await wait_for(lambda: _case(service, "m-1", **{"measures.resolved": True}))
        m = doc["measures"]
        assert m["team"] == "care" and m["channel"] == "email" and m["silent"] is False
        assert abs(m["ttfr_seconds"] - 120) < 1 and m["ttr_seconds"] >= 600
        assert m["resolution_sla"] == "met"
        await wait_for(lambda: _case(service, "m-2", **{"measures.silent": True}))
        # Some finished cases beside them, as if from earlier days.
        await service.store["cases"].insert_many(
            [
                {
                    "_id": "m-3",
                    "opened_at": opened,
                    "measures": {
                        "team": "care",
                        "channel": "email",
                        "resolved": True,
                        "ttr_seconds": 100.0,
                        "resolution_sla": "breached",
                        "csat": 2,
                        "reopens": 1,
                    },
                },
                {
                    "_id": "m-4",
                    "opened_at": opened,
                    "measures": {"team": "billing", "channel": "chat", "resolved": True, "csat": 5},
                },
            ]
        )
        rows = {(s.team, s.channel): s for s in await aggregate_measures(service.store)}
        care_email = rows[("care", "email")]
        assert care_email.cases == 2 and care_email.resolved == 2
        assert care_email.sla_met_rate == 0.5 and care_email.reopen_rate == 0.5
        assert care_email.csat_average == 2.0
        assert rows[("care", "survey")].silent_share == 1.0
        # The server's aggregation agrees with the same arithmetic done in Python.
        docs = [d["measures"] async for d in service.store["cases"].find({})]
        for by in (("team",), ("channel",), ("team", "channel"), ()):
            server = [s.as_dict() for s in await aggregate_measures(service.store, by)]
            local = [s.as_dict() for s in fold(docs, by)]
            assert server == local, by
