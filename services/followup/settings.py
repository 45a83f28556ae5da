"""Followup's own settings (``AMENDS_FOLLOWUP_*``): every delay can be shortened for tests."""

from __future__ import annotations

from pydantic import Field

from shared.settings import Settings

HOUR = 3600.0
DAY = 24 * HOUR


class FollowupSettings(Settings):
    """Timings of interim updates, promises, the satisfaction check and the public watch."""

    followup_interim_share: float = Field(
        default=0.5,
        gt=0.0,
        le=1.0,
        description="Share of the resolution window after which an open case gets an interim "
        "update (0.5: half way to the resolution deadline).",
    )
    followup_interim_cadence_seconds: float = Field(
        default=DAY, gt=0, description="Interval between repeated interim updates."
    )
    followup_default_resolution_seconds: float = Field(
        default=3 * DAY,
        gt=0,
        description="Resolution window used when the assignment carries no resolution due.",
    )
    followup_promise_default_seconds: float = Field(
        default=DAY,
        gt=0,
        description="Due time of a promise recorded without one (and not readable from its text).",
    )
    followup_survey_delay_seconds: float = Field(
        default=DAY, ge=0, description="Time after resolution before the satisfaction survey."
    )
    followup_reminder_delay_seconds: float = Field(
        default=3 * DAY, gt=0, description="Time after the survey before its one reminder."
    )
    followup_no_response_close_seconds: float = Field(
        default=4 * DAY,
        gt=0,
        description="Time after the reminder before the case closes as 'no response'.",
    )
    followup_watch_seconds: float = Field(
        default=14 * DAY,
        ge=0,
        description="How long after resolution a new public complaint reopens the case.",
    )
    followup_survey_match_seconds: float = Field(
        default=60 * DAY,
        gt=0,
        description="How long after resolution a survey answer without a case id is matched "
        "to the customer's last resolved case.",
    )
    followup_satisfied_threshold: int = Field(
        default=4, ge=1, le=5, description="CSAT (1-5) at or above which the customer is satisfied."
    )
    followup_advocate_score: int = Field(
        default=5, ge=1, le=5, description="CSAT at or above which a customer may be an advocate."
    )
    followup_advocate_reach: int = Field(
        default=10_000, ge=0, description="Audience size from which a happy customer is invited."
    )
    followup_poll_interval_seconds: float = Field(
        default=1.0, gt=0, description="How often the timer loop looks for due timers."
    )
    followup_lease_seconds: float = Field(
        default=60.0,
        gt=0,
        description="How long a claimed timer belongs to one replica; after it, another "
        "replica re-fires it (so a crash delays a timer, never loses it).",
    )
    followup_timer_batch: int = Field(
        default=50, ge=1, description="Most timers one replica claims per round."
    )
    followup_timer_max_attempts: int = Field(
        default=5, ge=1, description="Firings of one timer that failed before it is given up."
    )
