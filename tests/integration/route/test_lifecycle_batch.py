"""Route's other topics, a poll at a time, against the real MongoDB-protocol server: first
responses cost one read and one write per poll; presence changes one write per poll
(plus the hand-backs of whoever went offline, a case at a time); an invalid record is
rejected without holding back the rest of its poll.
"""

from __future__ import annotations

from typing import Any

from services.route.settings import RouteSettings
from services.route.state import WAITING
from shared.batch import Incoming
from shared.events import envelope
from shared.events.directory import PersonUpdated, PresenceChanged
from shared.events.lifecycle import CaseActivity
from tests.integration.route.conftest import add_people, person
from tests.integration.route.test_classified_batch import (
    CATEGORIES,
    check_capacity,
    new_cases,
    router_with,
)
from tests.support import CommandCounter, polled


def record(payload: Any, offset: int) -> Incoming:
    return polled(payload, offset=offset)


async def test_a_poll_of_first_responses_is_one_read_and_one_write(
    rsettings: RouteSettings,
) -> None:
    listener = CommandCounter()
    router, _ = await router_with(rsettings, listener)
    store = router.store
    try:
        skills = {c: 2 for c in CATEGORIES}
        await add_people(
            store, [person(f"f{i}", max_concurrent_cases=10, skills=skills) for i in range(3)]
        )
        await router.handle_classified(new_cases(20, "fr"))
        assert len(await check_capacity(store)) == 20
        at = envelope.utcnow()
        poll = [
            record(CaseActivity(case_id=f"fr-{i % 20}", kind="first_response", at=at), i)
            for i in range(30)  # some cases answered twice in the poll
        ]
        poll.append(record(PresenceChanged(person_id="f0", presence="away"), 30))  # wrong topic
        listener.counts.clear()
        handled = await router.handle_activity(poll)
        assert [r.offset for r, _ in handled.rejected] == [30]
        assert dict(listener.counts) == {"find queue": 1, "update queue": 1}
        queue = {d["_id"]: d async for d in store["queue"].find({})}
        assert {d["sla_stage"] for d in queue.values()} == {"responded"}
        assert not any("sla_next_at" in d for d in queue.values())
        # Redelivered: nothing left to answer, nothing written.
        listener.counts.clear()
        await router.handle_activity(list(reversed(poll[:30])))
        assert dict(listener.counts) == {"find queue": 1}
        assert {d["_id"]: d async for d in store["queue"].find({})} == queue
    finally:
        await store.close()


async def test_a_poll_of_presence_changes_is_one_write_and_hands_back_the_offline(
    rsettings: RouteSettings,
) -> None:
    listener = CommandCounter()
    router, published = await router_with(rsettings, listener)
    store = router.store
    try:
        skills = {c: 2 for c in CATEGORIES}
        await add_people(
            store, [person(f"o{i}", max_concurrent_cases=2, skills=skills) for i in range(4)]
        )
        await router.handle_classified(new_cases(6, "of"))
        before = await check_capacity(store)
        assert len(before) == 6
        gone = {c for c, p in before.items() if p == "o1"}
        published.ids.clear()
        listener.counts.clear()
        poll = [
            record(PresenceChanged(person_id="o0", presence="away"), 0),
            record(PresenceChanged(person_id="o0", presence="available"), 1),
            record(PresenceChanged(person_id="o3", presence="away"), 2),
            record(PresenceChanged(person_id="o1", presence="offline"), 3),
        ]
        await router.handle_presence(poll)
        # The presences in one bulk; a claim freed per case handed back.
        assert listener.counts["update people"] == 1
        assert listener.counts["findAndModify people"] == len(gone)
        people = {d["_id"]: d async for d in store["people"].find({})}
        assert {k: d["presence"] for k, d in people.items()} == {
            "o0": "available",
            "o1": "offline",
            "o2": "available",
            "o3": "away",
        }
        after = await check_capacity(store)
        assert set(after) == set(before) - gone and people["o1"]["load"] == 0
        assert {d["_id"] async for d in store[WAITING].find({})} == gone
        assert len(published.ids) == len(gone)  # one hand-back escalation per case

        # The directory: a record per person, latest wins, presence effects as above.
        listener.counts.clear()
        moved = person("o2", max_concurrent_cases=5, skills=skills, team="billing")
        await router.handle_directory(
            [
                record(PersonUpdated(person=person("o2", max_concurrent_cases=1)), 0),
                record(PersonUpdated(person=moved), 1),
            ]
        )
        assert dict(listener.counts) == {"update people": 1}
        doc = await store["people"].find_one({"_id": "o2"})
        assert doc is not None and doc["max_concurrent_cases"] == 5 and doc["team"] == "billing"
        assert (
            doc["load"] == len(doc["open_cases"]) == len([p for p in after.values() if p == "o2"])
        )
    finally:
        await store.close()
