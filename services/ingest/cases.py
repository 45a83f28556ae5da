"""Attaching a contact to a case: a new case, or the customer's open case within the window.

Every write is one atomic single-document update, safe under redelivery and under two
ingest replicas handling one customer's contacts at the same moment:

* the customer document's ``open_case`` pointer is *claimed* with ``find_one_and_update``
  (only when there is none, or its last contact is older than the merge window), so only
  one replica opens the customer's next case; the other merges into it;
* a case's id is derived from its first contact's id, so a redelivered first contact
  finds (or creates) the same case;
* a contact is pushed with the guard ``contact_ids: {$ne: id}`` (a flat array: FerretDB
  1.24 evaluates ``contacts.contact_id`` filters on arrays of documents wrongly in
  updates), so a contact is never added twice.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from pymongo import ReturnDocument
from pymongo.errors import DuplicateKeyError

from shared.events.common import CaseStatus
from shared.events.complaint import Contact
from shared.events.envelope import derived_id
from shared.store import Document, Store

from .identity import CUSTOMERS, Customer

CASES = "cases"
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


async def find_contact(store: Store, contact_id: str) -> Attached | None:
    """The case already holding this contact (exact-duplicate check), if any."""
    case = await store[CASES].find_one({"contact_ids": contact_id})
    if case is None:
        return None
    position = find_position(case, contact_id)
    if position is None or position >= len(case.get("contacts") or []):
        return None
    return Attached(case, position, case["contacts"][position])


class CaseAttacher:
    def __init__(self, store: Store, merge_window: timedelta, max_contacts: int) -> None:
        self.store = store
        self.window = merge_window
        self.max_contacts = max_contacts

    async def attach(self, contact: Contact, customer: Customer, now: datetime) -> Attached:
        received = contact.received_at
        explicit = await self._explicit_target(contact, customer)
        if explicit is not None:
            attached = await self._merge(explicit, contact, customer, now, allow_closed=True)
            if attached is not None:
                return attached
        claim = derived_id("case", contact.contact_id)
        customers = self.store[CUSTOMERS]
        for _ in range(_ATTEMPTS):
            claimed = await customers.find_one_and_update(
                {
                    "_id": customer.customer_id,
                    "$or": [
                        {"open_case": None},
                        {"open_case.last_contact_at": {"$lt": received - self.window}},
                        {"open_case.case_id": claim},
                    ],
                },
                {"$set": {"open_case": {"case_id": claim, "last_contact_at": received}}},
                return_document=ReturnDocument.AFTER,
            )
            case_id = claim
            if claimed is None:
                current = await customers.find_one({"_id": customer.customer_id})
                pointer = (current or {}).get("open_case") or {}
                if not pointer.get("case_id"):
                    continue  # released meanwhile: claim again
                case_id = str(pointer["case_id"])
            attached = await self._merge(case_id, contact, customer, now, allow_closed=False)
            if attached is not None:
                if case_id != claim:
                    await customers.update_one(
                        {"_id": customer.customer_id, "open_case.case_id": case_id},
                        {"$max": {"open_case.last_contact_at": received}},
                    )
                return attached
            # The pointed case is resolved, closed or full: release it, claim anew.
            await customers.update_one(
                {"_id": customer.customer_id, "open_case.case_id": case_id},
                {"$set": {"open_case": None}},
            )
            if case_id == claim:
                claim = derived_id("case", contact.contact_id, case_id)
        raise RuntimeError(f"could not attach contact {contact.contact_id} to a case")

    async def _explicit_target(self, contact: Contact, customer: Customer) -> str | None:
        """A case the contact names: the survey's case, or the thread it replies to."""
        if contact.survey is not None and contact.survey.case_id:
            case = await self.store[CASES].find_one({"_id": contact.survey.case_id}, {"_id": 1})
            if case is not None:
                return str(case["_id"])
        keys = thread_keys(contact)
        if keys:
            case = await self.store[CASES].find_one(
                {
                    "external_ids": {"$in": keys},
                    "customer_id": customer.customer_id,
                    "status": {"$nin": CLOSED},
                },
                {"_id": 1},
                sort=[("opened_at", -1)],
            )
            if case is not None:
                return str(case["_id"])
        return None

    async def _merge(
        self,
        case_id: str,
        contact: Contact,
        customer: Customer,
        now: datetime,
        *,
        allow_closed: bool,
    ) -> Attached | None:
        """Add the contact to ``case_id`` (creating the case if it does not exist yet)."""
        entry = contact_entry(contact)
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
                return await self._create(case_id, contact, customer, now, entry)
        position = find_position(case, contact.contact_id)
        if position is None:
            return None  # closed or full
        return Attached(case, position, case["contacts"][position])

    async def _create(
        self, case_id: str, contact: Contact, customer: Customer, now: datetime, entry: Document
    ) -> Attached | None:
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
            # Created a moment ago by another replica: merge into it instead.
            return await self._merge(case_id, contact, customer, now, allow_closed=False)
        return Attached(case, 0, entry)
