"""When a case goes above or beside its assignee, and to whom. Pure functions."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from .assignment import PersonView, on_shift

# kind -> (role that must receive it, why)
FLAG_ROUTES: dict[str, tuple[str, str]] = {
    "safety_threat": ("security_oncall", "threat of harm: safety matter, escalated at once"),
    "legal_threat": ("legal", "legal or regulatory threat"),
    "manager_requested": ("supervisor", "customer asked for a manager"),
}


# Kinds followup publishes on complaints.escalated when it reopens a resolved case: route
# queues the case again. Every other kind on that topic (route's own escalations,
# followup's broken promises) is for people, never re-routed, so route cannot loop on it.
REOPEN_KINDS = frozenset({"dissatisfied", "reopened"})
PRIORITIES = ("P1", "P2", "P3", "P4")  # most urgent first
REOPEN_MIN_PRIORITY = "P2"
# The urgency score each priority starts at (classify's bands): a reopened case queues
# among the cases of its raised priority, not behind them.
PRIORITY_URGENCY = {"P1": 70, "P2": 45, "P3": 25, "P4": 0}


@dataclass(frozen=True, slots=True)
class Target:
    to_role: str
    person: PersonView | None


def flag_escalations(flags: Mapping[str, Any]) -> list[str]:
    """Kinds to escalate for a classification's flags, most serious first."""
    return [kind for kind in FLAG_ROUTES if flags.get(kind)]


def _reachable(p: PersonView, now: datetime) -> bool:
    return p.presence != "offline" and on_shift(p.shift, now)


def _least_busy(people: Iterable[PersonView]) -> PersonView | None:
    ordered = sorted(people, key=lambda p: (p.presence != "available", p.load, p.person_id))
    return ordered[0] if ordered else None


def choose_target(
    role: str,
    people: Iterable[PersonView],
    now: datetime,
    *,
    assignee: PersonView | None = None,
    team_hint: str | None = None,
) -> Target:
    """The person to page for ``role``: on shift and reachable, least busy first.

    A supervisor is the assignee's own supervisor when reachable, else any reachable
    supervisor (of ``team_hint`` first). Legal is anyone with the role or in the legal
    team. No one reachable: the role alone (the CRM's on-call rota takes it).
    """
    people = list(people)
    by_id = {p.person_id: p for p in people}
    if role == "supervisor" and assignee is not None and assignee.supervisor_id:
        own = by_id.get(assignee.supervisor_id)
        if own is not None and _reachable(own, now):
            return Target(role, own)
    if role == "assignee":
        return Target(role, assignee)
    holders = [
        p
        for p in people
        if (role in p.roles or (role == "legal" and p.team == "legal")) and _reachable(p, now)
    ]
    if role == "supervisor" and team_hint:
        same_team = [p for p in holders if p.team == team_hint]
        holders = same_team or holders
    return Target(role, _least_busy(holders))


def sla_warn_at(start: datetime, due: datetime, fraction: float) -> datetime:
    """When to warn: ``fraction`` of the way from the clock's start to the deadline."""
    span = max(due - start, timedelta(0))
    return start + span * fraction


@dataclass(frozen=True, slots=True)
class SlaAction:
    kind: str  # sla_warning or sla_breach
    action: str  # remind_assignee, reassign, alert_supervisor
    to_role: str


def sla_action(stage: str, state: str, assignee: PersonView | None, now: datetime) -> SlaAction:
    """What to do when a case's SLA check comes due.

    Warning (no first response yet, deadline near): remind an assignee who is there; take
    the case back from one who is away or off shift so someone else can answer in time;
    a case still queued goes to a supervisor (staffing). Breach: always the supervisor.
    """
    if stage == "pending":
        if state == "assigned" and assignee is not None:
            if assignee.presence == "available" and on_shift(assignee.shift, now):
                return SlaAction("sla_warning", "remind_assignee", "assignee")
            return SlaAction("sla_warning", "reassign", "supervisor")
        return SlaAction("sla_warning", "alert_supervisor", "supervisor")
    return SlaAction("sla_breach", "alert_supervisor", "supervisor")


def more_urgent(a: str | None, b: str | None) -> str:
    """The more urgent of two priorities (an unknown one counts as P4)."""
    ranks = [PRIORITIES.index(p) if p in PRIORITIES else len(PRIORITIES) - 1 for p in (a, b)]
    return PRIORITIES[min(ranks)]


def reopen_priority(requested: str | None, current: str | None) -> str:
    """Where a reopened case queues: followup's raised priority, else one step above the
    case's own; never below P2, never below what the case already had."""
    if requested not in PRIORITIES:
        index = PRIORITIES.index(current) if current in PRIORITIES else len(PRIORITIES) - 1
        requested = PRIORITIES[max(0, index - 1)]
    return more_urgent(more_urgent(requested, current), REOPEN_MIN_PRIORITY)


def restarted_sla(sla: Mapping[str, Any], now: datetime) -> dict[str, datetime] | None:
    """A reopened case's clock: its original first-response and resolution windows again,
    counted from the reopening (None when the case has no clock to restart)."""
    try:
        start, first, resolution = (
            _aware(sla[name]) for name in ("start", "first_response_due", "resolution_due")
        )
    except (KeyError, TypeError, AttributeError):
        return None
    return {
        "start": now,
        "first_response_due": now + max(first - start, timedelta(0)),
        "resolution_due": now + max(resolution - start, timedelta(0)),
    }


def _aware(value: datetime) -> datetime:
    return value if value.tzinfo else value.replace(tzinfo=UTC)
