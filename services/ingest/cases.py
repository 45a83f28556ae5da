"""Attaching a contact to a case: a new case, or the customer's open case within the window.

Every write is one atomic single-document update, safe under redelivery and under two
ingest replicas handling one customer's contacts at the same moment:

* the customer document's ``open_case`` pointer is *claimed* with ``find_one_and_update``
  (only when there is none, or its last contact is older than the merge window), so only
  one replica opens the customer's next case; the other merges into it (a pointer that
  ``identity.resolve`` just read as not claimable is merged into without claiming, and a
  case just claimed is inserted without first trying to update it);
* a case's id is derived from its first contact's id, so a redelivered first contact
  finds (or creates) the same case;
* a contact is pushed with the guard ``contact_ids: {$ne: id}`` (a flat array: FerretDB
  1.24 evaluates ``contacts.contact_id`` filters on arrays of documents wrongly in
  updates), so a contact is never added twice.

Lookups go by ``_id`` only (the local MongoDB-protocol server ignores non-unique indexes,
so any other query reads the whole collection). ``case_keys`` holds two kinds of small
documents:

* ``contact:<contact id>`` -> ``case_id`` and the ``intake_event_id`` of the record that
  brought the contact: the *pin*. It is inserted (unique ``_id``) *before* the contact is
  pushed into the case, and moved (compare-and-set on ``case_id``) only while the contact
  is not in the pinned case (the push failed: closed or full; or a crash came first), so
  the contact is in the pinned case or in no case at all. A redelivered record finds its
  pin: the contact in the pinned case (done before the crash), or in no case yet (attached
  as usual, the pin following it). Another record with the same contact id finds a pin
  with another intake id: an exact duplicate.
* ``thread:<derived(customer, key)>`` -> ``case_ids`` of that customer's cases carrying
  the external key (``email:<message-id>``, ``conversation:...``): how a reply finds the
  thread it continues. Written in the same command as the pin (one ``update`` command of
  upserts), so it may name a case the contact never reached (its push failed, or another
  record won the pin): readers check the cases' status and customer.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from pymongo import ReturnDocument, UpdateOne
from pymongo.errors import BulkWriteError, DuplicateKeyError

from shared.events.common import CaseStatus
from shared.events.complaint import Contact
from shared.events.envelope import derived_id
from shared.store import Document, Store

from .identity import CUSTOMERS, Customer

CASES = "cases"
CASE_KEYS = "case_keys"
CLOSED = [CaseStatus.RESOLVED.value, CaseStatus.CLOSED.value]
_ATTEMPTS = 6


@dataclass(frozen=True, slots=True)
class Attached:
    case: Document
    position: int  # index of the contact in the case (0: it opened the case)
    entry: Document  # the stored contact

    @property
    def case_id(self) -> str:
        return str(self.case["_id"])


def contact_entry(contact: Contact) -> Document:
    """The contact as stored in ``cases.contacts`` (datetimes stay BSON dates)."""
    entry: Document = contact.model_dump(mode="json", exclude_none=True)
    entry["received_at"] = contact.received_at
    return entry


def external_keys(contact: Contact) -> list[str]:
    keys = [f"{source}:{value}" for source, value in contact.external_ids.items()]
    if contact.thread.conversation_id:
        keys.append(f"conversation:{contact.thread.conversation_id}")
    return sorted(set(keys))


def thread_keys(contact: Contact) -> list[str]:
    """Keys of earlier messages this contact replies to or continues."""
    refs = [contact.thread.in_reply_to, *contact.thread.references]
    keys = [f"{contact.source}:{r}" for r in refs if r]
    if contact.thread.conversation_id:
        keys.append(f"conversation:{contact.thread.conversation_id}")
    return sorted(set(keys))


def find_position(case: Document, contact_id: str) -> int | None:
    ids = case.get("contact_ids") or []
    return ids.index(contact_id) if contact_id in ids else None


def pin_key(contact_id: str) -> str:
    return f"contact:{contact_id}"


def thread_key(customer_id: str, key: str) -> str:
    return f"thread:{derived_id(customer_id, key)}"


@dataclass(frozen=True, slots=True)
class Duplicate:
    """Another intake record brought this contact first (an exact duplicate)."""

    case_id: str | None


class ContactMoved(RuntimeError):
    """Another delivery of the same record re-pinned the contact meanwhile: retry it."""


@dataclass(slots=True)
class Keys:
    """The ``case_keys`` documents a contact needs, read in one query."""

    pin: Document | None
    threads: list[Document]


async def read_keys(store: Store, contact: Contact, customer_id: str) -> Keys:
    pin_id = pin_key(contact.contact_id)
    wanted = [pin_id, *(thread_key(customer_id, k) for k in thread_keys(contact))]
    docs = await store[CASE_KEYS].find({"_id": {"$in": wanted}}).to_list()
    pin = next((d for d in docs if d["_id"] == pin_id), None)
    return Keys(pin, [d for d in docs if d["_id"] != pin_id])


def holding(case: Document | None, contact_id: str) -> Attached | None:
    """The contact as ``case`` holds it, if it does."""
    if case is None:
        return None
    position = find_position(case, contact_id)
    if position is None or position >= len(case.get("contacts") or []):
        return None
    return Attached(case, position, case["contacts"][position])


async def find_contact(
    store: Store, contact_id: str, pin: Document | None = None
) -> Attached | None:
    """The case holding this contact (by its pin), if any."""
    if pin is None:
        pin = await store[CASE_KEYS].find_one({"_id": pin_key(contact_id)})
    if pin is None or not pin.get("case_id"):
        return None
    case = await store[CASES].find_one({"_id": pin["case_id"]})
    return holding(case, contact_id)


def _aware(value: datetime) -> datetime:
    return value if value.tzinfo else value.replace(tzinfo=UTC)


class _Pin:
    """This contact's pin in ``case_keys``: where it goes, decided before it goes there."""

    def __init__(
        self,
        store: Store,
        contact: Contact,
        customer: Customer,
        now: datetime,
        doc: Document | None,
    ) -> None:
        self.store = store
        self.contact = contact
        self.customer = customer
        self.now = now
        self.doc = doc
        self.id = pin_key(contact.contact_id)

    def thread_updates(self, case_id: str, customer_id: str) -> list[UpdateOne]:
        return [
            UpdateOne(
                {"_id": thread_key(customer_id, key)},
                {
                    "$addToSet": {"case_ids": case_id},
                    "$setOnInsert": {"customer_id": customer_id, "key": key},
                },
                upsert=True,
            )
            for key in external_keys(self.contact)
        ]

    async def index_threads(self, case_id: str, customer_id: str) -> None:
        """Record the contact's external keys as the case's (idempotent)."""
        updates = self.thread_updates(case_id, customer_id)
        if not updates:
            return
        try:
            await self.store[CASE_KEYS].bulk_write(updates, ordered=False)
        except BulkWriteError:
            # Two replicas upserting one new key: the loser's upsert fails; now it exists.
            await self.store[CASE_KEYS].bulk_write(updates, ordered=False)

    async def to(self, case_id: str, *, threads: bool) -> Duplicate | None:
        """Pin the contact to ``case_id`` (with its thread keys when ``threads``, the case
        being this customer's); a Duplicate when another record holds the contact id."""
        keys = self.store[CASE_KEYS]
        ours = self.contact.intake_event_id
        if self.doc is not None and self.doc.get("case_id") == case_id:
            if threads:  # resumed after a crash: the keys may not have been written
                await self.index_threads(case_id, self.customer.customer_id)
            return None
        if self.doc is None:
            doc: Document = {
                "_id": self.id,
                "case_id": case_id,
                "intake_event_id": ours,
                "customer_id": self.customer.customer_id,
                "pinned_at": self.now,
            }
            # One ``update`` command (an insert beside the upserts would be a second one).
            # The pin is an upsert that only inserts: ``upserted_ids`` tells if it was ours.
            pin = UpdateOne({"_id": self.id}, {"$setOnInsert": doc}, upsert=True)
            updates = self.thread_updates(case_id, self.customer.customer_id) if threads else []
            try:
                result = await keys.bulk_write([pin, *updates], ordered=True)
                pinned = 0 in (result.upserted_ids or {})
            except BulkWriteError as exc:
                errors = exc.details.get("writeErrors") or [{}]
                pinned = errors[0].get("index", 0) != 0  # pinned; a thread key upsert raced
                if pinned:
                    await self.index_threads(case_id, self.customer.customer_id)
            if pinned:
                self.doc = doc
                return None
            # Another record pinned this contact id since we read: a duplicate (its thread
            # keys, the same as ours, may now also name our target: readers check status).
            current = await keys.find_one({"_id": self.id})
        else:
            current = await keys.find_one_and_update(
                {"_id": self.id, "intake_event_id": ours, "case_id": self.doc.get("case_id")},
                {"$set": {"case_id": case_id, "pinned_at": self.now}},
                return_document=ReturnDocument.AFTER,
            )
            if current is not None:
                self.doc = current
                if threads:
                    await self.index_threads(case_id, self.customer.customer_id)
                return None
            current = await keys.find_one({"_id": self.id})
        if current is not None and current.get("intake_event_id") != ours:
            return Duplicate(current.get("case_id"))
        raise ContactMoved(f"contact {self.contact.contact_id} was re-pinned meanwhile")


class CaseAttacher:
    def __init__(self, store: Store, merge_window: timedelta, max_contacts: int) -> None:
        self.store = store
        self.window = merge_window
        self.max_contacts = max_contacts

    async def attach(
        self, contact: Contact, customer: Customer, now: datetime, keys: Keys | None = None
    ) -> Attached | Duplicate:
        """The case holding the contact now; ``keys`` as ``read_keys`` read them."""
        if keys is None:
            keys = await read_keys(self.store, contact, customer.customer_id)
        pin = _Pin(self.store, contact, customer, now, keys.pin)
        if keys.pin is not None:
            if keys.pin.get("intake_event_id") != contact.intake_event_id:
                return Duplicate(keys.pin.get("case_id"))
            # This record was here before (redelivered after a crash).
            found = await find_contact(self.store, contact.contact_id, keys.pin)
            if found is not None:
                await pin.index_threads(found.case_id, str(found.case["customer_id"]))
                return found
        attached = await self._explicit(pin, contact, customer, now, keys.threads)
        if attached is not None:
            return attached
        received = contact.received_at
        claim = derived_id("case", contact.contact_id)
        customers = self.store[CUSTOMERS]
        pointer = customer.open_case  # as identity.resolve read it a moment ago
        for _ in range(_ATTEMPTS):
            fresh = False
            last = (pointer or {}).get("last_contact_at")
            if (
                pointer
                and pointer.get("case_id")
                and pointer["case_id"] != claim
                and isinstance(last, datetime)
                and _aware(last) >= received - self.window
            ):
                case_id = str(pointer["case_id"])  # not claimable: merge into it
            else:
                before = await customers.find_one_and_update(
                    {
                        "_id": customer.customer_id,
                        "$or": [
                            {"open_case": None},
                            {"open_case.last_contact_at": {"$lt": received - self.window}},
                            {"open_case.case_id": claim},
                        ],
                    },
                    {"$set": {"open_case": {"case_id": claim, "last_contact_at": received}}},
                    return_document=ReturnDocument.BEFORE,
                )
                case_id = claim
                if before is None:
                    current = await customers.find_one({"_id": customer.customer_id})
                    pointer = (current or {}).get("open_case") or {}
                    if not pointer.get("case_id"):
                        continue  # released meanwhile: claim again
                    case_id = str(pointer["case_id"])
                else:
                    # Just claimed (not re-claimed): the case does not exist yet.
                    fresh = ((before.get("open_case") or {}).get("case_id")) != claim
            merged = await self._pinned_merge(
                pin, case_id, contact, customer, now, allow_closed=False, fresh=fresh
            )
            if merged is not None:
                if isinstance(merged, Attached) and case_id != claim:
                    await customers.update_one(
                        {"_id": customer.customer_id, "open_case.case_id": case_id},
                        {"$max": {"open_case.last_contact_at": received}},
                    )
                return merged
            # The pointed case is resolved, closed or full: release it, claim anew.
            await customers.update_one(
                {"_id": customer.customer_id, "open_case.case_id": case_id},
                {"$set": {"open_case": None}},
            )
            pointer = None
            if case_id == claim:
                claim = derived_id("case", contact.contact_id, case_id)
        raise RuntimeError(f"could not attach contact {contact.contact_id} to a case")

    async def _explicit(
        self,
        pin: _Pin,
        contact: Contact,
        customer: Customer,
        now: datetime,
        threads: list[Document],
    ) -> Attached | Duplicate | None:
        """Into a case the contact names: the survey's case, or the thread it replies to."""
        if contact.survey is not None and contact.survey.case_id:
            # Maybe another customer's case (the respondent's address may differ).
            merged = await self._pinned_merge(
                pin,
                contact.survey.case_id,
                contact,
                customer,
                now,
                allow_closed=True,
                create=False,
                threads=False,
            )
            if isinstance(merged, Attached):
                await pin.index_threads(merged.case_id, str(merged.case["customer_id"]))
            if merged is not None:
                return merged
        candidates = sorted({str(c) for doc in threads for c in doc.get("case_ids") or []})
        if candidates:
            case = await self.store[CASES].find_one(
                {
                    "_id": {"$in": candidates},
                    "customer_id": customer.customer_id,
                    "status": {"$nin": CLOSED},
                },
                {"_id": 1},
                sort=[("opened_at", -1)],
            )
            if case is not None:
                return await self._pinned_merge(
                    pin, str(case["_id"]), contact, customer, now, allow_closed=True, create=False
                )
        return None

    async def _pinned_merge(
        self,
        pin: _Pin,
        case_id: str,
        contact: Contact,
        customer: Customer,
        now: datetime,
        *,
        allow_closed: bool,
        fresh: bool = False,
        create: bool = True,
        threads: bool = True,
    ) -> Attached | Duplicate | None:
        duplicate = await pin.to(case_id, threads=threads)
        if duplicate is not None:
            return duplicate
        return await self._merge(
            case_id, contact, customer, now, allow_closed=allow_closed, fresh=fresh, create=create
        )

    async def _merge(
        self,
        case_id: str,
        contact: Contact,
        customer: Customer,
        now: datetime,
        *,
        allow_closed: bool,
        fresh: bool = False,
        create: bool = True,
    ) -> Attached | None:
        """Add the contact to ``case_id`` (creating the case if it does not exist yet and
        ``create``; ``fresh``: it is expected not to exist, so insert it first)."""
        entry = contact_entry(contact)
        if fresh and create:
            created = await self._insert(case_id, contact, customer, now, entry)
            if created is not None:
                return created
        guard: dict[str, Any] = {
            "_id": case_id,
            "contact_ids": {"$ne": contact.contact_id},
            "contact_count": {"$lt": self.max_contacts},
        }
        if not allow_closed:
            guard["status"] = {"$nin": CLOSED}
        update: dict[str, Any] = {
            "$push": {"contacts": entry, "contact_ids": contact.contact_id},
            "$inc": {"contact_count": 1, "repeat_contacts": 1},
            "$addToSet": {
                "channels": contact.channel.value,
                "external_ids": {"$each": external_keys(contact)},
            },
            "$max": {"updated_at": now},
        }
        sets: dict[str, Any] = {}
        if contact.public:
            sets["public"] = True
        if customer.tier:
            sets["customer_tier"] = customer.tier
        if sets:
            update["$set"] = sets
        case = await self.store[CASES].find_one_and_update(
            guard, update, return_document=ReturnDocument.AFTER
        )
        if case is None:
            case = await self.store[CASES].find_one({"_id": case_id})
            if case is None:
                if not create:
                    return None
                created = await self._insert(case_id, contact, customer, now, entry)
                if created is not None:
                    return created
                # Created a moment ago by another replica: merge into it instead.
                return await self._merge(case_id, contact, customer, now, allow_closed=False)
        return holding(case, contact.contact_id)  # None: closed or full

    async def _insert(
        self, case_id: str, contact: Contact, customer: Customer, now: datetime, entry: Document
    ) -> Attached | None:
        """The new case opened by this contact; None if a case with this id exists."""
        case: Document = {
            "_id": case_id,
            "customer_id": customer.customer_id,
            "opened_at": min(contact.received_at, now),
            "updated_at": now,
            "contacts": [entry],
            "contact_ids": [contact.contact_id],
            "contact_count": 1,
            "repeat_contacts": 0,
            "channels": [contact.channel.value],
            "external_ids": external_keys(contact),
            "language": contact.language,
            "public": contact.public,
            "customer_tier": customer.tier,
            "stages": {"received_at": now},
            "status": CaseStatus.OPEN.value,
        }
        try:
            await self.store[CASES].insert_one(case)
        except DuplicateKeyError:
            return None
        return Attached(case, 0, entry)
