"""Dispatch: giving waiting cases to people. Leases on the queue entry, claims of a
person's capacity, the drain of the waiting cases, and the load and queue gauges.
"""

from __future__ import annotations

from collections import Counter, defaultdict
from collections.abc import Mapping, Sequence
from datetime import datetime, timedelta
from typing import Any

from pymongo import ReturnDocument

from shared.events.catalogue import ASSIGNED
from shared.events.envelope import derived_id
from shared.events.pipeline import Assignee, CaseAssigned
from shared.store import Document

from . import metrics
from .assignment import EPOCH, Choice, PersonView, Requirement, rank, skill_level
from .outbox import Outbox
from .state import PENDING, WAITING, _utc, outbox_entry


class Dispatch(Outbox):
    """Assigns waiting cases: at once in a handler (``_place``) or by the drain."""

    async def _place(
        self, doc: Document, *, unwait: bool = True
    ) -> tuple[Document, Document] | None:
        """A waiting case, in a handler: assign it now unless others come first; else enter
        it in queue_waiting. A crash anywhere here is repeated by the redelivery, whose
        flush publishes what the outbox holds (so no route_outbox marker is needed)."""
        ahead = await self._anyone_ahead(doc)
        if not ahead:
            assigned = await self._assign(doc, unwait=unwait, redelivered=True)
            if assigned is not None:
                return assigned
        # Still waiting (or taken meanwhile by another replica: the drain drops the entry).
        await self._wait_index(doc)
        if ahead:
            self.wake.set()  # others wait longer or matter more: the drain keeps the order
        return None

    async def _anyone_ahead(self, doc: Document) -> bool:
        """A waiting case that comes first (more urgent, or as urgent and waiting longer).

        Reads ``queue_waiting`` (waiting cases only). A stale entry can only make this say
        yes: the case then waits for the drain, which is woken at once and drops the entry.
        """
        ahead = await self.store[WAITING].find_one(
            {
                "_id": {"$ne": doc["_id"]},
                "$or": [
                    {"urgency": {"$gt": doc["urgency"]}},
                    {"urgency": doc["urgency"], "enqueued_at": {"$lt": doc["enqueued_at"]}},
                ],
            },
            {"_id": 1},
        )
        return ahead is not None

    async def available_people(self) -> list[PersonView]:
        cursor = self.store["people"].find({"presence": "available"})
        return [PersonView.from_doc(d) async for d in cursor]

    def _requirement(self, doc: Document, previous: tuple[str, ...] = ()) -> Requirement:
        req = doc["req"]
        reopen = (doc.get("reopen") or {}) if req.get("reopened") else {}
        before = reopen.get("previous_assignee")
        return Requirement(
            case_id=doc["_id"],
            category=req["category"],
            language=req.get("language") or "und",
            channel=req.get("channel") or "",
            priority=req.get("priority") or "P4",
            profile=req.get("profile") or "",
            legal_threat=bool(req.get("legal_threat")),
            safety_threat=bool(req.get("safety_threat")),
            previous_handlers=previous,
            reopened=str(req.get("reopened") or ""),
            preferred=tuple(reopen.get("prefer") or ()),
            last_resort=frozenset([before] if before else []),
        )

    async def _assign(
        self,
        doc: Document,
        people: list[PersonView] | None = None,
        *,
        unwait: bool = True,
        redelivered: bool = False,
    ) -> tuple[Document, Document] | None:
        """Try to give one waiting case to the best free person: (queue doc, person doc).

        ``unwait``: the case may have a waiting entry to drop once assigned;
        ``redelivered``: called from a handler, whose redelivery repeats the flush.
        """
        now = self.clock()
        min_seniority = self.settings.route_senior_min_seniority
        people = people if people is not None else await self.available_people()
        if not rank(people, self._requirement(doc), now, min_seniority):
            await self._mark_queued(doc)
            return None
        lease_until = now + timedelta(seconds=self.settings.route_lease_seconds)
        before: dict[str, Any] = {}

        def lease(d: Document | None) -> dict[str, Any] | None:
            if d is None or d.get("state") != "waiting":
                return None
            if _utc(d.get("lease_until") or EPOCH) >= now:
                return None
            before["doc"] = d
            return {"$set": {"lease_until": lease_until, "lease_owner": self.token}}

        leased, _ = await self._cas(doc["_id"], doc, lease)
        if leased is None:
            return None  # another replica is on it, or it is no longer waiting
        earlier = before["doc"]
        # A claim can only be left held by an attempt that did not finish (its lease was
        # never reset) or by a hand-back/reopen of a case someone handled.
        maybe_held = _utc(earlier.get("lease_until") or EPOCH) > EPOCH or bool(
            earlier.get("handled_by")
        )
        req = self._requirement(leased, await self._previous_handlers(leased))
        choice, person_doc = await self._claim(
            leased["_id"], rank(people, req, now, min_seniority), maybe_held=maybe_held
        )
        if choice is None or person_doc is None:
            reset, current = await self._cas(
                leased["_id"],
                leased,
                lambda d: (
                    {"$set": {"lease_until": EPOCH}}
                    if d is not None and d.get("lease_owner") == self.token
                    else None
                ),
            )
            await self._mark_queued(reset or current or leased)
            return None
        person = choice.person
        update = self._assignment_update(leased, choice, now)
        marker = None if redelivered else await self._outbox_marker("queue", leased["_id"])
        done, _ = await self._cas(
            leased["_id"],
            leased,
            lambda d: (
                update
                if d is not None
                and d.get("state") == "waiting"
                and d.get("lease_owner") == self.token
                else None
            ),
        )
        if done is None:
            # Lost the lease or the case was resolved meanwhile: give the capacity back.
            await self._release_claim(leased["_id"], person.person_id)
            if marker is not None:
                await self.store[PENDING].delete_one({"_id": marker})
            return None
        metrics.assignments.labels(
            person.team, req.priority, "yes" if choice.continuity else "no"
        ).inc()
        # The first state route mirrors of a new case assigned at once: waiting since its
        # first enqueue (rev 1) and never marked queued.
        unmirrored = int(earlier.get("rev", 0)) == 1 and earlier.get("status_mirrored") is None
        flushed = await self._flush("queue", done, marker=marker, unmirrored=unmirrored)
        if unwait:
            await self._unwait(done["_id"], int(done.get("rev", 0)))
        return flushed or done, person_doc

    def _assignment_update(self, doc: Document, choice: Choice, now: datetime) -> dict[str, Any]:
        """The update that gives the waiting case ``doc`` to ``choice`` and stores its
        CaseAssigned in the outbox (event id from the case and its assignment count)."""
        seq = int(doc.get("seq", 0)) + 1
        person = choice.person
        event_id = derived_id(doc["_id"], "assigned", str(seq))
        enqueued = _utc(doc.get("enqueued_at") or now)
        assignment = {
            "person_id": person.person_id,
            "name": person.name,
            "team": person.team,
            "email": person.email,
            "reasons": choice.reasons,
            "continuity": choice.continuity,
            "assigned_at": now,
            "seq": seq,
            "event_id": event_id,
            "waited_seconds": max(0.0, (now - enqueued).total_seconds()),
        }
        payload = self._assigned_event(doc, assignment)
        return {
            "$set": {
                "state": "assigned",
                "person_id": person.person_id,
                "assignment": assignment,
                "seq": seq,
                "lease_until": EPOCH,
                f"outbox.{event_id}": outbox_entry(ASSIGNED, payload, doc["_id"]),
            },
            "$min": {"outbox_at": now},
            "$inc": {"rev": 1},
            "$addToSet": {"handled_by": person.person_id},
            "$push": {
                "history": {
                    "seq": seq,
                    "action": "assigned",
                    "person_id": person.person_id,
                    "team": person.team,
                    "at": now,
                }
            },
        }

    async def _claim(
        self, case_id: str, ranked: Sequence[Choice], *, maybe_held: bool = True
    ) -> tuple[Choice | None, Document | None]:
        people = self.store["people"]
        # A claim made before a crash, by someone still available, is reused as it stands.
        held = (
            await people.find_one({"open_cases": case_id, "presence": "available"})
            if maybe_held
            else None
        )
        if held is not None:
            for choice in ranked:
                if choice.person.person_id == held["_id"]:
                    return choice, held
            view = PersonView.from_doc(held)
            return Choice(view, False, ["claim recovered after a restart"]), held
        for choice in ranked:
            p = choice.person
            claimed = await people.find_one_and_update(
                {
                    "_id": p.person_id,
                    "presence": "available",
                    "max_concurrent_cases": p.max_cases,
                    "load": {"$lt": p.max_cases},
                    "open_cases": {"$ne": case_id},
                },
                {
                    "$inc": {"load": 1},
                    "$addToSet": {"open_cases": case_id},
                    "$set": {"last_assigned_at": self.clock()},
                },
                return_document=ReturnDocument.AFTER,
            )
            if claimed is not None:
                metrics.person_load_ratio.observe(_ratio(claimed))
                return choice, claimed
        return None, None

    async def _release_claim(self, case_id: str, person_id: str) -> None:
        released = await self.store["people"].find_one_and_update(
            {"_id": person_id, "open_cases": case_id},
            {"$pull": {"open_cases": case_id}, "$inc": {"load": -1}},
            return_document=ReturnDocument.AFTER,
        )
        if released is not None:
            metrics.person_load_ratio.observe(_ratio(released))

    def _assigned_event(self, doc: Document, assignment: Mapping[str, Any]) -> CaseAssigned:
        req, sla = doc["req"], doc.get("sla") or {}
        return CaseAssigned(
            case_id=doc["_id"],
            customer_id=doc.get("customer_id") or "",
            assignee=Assignee(
                person_id=assignment["person_id"],
                name=assignment["name"],
                team=assignment["team"],
                email=assignment.get("email"),
            ),
            reasons=assignment["reasons"],
            priority=req["priority"],
            category=req["category"],
            language=req.get("language") or "und",
            channel=req["channel"],
            continuity=assignment["continuity"],
            assigned_at=assignment["assigned_at"],
            waited_seconds=assignment["waited_seconds"],
            first_response_due=sla.get("first_response_due"),
            resolution_due=sla.get("resolution_due"),
        )

    async def _mark_queued(self, doc: Document) -> None:
        if doc.get("status_mirrored") == "queued":
            return
        await self._project(doc)
        # Only a flag for skipping this projection next time: it does not bump the version
        # and is dropped when the entry changed since ``doc`` (then projected again later).
        await self.store["queue"].update_one(
            {"_id": doc["_id"], "v": doc.get("v")}, {"$set": {"status_mirrored": "queued"}}
        )

    async def drain(self) -> int:
        """Assign waiting cases, most urgent then longest waiting first; returns how many.

        Reads ``queue_waiting``, then the entries' queue documents by _id; an entry whose
        case is no longer waiting is dropped (when its rev is not newer than the case's, or
        it is older than a lease: a move into waiting that never happened), one whose
        figures are out of date is refreshed.
        """
        now = self.clock()
        entries = (
            await self.store[WAITING]
            .find({})
            .sort([("urgency", -1), ("enqueued_at", 1)])
            .limit(self.settings.route_drain_batch)
            .to_list()
        )
        if not entries:
            return 0
        ids = [e["_id"] for e in entries]
        docs = {d["_id"]: d async for d in self.store["queue"].find({"_id": {"$in": ids}})}
        stale_before = now - timedelta(seconds=max(self.settings.route_lease_seconds, 30.0))
        waiting = []
        for entry in entries:
            doc = docs.get(entry["_id"])
            if doc is None or doc.get("state") != "waiting":
                newer = doc is not None and int(entry.get("rev") or 0) > int(doc.get("rev", 0))
                if not newer or _utc(entry.get("at") or EPOCH) < stale_before:
                    await self.store[WAITING].delete_one(
                        {"_id": entry["_id"], "stamp": entry.get("stamp")}
                    )
                continue
            if (
                entry.get("rev") != doc.get("rev")
                or entry.get("urgency") != doc.get("urgency")
                or _utc(entry.get("enqueued_at") or EPOCH) != _utc(doc.get("enqueued_at") or EPOCH)
            ):
                await self._wait_index(doc)
            waiting.append(doc)
        waiting.sort(key=lambda d: (-int(d.get("urgency", 0)), _utc(d.get("enqueued_at") or EPOCH)))
        if not waiting:
            return 0
        people = await self.available_people()
        assigned = 0
        for doc in waiting:
            if not any(p.load < p.max_cases for p in people):
                break
            if _utc(doc.get("lease_until") or EPOCH) > now:
                continue
            result = await self._assign(doc, people)
            if result is not None:
                assigned += 1
                updated = PersonView.from_doc(result[1])
                people = [updated if p.person_id == updated.person_id else p for p in people]
        return assigned

    async def refresh_gauges(self) -> None:
        people = [PersonView.from_doc(d) async for d in self.store["people"].find({})]
        per_team: Counter[str] = Counter()
        for p in people:
            per_team[p.team] += p.load
        for team, load in per_team.items():
            metrics.open_cases.labels(team).set(load)
        # A waiting case counts against the team with most people skilled in its category.
        skilled: dict[str, Counter[str]] = defaultdict(Counter)
        for p in people:
            if p.takes_cases:
                for category in p.skills:
                    if skill_level(p, category) > 0:
                        skilled[category][p.team] += 1
        waiting: Counter[str] = Counter({team: 0 for team in per_team})
        cursor = self.store[WAITING].find({}, {"category": 1}).limit(5000)
        async for doc in cursor:
            category = doc.get("category") or "other"
            teams = skilled.get(category)
            waiting[teams.most_common(1)[0][0] if teams else "none"] += 1
        for team, n in waiting.items():
            metrics.queue_length.labels(team).set(n)


def _ratio(person_doc: Mapping[str, Any]) -> float:
    capacity = int(person_doc.get("max_concurrent_cases") or 0)
    return min(1.0, int(person_doc.get("load") or 0) / capacity) if capacity else 1.0
