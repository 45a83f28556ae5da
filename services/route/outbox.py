"""The outbox and the case mirror: publishing stored events, mirroring route's fields onto
the case, and the sweep that publishes what a crash left behind.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from datetime import timedelta
from typing import Any

from pymongo import ReturnDocument
from pymongo.errors import DuplicateKeyError

from shared.events.catalogue import ASSIGNED
from shared.events.common import CaseStatus
from shared.store import Document

from .assignment import EPOCH
from .state import CAS_ATTEMPTS, FINAL_CASE_STATUSES, PENDING, RouteState, _utc, to_outgoing

log = logging.getLogger(__name__)


class Outbox(RouteState):
    """Publishes what the decisions stored (see the outbox in state.py)."""

    async def _project(self, doc: Mapping[str, Any], *, unmirrored: bool = False) -> None:
        """Mirror route's fields onto the case document (idempotent, never backwards).

        Every state change bumps the queue document's ``rev``; the case remembers the rev
        it mirrors, so a slow writer holding an older state cannot overwrite a newer one.
        The case's (route_rev, status) is read by _id and the update compares exactly those
        (keyed by the unique index (_id, route_rev, status)): one atomic update of history,
        rev, assignment and status (was: a rev-guarded update and a status update).
        """
        cases = self.store["cases"]
        case_id = doc["_id"]
        if mirror_status(doc) is None:
            _, update = mirror_update(doc, None) or ({}, {})
            await cases.update_one({"_id": case_id}, update, upsert=True)
            return
        # ``unmirrored``: route never mirrored this case (a new case assigned at once), so
        # it is as ingest left it, open: try that without reading it first (a miss reads
        # it and decides again).
        guess: Document | None = None
        if unmirrored:
            guess = {"_id": case_id, "route_rev": None, "status": CaseStatus.OPEN.value}
        for _ in range(CAS_ATTEMPTS):
            case: Document | None
            if guess is not None:
                case, guess = guess, None
            else:
                case = await cases.find_one({"_id": case_id}, {"route_rev": 1, "status": 1})
            planned = mirror_update(doc, case)
            if planned is None:
                return
            query, update = planned
            try:
                result = await cases.update_one(query, update, upsert=case is None)
            except DuplicateKeyError:
                continue  # the case was created meanwhile: read it again
            if result.matched_count or result.upserted_id is not None:
                return
        log.warning("case %s kept changing while route mirrored rev %s", case_id, doc.get("rev"))

    async def _flush(
        self,
        collection: str,
        doc: Mapping[str, Any] | None,
        *,
        mirror: bool = True,
        marker: str | None = None,
        unmirrored: bool = False,
    ) -> Document:
        """Mirror (queue), publish the stored events, then drop them from the outbox.

        Returns the document as this left it (its outbox emptied). ``marker``: the
        route_outbox marker written before the events were stored, dropped at the end;
        ``unmirrored``: the case was never mirrored before (see ``_project``).
        """
        if not doc:
            return dict(doc or {})
        entries: Mapping[str, Any] = doc.get("outbox") or {}
        if mirror and collection == "queue" and "req" in doc:
            await self._project(doc, unmirrored=unmirrored)
            if any(e.get("topic") == ASSIGNED.topic for e in entries.values()):
                await self._remember_handlers(doc)
        if not entries:
            if marker is not None:
                await self.store[PENDING].delete_one({"_id": marker})
            return dict(doc)
        await self.publish([to_outgoing(eid, entry) for eid, entry in entries.items()])
        coll = self.store[collection]
        unset = {f"outbox.{eid}": "" for eid in entries}
        flushed = {k: v for k, v in doc.items() if k != "outbox_at"}
        flushed["outbox"] = {}
        if collection == "queue":
            # Usually nothing changed the entry since: empty the outbox and drop its
            # timestamp in one keyed update (the version compare). This does not bump the
            # version: it removes only what was published, which no guard depends on.
            cleared = await coll.update_one(
                {"_id": doc["_id"], "v": doc.get("v")}, {"$unset": {**unset, "outbox_at": ""}}
            )
            if not cleared.matched_count:
                # Changed meanwhile (maybe more events stored): drop only what was published.
                await coll.update_one({"_id": doc["_id"]}, {"$unset": unset})
        elif collection == "lessons":
            # A lesson's outbox is written once, with the lesson: nothing can be added.
            await coll.update_one({"_id": doc["_id"]}, {"$unset": {**unset, "outbox_at": ""}})
        else:  # spikes: a small collection, the guarded updates may scan it
            cleared = await coll.update_one(
                {"_id": doc["_id"], "outbox": dict(entries)},
                {"$unset": {**unset, "outbox_at": ""}},
            )
            if not cleared.matched_count:
                await coll.update_one({"_id": doc["_id"]}, {"$unset": unset})
                await coll.update_one(
                    {"_id": doc["_id"], "outbox": {}}, {"$unset": {"outbox_at": ""}}
                )
        if marker is not None:
            await self.store[PENDING].delete_one({"_id": marker})
        return flushed

    async def outbox_sweep(self) -> int:
        """Publish events a crash left stored but unpublished.

        Reads ``route_outbox`` (markers of background writes not yet published: normally
        none older than a moment) and ``spikes`` (small); a marker's document is read by
        _id and flushed, then the marker dropped.
        """
        now = self.clock()
        cutoff = now - timedelta(seconds=self.settings.route_outbox_grace_seconds)
        flushed = 0
        pending = self.store[PENDING]
        for mark in await pending.find({"at": {"$lte": cutoff}}).limit(50).to_list():
            # Claim it (keyed; the previous value says who won) so replicas do not both work.
            before = await pending.find_one_and_update({"_id": mark["_id"]}, {"$set": {"at": now}})
            if before is None or before.get("at") != mark.get("at"):
                continue
            doc = await self.store[mark["coll"]].find_one({"_id": mark["doc_id"]})
            if doc is not None and doc.get("outbox"):
                await self._flush(mark["coll"], doc, marker=mark["_id"])
                flushed += 1
            elif doc is not None and _utc(doc.get("lease_until") or EPOCH) > now:
                continue  # an assignment still in flight: it drops its own marker
            else:
                await pending.delete_one({"_id": mark["_id"]})
        spikes_coll = self.store["spikes"]
        for doc in await spikes_coll.find({"outbox_at": {"$lte": cutoff}}).limit(50).to_list():
            claimed = await spikes_coll.find_one_and_update(
                {"_id": doc["_id"], "outbox_at": doc["outbox_at"]},
                {"$set": {"outbox_at": now}},
                return_document=ReturnDocument.AFTER,
            )
            if claimed is not None:
                await self._flush("spikes", claimed)
                flushed += 1
        return flushed


def mirror_status(doc: Mapping[str, Any]) -> str | None:
    """The case status route's state stands for (None: route says nothing of it)."""
    return {"assigned": "assigned", "waiting": "queued"}.get(doc.get("state") or "")


def mirror_update(
    doc: Mapping[str, Any], case: Mapping[str, Any] | None
) -> tuple[Document, Document] | None:
    """(filter, update) mirroring queue entry ``doc`` onto its case as read (``case``:
    its route_rev and status, None when there is none); None when the case already
    mirrors a newer rev. The filter compares exactly what was read (keyed by the unique
    index (_id, route_rev, status)), so a case changed since makes it miss."""
    case_id = doc["_id"]
    history: Document = {
        "$addToSet": {
            "assignment_history": {"$each": doc.get("history", [])},
            "escalations": {"$each": doc.get("escalations", [])},
        }
    }
    status, rev = mirror_status(doc), int(doc.get("rev", 0))
    if status is None:
        return {"_id": case_id}, history
    mirrored, current = (case or {}).get("route_rev"), (case or {}).get("status")
    if mirrored is not None and int(mirrored) > rev:
        # The case mirrors a newer rev: skipping this history is safe, as queue history
        # and escalations are only ever pushed, so the newer state's lists hold these
        # entries and its writer stored them with its rev.
        return None
    update: Document = {**history, "$set": {"route_rev": rev}}
    if doc.get("state") == "assigned" and doc.get("assignment"):
        update["$set"]["assignment"] = doc["assignment"]
        update["$min"] = {"stages.assigned_at": doc["assignment"]["assigned_at"]}
    else:
        update["$unset"] = {"assignment": ""}
    if current not in FINAL_CASE_STATUSES:
        update["$set"]["status"] = status
    return {"_id": case_id, "route_rev": mirrored, "status": current}, update
