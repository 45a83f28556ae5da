"""CloudEvents 1.0 envelope in Kafka *binary* mode.

The event's data is the Kafka record value (JSON); its attributes travel as ``ce_``
headers (CloudEvents Kafka protocol binding). The record key is the case id, or the
customer id before a case exists, so one customer's events stay ordered on one
partition.
"""

from __future__ import annotations

import builtins
import uuid
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, TypeVar

import orjson
from pydantic import BaseModel, ValidationError

SPEC_VERSION = "1.0"
CONTENT_TYPE = "application/json"
# Namespace for ids derived from other ids, so that re-processing an input yields the
# same output id and consumers can drop the duplicate.
DERIVED_ID_NAMESPACE = uuid.UUID("5b7d1c1e-7f4e-4d51-9a3c-1e8f2f7b9a10")

EventT = TypeVar("EventT", bound=BaseModel)


class EnvelopeError(ValueError):
    """The record is not a valid CloudEvent of the expected type."""

    def __init__(self, reason: str, detail: str) -> None:
        super().__init__(f"{reason}: {detail}")
        self.reason = reason
        self.detail = detail


def derived_id(*parts: str) -> str:
    """A stable id computed from other ids (same input, same id)."""
    return str(uuid.uuid5(DERIVED_ID_NAMESPACE, "\x1f".join(parts)))


def utcnow() -> datetime:
    return datetime.now(UTC)


@dataclass(frozen=True, slots=True)
class CloudEvent:
    """One event: CloudEvents attributes plus the JSON data bytes."""

    type: str
    source: str
    id: str
    data: bytes
    subject: str | None = None
    time: datetime = field(default_factory=utcnow)
    extensions: Mapping[str, str] = field(default_factory=dict)

    def headers(self) -> dict[str, str]:
        headers = {
            "ce_specversion": SPEC_VERSION,
            "ce_id": self.id,
            "ce_source": self.source,
            "ce_type": self.type,
            "ce_time": self.time.isoformat(),
            "content-type": CONTENT_TYPE,
        }
        if self.subject:
            headers["ce_subject"] = self.subject
        for name, value in self.extensions.items():
            headers[f"ce_{name}"] = value
        return headers

    def model(self, schema: builtins.type[EventT]) -> EventT:  # `type` is a field here
        try:
            return schema.model_validate_json(self.data)
        except ValidationError as exc:
            raise EnvelopeError("invalid_schema", _short_validation_error(exc)) from exc


def encode(
    event: BaseModel,
    *,
    event_type: str,
    source: str,
    event_id: str,
    subject: str | None = None,
    extensions: Mapping[str, str] | None = None,
) -> CloudEvent:
    return CloudEvent(
        type=event_type,
        source=source,
        id=event_id,
        data=event.model_dump_json(exclude_none=True).encode(),
        subject=subject,
        extensions=dict(extensions or {}),
    )


def decode_headers(raw_headers: Mapping[str, Any] | list[tuple[str, bytes]]) -> dict[str, str]:
    """Kafka headers (a list of (name, bytes) pairs or a mapping) as str -> str."""
    items = raw_headers.items() if isinstance(raw_headers, Mapping) else raw_headers
    decoded: dict[str, str] = {}
    for name, value in items:
        if isinstance(value, bytes | bytearray):
            try:
                decoded[name] = bytes(value).decode("utf-8")
            except UnicodeDecodeError as exc:
                raise EnvelopeError("invalid_header", f"header {name!r} is not UTF-8") from exc
        elif value is not None:
            decoded[name] = str(value)
    return decoded


def parse(value: bytes | None, headers: Mapping[str, str], expected_type: str | None) -> CloudEvent:
    """Read a binary-mode CloudEvent from a Kafka record, checking its type."""
    if headers.get("ce_specversion") != SPEC_VERSION:
        raise EnvelopeError(
            "not_a_cloudevent", f"ce_specversion is {headers.get('ce_specversion')!r}, not 1.0"
        )
    missing = [h for h in ("ce_id", "ce_source", "ce_type") if not headers.get(h)]
    if missing:
        raise EnvelopeError("not_a_cloudevent", f"missing headers {', '.join(missing)}")
    if expected_type is not None and headers["ce_type"] != expected_type:
        raise EnvelopeError(
            "unexpected_type", f"got {headers['ce_type']!r}, expected {expected_type!r}"
        )
    try:
        time = datetime.fromisoformat(headers["ce_time"]) if headers.get("ce_time") else utcnow()
    except ValueError as exc:
        raise EnvelopeError("not_a_cloudevent", f"bad ce_time {headers['ce_time']!r}") from exc
    standard = {"ce_specversion", "ce_id", "ce_source", "ce_type", "ce_time", "ce_subject"}
    extensions = {
        name[3:]: value
        for name, value in headers.items()
        if name.startswith("ce_") and name not in standard
    }
    return CloudEvent(
        type=headers["ce_type"],
        source=headers["ce_source"],
        id=headers["ce_id"],
        data=value or b"",
        subject=headers.get("ce_subject"),
        time=time,
        extensions=extensions,
    )


def _short_validation_error(exc: ValidationError) -> str:
    parts = []
    for error in exc.errors()[:5]:
        location = ".".join(str(p) for p in error["loc"]) or "<root>"
        parts.append(f"{location}: {error['msg']}")
    more = exc.error_count() - 5
    return "; ".join(parts) + (f" (+{more} more)" if more > 0 else "")


def dumps(value: Any) -> bytes:
    return orjson.dumps(value, option=orjson.OPT_NAIVE_UTC | orjson.OPT_UTC_Z)
