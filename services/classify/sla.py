"""SLA deadlines on a business calendar: hours, weekends, holidays, time zones.

A policy maps priority x channel to a first-response and a resolution budget counted in
*business* time of a calendar (``24x7`` counts every minute). A calendar is a time zone,
working days (0 = Monday), opening hours and the public holidays of some countries
(the ``holidays`` package) plus extra dates. The contact's language picks the calendar
(a Finnish customer is served on Helsinki hours), else the policy's default. Pure
functions, no I/O but reading the policy file.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from functools import lru_cache
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import holidays

from shared.events.common import Channel, Priority

DEFAULT_POLICY_PATH = Path(__file__).resolve().parent / "policy" / "sla_policy.json"
_MAX_DAYS = 3 * 366  # a budget never spans more than this: a calendar with no open days


@dataclass(frozen=True)
class Calendar:
    name: str
    timezone: str = "UTC"
    days: tuple[int, ...] = (0, 1, 2, 3, 4)
    start: time = time(8, 0)
    end: time | None = time(17, 0)  # None: until midnight
    countries: tuple[str, ...] = ()
    extra_holidays: tuple[date, ...] = ()
    always_open: bool = False

    @property
    def zone(self) -> ZoneInfo:
        return ZoneInfo(self.timezone)

    def is_holiday(self, day: date) -> bool:
        if day in self.extra_holidays:
            return True
        return any(day in _country_holidays(c, day.year) for c in self.countries)

    def is_working_day(self, day: date) -> bool:
        return day.weekday() in self.days and not self.is_holiday(day)

    def window(self, day: date) -> tuple[datetime, datetime]:
        """Opening and closing instants of ``day`` (aware, UTC), DST included."""
        opens = datetime.combine(day, self.start, tzinfo=self.zone)
        closes = (
            datetime.combine(day + timedelta(days=1), time(0), tzinfo=self.zone)
            if self.end is None
            else datetime.combine(day, self.end, tzinfo=self.zone)
        )
        return opens.astimezone(UTC), closes.astimezone(UTC)

    def add(self, start: datetime, budget: timedelta) -> datetime:
        """The instant when ``budget`` of business time has passed since ``start``."""
        start = start.astimezone(UTC)
        if self.always_open:
            return start + budget
        remaining = budget
        day = start.astimezone(self.zone).date()
        for _ in range(_MAX_DAYS):
            if self.is_working_day(day):
                opens, closes = self.window(day)
                begin = max(opens, start)
                if begin < closes:
                    available = closes - begin  # UTC arithmetic: real elapsed time
                    if remaining <= available:
                        return begin + remaining
                    remaining -= available
            day += timedelta(days=1)
        raise ValueError(f"calendar {self.name!r} has no business time within {_MAX_DAYS} days")

    def business_time_between(self, start: datetime, end: datetime) -> timedelta:
        total = timedelta(0)
        start, end = start.astimezone(UTC), end.astimezone(UTC)
        if end <= start:
            return total
        if self.always_open:
            return end - start
        day = start.astimezone(self.zone).date()
        last = end.astimezone(self.zone).date()
        while day <= last:
            if self.is_working_day(day):
                opens, closes = self.window(day)
                begin, finish = max(opens, start), min(closes, end)
                if finish > begin:
                    total += finish - begin
            day += timedelta(days=1)
        return total


@lru_cache(maxsize=256)
def _country_holidays(country: str, year: int) -> holidays.HolidayBase:
    subdivision = None
    if "-" in country:
        country, subdivision = country.split("-", 1)
    return holidays.country_holidays(country, subdiv=subdivision, years=year)


@dataclass(frozen=True)
class Budget:
    first_response: timedelta
    resolution: timedelta
    calendar: str | None = None  # overrides the contact's calendar (P1: 24x7)


@dataclass(frozen=True)
class Deadlines:
    policy: str
    calendar: str
    first_response_due: datetime
    resolution_due: datetime


def parse_duration(text: str) -> timedelta:
    """'90m', '4h', '1h30m', '2d' (a day is 24 hours of the calendar's open time)."""
    units = {"d": 86400, "h": 3600, "m": 60, "s": 1}
    seconds, number = 0.0, ""
    for char in text.strip().lower():
        if char.isdigit() or char == ".":
            number += char
        elif char in units and number:
            seconds += float(number) * units[char]
            number = ""
        elif not char.isspace():
            raise ValueError(f"bad duration {text!r}")
    if number:
        raise ValueError(f"bad duration {text!r}: a number needs a unit")
    return timedelta(seconds=seconds)


@dataclass(frozen=True)
class Policy:
    name: str
    calendars: dict[str, Calendar]
    default_calendar: str
    language_calendars: dict[str, str]
    budgets: dict[tuple[Priority, str], Budget]  # (priority, channel or "default")

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Policy:
        calendars: dict[str, Calendar] = {}
        for name, spec in data["calendars"].items():
            end = spec.get("end", "17:00")
            calendars[name] = Calendar(
                name=name,
                timezone=spec.get("timezone", "UTC"),
                days=tuple(spec.get("days", [0, 1, 2, 3, 4])),
                start=time.fromisoformat(spec.get("start", "08:00")),
                end=None if end in ("24:00", None) else time.fromisoformat(end),
                countries=tuple(spec.get("holidays", [])),
                extra_holidays=tuple(date.fromisoformat(d) for d in spec.get("extra_holidays", [])),
                always_open=bool(spec.get("always_open", False)),
            )
        budgets: dict[tuple[Priority, str], Budget] = {}
        for priority, by_channel in data["budgets"].items():
            for channel, spec in by_channel.items():
                budgets[(Priority(priority), channel)] = Budget(
                    first_response=parse_duration(spec["first_response"]),
                    resolution=parse_duration(spec["resolution"]),
                    calendar=spec.get("calendar"),
                )
        policy = cls(
            name=data["name"],
            calendars=calendars,
            default_calendar=data["default_calendar"],
            language_calendars=dict(data.get("language_calendars", {})),
            budgets=budgets,
        )
        policy.validate()
        return policy

    @classmethod
    def load(cls, path: Path = DEFAULT_POLICY_PATH) -> Policy:
        return cls.from_dict(json.loads(Path(path).read_text()))

    def validate(self) -> None:
        names = {self.default_calendar, *self.language_calendars.values()}
        names.update(b.calendar for b in self.budgets.values() if b.calendar)
        missing = names - set(self.calendars)
        if missing:
            raise ValueError(f"policy {self.name!r} names unknown calendars {sorted(missing)}")
        for priority in Priority:
            if (priority, "default") not in self.budgets:
                raise ValueError(f"policy {self.name!r} has no default budget for {priority}")

    def budget(self, priority: Priority, channel: Channel | str) -> Budget:
        key = channel.value if isinstance(channel, Channel) else channel
        return self.budgets.get((priority, key)) or self.budgets[(priority, "default")]

    def calendar_for(self, language: str, budget: Budget) -> Calendar:
        name = budget.calendar or self.language_calendars.get(language, self.default_calendar)
        return self.calendars[name]

    def deadlines(
        self, priority: Priority, channel: Channel | str, language: str, opened_at: datetime
    ) -> Deadlines:
        budget = self.budget(priority, channel)
        calendar = self.calendar_for(language, budget)
        return Deadlines(
            policy=self.name,
            calendar=calendar.name,
            first_response_due=calendar.add(opened_at, budget.first_response),
            resolution_due=calendar.add(opened_at, budget.resolution),
        )
