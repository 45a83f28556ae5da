"""The SLA business calendar: hours, weekends, holidays, time zones, DST; the policy."""

from __future__ import annotations

from datetime import UTC, date, datetime, time, timedelta
from zoneinfo import ZoneInfo

import pytest

from services.classify.sla import Calendar, Policy, parse_duration
from shared.events.common import Channel, Priority

HELSINKI = ZoneInfo("Europe/Helsinki")
FI = Calendar("helsinki", "Europe/Helsinki", (0, 1, 2, 3, 4), time(8), time(17), ("FI",))


def local(zone: ZoneInfo, *args: int) -> datetime:
    return datetime(*args, tzinfo=zone)


def test_within_the_same_business_day() -> None:
    start = local(HELSINKI, 2025, 3, 4, 9, 0)  # Tuesday
    assert FI.add(start, timedelta(hours=4)) == local(HELSINKI, 2025, 3, 4, 13, 0)


def test_rolls_over_closing_time_to_next_morning() -> None:
    start = local(HELSINKI, 2025, 3, 4, 15, 0)
    assert FI.add(start, timedelta(hours=4)) == local(HELSINKI, 2025, 3, 5, 10, 0)


def test_received_at_night_starts_at_opening() -> None:
    start = local(HELSINKI, 2025, 3, 4, 2, 30)
    assert FI.add(start, timedelta(hours=1)) == local(HELSINKI, 2025, 3, 4, 9, 0)


def test_weekend_is_skipped() -> None:
    friday = local(HELSINKI, 2025, 3, 7, 16, 0)
    assert FI.add(friday, timedelta(hours=2)) == local(HELSINKI, 2025, 3, 10, 9, 0)
    saturday = local(HELSINKI, 2025, 3, 8, 12, 0)
    assert FI.add(saturday, timedelta(hours=1)) == local(HELSINKI, 2025, 3, 10, 9, 0)


def test_public_holidays_are_skipped() -> None:
    # Finnish Christmas: 24, 25, 26 December 2025 are holidays; 27-28 a weekend.
    start = local(HELSINKI, 2025, 12, 23, 16, 0)
    assert FI.is_holiday(date(2025, 12, 24))
    assert FI.add(start, timedelta(hours=2)) == local(HELSINKI, 2025, 12, 29, 9, 0)
    # Independence Day (6 Dec 2024, a Friday) is Finnish, not German.
    assert FI.is_holiday(date(2024, 12, 6))
    berlin = Calendar("berlin", "Europe/Berlin", countries=("DE",))
    assert not berlin.is_holiday(date(2024, 12, 6))


def test_extra_company_holidays() -> None:
    cal = Calendar("x", "UTC", extra_holidays=(date(2025, 3, 5),))
    start = datetime(2025, 3, 4, 16, 0, tzinfo=UTC)
    assert cal.add(start, timedelta(hours=2)) == datetime(2025, 3, 6, 9, 0, tzinfo=UTC)


def test_time_zones_same_instant_different_calendars() -> None:
    # 06:00 UTC Tuesday: 08:00 in Helsinki (open), 13:00 in Jakarta (open), 01:00 in
    # New York (closed until 08:00 local = 12:00 UTC).
    instant = datetime(2025, 3, 4, 6, 0, tzinfo=UTC)
    jakarta = Calendar("jakarta", "Asia/Jakarta", countries=("ID",))
    new_york = Calendar("ny", "America/New_York", countries=("US",))
    assert FI.add(instant, timedelta(hours=1)) == datetime(2025, 3, 4, 7, 0, tzinfo=UTC)
    assert jakarta.add(instant, timedelta(hours=1)) == datetime(2025, 3, 4, 7, 0, tzinfo=UTC)
    assert jakarta.add(instant, timedelta(hours=5)) == datetime(2025, 3, 5, 2, 0, tzinfo=UTC)
    assert new_york.add(instant, timedelta(hours=1)) == datetime(2025, 3, 4, 14, 0, tzinfo=UTC)


def test_daylight_saving_change_keeps_local_opening_hours() -> None:
    # Finland moves clocks forward on 30 March 2025: opening is 06:00 UTC before, 05:00 after.
    friday = local(HELSINKI, 2025, 3, 28, 16, 0)
    due = FI.add(friday, timedelta(hours=2))
    assert due == local(HELSINKI, 2025, 3, 31, 9, 0)
    assert due.astimezone(UTC) == datetime(2025, 3, 31, 6, 0, tzinfo=UTC)
    # A 24x7-ish calendar across the DST night counts real hours, not wall-clock hours.
    always = Calendar("night", "Europe/Helsinki", days=tuple(range(7)), start=time(0), end=None)
    start = local(HELSINKI, 2025, 3, 30, 0, 0)
    assert always.add(start, timedelta(hours=4)).astimezone(UTC) == datetime(
        2025, 3, 29, 22, 0, tzinfo=UTC
    ) + timedelta(hours=4)


def test_other_working_week() -> None:
    # Iran works Saturday to Wednesday.
    tehran = Calendar("tehran", "Asia/Tehran", (5, 6, 0, 1, 2), time(8), time(16))
    thursday = local(ZoneInfo("Asia/Tehran"), 2025, 6, 5, 10, 0)
    assert tehran.add(thursday, timedelta(hours=1)) == local(
        ZoneInfo("Asia/Tehran"), 2025, 6, 7, 9, 0
    )


def test_business_time_between_is_the_inverse_of_add() -> None:
    start = local(HELSINKI, 2025, 12, 19, 15, 30)
    budget = timedelta(hours=13, minutes=20)
    assert FI.business_time_between(start, FI.add(start, budget)) == budget


def test_always_open_calendar() -> None:
    cal = Calendar("24x7", always_open=True)
    start = datetime(2025, 12, 25, 23, 0, tzinfo=UTC)
    assert cal.add(start, timedelta(hours=2)) == datetime(2025, 12, 26, 1, 0, tzinfo=UTC)


def test_durations() -> None:
    assert parse_duration("1h30m") == timedelta(minutes=90)
    assert parse_duration("2d") == timedelta(days=2)
    with pytest.raises(ValueError):
        parse_duration("12")


def test_default_policy_priority_by_channel() -> None:
    policy = Policy.load()
    opened = datetime(2025, 3, 4, 7, 0, tzinfo=UTC)  # Tuesday 09:00 in Helsinki
    p1 = policy.deadlines(Priority.P1, Channel.SOCIAL, "fi", opened)
    assert p1.calendar == "24x7"
    assert p1.first_response_due == opened + timedelta(minutes=30)
    p3_email = policy.deadlines(Priority.P3, Channel.EMAIL, "fi", opened)
    p3_social = policy.deadlines(Priority.P3, Channel.SOCIAL, "fi", opened)
    assert p3_email.calendar == "helsinki"
    assert p3_social.first_response_due < p3_email.first_response_due
    assert p3_email.first_response_due == datetime(2025, 3, 4, 15, 0, tzinfo=UTC)  # 17:00 local
    # Deadlines tighten with priority.
    dues = [policy.deadlines(p, Channel.EMAIL, "de", opened).resolution_due for p in Priority]
    assert dues == sorted(dues)
    # Unknown language: the default calendar.
    assert policy.deadlines(Priority.P4, "web", "xx", opened).calendar == policy.default_calendar


def test_policy_validation() -> None:
    data = {
        "name": "bad",
        "default_calendar": "nowhere",
        "calendars": {},
        "budgets": {},
    }
    with pytest.raises(ValueError):
        Policy.from_dict(data)
