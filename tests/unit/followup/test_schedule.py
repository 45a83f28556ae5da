"""Due-time computations of the follow-up timers."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from services.followup.schedule import (
    INTERIM,
    interim_due,
    next_interim,
    promise_due,
    timer_id,
)

T0 = datetime(2030, 1, 1, 8, 0, tzinfo=UTC)
DAY = timedelta(days=1)


def test_interim_is_a_share_of_the_resolution_window() -> None:
    due = interim_due(T0, T0 + 4 * DAY, T0 + timedelta(hours=1), share=0.5, default_window=DAY)
    assert due == T0 + 2 * DAY
    due = interim_due(T0, T0 + 4 * DAY, T0, share=0.25, default_window=DAY)
    assert due == T0 + DAY


def test_interim_without_deadline_uses_the_default_window_from_assignment() -> None:
    assigned = T0 + timedelta(hours=3)
    due = interim_due(T0, None, assigned, share=0.5, default_window=2 * DAY)
    assert due == assigned + DAY


def test_interim_with_a_deadline_already_past_gets_a_fresh_window() -> None:
    # A reopened case carries its first (already past) SLA clock.
    assigned = T0 + 10 * DAY
    due = interim_due(T0, T0 + 2 * DAY, assigned, share=0.5, default_window=2 * DAY)
    assert due == assigned + DAY


def test_next_interim_counts_from_the_firing_not_the_due_time() -> None:
    fired = T0 + 5 * DAY  # fired late after downtime
    assert next_interim(fired, DAY) == T0 + 6 * DAY


def test_promise_due_prefers_the_crm_then_the_words_then_the_default() -> None:
    explicit = T0 + timedelta(hours=5)
    assert promise_due(T0, explicit, "call back tomorrow", default=DAY) == explicit
    assert promise_due(T0, None, "Call back tomorrow", default=3 * DAY) == T0 + DAY
    assert promise_due(T0, None, "soitan huomenna", default=3 * DAY) == T0 + DAY
    assert promise_due(T0, None, "we will reply within 2 hours", default=DAY) == T0 + timedelta(
        hours=2
    )
    assert promise_due(T0, None, "in 3 days", default=DAY) == T0 + 3 * DAY
    assert promise_due(T0, None, "by end of day", default=DAY) == T0 + timedelta(hours=8)
    assert promise_due(T0, None, "next week", default=DAY) == T0 + 7 * DAY
    assert promise_due(T0, None, "tell you when it is back in stock", default=2 * DAY) == (
        T0 + 2 * DAY
    )
    assert promise_due(T0, None, None, default=DAY) == T0 + DAY


def test_timer_ids_are_deterministic_and_distinct() -> None:
    assert timer_id("c1", INTERIM, 0, 0) == timer_id("c1", INTERIM, 0, 0)
    assert timer_id("c1", INTERIM, 0, 0) != timer_id("c1", INTERIM, 0, 1)
    assert timer_id("c1", INTERIM, 0, 0) != timer_id("c1", INTERIM, 1, 0)
    assert timer_id("c1", INTERIM, 0, 0) != timer_id("c2", INTERIM, 0, 0)
