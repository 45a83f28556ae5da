"""classify with the cascade on, against the real Kafka and MongoDB: an uncertain
complaint is refined by the shipped static encoder, the event and the case say so, and
the metrics count it; switched off, the same complaint is scored by the fast path."""

from __future__ import annotations

import pytest

from services.classify import metrics
from services.classify.app import build_service
from services.classify.settings import ClassifySettings
from services.classify.text.model import MODEL_DIR
from shared.events import catalogue
from shared.settings import Settings
from shared.store import Store
from tests.integration.classify.test_service import OPENED, decode, publish, received
from tests.support import consume_all, running

pytestmark = pytest.mark.skipif(
    not (MODEL_DIR / "cascade.json").exists(), reason="models/cascade.json not built"
)
TEXT = "Tilaus tuli perille, mutta paketti oli märkä ja ohje puuttui."


def refined_count() -> float:
    return metrics.cascade_texts.labels("refined")._value.get()  # type: ignore[no-any-return]


async def classify_once(settings: Settings, store: Store, **cascade: object) -> tuple[str, dict]:  # type: ignore[type-arg]
    await store["cases"].insert_one({"_id": "case-1", "customer_id": "cust-1", "opened_at": OPENED})
    service = build_service(ClassifySettings(**settings.model_dump(), **cascade))
    async with running(service):
        await publish(settings, received(1, TEXT), "ev-1")
        records = await consume_all(settings, catalogue.CLASSIFIED.topic, expect=1)
    _, event = decode(records[0])
    upset = next(c for c in event.classification.urgency.contributions if c.signal == "upset")
    case = await store["cases"].find_one({"_id": "case-1"})
    assert case is not None and case["urgency_score"] == event.classification.urgency.score
    return upset.detail, case


async def test_cascade_refines_an_uncertain_complaint(settings: Settings, store: Store) -> None:
    before = refined_count()
    # A band wide enough that this complaint is in it, and every text may be refined.
    detail, case = await classify_once(
        settings, store, cascade_band=50.0, cascade_max_share=1.0, cascade_timeout_seconds=10.0
    )
    assert "the static encoder refined it" in detail
    assert refined_count() == before + 1
    stored = case["classification"]["urgency"]["contributions"]
    assert any("encoder refined" in c["detail"] for c in stored if c["signal"] == "upset")


async def test_cascade_off_scores_with_the_fast_path(settings: Settings, store: Store) -> None:
    before = refined_count()
    detail, _ = await classify_once(settings, store, cascade_enabled=False)
    assert "encoder" not in detail and "text model" in detail
    assert refined_count() == before
