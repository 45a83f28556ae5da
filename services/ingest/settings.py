"""Settings of the ingest service (environment prefix ``AMENDS_``, like the base)."""

from __future__ import annotations

from pydantic import Field, SecretStr

from shared.settings import Settings


class IngestSettings(Settings):
    merge_window_hours: float = Field(
        default=72.0,
        description="A customer's new complaint within this many hours of the last contact "
        "on their open case joins that case instead of opening a new one.",
    )
    max_contacts_per_case: int = Field(
        default=200, description="Past this, a new case is opened (keeps documents small)."
    )
    max_payload_bytes: int = Field(
        default=1_000_000, description="Largest intake record or HTTP body accepted."
    )
    webhook_secrets: dict[str, SecretStr] = Field(
        default_factory=dict,
        description='Per-source signing secrets, JSON: {"zendesk": "...", "hubspot": "..."}.',
    )
    webhook_allow_unsigned: bool = Field(
        default=False, description="Accept HTTP intake of sources without a secret (dev only)."
    )
    signature_tolerance_seconds: int = Field(
        default=300, description="Largest clock skew / age of a signed webhook timestamp."
    )
    intake_public_url: str | None = Field(
        default=None,
        description="Base URL the CRMs call (https://amends.example.com), for signatures "
        "that cover the URL (HubSpot v3); default: rebuilt from the request.",
    )
    default_phone_region: str = Field(
        default="FI", description="Region of phone numbers written without a country code."
    )
    languages: list[str] = Field(
        default_factory=lambda: ["en", "fi", "et", "id", "tr", "fa", "de", "fr", "es"],
        description="Languages the detector chooses among (look-alikes are added).",
    )
    intake_bearer_tokens: dict[str, SecretStr] = Field(
        default_factory=dict,
        description='Per-source bearer tokens, JSON {"glassdoor": "..."}, for sources that '
        "cannot sign; a source with a signing secret must sign.",
    )
    intake_rate_per_second: float = Field(
        default=50.0, description="Requests per second per source and client (0: no limit)."
    )
    intake_rate_burst: int = Field(default=100, description="Requests allowed in one burst.")
    intake_replay_cache_size: int = Field(
        default=100_000, description="Signatures remembered for the replay check (per replica)."
    )
