"""Event contracts: one catalogue, versioned pydantic schemas, CloudEvents envelope."""

from .catalogue import CATALOGUE, EventSpec, dead_letter_topic
from .envelope import CloudEvent, EnvelopeError, derived_id, utcnow

__all__ = [
    "CATALOGUE",
    "CloudEvent",
    "EnvelopeError",
    "EventSpec",
    "dead_letter_topic",
    "derived_id",
    "utcnow",
]
