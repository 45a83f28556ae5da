"""classify: ComplaintReceived -> score, profile, flags, hints, SLA -> ComplaintClassified."""

from __future__ import annotations

from collections.abc import Sequence

from shared.events import catalogue
from shared.service import Incoming, Outgoing, Service
from shared.settings import Settings

from .handlers import handle_received
from .settings import ClassifySettings
from .sla import Policy
from .text.model import MODEL_DIR, TextModel

NAME = "classify"


def build_service(settings: Settings | None = None) -> Service:
    if not isinstance(settings, ClassifySettings):
        # Plain shared settings (tests, the CLI) get classify's defaults added.
        settings = ClassifySettings(**settings.model_dump()) if settings else ClassifySettings()
    policy = Policy.load(settings.sla_policy_path)
    model = TextModel.load(settings.model_dir or MODEL_DIR)
    service = Service(NAME, settings)

    async def on_received(incoming: Incoming) -> Sequence[Outgoing]:
        return await handle_received(service.store, incoming, policy=policy, model=model)

    service.consume(catalogue.RECEIVED, on_received)
    service.declare_publisher(catalogue.CLASSIFIED)
    return service
