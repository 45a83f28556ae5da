"""ingest's decisions: an intake record in, a ComplaintReceived (or nothing) out.

adapter -> language -> customer identity -> exact-duplicate check -> praise, or attach
to a case (new, or the customer's open case within the merge window) -> ``intake_log``.

Idempotent: a redelivered intake record finds its ``intake_log`` entry (or, after a crash
before that write, its contact's pin in ``case_keys`` and the contact in the pinned case)
and returns the same event with the same id.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from shared.events import catalogue
from shared.events.complaint import Contact, RawRef
from shared.events.envelope import derived_id, utcnow
from shared.events.pipeline import ComplaintReceived
from shared.service import Incoming, Outgoing, Rejected
from shared.store import Document, Store

from . import identity, metrics
from .adapters import IntakeMeta, adapter_for
from .cases import CLOSED, Attached, CaseAttacher, Duplicate, find_contact, read_keys
from .language import detector
from .settings import IngestSettings

log = logging.getLogger(__name__)

INTAKE_LOG = "intake_log"
PRAISE = "praise"


@dataclass(frozen=True, slots=True)
class Ingest:
    """The intake handler bound to its store and settings (``service.consume`` target)."""

    store: Store
    settings: IngestSettings

    async def __call__(self, incoming: Incoming) -> list[Outgoing]:
        return await handle_intake(self.store, incoming, self.settings)


def normalise(incoming: Incoming, settings: IngestSettings) -> Contact | None:
    """The canonical contact of an intake record (pure: no database)."""
    raw = incoming.event.data
    source_format = incoming.event.extensions.get("sourceformat")
    adapter = adapter_for(source_format)
    if len(raw) > settings.max_payload_bytes:
        raise Rejected(
            "oversized", f"{len(raw)} bytes > limit of {settings.max_payload_bytes} bytes"
        )
    meta = IntakeMeta(
        source_format=str(source_format),
        event_id=incoming.event.id,
        event_time=incoming.event.time.astimezone(UTC),
        content_type=incoming.event.extensions.get("datacontenttype"),
        default_phone_region=settings.default_phone_region,
    )
    contact = adapter(raw, meta)
    if contact is None:
        return None
    language, confidence = detector(tuple(settings.languages)).detect(
        contact.text if not (contact.survey and not contact.survey.comment) else ""
    )
    if language == "und" and contact.language != "und":
        language, confidence = contact.language, 0.5  # the source's own tag
    return contact.model_copy(
        update={
            "language": language,
            "language_confidence": confidence,
            "received_at": _millis(contact.received_at),
            "raw_ref": RawRef(
                topic=incoming.topic, partition=incoming.partition, offset=incoming.offset
            ),
            "intake_event_id": incoming.event.id,
        }
    )


def _millis(value: datetime) -> datetime:
    """MongoDB keeps milliseconds: trim so a rebuilt event equals the first one."""
    return value.replace(microsecond=value.microsecond // 1000 * 1000)


async def handle_intake(
    store: Store, incoming: Incoming, settings: IngestSettings
) -> list[Outgoing]:
    intake_id = incoming.event.id
    logged = await store[INTAKE_LOG].find_one({"_id": intake_id})
    if logged is not None:
        return await _replay(store, logged)
    contact = normalise(incoming, settings)
    now = _millis(utcnow())
    if contact is None:
        await _log(
            store, intake_id, "ignored", now, source=incoming.event.extensions.get("sourceformat")
        )
        metrics.complaints_received.labels("none", "und", "ignored").inc()
        return []
    customer = await identity.resolve(
        store, contact.author, anonymous_key=contact.contact_id, seen_at=contact.received_at
    )
    if contact.kind == "praise":
        return await _praise(store, contact, customer, now)

    keys = await read_keys(store, contact, customer.customer_id)  # pin and threads, by _id
    attached = await CaseAttacher(
        store,
        timedelta(hours=settings.merge_window_hours),
        settings.max_contacts_per_case,
    ).attach(contact, customer, now, keys)
    if isinstance(attached, Duplicate):
        return await _duplicate(store, contact, attached.case_id, now)
    if attached.entry.get("intake_event_id") != intake_id:
        # Another record with the same source and external id got there first.
        return await _duplicate(store, contact, attached.case_id, now)
    outcome = "new_case" if attached.position == 0 else "merged"
    await _log(
        store,
        intake_id,
        outcome,
        now,
        case_id=attached.case_id,
        contact_id=contact.contact_id,
        customer_id=customer.customer_id,
        channel=contact.channel.value,
        source=contact.source,
    )
    metrics.complaints_received.labels(contact.channel.value, contact.language, outcome).inc()
    return [_received(attached, intake_id)]


def _received(attached: Attached, intake_id: str) -> Outgoing:
    case = attached.case
    contact = Contact.model_validate(attached.entry)
    event = ComplaintReceived(
        case_id=attached.case_id,
        customer_id=str(case["customer_id"]),
        contact=contact,
        case_is_new=attached.position == 0,
        contact_count=attached.position + 1,
        repeat_contacts=attached.position,
        case_opened_at=_aware(case["opened_at"]),
        reopened=attached.position > 0 and case.get("status") in CLOSED,
        customer_tier=case.get("customer_tier"),
    )
    return Outgoing(
        spec=catalogue.RECEIVED,
        payload=event,
        key=attached.case_id,
        event_id=derived_id(intake_id, "received"),
        subject=attached.case_id,
    )


def _aware(value: datetime) -> datetime:
    return value if value.tzinfo else value.replace(tzinfo=UTC)


async def _replay(store: Store, logged: Document) -> list[Outgoing]:
    """The output of an intake record handled before (redelivery)."""
    if logged.get("outcome") not in ("new_case", "merged"):
        return []
    attached = await find_contact(store, str(logged["contact_id"]))
    if attached is None:
        log.error("intake %s logged as %s but its contact is gone", logged["_id"], logged)
        return []
    return [_received(attached, str(logged["_id"]))]


async def _duplicate(store: Store, contact: Contact, case_id: str | None, now: datetime) -> list:
    assert contact.intake_event_id is not None
    await _log(
        store,
        contact.intake_event_id,
        "duplicate",
        now,
        case_id=case_id,
        contact_id=contact.contact_id,
        channel=contact.channel.value,
        source=contact.source,
    )
    metrics.complaints_received.labels(contact.channel.value, contact.language, "duplicate").inc()
    return []


async def _praise(
    store: Store, contact: Contact, customer: identity.Customer, now: datetime
) -> list[Outgoing]:
    """Praise is recorded (customer and ``praise``), opens no case."""
    assert contact.intake_event_id is not None
    entry = contact.model_dump(mode="json", exclude_none=True)
    entry.update(
        _id=contact.contact_id,
        customer_id=customer.customer_id,
        received_at=contact.received_at,
        case_id=contact.survey.case_id if contact.survey else None,
        recorded_at=now,
    )
    entry.pop("contact_id", None)
    await store[PRAISE].update_one(
        {"_id": contact.contact_id}, {"$setOnInsert": entry}, upsert=True
    )
    stored = await store[PRAISE].find_one({"_id": contact.contact_id}, {"intake_event_id": 1})
    if stored is not None and stored.get("intake_event_id") != contact.intake_event_id:
        return await _duplicate(store, contact, None, now)
    await store[identity.CUSTOMERS].update_one(
        {"_id": customer.customer_id},
        {"$addToSet": {"praise_ids": contact.contact_id}, "$max": {"last_praise_at": now}},
    )
    await _log(
        store,
        contact.intake_event_id,
        "praise",
        now,
        case_id=entry["case_id"],
        contact_id=contact.contact_id,
        customer_id=customer.customer_id,
        channel=contact.channel.value,
        source=contact.source,
    )
    metrics.complaints_received.labels(contact.channel.value, contact.language, "praise").inc()
    return []


async def _log(store: Store, intake_id: str, outcome: str, now: datetime, **fields: Any) -> None:
    doc = {k: v for k, v in fields.items() if v is not None and not isinstance(v, dict)}
    await store[INTAKE_LOG].update_one(
        {"_id": intake_id},
        {"$setOnInsert": {"outcome": outcome, "logged_at": now, **doc}},
        upsert=True,
    )
