"""Attaching contacts to cases, decided in memory: a new case, the customer's open case
within the merge window, the thread a reply continues, or the case a survey names.

State, as one poll reads it (one ``$in`` per collection):

* the customer document (``customers``, ``_id`` = customer id), ingest's alone:
  ``open_case`` (the pointer: case id and last contact time), ``pins`` (contact id ->
  the case it went to and the intake event that brought it: how a redelivery finds its
  contact and how an exact duplicate with another intake id is recognised), ``threads``
  (``derived_id(external key)`` -> case ids carrying it: how a reply finds its thread),
  ``praise_ids``, identities, name, tier and ``ingest_v``, the version that guards it;
* the cases those name (without their contacts): status, contact ids, count, tier.

A customer's contacts of one poll are decided in offset order, each seeing the ones
before it (``CustomerState`` and ``CaseView`` are updated as decisions are taken), so two
contacts of one customer in one poll merge exactly as they would one poll apart.
``pins`` and ``threads`` are bounded (oldest dropped first): a duplicate of a contact
older than the last ``MAX_PINS`` of its customer is taken for a new contact.

The writes (``handlers``) go customers first, then cases: the customer's pins say where
every contact goes before any case holds it, so after a crash between the two, the
redelivered contact finds its pin, sees the case does not hold it, and is decided again
(into the case the pointer now names, or a new one): each contact is on one case.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

from pymongo import UpdateOne

from shared.events.common import CaseStatus
from shared.events.complaint import Contact
from shared.events.envelope import derived_id
from shared.store import Document

CASES = "cases"
CLOSED = (CaseStatus.RESOLVED.value, CaseStatus.CLOSED.value)
MAX_PINS = 500
MAX_THREADS = 500
_ATTEMPTS = 6

# What attaching reads of a case: not its contacts (the big part).
CASE_PROJECTION = {
    name: 1 for name in ("customer_id", "opened_at", "status", "contact_ids", "contact_count")
} | {"customer_tier": 1}


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


def thread_field(key: str) -> str:
    """The field of ``threads`` for an external key (a uuid: no dots or dollars)."""
    return derived_id("thread", key)


def _aware(value: datetime) -> datetime:
    return value if value.tzinfo else value.replace(tzinfo=UTC)


@dataclass(slots=True)
class CaseView:
    """A case as this poll sees it: as read, plus the contacts decided into it so far."""

    case_id: str
    customer_id: str
    opened_at: datetime
    status: str
    contact_ids: list[str]
    customer_tier: str | None
    stored: bool  # it existed when read (False: opened in this poll)

    @classmethod
    def from_doc(cls, doc: Document) -> CaseView:
        return cls(
            case_id=str(doc["_id"]),
            customer_id=str(doc.get("customer_id")),
            opened_at=_aware(doc["opened_at"]),
            status=str(doc.get("status") or CaseStatus.OPEN.value),
            contact_ids=list(doc.get("contact_ids") or []),
            customer_tier=doc.get("customer_tier"),
            stored=True,
        )

    def position(self, contact_id: str) -> int | None:
        ids = self.contact_ids
        return ids.index(contact_id) if contact_id in ids else None

    def can_take(self, max_contacts: int, *, allow_closed: bool) -> bool:
        if len(self.contact_ids) >= max_contacts:
            return False
        return allow_closed or self.status not in CLOSED


@dataclass(frozen=True, slots=True)
class Placed:
    """Where a contact is: its case and position (0: it opened the case)."""

    case_id: str
    position: int
    replayed: bool  # it was there before this poll (a redelivery)


@dataclass(frozen=True, slots=True)
class Duplicate:
    """Another intake record brought this contact first (an exact duplicate)."""

    case_id: str | None


@dataclass(frozen=True, slots=True)
class Praised:
    case_id: str | None  # the case a survey named, if any
    replayed: bool


Decision = Placed | Duplicate | Praised


@dataclass(frozen=True, slots=True)
class Push:
    """One contact going into one case (the write is built per case from these)."""

    case_id: str
    contact: Contact
    customer_id: str
    tier: str | None
    allow_closed: bool


@dataclass(slots=True)
class CustomerState:
    """ingest's part of a customer document, as read, then as this poll's decisions
    leave it. ``changed``: there is something to write."""

    customer_id: str
    version: int
    open_case: dict[str, Any] | None
    pins: dict[str, dict[str, Any]]
    threads: dict[str, list[str]]
    tier: str | None
    name: str | None = None
    identities: set[str] = field(default_factory=set)
    praise_ids: list[str] = field(default_factory=list)
    first_seen: datetime | None = None
    last_seen: datetime | None = None
    last_praise: datetime | None = None
    changed: bool = False

    @classmethod
    def from_doc(cls, customer_id: str, doc: Document | None) -> CustomerState:
        doc = doc or {}
        return cls(
            customer_id=customer_id,
            version=int(doc.get("ingest_v") or 0),
            open_case=dict(doc["open_case"]) if doc.get("open_case") else None,
            pins=dict(doc.get("pins") or {}),
            threads={k: list(v) for k, v in (doc.get("threads") or {}).items()},
            tier=doc.get("tier"),
            identities=set(doc.get("identities") or ()),
        )

    def case_ids(self, contacts: list[Contact]) -> set[str]:
        """The cases deciding ``contacts`` may look at (for the poll's one ``$in``)."""
        pins = (self.pins.get(c.contact_id) or {} for c in contacts)
        ids = {str(pin["case"]) for pin in pins if pin.get("case")}
        if self.open_case and self.open_case.get("case_id"):
            ids.add(str(self.open_case["case_id"]))
        for contact in contacts:
            for key in thread_keys(contact):
                ids.update(self.threads.get(thread_field(key), ()))
            if contact.survey is not None and contact.survey.case_id:
                ids.add(contact.survey.case_id)
        return ids

    def seen(self, contact: Contact, identities: tuple[str, ...], now: datetime) -> None:
        """What every contact tells about its author: identities, name, tier, time."""
        self.identities.update(identities)
        author = contact.author
        self.name = author.name or self.name
        self.tier = author.customer_tier or self.tier
        self.first_seen = min(self.first_seen or contact.received_at, contact.received_at)
        self.last_seen = max(self.last_seen or contact.received_at, contact.received_at)

    def pin(self, contact: Contact, case_id: str | None, **extra: Any) -> None:
        self.pins.pop(contact.contact_id, None)  # re-pinned: now the newest
        self.pins[contact.contact_id] = {
            "case": case_id,
            "intake": contact.intake_event_id,
            **extra,
        }
        while len(self.pins) > MAX_PINS:
            self.pins.pop(next(iter(self.pins)))
        if case_id is not None:
            for key in external_keys(contact):
                name = thread_field(key)
                ids = self.threads.pop(name, [])
                self.threads[name] = ids if case_id in ids else [*ids, case_id]
            while len(self.threads) > MAX_THREADS:
                self.threads.pop(next(iter(self.threads)))
        self.changed = True


class Attacher:
    """Decides where each contact of a poll goes, over the state the poll read."""

    def __init__(
        self, cases: dict[str, CaseView], merge_window: timedelta, max_contacts: int, now: datetime
    ) -> None:
        self.cases = cases
        self.window = merge_window
        self.max_contacts = max_contacts
        self.now = now
        self.pushes: list[Push] = []

    def decide(self, state: CustomerState, contact: Contact) -> Decision:
        pin = state.pins.get(contact.contact_id)
        if pin is not None and pin.get("intake") != contact.intake_event_id:
            return Duplicate(pin.get("case"))
        if contact.kind == "praise":
            case_id = contact.survey.case_id if contact.survey else None
            if pin is not None:
                return Praised(case_id, replayed=True)
            state.pin(contact, case_id, praise=True)
            state.praise_ids.append(contact.contact_id)
            state.last_praise = max(state.last_praise or self.now, self.now)
            return Praised(case_id, replayed=False)
        if pin is not None and pin.get("case"):
            # This record was here before (redelivered): done if its case holds it; else
            # the write of the case never happened, and it is decided again below.
            view = self.cases.get(str(pin["case"]))
            position = view.position(contact.contact_id) if view else None
            if view is not None and position is not None:
                return Placed(view.case_id, position, replayed=view.stored)
        placed = self._explicit(state, contact) or self._by_pointer(state, contact)
        state.pin(contact, placed.case_id)
        return placed

    def _explicit(self, state: CustomerState, contact: Contact) -> Placed | None:
        """Into a case the contact names: the survey's case, or the thread it replies to."""
        if contact.survey is not None and contact.survey.case_id:
            # Maybe another customer's case (the respondent's address may differ).
            view = self.cases.get(contact.survey.case_id)
            if view is not None:
                placed = self._into(view, state, contact, allow_closed=True)
                if placed is not None:
                    return placed
        candidates = {
            case_id
            for key in thread_keys(contact)
            for case_id in state.threads.get(thread_field(key), ())
        }
        views = [
            v
            for case_id in sorted(candidates)
            if (v := self.cases.get(case_id)) is not None
            and v.customer_id == state.customer_id
            and v.status not in CLOSED
        ]
        if views:
            newest = max(views, key=lambda v: v.opened_at)
            return self._into(newest, state, contact, allow_closed=True)
        return None

    def _by_pointer(self, state: CustomerState, contact: Contact) -> Placed:
        """The customer's open case if its last contact is within the window, else a new
        case (and the pointer names it)."""
        received = contact.received_at
        claim = derived_id("case", contact.contact_id)
        for _ in range(_ATTEMPTS):
            pointer = state.open_case or {}
            last = pointer.get("last_contact_at")
            case_id = str(pointer.get("case_id") or "")
            if (
                case_id
                and case_id != claim
                and isinstance(last, datetime)
                and _aware(last) >= received - self.window
            ):
                view = self.cases.get(case_id)
                if view is None:
                    # Named but not stored: its writer is between the customer's write and
                    # the case's (or died there; its records, redelivered, will join it).
                    # Open it: whichever insert comes second conflicts and merges.
                    pointer["last_contact_at"] = max(_aware(last), received)
                    return self._open(case_id, state, contact)
                placed = self._into(view, state, contact)
                if placed is not None:
                    pointer["last_contact_at"] = max(_aware(last), received)
                    return placed
            else:
                view = self.cases.get(claim)
                if view is None:
                    state.open_case = {"case_id": claim, "last_contact_at": received}
                    return self._open(claim, state, contact)
                # The claim exists: this contact opened it (redelivered with its pin
                # dropped), or another customer's contact of the same id did.
                mine = view.customer_id == state.customer_id
                placed = self._into(view, state, contact) if mine else None
                if placed is not None:
                    state.open_case = {"case_id": claim, "last_contact_at": received}
                    return placed
                claim = derived_id("case", contact.contact_id, claim)
            # The pointed case is resolved, closed, full or gone: claim anew.
            state.open_case = None
        raise RuntimeError(f"could not attach contact {contact.contact_id} to a case")

    def _into(
        self, view: CaseView, state: CustomerState, contact: Contact, *, allow_closed: bool = False
    ) -> Placed | None:
        position = view.position(contact.contact_id)
        if position is not None:  # there already (its pin was dropped, or a replay)
            return Placed(view.case_id, position, replayed=view.stored)
        if not view.can_take(self.max_contacts, allow_closed=allow_closed):
            return None
        view.contact_ids.append(contact.contact_id)
        view.customer_tier = state.tier or view.customer_tier
        self.pushes.append(Push(view.case_id, contact, state.customer_id, state.tier, allow_closed))
        return Placed(view.case_id, len(view.contact_ids) - 1, replayed=False)

    def _open(self, case_id: str, state: CustomerState, contact: Contact) -> Placed:
        self.cases[case_id] = CaseView(
            case_id=case_id,
            customer_id=state.customer_id,
            opened_at=min(contact.received_at, self.now),
            status=CaseStatus.OPEN.value,
            contact_ids=[contact.contact_id],
            customer_tier=state.tier,
            stored=False,
        )
        self.pushes.append(Push(case_id, contact, state.customer_id, state.tier, False))
        return Placed(case_id, 0, replayed=False)


def customer_update(state: CustomerState, now: datetime) -> UpdateOne:
    """The customer's one write of the poll, only if its version is still the one read
    (a stale or concurrent writer's upsert fails on the duplicate ``_id``: a conflict)."""
    guard: dict[str, Any] = (
        {"ingest_v": state.version} if state.version else {"ingest_v": {"$exists": False}}
    )
    sets: dict[str, Any] = {
        "open_case": state.open_case,
        "pins": state.pins,
        "threads": state.threads,
        "ingest_v": state.version + 1,
    }
    if state.name:
        sets["name"] = state.name
    if state.tier:
        sets["tier"] = state.tier
    update: dict[str, Any] = {
        "$set": sets,
        "$setOnInsert": {"created_at": state.first_seen or now},
        "$max": {"last_seen_at": state.last_seen or now},
    }
    adds: dict[str, Any] = {}
    if state.identities:
        adds["identities"] = {"$each": sorted(state.identities)}
    if state.praise_ids:
        adds["praise_ids"] = {"$each": state.praise_ids}
        update["$max"]["last_praise_at"] = state.last_praise or now
    if adds:
        update["$addToSet"] = adds
    return UpdateOne({"_id": state.customer_id, **guard}, update, upsert=True)


def case_writes(
    pushes: list[Push], cases: dict[str, CaseView], now: datetime, max_contacts: int
) -> list[tuple[str, UpdateOne]]:
    """One write per case: a new case's whole document (inserted only if it does not
    exist), or an existing case's new contacts (pushed only while it holds none of them,
    has room and, for a pointer merge, is open). Both are upserts: a guard that no longer
    holds fails on the duplicate ``_id``, which names the case in conflict."""
    by_case: dict[str, list[Push]] = {}
    for push in pushes:
        by_case.setdefault(push.case_id, []).append(push)
    writes = []
    for case_id, items in by_case.items():
        entries = [contact_entry(p.contact) for p in items]
        ids = [p.contact.contact_id for p in items]
        keys = sorted({k for p in items for k in external_keys(p.contact)})
        channels = sorted({p.contact.channel.value for p in items})
        tiers = [p.tier for p in items if p.tier]
        public = any(p.contact.public for p in items)
        view = cases.get(case_id)
        if view is None or not view.stored:
            first = items[0]
            doc: Document = {
                "customer_id": first.customer_id,
                "opened_at": min(first.contact.received_at, now),
                "updated_at": now,
                "contacts": entries,
                "contact_ids": ids,
                "contact_count": len(ids),
                "repeat_contacts": len(ids) - 1,
                "channels": channels,
                "external_ids": keys,
                "language": first.contact.language,
                "public": public,
                "customer_tier": tiers[-1] if tiers else first.tier,
                "stages": {"received_at": now},
                "status": CaseStatus.OPEN.value,
            }
            writes.append(
                (
                    case_id,
                    UpdateOne(
                        {"_id": case_id, "contact_ids": {"$exists": False}},
                        {"$setOnInsert": doc},
                        upsert=True,
                    ),
                )
            )
            continue
        guard: dict[str, Any] = {
            "_id": case_id,
            "contact_ids": {"$nin": ids},
            "contact_count": {"$lte": max_contacts - len(ids)},
        }
        if not all(p.allow_closed for p in items):
            guard["status"] = {"$nin": list(CLOSED)}
        update: dict[str, Any] = {
            "$push": {"contacts": {"$each": entries}, "contact_ids": {"$each": ids}},
            "$inc": {"contact_count": len(ids), "repeat_contacts": len(ids)},
            "$addToSet": {"channels": {"$each": channels}, "external_ids": {"$each": keys}},
            "$max": {"updated_at": now},
        }
        sets: dict[str, Any] = {}
        if public:
            sets["public"] = True
        if tiers:
            sets["customer_tier"] = tiers[-1]
        if sets:
            update["$set"] = sets
        writes.append((case_id, UpdateOne(guard, update, upsert=True)))
    return writes
