"""The sample stream that `amends run` feeds: real-format payloads of every channel.

``stream.jsonl`` holds one record a line (see README.md beside it). ``iter_sample_records``
cycles through it, making external ids, identities and times unique per cycle, so that
``amends run --count N`` can feed any number of complaints.
"""

from __future__ import annotations

import base64
import re
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from email.utils import format_datetime
from functools import lru_cache
from pathlib import Path
from typing import Any

import orjson

from shared.events import catalogue, envelope

STREAM = Path(__file__).resolve().parent / "stream.jsonl"
_TOKEN = re.compile(r"\$\{(RUN|C|T-(\d+)m:(iso|rfc2822|epoch|epoch_ms|yelp))\}")


# The Kafka record's content-type. Opaque on purpose: FastStream's subscriber decodes
# JSON- and text-typed record bodies itself (before ingest's adapters see them) and
# refuses the batch when one does not decode; the payload's real media type travels as
# the CloudEvents attribute ``datacontenttype`` (``media_type`` below).
RECORD_CONTENT_TYPE = "application/octet-stream"


@dataclass(frozen=True, slots=True)
class SampleRecord:
    source_format: str
    value: bytes
    content_type: str  # for the Kafka ``content-type`` header
    event_id: str
    key: str | None
    media_type: str = RECORD_CONTENT_TYPE  # for ``ce_datacontenttype``

    def kafka_headers(self, source: str, event_id: str | None = None) -> list[tuple[str, bytes]]:
        """The record as a binary-mode CloudEvent on ``complaints.intake``."""
        event = envelope.CloudEvent(
            type=catalogue.INTAKE.event_type,
            source=source,
            id=event_id or self.event_id,
            data=self.value,
            extensions={"sourceformat": self.source_format, "datacontenttype": self.media_type},
        )
        headers = {**event.headers(), "content-type": self.content_type}
        return [(k, v.encode()) for k, v in headers.items()]


@lru_cache(maxsize=1)
def load_stream() -> tuple[dict[str, Any], ...]:
    lines = STREAM.read_text(encoding="utf-8").splitlines()
    return tuple(orjson.loads(line) for line in lines if line.strip())


def _render(text: str, run_tag: str, cycle: int, now: datetime) -> str:
    def replace(match: re.Match[str]) -> str:
        if match.group(1) == "RUN":
            return run_tag
        if match.group(1) == "C":
            return str(cycle)
        at = now - timedelta(minutes=int(match.group(2)))
        fmt = match.group(3)
        if fmt == "iso":
            return at.isoformat().replace("+00:00", "Z")
        if fmt == "rfc2822":
            return format_datetime(at)
        if fmt == "epoch":
            return str(int(at.timestamp()))
        if fmt == "epoch_ms":
            return str(int(at.timestamp() * 1000))
        return at.strftime("%Y-%m-%d %H:%M:%S")

    return _TOKEN.sub(replace, text)


def render_record(
    line: dict[str, Any], run_tag: str, cycle: int, now: datetime
) -> tuple[bytes, str | None]:
    """The bytes of one line's payload, and its key, for one cycle."""
    if "payload_base64" in line:
        value = base64.b64decode(line["payload_base64"])
    else:
        payload = line["payload"]
        text = payload if isinstance(payload, str) else orjson.dumps(payload).decode()
        value = _render(text, run_tag, cycle, now).encode("utf-8")
    key = line.get("key")
    return value, _render(key, run_tag, cycle, now) if key else None


def iter_sample_records(count: int, run_id: str) -> Iterator[SampleRecord]:
    """``count`` records cycling through the stream; ids unique per run and cycle."""
    lines = load_stream()
    now = datetime.now(UTC)
    for index in range(count):
        cycle, position = divmod(index, len(lines))
        line = lines[position]
        value, key = render_record(line, f"{run_id}-c{cycle}", cycle, now)
        yield SampleRecord(
            source_format=line["sourceformat"],
            value=value,
            content_type=RECORD_CONTENT_TYPE,
            event_id=f"{run_id}-{index:06d}",
            key=key,
            media_type=line.get("content_type", RECORD_CONTENT_TYPE),
        )
