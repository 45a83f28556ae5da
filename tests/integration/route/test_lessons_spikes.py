"""Lesson fan-out, the digest, and spike alerts against the real servers."""

from __future__ import annotations

import asyncio
import json
from datetime import UTC, datetime, timedelta
from pathlib import Path

from shared.events.catalogue import RESOLVED
from shared.events.common import Category
from shared.events.envelope import utcnow
from shared.events.lifecycle import CaseResolved, Lesson
from tests.integration.route.conftest import (
    classified,
    classify,
    count_is,
    events_of,
    route_running,
    route_settings,
    send,
)
from tests.support import wait_for

SUBSCRIPTIONS = {
    "product_quality": {"categories": ["defective_product"]},
    "logistics": {"categories": ["delivery", "out_of_stock"]},
    "marketing": {"products": ["premium plan"]},
    "billing": {"categories": ["billing_refund"]},
}
NOW = datetime(2025, 3, 5, 10, 30, tzinfo=UTC)  # current hour 10:00, digest period 09:00-10:00


def resolved(case_id: str, at: datetime, category: Category, **lesson: str) -> CaseResolved:
    values = {"root_cause": "courier lost the parcel", "fix": "resent", **lesson}
    return CaseResolved(case_id=case_id, resolved_at=at, lesson=Lesson(category=category, **values))


async def test_lessons_fan_out_to_subscribers_only_and_digest(
    servers_up: None, tmp_path: Path
) -> None:
    path = tmp_path / "departments.json"
    path.write_text(json.dumps(SUBSCRIPTIONS))
    settings = route_settings(route_departments_path=path, route_digest_period_seconds=3600)
    async with route_running(settings) as (service, router):
        store = service.store
        h = NOW.replace(minute=0)
        await send(
            service,
            RESOLVED,
            [
                resolved(
                    "parcel",
                    h - timedelta(minutes=50),
                    Category.DELIVERY,
                    root_cause="Courier lost the parcel.",
                    fix="Resent; confirmed with ann@example.com and +358 40 1234567",
                    remedy="replacement",
                ),
                resolved(
                    "premium",
                    h - timedelta(minutes=40),
                    Category.DEFECTIVE_PRODUCT,
                    product="Premium Plan",
                    root_cause="firmware bug",
                    remedy="free_month",
                ),
                resolved("login", h - timedelta(minutes=30), Category.ACCOUNT_ACCESS),
                resolved("parcel-2", h - timedelta(minutes=20), Category.DELIVERY),
                resolved("old-parcel", h - timedelta(minutes=90), Category.DELIVERY),
            ],
        )
        await wait_for(count_is(store["lessons"], {}, 5))
        events = await events_of(settings, "lessons", expect=4)
        by_case = {d["case_id"]: d for _, d in events}
        assert set(by_case) == {"parcel", "premium", "parcel-2", "old-parcel"}  # not "login"
        assert by_case["parcel"]["departments"] == ["logistics"]
        assert by_case["premium"]["departments"] == ["marketing", "product_quality"]
        fix = by_case["parcel"]["lesson"]["fix"]
        assert "ann@example.com" not in fix and "[email]" in fix and "[phone]" in fix
        case = await store["cases"].find_one({"_id": "parcel"})
        assert case["lesson"]["departments"] == ["logistics"] and "[email]" in str(case["lesson"])

        digests = await router.produce_digests(NOW)
        assert await router.produce_digests(NOW) == []  # once per period
        by_dept = {d["department"]: d for d in digests}
        logistics = by_dept["logistics"]
        assert (logistics["count"], logistics["previous_count"]) == (2, 1)
        assert logistics["trend"] == {"delta": 1, "percent": 100.0, "direction": "up"}
        assert logistics["top_root_causes"][0] == {
            "root_cause": "courier lost the parcel",
            "count": 2,
            "previous_count": 1,
        }
        assert by_dept["marketing"]["by_product"] == {"Premium Plan": 1}
        assert by_dept["billing"]["count"] == 0
        stored = await store["digests"].find_one({"department": "product_quality"})
        assert stored["count"] == 1 and stored["by_remedy"] == {"free_month": 1}
    await store.connect()
    await store.client.drop_database(settings.mongodb_database)
    await store.close()


async def test_spike_alert_once_for_a_burst_not_for_normal_traffic(servers_up: None) -> None:
    settings = route_settings(
        route_spike_window_seconds=60,
        route_spike_baseline_seconds=600,
        route_spike_threshold_sd=3.0,
        route_spike_min_count=5,
    )
    async with route_running(settings) as (service, router):
        now = utcnow()
        normal = [
            classified(
                category="billing_refund",
                region="north",
                at=now - timedelta(seconds=60 * k + offset),
                due_in=timedelta(days=1),
            )
            for k in range(0, 11)
            for offset in (5, 25)
        ]
        await classify(service, *normal)
        queue = service.store["queue"]
        await wait_for(count_is(queue, {}, len(normal)), timeout=60)
        assert await router.detect_spikes(now) == []

        burst = [
            classified(
                category="defective_product",
                product="Gizmo X",
                region="south",
                at=now - timedelta(seconds=2),
                due_in=timedelta(days=1),
            )
            for _ in range(10)
        ]
        await classify(service, *burst)
        await wait_for(count_is(queue, {}, len(normal) + len(burst)), timeout=60)
        alerts = await router.detect_spikes(now)
        keys = sorted((a.dimension, a.value) for a in alerts)
        assert keys == [
            ("category", "defective_product"),
            ("product", "gizmo x"),
            ("region", "south"),
        ]
        product = next(a for a in alerts if a.dimension == "product")
        assert product.window_count == 10 and product.z_score >= 3
        assert set(product.example_case_ids) <= {b.case_id for b in burst}
        assert len(product.example_case_ids) == 5
        assert await router.detect_spikes(now + timedelta(seconds=1)) == []  # once per spike
        await asyncio.sleep(0.5)
        published = await events_of(settings, "alerts.spikes", expect=3)
        assert len(published) == 3
        state = await service.store["spikes"].find_one({"_id": "product:gizmo x"})
        assert state["active"] is True and state["alerts"] == 1
        # Buckets carry their TTL date: kept past the baseline, then deleted by the index.
        async for row in service.store["spike_buckets"].find({}):
            expires = row["expire_at"].timestamp()
            assert expires >= row["bucket"] + 60 + 600
    await service.store.connect()
    await service.store.client.drop_database(settings.mongodb_database)
    await service.store.close()
