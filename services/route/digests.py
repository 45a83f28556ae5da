"""Lessons and digests: a resolution's lesson stored and shared with the departments that
subscribe to it, and the periodic digest per department (the plain rules are in
lessons.py).
"""

from __future__ import annotations

import logging
from collections import defaultdict
from datetime import UTC, datetime, timedelta

from shared.store import Document

from . import lessons
from .outbox import Outbox
from .state import _utc

log = logging.getLogger(__name__)


class Digests(Outbox):
    """Shares lessons and produces the digests."""

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
