"""Who should handle a case: eligibility, ranking and the reasons for the choice.

Pure functions over plain directory records (the ``people`` documents); no broker, no
database. The store makes the final claim atomically, so a stale snapshot here can only
cost a failed claim and a try of the next candidate, never an over-assignment.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, time
from functools import lru_cache
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
SENIOR_PRIORITIES = frozenset({"P1"})
SENIOR_PROFILES = frozenset({"litigant"})
UNKNOWN_LANGUAGES = frozenset({"", "und", "unknown"})
# Categories anyone on the front line can take when no one lists the skill.
GENERIC_CATEGORIES = frozenset({"other"})


@dataclass(frozen=True, slots=True)
class PersonView:
    """The directory fields assignment looks at (a ``people`` document, typed)."""

    person_id: str
    name: str
    team: str
    email: str | None
    roles: tuple[str, ...]
    skills: Mapping[str, int]
    languages: frozenset[str]
    channels: frozenset[str]
    seniority: int
    max_cases: int
    load: int
    presence: str
    shift: Mapping[str, Any]
    supervisor_id: str | None
    last_assigned_at: datetime
    open_cases: tuple[str, ...] = ()

    @classmethod
    def from_doc(cls, doc: Mapping[str, Any]) -> PersonView:
        last = doc.get("last_assigned_at") or EPOCH
        if last.tzinfo is None:
            last = last.replace(tzinfo=UTC)
        return cls(
            person_id=str(doc["_id"]),
            name=doc.get("name") or str(doc["_id"]),
            team=doc.get("team") or "unknown",
            email=doc.get("email"),
            roles=tuple(doc.get("roles") or ()),
            skills=dict(doc.get("skills") or {}),
            languages=frozenset(normalise_language(x) for x in doc.get("languages") or ()),
            channels=frozenset(doc.get("channels") or ()),
            seniority=int(doc.get("seniority") or 1),
            max_cases=int(doc.get("max_concurrent_cases") or 0),
            load=int(doc.get("load") or 0),
            presence=doc.get("presence") or "offline",
            shift=doc.get("shift") or {},
            supervisor_id=doc.get("supervisor_id"),
            last_assigned_at=last,
            open_cases=tuple(doc.get("open_cases") or ()),
        )

    @property
    def takes_cases(self) -> bool:
        # People listed only as supervisor/legal/security are escalation targets, not agents.
        return not self.roles or "agent" in self.roles

    @property
    def load_ratio(self) -> float:
        return self.load / self.max_cases if self.max_cases else 1.0


@dataclass(frozen=True, slots=True)
class Requirement:
    """What a case needs from its assignee."""

    case_id: str
    category: str
    language: str
    channel: str
    priority: str
    profile: str = ""
    legal_threat: bool = False
    safety_threat: bool = False
    previous_handlers: tuple[str, ...] = ()  # most recent first
    excluded: frozenset[str] = frozenset()  # e.g. the person who just handed it back
    # A case followup reopened (kind "dissatisfied" or "reopened"): it needs a senior
    # handler whatever its priority; ``preferred`` (the previous assignee's supervisor)
    # ranks first, ``last_resort`` (the previous assignee) ranks last.
    reopened: str = ""
    preferred: tuple[str, ...] = ()
    last_resort: frozenset[str] = frozenset()

    def needs_senior(self) -> bool:
        return (
            self.priority in SENIOR_PRIORITIES
            or self.profile in SENIOR_PROFILES
            or self.legal_threat
            or self.safety_threat
            or bool(self.reopened)
        )

    def senior_reason(self) -> str:
        causes = [
            c
            for c, on in (
                (self.priority, self.priority in SENIOR_PRIORITIES),
                (self.profile, self.profile in SENIOR_PROFILES),
                ("legal threat", self.legal_threat),
                ("safety threat", self.safety_threat),
                ("reopened", bool(self.reopened)),
            )
            if on
        ]
        return ", ".join(causes)


@dataclass(frozen=True, slots=True)
class Choice:
    person: PersonView
    continuity: bool
    reasons: list[str] = field(default_factory=list)


def normalise_language(code: str | None) -> str:
    return (code or "").strip().lower().replace("_", "-").split("-")[0]


def _parse_hhmm(value: str) -> time | None:
    """'HH:MM' -> time; '24:00' -> None (end of day)."""
    hours, minutes = (int(p) for p in value.split(":"))
    if hours >= 24:
        return None
    return time(hours, minutes)


@lru_cache(maxsize=256)
def _zone(name: str) -> ZoneInfo:
    try:
        return ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError):
        return ZoneInfo("UTC")


def on_shift(shift: Mapping[str, Any], now: datetime) -> bool:
    """Is ``now`` inside the weekly shift, read in the shift's own time zone?

    Overnight shifts (end before start) belong to the day they start on; start == end
    or 00:00-24:00 means the whole day.
    """
    local = now.astimezone(_zone(str(shift.get("timezone") or "UTC")))
    days = set(shift.get("days", [0, 1, 2, 3, 4]))
    start = _parse_hhmm(str(shift.get("start", "08:00"))) or time(0, 0)
    end = _parse_hhmm(str(shift.get("end", "17:00")))
    clock = local.time().replace(tzinfo=None)
    today = local.weekday()
    yesterday = (today - 1) % 7
    if end is None or end == start:
        return today in days and clock >= start
    if start < end:
        return today in days and start <= clock < end
    # Overnight: the evening part today, or the morning part of yesterday's shift.
    return (today in days and clock >= start) or (yesterday in days and clock < end)


def ineligibility(
    person: PersonView, req: Requirement, now: datetime, min_seniority: int
) -> str | None:
    """Why ``person`` cannot take the case now, or None when they can."""
    if not person.takes_cases:
        return "not an agent"
    if person.person_id in req.excluded:
        return "excluded"
    if person.presence != "available":
        return f"presence {person.presence}"
    if person.load >= person.max_cases:
        return "at capacity"
    if not on_shift(person.shift, now):
        return "off shift"
    if skill_level(person, req.category) < 1:
        return f"no {req.category} skill"
    language = normalise_language(req.language)
    if language not in UNKNOWN_LANGUAGES and language not in person.languages:
        return f"does not speak {language}"
    if person.channels and req.channel not in person.channels:
        return f"does not work {req.channel}"
    if req.needs_senior() and person.seniority < min_seniority:
        return f"seniority {person.seniority} < {min_seniority}"
    return None


def skill_level(person: PersonView, category: str) -> int:
    level = int(person.skills.get(category, 0))
    if level < 1 and category in GENERIC_CATEGORIES:
        return 1
    return level


def rank(
    people: Iterable[PersonView], req: Requirement, now: datetime, min_seniority: int
) -> list[Choice]:
    """Eligible people, best first, each with the reasons a human can check.

    Order: the person who handled this customer before (continuity), then the highest
    skill level for the category, then the lowest load ratio, then the longest since
    their last assignment (round robin among equals), then id for determinism.

    A reopened case first tries ``req.preferred`` (the previous assignee's supervisor)
    and tries ``req.last_resort`` (the previous assignee, whose resolution the customer
    rejected) only when no one else fits; otherwise the order above applies.
    """
    eligible = [p for p in people if ineligibility(p, req, now, min_seniority) is None]
    if not eligible:
        return []
    previous_rank = {pid: i for i, pid in enumerate(req.previous_handlers)}
    preferred_rank = {pid: i for i, pid in enumerate(req.preferred)}

    def key(p: PersonView) -> tuple[int, int, int, int, int, float, datetime, str]:
        continuity_rank = previous_rank.get(p.person_id, len(previous_rank))
        return (
            preferred_rank.get(p.person_id, len(preferred_rank)),
            1 if p.person_id in req.last_resort else 0,
            0 if p.person_id in previous_rank else 1,
            continuity_rank,
            -skill_level(p, req.category),
            p.load_ratio,
            p.last_assigned_at,
            p.person_id,
        )

    ordered = sorted(eligible, key=key)
    best_skill = max(skill_level(p, req.category) for p in eligible)
    choices = []
    for p in ordered:
        continuity = p.person_id in previous_rank
        choices.append(
            Choice(p, continuity, _reasons(p, req, eligible, continuity, best_skill, min_seniority))
        )
    return choices


def _reasons(
    p: PersonView,
    req: Requirement,
    eligible: Sequence[PersonView],
    continuity: bool,
    best_skill: int,
    min_seniority: int,
) -> list[str]:
    reasons = []
    if req.reopened:
        reasons.append(
            f"case reopened ({req.reopened}): routed again at {req.priority} to a senior handler"
        )
        if p.person_id in req.preferred:
            reasons.append("supervisor of the previous assignee")
        elif p.person_id in req.last_resort:
            reasons.append("previous assignee: no one else fits now")
    if continuity:
        reasons.append("handled this customer before")
    level = skill_level(p, req.category)
    reasons.append(f"skill {req.category} level {level} (best available {best_skill})")
    language = normalise_language(req.language)
    if language not in UNKNOWN_LANGUAGES:
        reasons.append(f"speaks {language}")
    reasons.append(f"works {req.channel}" if p.channels else "works every channel")
    if req.needs_senior():
        reasons.append(
            f"seniority {p.seniority} >= {min_seniority} required ({req.senior_reason()})"
        )
    tz = p.shift.get("timezone", "UTC")
    reasons.append(f"on shift ({tz} {p.shift.get('start', '?')}-{p.shift.get('end', '?')})")
    same_skill = [q for q in eligible if skill_level(q, req.category) == level]
    lowest = min(q.load_ratio for q in same_skill)
    reasons.append(
        f"load {p.load}/{p.max_cases}, lowest of {len(same_skill)} at skill level {level}"
        if p.load_ratio == lowest and len(same_skill) > 1
        else f"load {p.load}/{p.max_cases}"
    )
    peers = [q for q in same_skill if q.load_ratio == p.load_ratio]
    if len(peers) > 1 and not continuity:
        reasons.append(f"round robin: least recently assigned of {len(peers)} equally fit")
    return reasons
