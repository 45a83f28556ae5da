from __future__ import annotations

import json
from datetime import UTC, datetime

from services.route.assignment import PersonView, on_shift
from services.route.directory import load_people_file
from services.route.lessons import Subscriptions, build_digest, masked
from services.route.settings import SEED_DIR
from shared.events.common import Category
from shared.events.lifecycle import Lesson

SUBS = Subscriptions.from_mapping(
    {
        "_comment": "ignored",
        "product_quality": {"categories": ["defective_product"]},
        "logistics": {"categories": ["delivery", "out_of_stock"]},
        "marketing": {"products": ["Premium Plan"]},
        "management": {"categories": ["*"]},
    }
)


def test_fan_out_by_category_and_product() -> None:
    assert SUBS.departments_for("delivery", None) == ["logistics", "management"]
    assert SUBS.departments_for("defective_product", "premium  plan") == [
        "management",
        "marketing",
        "product_quality",
    ]
    assert "_comment" not in SUBS.departments


def test_lesson_is_masked() -> None:
    lesson = Lesson(
        category=Category.BILLING_REFUND,
        root_cause="Charged twice; customer ann@example.com called +358 40 123 4567",
        fix="Refunded card 4111 1111 1111 1111",
        outcome="ok",
    )
    out = masked(lesson)
    assert "ann@example.com" not in out.root_cause and "[email]" in out.root_cause
    assert "[phone]" in out.root_cause and "[card]" in out.fix


def test_digest_counts_top_causes_and_trend() -> None:
    start, end = datetime(2025, 1, 1, tzinfo=UTC), datetime(2025, 1, 8, tzinfo=UTC)
    now = [
        {"category": "delivery", "product": "box", "root_cause": "Courier lost parcel."},
        {"category": "delivery", "product": "box", "root_cause": "courier lost parcel"},
        {"category": "out_of_stock", "root_cause": "Forecast too low", "remedy": "discount"},
    ]
    before = [{"category": "delivery", "root_cause": "courier lost parcel"}]
    digest = build_digest("logistics", start, end, now, before)
    assert digest["count"] == 3 and digest["previous_count"] == 1
    assert digest["trend"] == {"delta": 2, "percent": 200.0, "direction": "up"}
    assert digest["by_category"] == {"delivery": 2, "out_of_stock": 1}
    top = digest["top_root_causes"][0]
    assert top == {"root_cause": "courier lost parcel", "count": 2, "previous_count": 1}
    empty = build_digest("x", start, end, [], [])
    assert empty["trend"]["percent"] is None and empty["trend"]["direction"] == "flat"


def test_seed_directory_covers_every_language_round_the_clock() -> None:
    people = load_people_file(SEED_DIR / "people.json")
    assert 20 <= len(people) <= 30
    views = [PersonView.from_doc({"_id": p.person_id, **p.model_dump()}) for p in people]
    always = [
        v
        for v in views
        if on_shift(v.shift, datetime(2025, 1, 18, 3, 0, tzinfo=UTC))  # Saturday night
    ]
    spoken = {lang for v in always if v.takes_cases for lang in v.languages}
    assert {"en", "fi", "et", "id", "tr", "fa", "de", "fr", "es"} <= spoken
    assert any("security_oncall" in v.roles for v in always)
    assert any(v.team == "legal" for v in views)
    ids = {p.person_id for p in people}
    assert all(p.supervisor_id in ids for p in people if p.supervisor_id)
    departments = json.loads((SEED_DIR / "departments.json").read_text())
    assert {"product_quality", "logistics", "billing", "marketing", "training"} <= set(departments)
