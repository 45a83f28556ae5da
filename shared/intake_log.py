"""ingest's outcome log: where each intake record ended (``new_case``, ``merged``,
``duplicate``, ``praise``, ``ignored``), read by ``amends run``, the bench and the fault
harness to account for every complaint.

One document per handled poll, not per record: ``_id`` derived from the poll's records
(a retried poll writes the same document once), ``ids`` the intake event ids it holds (a
flat array, for queries), ``entries`` one outcome per record (``_id`` = intake event id,
``outcome``, ``case_id``, ``contact_id``, ``customer_id``, ``channel``, ``source``). A
record redelivered in another poll is logged again there with the same outcome; readers
take each intake id once (``read``).
"""

from __future__ import annotations

from collections.abc import Collection, Sequence
from datetime import datetime
from typing import Any

from pymongo import UpdateOne
from pymongo.asynchronous.database import AsyncDatabase

from .events.envelope import derived_id
from .store import Document, Store

COLLECTION = "intake_log"


def poll_document(keys: Sequence[str], entries: Sequence[Document], now: datetime) -> UpdateOne:
    """The log of one poll: ``keys`` name its records (topic, partition, offset, id)."""
    return UpdateOne(
        {"_id": derived_id("intake-log", *keys)},
        {
            "$setOnInsert": {
                "ids": [e["_id"] for e in entries],
                "entries": list(entries),
                "logged_at": now,
            }
        },
        upsert=True,
    )


async def read(
    store: Store | AsyncDatabase[Document],
    *,
    ids: Collection[str] | None = None,
    prefix: str | None = None,
) -> dict[str, Document]:
    """Each logged intake id's outcome (all, or those in ``ids`` / starting ``prefix``)."""
    query: dict[str, Any] = {}
    if ids is not None:
        query = {"ids": {"$in": list(ids)}}
    elif prefix is not None:
        query = {"ids": {"$regex": f"^{prefix}"}}
    wanted = set(ids) if ids is not None else None
    out: dict[str, Document] = {}
    async for doc in store[COLLECTION].find(query, {"entries": 1}).sort("logged_at", 1):
        for entry in doc.get("entries") or []:
            intake_id = str(entry.get("_id"))
            if intake_id in out:
                continue
            if wanted is not None and intake_id not in wanted:
                continue
            if prefix is not None and not intake_id.startswith(prefix):
                continue
            out[intake_id] = entry
    return out
