"""Reading other services' case fields (and followup's own), defensively: plain
functions of a case document, no store."""

from __future__ import annotations

import logging
from collections.abc import Mapping
from datetime import datetime
from typing import Any

from shared.events.common import Channel

from .messages import usable_name

log = logging.getLogger(__name__)


# -- reading other services' case fields, defensively --------------------------------


def followup_of(case: Mapping[str, Any]) -> dict[str, Any]:
    return dict(case.get("followup") or {})


def cycle_of(case: Mapping[str, Any]) -> int:
    return int(followup_of(case).get("cycle") or 0)


def case_opened_at(case: Mapping[str, Any]) -> datetime | None:
    stages = case.get("stages") or {}
    value = case.get("opened_at") or stages.get("received_at")
    return value if isinstance(value, datetime) else None


def sla_due(case: Mapping[str, Any], name: str) -> datetime | None:
    value = followup_of(case).get(name) or (case.get("sla") or {}).get(name)
    return value if isinstance(value, datetime) else None


def contacts_of(case: Mapping[str, Any]) -> list[Mapping[str, Any]]:
    return [c for c in case.get("contacts") or [] if isinstance(c, Mapping)]


def customer_name(case: Mapping[str, Any]) -> str | None:
    """The latest usable name the customer gave on any contact."""
    candidates: list[Any] = [case.get("customer_name")]
    for contact in contacts_of(case):
        author = contact.get("author")
        if isinstance(author, Mapping):
            candidates.append(author.get("name"))
        candidates.append(contact.get("author_name"))
    names = [n for n in (usable_name(c) if isinstance(c, str) else None for c in candidates) if n]
    return names[-1] if names else None


def reach_of(case: Mapping[str, Any], extra: int | None = None) -> int:
    """The customer's largest audience seen on any contact of the case."""
    values = [extra or 0]
    for contact in contacts_of(case):
        reach = contact.get("reach")
        if isinstance(reach, int | float) and not isinstance(reach, bool):
            values.append(int(reach))
    return max(values)


def public_channels(case: Mapping[str, Any]) -> list[str]:
    """The public channels the complaint was made on: those are watched after resolution."""
    channels = {
        str(c.get("channel")) for c in contacts_of(case) if c.get("public") and c.get("channel")
    }
    if not channels and case.get("public"):
        listed = [str(c) for c in case.get("channels") or []]
        channels = {c for c in listed if c in (Channel.SOCIAL, Channel.REVIEW)} or set(listed)
    return sorted(channels)


def is_silent(case: Mapping[str, Any], fallback_channel: str) -> bool:
    """The case started from a survey answer (a customer who would not have complained)."""
    contacts = contacts_of(case)
    if contacts and contacts[0].get("channel"):
        return contacts[0].get("channel") == Channel.SURVEY
    channels = case.get("channels") or []
    first = channels[0] if channels else fallback_channel
    return bool(first == Channel.SURVEY)


def channel_of(case: Mapping[str, Any]) -> Channel:
    value = followup_of(case).get("channel") or next(iter(case.get("channels") or []), None)
    try:
        return Channel(str(value))
    except ValueError:
        return Channel.EMAIL


def assignee_of(case: Mapping[str, Any]) -> dict[str, Any]:
    assignee = followup_of(case).get("assignee") or case.get("assignment") or {}
    return dict(assignee) if isinstance(assignee, Mapping) else {}


def find_promise(
    case: Mapping[str, Any], promise_id: str | None
) -> tuple[int, Mapping[str, Any]] | None:
    promises = [p if isinstance(p, Mapping) else {} for p in case.get("promises") or []]
    if promise_id is None:
        # Kept without naming which: the oldest open one.
        open_ones = [(i, p) for i, p in enumerate(promises) if p.get("state") == "open"]
        return min(open_ones, key=lambda ip: ip[1].get("due_at") or ip[0]) if open_ones else None
    for index, promise in enumerate(promises):
        if promise.get("promise_id") == promise_id:
            return index, promise
    return None
