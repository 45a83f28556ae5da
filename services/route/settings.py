"""Settings of the route service (``AMENDS_ROUTE_*``), beside the common ones."""

from __future__ import annotations

from pathlib import Path

from pydantic import Field

from shared.settings import Settings

SEED_DIR = Path(__file__).resolve().parent / "seed"


class RouteSettings(Settings):
    """Assignment, escalation, lesson and spike tunables; periods in seconds."""

    route_seed_path: Path | None = Field(
        default=None,
        description="People directory (JSON list of Person records) loaded at start-up.",
    )
    route_departments_path: Path = Field(
        default=SEED_DIR / "departments.json",
        description="Department -> subscribed categories and products, for lesson fan-out.",
    )
    route_senior_min_seniority: int = Field(
        default=3, description="Seniority needed for P1, litigant, legal and safety cases."
    )
    route_drain_interval_seconds: float = Field(
        default=15.0,
        description="How often the queue is retried even without a trigger (shift changes).",
    )
    route_drain_batch: int = Field(default=100, description="Waiting cases looked at per pass.")
    route_lease_seconds: float = Field(
        default=30.0, description="How long one replica owns a queued case while assigning it."
    )
    route_sla_warning_fraction: float = Field(
        default=0.75,
        gt=0,
        lt=1,
        description="Share of the first-response window after which a case is warned/reassigned.",
    )
    route_sla_sweep_seconds: float = Field(default=10.0, description="SLA sweep period.")
    route_outbox_grace_seconds: float = Field(
        default=15.0, description="Age after which an unpublished event is re-published."
    )
    route_outbox_sweep_seconds: float = Field(default=5.0, description="Outbox sweep period.")
    route_metrics_seconds: float = Field(default=15.0, description="Gauge refresh period.")
    route_spike_window_seconds: float = Field(
        default=3600.0, description="Recent window compared against the baseline."
    )
    route_spike_baseline_seconds: float = Field(
        default=86400.0, description="Baseline before the window, cut into window-sized periods."
    )
    route_spike_threshold_sd: float = Field(
        default=3.0, description="Standard deviations above the baseline mean that make a spike."
    )
    route_spike_min_count: int = Field(
        default=5, description="A window with fewer cases than this is never a spike."
    )
    route_spike_check_seconds: float = Field(default=60.0, description="Spike detection period.")
    route_spike_examples: int = Field(default=5, description="Example cases carried by an alert.")
    route_digest_period_seconds: float = Field(
        default=7 * 86400.0, description="Length of one lesson digest period (aligned to epoch)."
    )
    route_digest_check_seconds: float = Field(
        default=300.0, description="How often to look for a finished digest period."
    )
