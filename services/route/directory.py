"""The people directory: storing directory records (never touching assignment's load)
and seeding it from a people file.
"""

from __future__ import annotations

import json
import logging
from datetime import datetime
from pathlib import Path

from pymongo import ReturnDocument

from shared.events.directory import Person
from shared.store import Document, Store

from .assignment import EPOCH
from .state import now_ms

log = logging.getLogger(__name__)


def person_fields(person: Person) -> Document:
    data = person.model_dump(mode="json")
    data.pop("person_id")
    return data


def person_update(person: Person, now: datetime) -> Document:
    """The upsert storing a whole directory record: ``load`` and ``open_cases`` belong to
    assignment and are never overwritten here."""
    return {
        "$set": {**person_fields(person), "updated_at": now},
        "$setOnInsert": {"load": 0, "open_cases": [], "last_assigned_at": EPOCH},
    }


async def upsert_person(store: Store, person: Person, now: datetime) -> Document | None:
    """Store a whole directory record; returns the document as it was before (or None)."""
    return await store["people"].find_one_and_update(
        {"_id": person.person_id},
        person_update(person, now),
        upsert=True,
        return_document=ReturnDocument.BEFORE,
    )


def load_people_file(path: Path) -> list[Person]:
    data = json.loads(path.read_text(encoding="utf-8"))
    records = data["people"] if isinstance(data, dict) else data
    return [Person.model_validate(record) for record in records]


async def seed_directory(store: Store, path: Path | str) -> int:
    """Load a people file (a JSON list of Person records, or ``{"people": [...]}``)."""
    people = load_people_file(Path(path))
    now = now_ms()
    for person in people:
        await upsert_person(store, person, now)
    log.info("seeded %d people from %s", len(people), path)
    return len(people)
