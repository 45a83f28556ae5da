"""The ingest service: every channel's complaint in, one canonical ComplaintReceived out."""

from __future__ import annotations

from pymongo import IndexModel

from shared.events import catalogue
from shared.service import Service
from shared.store import IndexSpec

from .adapters import ADAPTERS
from .handlers import INTAKE_LOG, PRAISE, Ingest
from .intake_http import IntakeEndpoint
from .settings import IngestSettings

INDEXES = (
    # Real MongoDB uses these (``amends case``, ad-hoc queries); ingest's own lookups go by
    # ``_id`` (customers, cases), which every MongoDB-protocol server indexes.
    IndexSpec("cases", (IndexModel([("contact_ids", 1)], name="contact_ids"),)),
    IndexSpec(INTAKE_LOG, (IndexModel([("ids", 1)], name="ids"),)),
    IndexSpec(PRAISE, (IndexModel([("customer_id", 1)], name="customer_id"),)),
    IndexSpec("customer_identities", (IndexModel([("customer_id", 1)], name="customer_id"),)),
)


def build_service(settings: IngestSettings | None = None) -> Service:
    settings = settings or IngestSettings()
    service = Service("ingest", settings, indexes=INDEXES)
    service.consume_batch(catalogue.INTAKE, Ingest(service.store, settings))
    service.declare_publisher(catalogue.RECEIVED)
    for source in ADAPTERS:
        service.route(f"/intake/{source}", IntakeEndpoint(service, settings, source))
    return service
