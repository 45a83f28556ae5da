from datetime import UTC, datetime

import pytest

from shared.events import catalogue, envelope
from shared.events.complaint import Contact
from shared.privacy import mask_pii


def test_round_trip_keeps_attributes_and_payload() -> None:
    contact = Contact(
        contact_id="c1",
        source="email",
        channel="email",
        text="Broken again",
        received_at=datetime(2026, 1, 2, tzinfo=UTC),
    )
    event = envelope.encode(
        contact,
        event_type="amends.test.v1",
        source="/t",
        event_id="id-1",
        subject="case-1",
        extensions={"sourceformat": "email"},
    )
    parsed = envelope.parse(event.data, event.headers(), "amends.test.v1")
    assert parsed.id == "id-1" and parsed.subject == "case-1"
    assert parsed.extensions == {"sourceformat": "email"}
    assert parsed.model(Contact) == contact


def test_wrong_type_and_missing_headers_are_named() -> None:
    headers = envelope.CloudEvent(type="a.v1", source="/t", id="1", data=b"").headers()
    with pytest.raises(envelope.EnvelopeError) as wrong:
        envelope.parse(b"{}", headers, "b.v1")
    assert wrong.value.reason == "unexpected_type"
    with pytest.raises(envelope.EnvelopeError) as missing:
        envelope.parse(b"{}", {"ce_specversion": "1.0"}, None)
    assert missing.value.reason == "not_a_cloudevent" and "ce_id" in missing.value.detail


def test_derived_ids_are_stable_and_distinct() -> None:
    assert envelope.derived_id("a", "b") == envelope.derived_id("a", "b")
    assert envelope.derived_id("a", "b") != envelope.derived_id("ab")


def test_catalogue_topics_are_unique_and_versioned() -> None:
    topics = [spec.topic for spec in catalogue.CATALOGUE]
    assert len(topics) == len(set(topics))
    assert all(spec.event_type.endswith(f".v{spec.version}") for spec in catalogue.CATALOGUE)


def test_personal_data_is_masked() -> None:
    text = "Mail ann.lee@example.com, call +358 40 123 4567, card 4111 1111 1111 1111, order 42"
    masked = mask_pii(text)
    assert "ann.lee" not in masked and "4111" not in masked and "123 4567" not in masked
    assert "[email]" in masked and "[card]" in masked and "[phone]" in masked
    assert "order 42" in masked
