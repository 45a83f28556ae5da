"""Employee and team directory, fed from HR / workforce-management systems."""

from __future__ import annotations

from typing import Literal

from pydantic import Field

from .common import EventModel


class Shift(EventModel):
    """Working hours in the person's own time zone; days are 0=Monday .. 6=Sunday."""

    timezone: str = "UTC"
    days: list[int] = Field(default_factory=lambda: [0, 1, 2, 3, 4])
    start: str = Field(default="08:00", pattern=r"^\d{2}:\d{2}$")
    end: str = Field(default="17:00", pattern=r"^\d{2}:\d{2}$")


class Person(EventModel):
    person_id: str
    name: str
    email: str | None = None
    team: str
    supervisor_id: str | None = None
    roles: list[str] = Field(
        default_factory=list, description="agent, supervisor, legal, security_oncall..."
    )
    skills: dict[str, int] = Field(
        default_factory=dict, description="category -> level 1 (basic) .. 5 (expert)"
    )
    languages: list[str] = Field(default_factory=list)
    channels: list[str] = Field(default_factory=list, description="Empty means every channel.")
    seniority: int = Field(default=1, ge=1, le=5)
    authority_limits: dict[str, float] = Field(
        default_factory=dict, description="remedy -> largest amount the person may grant"
    )
    max_concurrent_cases: int = Field(default=5, ge=0)
    shift: Shift = Field(default_factory=Shift)
    presence: Literal["available", "away", "offline"] = "available"


class PersonUpdated(EventModel):
    """HR/WFM -> route: a person was added or changed (the whole record)."""

    person: Person


class PresenceChanged(EventModel):
    person_id: str
    presence: Literal["available", "away", "offline"]
