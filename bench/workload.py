"""The load: sample-stream records with identities of their own per cycle, and the paced
sender that feeds them to the intake topic.
"""

from __future__ import annotations

import asyncio
import re
import time
from dataclasses import dataclass
from datetime import UTC, datetime
from functools import lru_cache
from typing import Any

import orjson
from aiokafka import AIOKafkaProducer

from cli.samples import RECORD_CONTENT_TYPE, load_stream, render_record
from shared.events import catalogue
from shared.settings import Settings


def _bad_positions() -> set[int]:
    """Lines of the sample stream that are malformed on purpose (dead letters)."""
    return {i for i, line in enumerate(load_stream()) if "note" in line}


@dataclass
class Record:
    event_id: str
    value: bytes
    key: bytes | None
    headers: list[tuple[str, bytes]]  # without ce_id / ce_time (set when sent)


_PHONE = re.compile(r"\+\d{1,3}(?: \d+)*? ?\d*\$\{C\}[\d ]*\d|\+\d{1,3}(?: \d+)*? ?\d*\$\{C\}")


def _phone_for(template: str, cycle: int) -> str:
    """The template's phone number with the cycle's digits in its subscriber part: the same
    length and prefix (so still a valid number), unique for 10,000+ cycles."""
    groups = template.split(" ")
    at = next(i for i, g in enumerate(groups) if "${C}" in g)
    first = at
    digits = sum(ch.isdigit() for g in groups[at:] for ch in g) + 1
    while digits < 4 and first > 2:
        first -= 1
        digits += sum(ch.isdigit() for ch in groups[first])
    fill = iter(f"{cycle % 10**digits:0{digits}d}")
    tail = " ".join(groups[first:]).replace("${C}", "C")
    new_tail = "".join(next(fill) if ch.isdigit() or ch == "C" else ch for ch in tail)
    return " ".join([*groups[:first], new_tail])


@lru_cache(maxsize=1)
def _templates() -> tuple[tuple[dict[str, Any], tuple[str, ...]], ...]:
    """Stream lines with their phone templates replaced by slots (see _phone_for)."""
    out = []
    for line in load_stream():
        if "payload" not in line:
            out.append((line, ()))
            continue
        payload = line["payload"]
        text = payload if isinstance(payload, str) else orjson.dumps(payload).decode()
        phones = tuple(dict.fromkeys(_PHONE.findall(text)))
        for n, phone in enumerate(phones):
            text = text.replace(phone, f"PHONESLOT{n}X")
        out.append(({**line, "payload": text}, phones))
    return tuple(out)


def workload(count: int, run_id: str, first_cycle: int = 0) -> list[Record]:
    """``count`` well-formed sample records (all channels, merges, duplicates, praise).

    Like ``cli.samples.iter_sample_records``, but cycle numbers (identities) continue from
    ``first_cycle``, so successive windows of one run get customers of their own, and
    phone numbers stay valid however many cycles are rendered."""
    bad = _bad_positions()
    templates = _templates()
    now = datetime.now(UTC)
    out: list[Record] = []
    index = 0
    while len(out) < count:
        cycle, position = divmod(index, len(templates))
        index += 1
        if position in bad:
            continue
        line, phones = templates[position]
        c = first_cycle + cycle
        value, key = render_record(line, f"{run_id}-c{c}", c, now)
        for n, phone in enumerate(phones):
            value = value.replace(f"PHONESLOT{n}X".encode(), _phone_for(phone, c).encode())
        media = line.get("content_type", RECORD_CONTENT_TYPE)
        headers = [
            ("ce_specversion", b"1.0"),
            ("ce_source", b"/amends/bench"),
            ("ce_type", catalogue.INTAKE.event_type.encode()),
            ("ce_sourceformat", str(line["sourceformat"]).encode()),
            ("ce_datacontenttype", str(media).encode()),
            ("content-type", RECORD_CONTENT_TYPE.encode()),
        ]
        out.append(
            Record(
                f"{run_id}-{index - 1:07d}",
                value,
                key.encode() if key else None,
                headers,
            )
        )
    return out


def producer_for(settings: Settings, **overrides: Any) -> AIOKafkaProducer:
    # The scaffold's producer settings (shared/service.py build_broker).
    options: dict[str, Any] = {
        "bootstrap_servers": settings.kafka_bootstrap_servers,
        "enable_idempotence": True,
        "acks": "all",
        "linger_ms": 5,
        "max_batch_size": 256 * 1024,
    }
    options.update(overrides)
    return AIOKafkaProducer(**options)


class Sender:
    """Paced load generator; remembers when each complaint was sent."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.producer = producer_for(settings)
        self.sent_at: dict[str, float] = {}
        self.sent = 0

    async def start(self) -> None:
        await self.producer.start()

    async def stop(self) -> None:
        await self.producer.stop()

    async def send(self, records: list[Record], rate: float) -> float:
        """Send at ``rate`` per second; returns the achieved rate."""
        topic = self.settings.topic(catalogue.INTAKE.topic)
        loop = asyncio.get_running_loop()
        started = loop.time()
        futures = []
        i = 0
        n = len(records)
        while i < n:
            due = min(n, int((loop.time() - started) * rate) + 1)
            while i < due:
                r = records[i]
                now = time.time()
                stamp = datetime.fromtimestamp(now, UTC).isoformat().encode()
                headers = [*r.headers, ("ce_id", r.event_id.encode()), ("ce_time", stamp)]
                futures.append(await self.producer.send(topic, r.value, key=r.key, headers=headers))
                self.sent_at[r.event_id] = now
                self.sent += 1
                i += 1
            await asyncio.sleep(0.005)
        await asyncio.gather(*futures)
        return n / max(1e-9, loop.time() - started)
