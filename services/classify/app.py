"""classify: ComplaintReceived -> score, profile, flags, hints, SLA -> ComplaintClassified."""

from __future__ import annotations

import logging
from collections.abc import Sequence

from shared.batch import Handled, Incoming
from shared.events import catalogue
from shared.service import Service
from shared.settings import Settings

from .handlers import handle_received
from .settings import ClassifySettings
from .sla import Policy
from .text.cascade import CascadeModel, CascadeWorker
from .text.model import MODEL_DIR, TextModel

NAME = "classify"
log = logging.getLogger(__name__)


def build_cascade(settings: ClassifySettings) -> CascadeWorker | None:
    """The cascade worker, or None (fast path only) when it is off or cannot load; the
    log says which, once, at start-up."""
    if not settings.cascade_enabled:
        log.info("cascade off (AMENDS_CASCADE_ENABLED=false): fast path only")
        return None
    try:
        model = CascadeModel.load(
            settings.model_dir or MODEL_DIR, settings.cascade_encoder, settings.cascade_band
        )
    except ImportError as exc:
        log.warning(
            "cascade off: encoder %r is not installed (%s; pip install '.[cascade]'): "
            "fast path only",
            settings.cascade_encoder,
            exc,
        )
        return None
    except (OSError, ValueError, KeyError) as exc:
        log.warning("cascade off: cannot load its model (%s): fast path only", exc)
        return None
    log.info(
        "cascade on: %s, band %.2f, max share %.0f%%",
        model.version,
        model.band,
        100 * settings.cascade_max_share,
    )
    return CascadeWorker(
        model,
        max_share=settings.cascade_max_share,
        timeout_seconds=settings.cascade_timeout_seconds,
        max_pending=settings.cascade_max_pending,
    )


def build_service(settings: Settings | None = None) -> Service:
    if not isinstance(settings, ClassifySettings):
        # Plain shared settings (tests, the CLI) get classify's defaults added.
        settings = ClassifySettings(**settings.model_dump()) if settings else ClassifySettings()
    policy = Policy.load(settings.sla_policy_path)
    model = TextModel.load(settings.model_dir or MODEL_DIR)
    cascade = build_cascade(settings)
    service = Service(NAME, settings)

    async def on_received(records: Sequence[Incoming]) -> Handled:
        return await handle_received(
            service.store, records, policy=policy, model=model, cascade=cascade
        )

    if cascade is not None:
        service.on_startup(cascade.start)
        service.on_shutdown(cascade.stop)
    service.consume_batch(catalogue.RECEIVED, on_received)
    service.declare_publisher(catalogue.CLASSIFIED)
    return service
