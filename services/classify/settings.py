"""Settings of the classify service, from the environment (prefix ``AMENDS_``)."""

from __future__ import annotations

from pathlib import Path

from pydantic import Field

from shared.settings import Settings

from .sla import DEFAULT_POLICY_PATH


class ClassifySettings(Settings):
    """Shared settings plus where the SLA policy and the text model live."""

    sla_policy_path: Path = Field(
        default=DEFAULT_POLICY_PATH,
        description="JSON SLA policy: calendars and priority x channel budgets "
        "(env AMENDS_SLA_POLICY_PATH).",
    )
    model_dir: Path | None = Field(
        default=None,
        description="Folder with text_model.npz/json; the shipped model when unset "
        "(env AMENDS_MODEL_DIR).",
    )
