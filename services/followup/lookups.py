"""The few reads followup makes beyond the case: supervisors, and a customer's recently
resolved cases (kept by ``_id`` in ``resolved_cases``)."""

from __future__ import annotations

import contextlib
import logging
from collections.abc import Mapping
from typing import Any

from pymongo.errors import DuplicateKeyError

from shared.service import Rejected
from shared.store import Document

from .context import AFTER_RESOLUTION, Followup

log = logging.getLogger(__name__)

# Per customer (``_id``), the ids of the cases most recently resolved: how a survey answer
# or a public complaint finds the customer's resolved cases by ``_id`` (a query on
# ``cases.customer_id`` reads every case on a server without secondary indexes).
RESOLVED_BY_CUSTOMER = "resolved_cases"
RECENT_RESOLVED = 32


async def load_case(ctx: Followup, case_id: str) -> Document:
    case = await ctx.cases.find_one({"_id": case_id})
    if case is None:
        raise Rejected("unknown_case", f"case {case_id} does not exist")
    return case


async def supervisor_of(ctx: Followup, person_id: str | None) -> str | None:
    if not person_id:
        return None
    person = await ctx.store["people"].find_one({"_id": person_id})
    supervisor = (person or {}).get("supervisor_id")
    return str(supervisor) if supervisor else None


async def remember_resolved(ctx: Followup, customer_id: str, case_id: str) -> None:
    """Add the case to the customer's recently resolved ones (idempotent)."""
    with contextlib.suppress(DuplicateKeyError):  # listed already (the upsert found the doc)
        await ctx.store[RESOLVED_BY_CUSTOMER].update_one(
            {"_id": customer_id, "case_ids": {"$ne": case_id}},
            {"$push": {"case_ids": {"$each": [case_id], "$slice": -RECENT_RESOLVED}}},
            upsert=True,
        )


async def recently_resolved(
    ctx: Followup, customer_id: str, query: Mapping[str, Any]
) -> list[Document]:
    """The customer's resolved or closed cases matching ``query``, latest resolution first
    (at most 5), read by ``_id`` through ``resolved_cases``."""
    listed = await ctx.store[RESOLVED_BY_CUSTOMER].find_one({"_id": customer_id})
    case_ids = (listed or {}).get("case_ids") or []
    if not case_ids:
        return []
    cursor = (
        ctx.cases.find(
            {
                "_id": {"$in": case_ids},
                "customer_id": customer_id,
                "status": {"$in": list(AFTER_RESOLUTION)},
                **query,
            }
        )
        .sort("stages.resolved_at", -1)
        .limit(5)
    )
    return await cursor.to_list()
