"""One poll's changes to the cases it touches: read once, decided in memory, written once.

A ``CaseDraft`` is a case as read plus the fields followup changed since, in order: each
record of the poll is decided against the draft as the records before it left it. The
draft's write is one update per case with only the fields whose value changed (so a
redelivered poll, whose decisions are all stored already, writes nothing), guarded by
``followup.rev``: the case's version for followup, bumped by every followup write
(the timer loop's too). The case's ``status`` (route writes it too) is part of the guard,
since decisions depend on it.

The updates of a poll go in one unordered ``bulk_write`` of upserts: one whose guard no
longer matches (a stale consumer after a rebalance, another of followup's topics or the
timer loop wrote the case meanwhile) fails on the duplicate ``_id``, and only that case's
records are decided again from a fresh read (``CONFLICT_ROUNDS``). Its timers, metrics and
events are dropped with it: they are applied, counted and published only for the cases
whose write held.
"""

from __future__ import annotations

import copy
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from pymongo import UpdateOne

from shared.batch import Outgoing
from shared.store import Document
from shared.writes import guarded_bulk_write

from .context import Followup
from .timers import TimerSpec

CONFLICT_ROUNDS = 8
REV = "followup.rev"

# What followup reads of a case: its own fields and what it needs of the others'
# (opening, SLA, contacts for names, reach and channels, the assignment).
CASE_PROJECTION = {
    name: 1
    for name in (
        "status",
        "customer_id",
        "customer_name",
        "opened_at",
        "stages",
        "sla",
        "priority",
        "language",
        "public",
        "channels",
        "contacts",
        "assignment",
        "promises",
        "satisfaction",
        "measures",
        "followup",
    )
}


def stored(value: Any) -> Any:
    """``value`` as BSON keeps it (datetimes to the millisecond), so a value decided now
    compares equal to the same value read back."""
    if isinstance(value, datetime):
        return value.replace(microsecond=value.microsecond // 1000 * 1000)
    if isinstance(value, Mapping):
        return {k: stored(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [stored(v) for v in value]
    return value


def _get(doc: Mapping[str, Any], path: str) -> Any:
    value: Any = doc
    for part in path.split("."):
        if not isinstance(value, Mapping):
            return None
        value = value.get(part)
    return value


class CaseDraft:
    """A case as read, and the ``$set`` that makes the stored case what it is now."""

    def __init__(self, doc: Document) -> None:
        self.case_id: str = doc["_id"]
        self.rev = int(_get(doc, REV) or 0)
        self.read_status = doc.get("status")
        self.doc: dict[str, Any] = copy.deepcopy(dict(doc))
        self.changes: dict[str, Any] = {}

    def get(self, path: str) -> Any:
        return _get(self.doc, path)

    def set(self, path: str, value: Any) -> None:
        """Set a (dotted) field, unless it holds that value already."""
        value = stored(value)
        if _get(self.doc, path) == value and path not in self.changes:
            return
        parts = path.split(".")
        node = self.doc
        for part in parts[:-1]:
            child = node.get(part)
            if not isinstance(child, dict):
                child = node[part] = {}
            node = child
        node[parts[-1]] = value
        # One path per update: an ancestor already set carries the new value; a set
        # ancestor replaces the descendants set before it.
        for i in range(1, len(parts)):
            ancestor = ".".join(parts[:i])
            if ancestor in self.changes:
                self.changes[ancestor] = copy.deepcopy(_get(self.doc, ancestor))
                return
        for other in [p for p in self.changes if p.startswith(path + ".")]:
            del self.changes[other]
        self.changes[path] = copy.deepcopy(value)

    def update(self, values: Mapping[str, Any]) -> None:
        for path, value in values.items():
            self.set(path, value)

    def add_to(self, path: str, item: Any) -> bool:
        """Append ``item`` to the list at ``path`` unless it is there; True if added."""
        items = list(self.get(path) or [])
        if item in items:
            return False
        self.set(path, [*items, item])
        return True

    def write(self) -> UpdateOne | None:
        """The guarded upsert of the changes (None: nothing changed)."""
        if not self.changes:
            return None
        guard: dict[str, Any] = {REV: self.rev} if self.rev else {REV: {"$exists": False}}
        return UpdateOne(
            {"_id": self.case_id, "status": self.read_status, **guard},
            {"$set": {**self.changes, REV: self.rev + 1}},
            upsert=True,
        )


async def read_drafts(ctx: Followup, case_ids: Iterable[str]) -> dict[str, CaseDraft]:
    """The named cases that exist, as drafts: one ``$in`` read."""
    ids = list(dict.fromkeys(case_ids))
    if not ids:
        return {}
    return {
        doc["_id"]: CaseDraft(doc)
        async for doc in ctx.cases.find({"_id": {"$in": ids}}, CASE_PROJECTION)
    }


# An event to publish once the case's write held; some need a supervisor looked up.
Build = Callable[[Mapping[str, str | None]], Outgoing]


@dataclass(slots=True)
class CasePlan:
    """What one poll decided for one case: the draft, then what follows its write."""

    draft: CaseDraft
    schedule: list[TimerSpec] = field(default_factory=list)
    cancel: list[str] = field(default_factory=list)
    counts: list[Callable[[], None]] = field(default_factory=list)  # metrics
    outgoing: list[tuple[int, Build]] = field(default_factory=list)  # by record index
    people: set[str] = field(default_factory=set)  # whose supervisors the events name
    remember: list[tuple[str, str]] = field(default_factory=list)  # (customer, case)

    def emit(self, index: int, build: Build) -> None:
        self.outgoing.append((index, build))


async def write_cases(ctx: Followup, plans: Sequence[CasePlan]) -> set[str]:
    """One unordered bulk write of the plans' case updates; the ids of the cases whose
    guard failed (another writer changed them after our read)."""
    writes = [(plan.draft.case_id, op) for plan in plans if (op := plan.draft.write())]
    return await guarded_bulk_write(ctx.cases, writes)
