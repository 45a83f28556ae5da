"""ingest's decisions over one Kafka poll of intake records: ComplaintReceived out.

adapter -> language -> customer identity -> exact-duplicate check -> praise, or attach
to a case (new, the customer's open case within the merge window, the thread a reply
continues, the case a survey names) -> ``intake_log``.

A poll is one unit (``shared.batch``): every record normalised (an unreadable one is
rejected with its reason, to the dead-letter topic), identities resolved for all of them
(``identity.resolve_all``: one ``$in``, one bulk of claims), then one ``$in`` of the
customers named and one of the cases their state names, decisions in memory (each
customer's contacts in offset order, ``cases.Attacher``), and one unordered bulk write
per collection: ``customers`` (guarded by ``ingest_v``), then ``cases``, ``praise`` and
``intake_log``. A poll costs the same few commands whatever it holds.

Exactly once: a customer's write names where each contact goes (its pin) before any
case holds it, and only if the customer's version is still the one read; a case's write
only inserts a case that does not exist or pushes contacts it does not hold yet. A guard
that fails (another replica, or a stale consumer, wrote meanwhile) is a conflict: that
customer is read and decided again (``shared.writes.in_conflict_rounds``). A redelivered
record finds its pin and the case holding it, writes nothing and announces the same
event, with the same id (``derived_id``), in any order and any poll.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass, replace
from datetime import UTC, datetime, timedelta
from typing import Any

from pymongo import UpdateOne
from pymongo.errors import BulkWriteError

from shared import intake_log
from shared.batch import Handled, Incoming, Outgoing, Rejected, group_by
from shared.events import catalogue
from shared.events.complaint import Contact, RawRef
from shared.events.envelope import derived_id
from shared.events.pipeline import ComplaintReceived
from shared.store import Document, Store, stored_now
from shared.writes import duplicate_key_errors, guarded_bulk_write, in_conflict_rounds

from . import metrics
from .adapters import IntakeMeta, adapter_for
from .cases import (
    CASE_PROJECTION,
    CASES,
    CLOSED,
    Attacher,
    CaseView,
    CustomerState,
    Decision,
    Duplicate,
    Placed,
    Praised,
    case_writes,
    contact_entry,
    customer_update,
)
from .identity import CUSTOMERS, Resolved, resolve_all
from .language import detector
from .settings import IngestSettings

log = logging.getLogger(__name__)

INTAKE_LOG = intake_log.COLLECTION
PRAISE = "praise"


@dataclass(frozen=True, slots=True)
class Ingest:
    """The intake batch handler bound to its store and settings (``consume_batch``)."""

    store: Store
    settings: IngestSettings

    async def __call__(self, records: Sequence[Incoming]) -> Handled:
        return await handle_intake(self.store, records, self.settings)


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


@dataclass(slots=True)
class _Item:
    """One intake record of the poll and what became of it."""

    incoming: Incoming
    contact: Contact | None
    customer: Resolved | None = None
    decision: Decision | None = None
    event: Outgoing | None = None

    @property
    def customer_id(self) -> str:
        assert self.customer is not None
        return self.customer.customer_id


async def handle_intake(
    store: Store, records: Sequence[Incoming], settings: IngestSettings
) -> Handled:
    """A poll of intake records: the ComplaintReceived of each new or merged contact, in
    poll order; unreadable records rejected."""
    handled = Handled()
    items: list[_Item] = []
    for incoming in records:
        try:
            items.append(_Item(incoming, normalise(incoming, settings)))
        except Rejected as exc:
            handled.rejected.append((incoming, exc))
    contacts = [i for i in items if i.contact is not None]
    resolved = await resolve_all(store, [i.contact for i in contacts if i.contact])
    for item, customer in zip(contacts, resolved, strict=True):
        item.customer = customer
    now = stored_now()
    skip_identities: set[str] = set()

    async def attempt(pending: Sequence[_Item]) -> set[str]:
        return await _round(store, pending, settings, now, skip_identities)

    await in_conflict_rounds(contacts, lambda i: i.customer_id, attempt)
    await _stored_contacts(store, items)
    await _log(store, items, now)
    handled.outgoing.extend(i.event for i in items if i.event is not None)
    return handled


async def _stored_contacts(store: Store, items: Sequence[_Item]) -> None:
    """A redelivered record announces its contact as stored the first time (the same
    payload may come back in another record, at another offset): one read, and only
    when the poll holds redeliveries."""
    replays = [i for i in items if isinstance(i.decision, Placed) and i.decision.replayed]
    if not replays:
        return
    ids = sorted({i.decision.case_id for i in replays if isinstance(i.decision, Placed)})
    cursor = store[CASES].find({"_id": {"$in": ids}}, {"contacts": 1})
    entries = {
        (str(doc["_id"]), str(entry.get("contact_id"))): entry
        async for doc in cursor
        for entry in doc.get("contacts") or []
    }
    for item in replays:
        assert isinstance(item.decision, Placed) and item.contact and item.event
        entry = entries.get((item.decision.case_id, item.contact.contact_id))
        if entry is not None:
            payload = item.event.payload.model_copy(
                update={"contact": Contact.model_validate(entry)}
            )
            item.event = replace(item.event, payload=payload)


async def _round(
    store: Store,
    items: Sequence[_Item],
    settings: IngestSettings,
    now: datetime,
    skip_identities: set[str],
) -> set[str]:
    """Read, decide, write once per collection; settles the items of every customer whose
    writes held and returns the customers another writer changed meanwhile."""
    by_customer = group_by(items, lambda i: i.customer_id)
    docs = {
        doc["_id"]: doc
        async for doc in store[CUSTOMERS].find({"_id": {"$in": sorted(by_customer)}})
    }
    states = {cid: CustomerState.from_doc(cid, docs.get(cid)) for cid in by_customer}
    wanted: set[str] = set()
    for cid, its in by_customer.items():
        wanted |= states[cid].case_ids([i.contact for i in its if i.contact])
    cases: dict[str, CaseView] = {}
    if wanted:
        cursor = store[CASES].find({"_id": {"$in": sorted(wanted)}}, CASE_PROJECTION)
        cases = {str(doc["_id"]): CaseView.from_doc(doc) async for doc in cursor}

    window = timedelta(hours=settings.merge_window_hours)
    attacher = Attacher(cases, window, settings.max_contacts_per_case, now)
    decided: list[tuple[_Item, Decision, Outgoing | None]] = []
    for cid, its in by_customer.items():
        state = states[cid]
        for item in its:
            assert item.contact is not None and item.customer is not None
            state.seen(item.contact, item.customer.identities, now)
            decision = attacher.decide(state, item.contact)
            event = None
            if isinstance(decision, Placed):
                event = _received(item, decision, cases[decision.case_id])
            decided.append((item, decision, event))
        if cid in skip_identities:
            state.identities.clear()

    writes = [
        (cid, customer_update(states[cid], now)) for cid in by_customer if states[cid].changed
    ]
    conflicted, refused = await _write_customers(store[CUSTOMERS], writes)
    # A server enforcing the unique multikey index refused an identity it thinks is
    # another customer's: the identities collection is the authority; link without it.
    skip_identities |= refused
    # A case this poll opens for a customer whose write failed is not written, so neither
    # are the contacts other customers' decisions put into it.
    pushes = attacher.pushes
    openers = {p.case_id: p.customer_id for p in reversed(pushes) if not _stored(cases, p)}
    while True:
        blocked = {
            p.customer_id
            for p in pushes
            if p.customer_id not in conflicted and openers.get(p.case_id, "") in conflicted
        }
        if not blocked:
            break
        conflicted |= blocked
    pushes = [p for p in pushes if p.customer_id not in conflicted]
    failed = await guarded_bulk_write(
        store[CASES], case_writes(pushes, cases, now, settings.max_contacts_per_case)
    )
    conflicted |= {p.customer_id for p in pushes if p.case_id in failed}

    praise = []
    for item, decision, event in decided:
        if item.customer_id in conflicted:
            continue
        item.decision, item.event = decision, event
        if isinstance(decision, Praised):
            praise.append(_praise_entry(item, decision, now))
        _count(item, decision)
    if praise:
        await store[PRAISE].bulk_write(praise, ordered=False)
    return conflicted


def _stored(cases: dict[str, CaseView], push: Any) -> bool:
    view = cases.get(push.case_id)
    return view is not None and view.stored


async def _write_customers(
    collection: Any, writes: list[tuple[str, UpdateOne]]
) -> tuple[set[str], set[str]]:
    """``guarded_bulk_write``, telling apart the customers refused by the unique index of
    their identities (a server enforcing it) from those whose version guard failed."""
    if not writes:
        return set(), set()
    try:
        await collection.bulk_write([op for _, op in writes], ordered=False)
    except BulkWriteError as exc:
        errors = duplicate_key_errors(exc)
        failed = {writes[e["index"]][0] for e in errors}
        refused = {
            writes[e["index"]][0]
            for e in errors
            if "identities" in str(e.get("keyPattern") or e.get("errmsg") or "")
        }
        return failed, refused
    return set(), set()


def _received(item: _Item, placed: Placed, case: CaseView) -> Outgoing:
    """The announcement of a placed contact: the same whether just decided or rebuilt
    for a redelivered record (its contact is normalised again, to the same value)."""
    assert item.contact is not None
    position = placed.position
    event = ComplaintReceived(
        case_id=placed.case_id,
        customer_id=case.customer_id,
        contact=item.contact,
        case_is_new=position == 0,
        contact_count=position + 1,
        repeat_contacts=position,
        case_opened_at=case.opened_at,
        reopened=position > 0 and case.status in CLOSED,
        customer_tier=case.customer_tier,
    )
    return Outgoing(
        spec=catalogue.RECEIVED,
        payload=event,
        key=placed.case_id,
        event_id=derived_id(item.incoming.event.id, "received"),
        subject=placed.case_id,
    )


def _praise_entry(item: _Item, praised: Praised, now: datetime) -> UpdateOne:
    """Praise is recorded (on the customer and in ``praise``), opens no case."""
    contact = item.contact
    assert contact is not None
    entry = contact_entry(contact)
    entry.update(customer_id=item.customer_id, case_id=praised.case_id, recorded_at=now)
    entry.pop("contact_id", None)
    return UpdateOne({"_id": contact.contact_id}, {"$setOnInsert": entry}, upsert=True)


def _outcome(decision: Decision | None) -> str:
    if isinstance(decision, Placed):
        return "new_case" if decision.position == 0 else "merged"
    if isinstance(decision, Duplicate):
        return "duplicate"
    if isinstance(decision, Praised):
        return "praise"
    return "ignored"


def _count(item: _Item, decision: Decision) -> None:
    if getattr(decision, "replayed", False):
        return  # counted when first decided
    contact = item.contact
    assert contact is not None
    metrics.complaints_received.labels(
        contact.channel.value, contact.language, _outcome(decision)
    ).inc()


async def _log(store: Store, items: Sequence[_Item], now: datetime) -> None:
    """Each record's outcome, one ``intake_log`` document for the poll (``shared.intake_log``)."""
    if not items:
        return
    entries = []
    for item in items:
        contact, decision = item.contact, item.decision
        entry: Document = {"_id": item.incoming.event.id, "outcome": _outcome(decision)}
        if contact is None:
            metrics.complaints_received.labels("none", "und", "ignored").inc()
            source = item.incoming.event.extensions.get("sourceformat")
            entry.update({"source": source} if source else {})
        else:
            case_id = getattr(decision, "case_id", None)
            entry.update(
                contact_id=contact.contact_id,
                channel=contact.channel.value,
                source=contact.source,
            )
            if case_id:
                entry["case_id"] = case_id
            if not isinstance(decision, Duplicate):
                entry["customer_id"] = item.customer_id
        entries.append(entry)
    keys = [f"{i.incoming.topic}:{i.incoming.partition}:{i.incoming.offset}" for i in items]
    keys += [i.incoming.event.id for i in items]
    await store[intake_log.COLLECTION].bulk_write(
        [intake_log.poll_document(keys, entries, now)], ordered=False
    )
