"""Lessons and digests: a resolution's lesson stored and shared with the departments that
subscribe to it, and the periodic digest per department (the plain rules are in
lessons.py).
"""

from __future__ import annotations

import logging
from collections import defaultdict
from datetime import UTC, datetime, timedelta
from typing import Any

from shared.events.catalogue import LESSONS
from shared.events.envelope import derived_id
from shared.events.lifecycle import CaseResolved, LessonShared
from shared.store import Document

from . import lessons, metrics
from .outbox import Outbox
from .state import _utc, outbox_entry

log = logging.getLogger(__name__)


class Digests(Outbox):
    """Shares lessons and produces the digests."""

    async def _share_lesson(self, event: CaseResolved, event_id: str, now: datetime) -> None:
        assert event.lesson is not None
        lesson = lessons.masked(event.lesson)
        departments = self.subscriptions.departments_for(lesson.category.value, lesson.product)
        lesson_id = derived_id(event_id, "lesson")
        record = {
            "case_id": event.case_id,
            **lesson.model_dump(mode="json"),
            "departments": departments,
            "resolved_at": _utc(event.resolved_at),
            "resolved_by": event.resolved_by,
            "shared_at": now,
        }
        insert: dict[str, Any] = {**record, "outbox": {}}
        if departments:
            shared = LessonShared(
                case_id=event.case_id, departments=departments, lesson=lesson, shared_at=now
            )
            insert["outbox"] = {
                lesson_id: outbox_entry(LESSONS, shared, lesson.category.value, event.case_id)
            }
            insert["outbox_at"] = now
        await self.store["lessons"].update_one(
            {"_id": lesson_id}, {"$setOnInsert": insert}, upsert=True
        )
        await self.store["cases"].update_one(
            {"_id": event.case_id},
            {"$set": {"lesson": {**lesson.model_dump(mode="json"), "departments": departments}}},
            upsert=True,
        )
        stored = await self.store["lessons"].find_one({"_id": lesson_id})
        if stored is not None and stored.get("outbox"):
            metrics.lessons_shared.labels(lesson.category.value).inc()
            await self._flush("lessons", stored)

    async def produce_digests(self, now: datetime | None = None) -> list[Document]:
        """The digest of the last finished period, per department, produced once."""
        now = now or self.clock()
        period = self.settings.route_digest_period_seconds
        end_epoch = int(now.timestamp() // period * period)
        end = datetime.fromtimestamp(end_epoch, UTC)
        start = end - timedelta(seconds=period)
        before = start - timedelta(seconds=period)
        marker_id = f"period:{start.isoformat()}"
        digests = self.store["digests"]
        if await digests.find_one({"_id": marker_id}):
            return []
        fields = {"category": 1, "product": 1, "root_cause": 1, "remedy": 1, "departments": 1}
        rows = (
            await self.store["lessons"]
            .find({"resolved_at": {"$gte": before, "$lt": end}}, {**fields, "resolved_at": 1})
            .to_list()
        )
        current: dict[str, list[Document]] = defaultdict(list)
        previous: dict[str, list[Document]] = defaultdict(list)
        for row in rows:
            bucket = current if _utc(row["resolved_at"]) >= start else previous
            for department in row.get("departments", []):
                bucket[department].append(row)
        produced = []
        for department in self.subscriptions.departments:
            digest = lessons.build_digest(
                department, start, end, current[department], previous[department]
            )
            digest["produced_at"] = now
            await digests.update_one(
                {"_id": f"{department}:{start.isoformat()}"},
                {"$setOnInsert": digest},
                upsert=True,
            )
            produced.append(digest)
        await digests.update_one(
            {"_id": marker_id},
            {"$setOnInsert": {"kind": "marker", "period_start": start, "produced_at": now}},
            upsert=True,
        )
        log.info("lesson digests for %s: %d departments", start.isoformat(), len(produced))
        return produced
