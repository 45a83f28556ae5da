"""Pure parts of the handler: case context, broken promises, deadlines that only tighten."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from services.classify.handlers import (
    _tightest,
    context_for,
    count_broken_promises,
    product_and_region,
)
from shared.events.common import Channel
from shared.events.complaint import Contact
from shared.events.pipeline import ComplaintReceived, SlaClock

NOW = datetime(2025, 3, 4, 12, 0, tzinfo=UTC)


def test_broken_promises() -> None:
    case = {
        "promises": [
            {"state": "broken"},
            {"broken": True},
            {"state": "kept_late"},
            {"state": "open", "due_at": NOW - timedelta(hours=1)},  # overdue, not kept
            {"state": "kept", "due_at": NOW - timedelta(hours=1), "kept_at": NOW},
            {"state": "open", "due_at": NOW + timedelta(hours=1)},
            "junk",
        ]
    }
    assert count_broken_promises(case, NOW) == 4


def test_context_from_event_and_case() -> None:
    event = ComplaintReceived(
        case_id="c",
        customer_id="u",
        contact=Contact(
            contact_id="k",
            source="twitter",
            channel="social",
            text="again",
            public=True,
            reach=900,
            received_at=NOW,
        ),
        case_is_new=False,
        contact_count=3,
        repeat_contacts=2,
        case_opened_at=NOW - timedelta(hours=30),
    )
    case = {
        "customer_tier": "vip",
        "classification_history": [{"signals": {"legal_threat": True, "upset": 0.9}}],
    }
    ctx = context_for(event, case)
    assert ctx.waited_hours == 30 and ctx.repeat_contacts == 2 and ctx.public
    assert ctx.customer_tier == "vip" and ctx.earlier_flags == {"legal_threat": True}
    assert ctx.earlier_upset == 0.9


def test_deadlines_never_loosen() -> None:
    early = SlaClock(policy="p", calendar="a", first_response_due=NOW, resolution_due=NOW)
    late = SlaClock(
        policy="p",
        calendar="b",
        first_response_due=NOW + timedelta(hours=1),
        resolution_due=NOW - timedelta(hours=1),
    )
    merged = _tightest(early.model_dump(), late)
    assert merged.first_response_due == NOW and merged.resolution_due == NOW - timedelta(hours=1)
    assert _tightest(None, late) == late


def test_product_and_region_from_the_contact_else_the_case() -> None:
    def event(product: str | None, region: str | None) -> ComplaintReceived:
        contact = Contact(
            contact_id="c1",
            source="webform",
            channel=Channel.WEB,
            text="double charge",
            received_at=NOW,
            product=product,
            region=region,
        )
        return ComplaintReceived(
            case_id="k",
            customer_id="u",
            contact=contact,
            case_is_new=False,
            contact_count=2,
            repeat_contacts=1,
            case_opened_at=NOW,
        )

    case = {"product": "Credit card", "region": "CA"}
    assert product_and_region(event(None, None), case) == ("Credit card", "CA")
    assert product_and_region(event("Mortgage", None), case) == ("Mortgage", "CA")
    assert product_and_region(event(None, "FI"), {}) == (None, "FI")
