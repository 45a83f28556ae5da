"""Customer identity across channels: email, phone, social handles, CRM ids.

``customer_identities`` holds one document per identity (``_id`` = ``"email:ann@x.fi"``,
``"phone:+358401234567"``, ``"twitter:@ann"``, ``"crm:zendesk:123"``) naming its customer.
Claiming an identity is an upsert keyed by ``_id`` that only inserts, so two replicas
cannot give one identity to two customers on any MongoDB-protocol server (a unique
*multikey* index is not enforced by every server; ``_id`` always is), and an identity's
owner never changes once claimed.

A contact's identities resolve to the customer owning the strongest one (CRM id, then
email, phone, handle); identities not yet owned are linked to that customer. A contact
with no identity at all (an anonymous review) gets a customer of its own.

A poll is resolved as one unit: one ``$in`` read of every identity its contacts name,
then the contacts in order, each seeing the identities the ones before it claimed (two
contacts of one new customer in one poll resolve to that one customer), then one
unordered bulk of claims. A claim another replica won meanwhile is re-read (one more
``$in``) and the owners it names decide.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime

from pymongo import UpdateOne
from pymongo.errors import BulkWriteError

from shared.events.complaint import Author, Contact
from shared.events.envelope import derived_id
from shared.store import Store
from shared.writes import duplicate_key_errors

IDENTITIES = "customer_identities"
CUSTOMERS = "customers"


@dataclass(frozen=True, slots=True)
class Resolved:
    """Who wrote a contact: the customer and the contact's identities that customer owns."""

    customer_id: str
    identities: tuple[str, ...]


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


def keys_of(contact: Contact) -> list[str]:
    """The identities a contact resolves by; an anonymous one is its own."""
    return identities_of(contact.author) or [f"anonymous:{contact.contact_id}"]


def propose(contacts: Sequence[Contact], owners: dict[str, str]) -> dict[str, tuple[str, datetime]]:
    """The claims a poll makes (identity -> customer, linked at), contacts in order: an
    identity claimed for an earlier contact counts as owned for the later ones."""
    claims: dict[str, tuple[str, datetime]] = {}
    for contact in contacts:
        keys = keys_of(contact)
        owner = next(
            (owners.get(k) or claims[k][0] for k in keys if k in owners or k in claims), None
        )
        customer_id = owner or derived_id("customer", keys[0])
        for key in keys:
            if key not in owners and key not in claims:
                claims[key] = (customer_id, contact.received_at)
    return claims


def resolved(contact: Contact, owners: dict[str, str]) -> Resolved:
    """The contact's customer once all its identities are owned: the strongest decides."""
    keys = keys_of(contact)
    customer_id = next(owners[k] for k in keys if k in owners)
    return Resolved(customer_id, tuple(k for k in keys if owners.get(k) == customer_id))


async def resolve_all(store: Store, contacts: Sequence[Contact]) -> list[Resolved]:
    """Each contact's customer, claiming the identities seen for the first time."""
    if not contacts:
        return []
    wanted = sorted({k for c in contacts for k in keys_of(c)})
    owners = await _owners(store, wanted)
    claims = propose(contacts, owners)
    if claims:
        ops = [
            UpdateOne(
                {"_id": key},
                {"$setOnInsert": {"customer_id": customer_id, "linked_at": linked_at}},
                upsert=True,
            )
            for key, (customer_id, linked_at) in claims.items()
        ]
        try:
            result = await store[IDENTITIES].bulk_write(ops, ordered=False)
            contested = result.upserted_count < len(ops)
        except BulkWriteError as exc:
            duplicate_key_errors(exc)
            contested = True  # two replicas upserting one new identity: one lost
        if contested:
            owners = await _owners(store, wanted)  # the winners decide
        else:
            owners.update({key: customer_id for key, (customer_id, _) in claims.items()})
    return [resolved(c, owners) for c in contacts]


async def _owners(store: Store, keys: list[str]) -> dict[str, str]:
    cursor = store[IDENTITIES].find({"_id": {"$in": keys}}, {"customer_id": 1})
    return {doc["_id"]: doc["customer_id"] async for doc in cursor}
