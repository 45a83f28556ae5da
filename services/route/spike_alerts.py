"""Spike alerts: counting classified cases in time buckets per dimension, detecting a
spike against the baseline, raising its alert once (the statistics are in spikes.py).
"""

from __future__ import annotations

import logging
from collections import Counter, defaultdict
from collections.abc import Mapping, Sequence
from datetime import UTC, datetime
from typing import Any

from pymongo import ReturnDocument, UpdateOne
from pymongo.errors import DuplicateKeyError

from shared.events.catalogue import SPIKES
from shared.events.envelope import derived_id
from shared.events.lifecycle import SpikeAlert
from shared.events.pipeline import ComplaintClassified
from shared.store import bulk_write_retrying_duplicates

from . import metrics, spikes
from .outbox import Outbox
from .state import _utc, outbox_entry

log = logging.getLogger(__name__)


class SpikeAlerts(Outbox):
    """Counts cases for spikes and raises and ends spike alerts."""

    async def _count_for_spikes(self, events: Sequence[ComplaintClassified]) -> None:
        """Count new cases in their time buckets: one upsert per (dimension, value,
        bucket) of the poll, in one unordered bulk write. Keyed by _id; the set of case
        ids makes a redelivered event count once (a bucket's count is that set's size)."""
        buckets: dict[str, tuple[dict[str, Any], set[str]]] = {}
        for event in events:
            at = _utc(event.classified_at).timestamp()
            bucket = self.windows.bucket_of(at)
            expire_at = datetime.fromtimestamp(self.windows.expires(bucket), UTC)
            values = {
                "category": event.classification.category.value,
                "product": event.product,
                "region": event.region,
            }
            for dimension, value in values.items():
                if not value:
                    continue
                value = value.strip().lower()
                key = f"{dimension}|{value}|{bucket}"
                insert = {"dimension": dimension, "value": value, "bucket": bucket}
                buckets.setdefault(key, ({**insert, "expire_at": expire_at}, set()))[1].add(
                    event.case_id
                )
        ops = [
            UpdateOne(
                {"_id": key},
                {"$addToSet": {"cases": {"$each": sorted(cases)}}, "$setOnInsert": insert},
                upsert=True,
            )
            for key, (insert, cases) in buckets.items()
        ]
        # A concurrent first insert of a bucket fails on its _id: add to it again.
        await bulk_write_retrying_duplicates(self.store["spike_buckets"], ops)

    async def detect_spikes(self, now: datetime | None = None) -> list[SpikeAlert]:
        now = now or self.clock()
        t = now.timestamp()
        w = self.windows
        threshold = self.settings.route_spike_threshold_sd
        min_count = self.settings.route_spike_min_count
        buckets = self.store["spike_buckets"]
        recent = await buckets.find({"bucket": {"$gte": w.window_start(t)}}).to_list()
        totals: Counter[tuple[str, str]] = Counter()
        examples: dict[tuple[str, str], list[str]] = defaultdict(list)
        for row in sorted(recent, key=lambda r: r["bucket"]):
            key = (row["dimension"], row["value"])
            totals[key] += _bucket_count(row)
            examples[key].extend(row.get("cases", []))
        active = {
            (d["dimension"], d["value"])
            async for d in self.store["spikes"].find({"active": True}, {"dimension": 1, "value": 1})
        }
        keys = {k for k, n in totals.items() if n >= min_count} | active
        raised = []
        for dimension, value in sorted(keys):
            history = buckets.find(
                {"dimension": dimension, "value": value, "bucket": {"$gte": w.horizon(t)}},
                {"bucket": 1, "count": 1, "cases": 1},
            )
            counts = {int(r["bucket"]): _bucket_count(r) async for r in history}
            stat = spikes.evaluate(counts, t, w)
            spike_id = f"{dimension}:{value}"
            if (dimension, value) in active:
                if spikes.has_ended(stat, threshold, min_count):
                    await self.store["spikes"].update_one(
                        {"_id": spike_id, "active": True},
                        {"$set": {"active": False, "ended_at": now}},
                    )
                continue
            if not spikes.is_spike(stat, threshold, min_count):
                continue
            alert = await self._raise_spike(
                dimension, value, stat, examples[(dimension, value)], now
            )
            if alert is not None:
                raised.append(alert)
        return raised

    async def _raise_spike(
        self,
        dimension: str,
        value: str,
        stat: spikes.SpikeStat,
        cases: Sequence[str],
        now: datetime,
    ) -> SpikeAlert | None:
        spike_id = f"{dimension}:{value}"
        alert_id = derived_id("spike", spike_id, now.isoformat())
        alert = SpikeAlert(
            alert_id=alert_id,
            dimension=dimension,  # type: ignore[arg-type]
            value=value,
            window_count=stat.window_count,
            baseline_mean=round(stat.baseline_mean, 3),
            baseline_stddev=round(stat.baseline_stddev, 3),
            z_score=round(stat.z_score, 2),
            example_case_ids=list(cases)[-self.settings.route_spike_examples :],
            raised_at=now,
        )
        record = alert.model_dump(mode="json")
        try:
            # Only an inactive (or new) spike can be raised: once per spike, across replicas.
            stored = await self.store["spikes"].find_one_and_update(
                {"_id": spike_id, "active": {"$ne": True}},
                {
                    "$set": {
                        "dimension": dimension,
                        "value": value,
                        "active": True,
                        "last_alert": record,
                        f"outbox.{alert_id}": outbox_entry(SPIKES, alert, spike_id),
                    },
                    "$min": {"outbox_at": now},
                    "$inc": {"alerts": 1},
                    "$push": {"history": record},
                },
                upsert=True,
                return_document=ReturnDocument.AFTER,
            )
        except DuplicateKeyError:
            return None
        if stored is None:
            return None
        metrics.spike_alerts.labels(dimension).inc()
        log.warning(
            "spike: %s=%s, %d cases, z=%.1f", dimension, value, stat.window_count, stat.z_score
        )
        await self._flush("spikes", stored)
        return alert


def _bucket_count(row: Mapping[str, Any]) -> int:
    """Cases counted in a spike bucket (older buckets kept a separate count)."""
    return len(row["cases"]) if "cases" in row else int(row.get("count", 0))
