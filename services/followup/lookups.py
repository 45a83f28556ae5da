"""The reads followup makes beyond the case: supervisors, and a customer's recently
resolved cases (kept by ``_id`` in ``resolved_cases``)."""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from datetime import datetime

from .context import Followup
from .drafts import CaseDraft

# Per customer (``_id``), the ids of the cases most recently resolved: how a survey answer
# or a public complaint finds the customer's resolved cases by ``_id`` (a query on
# ``cases.customer_id`` reads every case on a server without secondary indexes).
RESOLVED_BY_CUSTOMER = "resolved_cases"
RECENT_RESOLVED = 32
# Of those, the latest resolved a survey answer or a public complaint is matched against.
MATCHED_RESOLVED = 5


async def supervisor_of(ctx: Followup, person_id: str | None) -> str | None:
    if not person_id:
        return None
    person = await ctx.store["people"].find_one({"_id": person_id})
    supervisor = (person or {}).get("supervisor_id")
    return str(supervisor) if supervisor else None


async def resolved_lists(ctx: Followup, customer_ids: Iterable[str]) -> dict[str, list[str]]:
    """Per customer, the ids of their recently resolved cases: one ``$in`` read."""
    ids = sorted(set(customer_ids))
    if not ids:
        return {}
    return {
        doc["_id"]: [str(c) for c in doc.get("case_ids") or []]
        async for doc in ctx.store[RESOLVED_BY_CUSTOMER].find({"_id": {"$in": ids}})
    }


def _resolved_at(draft: CaseDraft) -> datetime | None:
    value = draft.get("stages.resolved_at")
    return value if isinstance(value, datetime) else None


def recently_resolved(
    drafts: Mapping[str, CaseDraft],
    listed: Iterable[str],
    customer_id: str,
    matches: Callable[[CaseDraft], bool] = lambda _: True,
) -> list[CaseDraft]:
    """The customer's listed cases that ``matches`` (which says what status it takes),
    latest resolution first (at most ``MATCHED_RESOLVED``), as this poll's drafts left
    them."""
    found = [
        draft
        for case_id in dict.fromkeys(listed)
        if (draft := drafts.get(case_id)) is not None
        and draft.get("customer_id") == customer_id
        and matches(draft)
    ]

    def latest(draft: CaseDraft) -> float:
        at = _resolved_at(draft)
        return at.timestamp() if at is not None else float("-inf")

    return sorted(found, key=latest, reverse=True)[:MATCHED_RESOLVED]
