"""ingest's database commands and documents written per complaint, handler called directly.

    python -m bench.ingest_ops [--complaints 600] [--poll 200]

The bench workload (every channel, merges, duplicates, praise) is cut into polls of
``--poll`` records over four partitions and given to the handler ``build_service``
registers for ``complaints.intake``, against the real MongoDB-protocol server, with
``bench.opcount``'s command listener on the store's client. No Kafka: this isolates what
the handler costs the database. Needs MONGODB_URL (a database of its own, dropped after).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import uuid
import zlib
from collections import Counter
from datetime import UTC, datetime
from typing import Any

from pymongo import AsyncMongoClient

from bench.opcount import KINDS, Listener
from bench.workload import Record, workload
from services.ingest.app import build_service
from services.ingest.settings import IngestSettings
from shared.batch import Incoming
from shared.events import catalogue
from shared.events.envelope import CloudEvent

PARTITIONS = 4


def incoming(records: list[Record], settings: IngestSettings) -> list[Incoming]:
    """The records as the consumer would hand them over: partition by key, offsets."""
    offsets: Counter[int] = Counter()
    out = []
    now = datetime.now(UTC)
    for record in records:
        headers = {k: v.decode() for k, v in record.headers}
        partition = zlib.crc32(record.key or record.event_id.encode()) % PARTITIONS
        event = CloudEvent(
            type=catalogue.INTAKE.event_type,
            source=headers["ce_source"],
            id=record.event_id,
            time=now,
            data=record.value,
            extensions={
                "sourceformat": headers["ce_sourceformat"],
                "datacontenttype": headers["ce_datacontenttype"],
            },
        )
        topic = settings.topic(catalogue.INTAKE.topic)
        out.append(Incoming(event, None, topic, partition, offsets[partition], record.key, 0))
        offsets[partition] += 1
    return out


async def measure(complaints: int, poll: int) -> dict[str, Any]:
    tag = uuid.uuid4().hex[:8]
    settings = IngestSettings(mongodb_database=f"amends_ingest_ops_{tag}", log_json=False)
    service = build_service(settings)
    _spec, handler = service._consumers[settings.topic(catalogue.INTAKE.topic)]
    listener = Listener()
    await service.store.connect()
    await service.store.close()
    service.store._client = AsyncMongoClient(
        settings.mongodb_url.get_secret_value(), tz_aware=True, event_listeners=[listener]
    )
    records = incoming(workload(complaints, f"ops{tag}"), settings)
    published = 0
    try:
        for start in range(0, len(records), poll):
            handled = await handler(records[start : start + poll])
            published += len(handled.outgoing)
        snap = listener.snapshot()
        new_cases = await service.store["cases"].count_documents({})
    finally:
        await service.store.client.drop_database(settings.mongodb_database)
        await service.store.close()
    written = sum(sum(snap[k].values()) for k in KINDS if k != "deleted")
    n = len(records)
    return {
        "complaints": n,
        "records_per_poll": poll,
        "polls": -(-n // poll),
        "new_cases": new_cases,
        "published": published,
        "commands_per_complaint": round(sum(snap["count"].values()) / n, 3),
        "documents_written_per_complaint": round(written / n, 3),
        "documents_written_per_new_case": round(written / max(new_cases, 1), 3),
        "by_command": dict(sorted(snap["count"].items())),
        "written_by_command": {
            key: sum(snap[k].get(key, 0) for k in KINDS if k != "deleted")
            for key in sorted(snap["count"])
        },
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--complaints", type=int, default=600)
    parser.add_argument("--poll", type=int, default=200)
    args = parser.parse_args()
    print(json.dumps(asyncio.run(measure(args.complaints, args.poll)), indent=2))


if __name__ == "__main__":
    main()
