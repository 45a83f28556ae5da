"""Customer identity across channels: email, phone, social handles, CRM ids.

``customer_identities`` holds one document per identity (``_id`` = ``"email:ann@x.fi"``,
``"phone:+358401234567"``, ``"twitter:@ann"``, ``"crm:zendesk:123"``) naming its customer.
Claiming an identity is an insert keyed by ``_id``, so two replicas cannot give one
identity to two customers on any MongoDB-protocol server (a unique *multikey* index is
not enforced by every server; ``_id`` always is). ``customers.identities`` is the same
list on the customer, for reading.

A contact's identities resolve to the customer owning the strongest one (CRM id, then
email, phone, handle); identities not yet owned are linked to that customer. A contact
with no identity at all (an anonymous review) gets a customer of its own.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from pymongo import ReturnDocument, UpdateOne
from pymongo.errors import BulkWriteError, DuplicateKeyError

from shared.events.complaint import Author
from shared.events.envelope import derived_id
from shared.store import Store

IDENTITIES = "customer_identities"
CUSTOMERS = "customers"


@dataclass(frozen=True, slots=True)
class Customer:
    customer_id: str
    identities: tuple[str, ...]
    tier: str | None
    is_new: bool
    open_case: dict[str, Any] | None = None  # the customer's open-case pointer as just read


def identities_of(author: Author) -> list[str]:
    """The author's identities, strongest first."""
    keys: list[str] = []
    if author.crm_id:
        keys.append(f"crm:{author.crm_id.lower()}")
    if author.email:
        keys.append(f"email:{author.email.lower()}")
    if author.phone:
        keys.append(f"phone:{author.phone}")
    if author.handle:
        keys.append(author.handle.lower())
    return keys


async def resolve(
    store: Store, author: Author, *, anonymous_key: str, seen_at: datetime
) -> Customer:
    """The customer behind ``author``, linking identities seen together for the first time."""
    keys = identities_of(author)
    keys_for_id = keys or [f"anonymous:{anonymous_key}"]
    owners = await _owners(store, keys_for_id)
    proposed = next((owners[k] for k in keys_for_id if k in owners), None)
    customer_id = proposed or derived_id("customer", keys_for_id[0])
    new_keys = [k for k in keys_for_id if k not in owners]
    contested = False
    if new_keys:
        # One command for all of them. A replica claiming one at the same moment wins its
        # insert (or had inserted it since our read): re-read the owners below then.
        try:
            linked = await store[IDENTITIES].bulk_write(
                [
                    UpdateOne(
                        {"_id": key},
                        {"$setOnInsert": {"customer_id": customer_id, "linked_at": seen_at}},
                        upsert=True,
                    )
                    for key in new_keys
                ],
                ordered=False,
            )
        except BulkWriteError:
            contested = True
        else:
            mine_now = {new_keys[i] for i in linked.upserted_ids or {}}
            contested = len(mine_now) < len(new_keys)
            owners.update(dict.fromkeys(mine_now, customer_id))
    if contested:
        owners = await _owners(store, keys_for_id)
    customer_id = owners.get(keys_for_id[0], customer_id)
    for key in keys_for_id:  # the strongest owned identity decides
        if key in owners:
            customer_id = owners[key]
            break
    mine = [k for k in keys_for_id if owners.get(k) == customer_id]
    update: dict[str, object] = {
        "$setOnInsert": {"created_at": seen_at},
        "$addToSet": {"identities": {"$each": mine}},
        "$max": {"last_seen_at": seen_at},
    }
    details = {k: v for k, v in {"name": author.name, "tier": author.customer_tier}.items() if v}
    if details:
        update["$set"] = details
    try:
        result = await store[CUSTOMERS].find_one_and_update(
            {"_id": customer_id}, update, upsert=True, return_document=ReturnDocument.AFTER
        )
    except DuplicateKeyError:
        # A server enforcing the multikey index refused an identity it thinks is
        # elsewhere; the identities collection is the authority: link without it.
        update.pop("$addToSet")
        result = await store[CUSTOMERS].find_one_and_update(
            {"_id": customer_id}, update, upsert=True, return_document=ReturnDocument.AFTER
        )
    return Customer(
        customer_id=customer_id,
        identities=tuple(result.get("identities", mine) if result else mine),
        tier=(result or {}).get("tier"),
        is_new=proposed is None and customer_id == derived_id("customer", keys_for_id[0]),
        open_case=(result or {}).get("open_case") or None,
    )


async def _owners(store: Store, keys: list[str]) -> dict[str, str]:
    cursor = store[IDENTITIES].find({"_id": {"$in": keys}}, {"customer_id": 1})
    return {doc["_id"]: doc["customer_id"] async for doc in cursor}
