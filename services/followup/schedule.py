"""When each follow-up is due: pure functions, no clock and no database."""

from __future__ import annotations

import re
from datetime import datetime, timedelta

from shared.events import derived_id

# Timer kinds (bounded: they are metric labels).
INTERIM = "interim"
PROMISE = "promise"
SURVEY = "survey"
REMINDER = "reminder"
CLOSE = "close"
TIMER_KINDS: tuple[str, ...] = (INTERIM, PROMISE, SURVEY, REMINDER, CLOSE)
SATISFACTION_KINDS: tuple[str, ...] = (SURVEY, REMINDER, CLOSE)


def timer_id(case_id: str, kind: str, *parts: object) -> str:
    """Deterministic: the same follow-up of the same case always has the same timer."""
    return derived_id("followup-timer", case_id, kind, *(str(p) for p in parts))


def interim_due(
    window_start: datetime,
    resolution_due: datetime | None,
    assigned_at: datetime,
    *,
    share: float,
    default_window: timedelta,
) -> datetime:
    """First interim update: ``share`` of the way from the window's start to its deadline.

    A deadline missing, or already behind the assignment (a reopened case keeps its first
    SLA clock), gives a fresh default window from the assignment.
    """
    if resolution_due is None or resolution_due <= assigned_at:
        window_start, resolution_due = assigned_at, assigned_at + default_window
    start = min(window_start, resolution_due)
    return start + (resolution_due - start) * share


def next_interim(fired_at: datetime, cadence: timedelta) -> datetime:
    """The next interim update counts from when the last one went out, not from its due
    time: after downtime the customer gets one late update, not a burst of missed ones."""
    return fired_at + cadence


_UNITS = {
    "minute": 60,
    "min": 60,
    "hour": 3600,
    "hr": 3600,
    "day": 86400,
    "week": 7 * 86400,
}
_WITHIN = re.compile(r"\b(?:within|in)\s+(\d{1,3})\s*(minute|min|hour|hr|day|week)s?\b", re.I)
_TOMORROW = re.compile(
    r"\b(?:tomorrow|huomenna|homme|besok|yarın|morgen|demain|mañana)\b|فردا",  # noqa: RUF001
    re.I,
)
_TODAY = re.compile(
    r"\b(?:today|tonight|this (?:morning|afternoon|evening)|end of (?:the )?day)\b", re.I
)
_NEXT_WEEK = re.compile(r"\b(?:next week|end of (?:the )?week)\b", re.I)


def promise_due(
    made_at: datetime, explicit_due: datetime | None, text: str | None, *, default: timedelta
) -> datetime:
    """Every promise gets a due time: the CRM's when given, else read from its words
    ("call back tomorrow", "within 2 hours"), else the default."""
    if explicit_due is not None:
        return explicit_due
    words = text or ""
    if match := _WITHIN.search(words):
        return made_at + timedelta(seconds=int(match.group(1)) * _UNITS[match.group(2).lower()])
    if _TODAY.search(words):
        return made_at + timedelta(hours=8)
    if _TOMORROW.search(words):
        return made_at + timedelta(days=1)
    if _NEXT_WEEK.search(words):
        return made_at + timedelta(days=7)
    return made_at + default
