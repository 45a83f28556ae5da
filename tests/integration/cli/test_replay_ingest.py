"""`amends replay` with the ingest service running in this process: an interrupted,
resumed and then fully repeated backfill leaves exactly one contact per CSV row.

Needs services/ingest (built by another engineer); skipped with that reason if absent.
"""

from __future__ import annotations

import io
from pathlib import Path
from typing import Any

import pytest
from aiokafka import AIOKafkaConsumer, TopicPartition
from aiokafka.admin import AIOKafkaAdminClient
from rich.console import Console

from cli.replay import load_mapping, replay
from shared import intake_log
from shared.events import catalogue
from shared.settings import Settings
from shared.store import Store
from tests.integration.cli.replay_support import write_cfpb_csv
from tests.support import running, wait_for

ingest_app = pytest.importorskip("services.ingest.app", reason="services/ingest not built yet")
ingest_settings = pytest.importorskip("services.ingest.settings")

ROWS = 300
QUIET = Console(file=io.StringIO())


async def ingest_caught_up(settings: Settings) -> bool:
    """The ingest group has committed every record of the intake topic."""
    topic = settings.topic(catalogue.INTAKE.topic)
    admin = AIOKafkaAdminClient(bootstrap_servers=settings.kafka_bootstrap_servers)
    consumer = AIOKafkaConsumer(bootstrap_servers=settings.kafka_bootstrap_servers)
    await admin.start()
    await consumer.start()
    try:
        committed = await admin.list_consumer_group_offsets(settings.group_id("ingest"))
        cluster = await consumer._client.fetch_all_metadata()
        partitions = [TopicPartition(topic, p) for p in cluster.partitions_for_topic(topic) or ()]
        ends = await consumer.end_offsets(partitions)
        return all(tp in committed and committed[tp].offset >= end for tp, end in ends.items())
    finally:
        await consumer.stop()
        await admin.close()


async def contacts(store: Store) -> list[Any]:
    found: list[Any] = []
    async for case in store["cases"].find({}, {"contacts.intake_event_id": 1}):
        found.extend(c.get("intake_event_id") for c in case.get("contacts", []))
    return found


async def test_interrupted_resumed_repeated_backfill_makes_no_duplicates(
    settings: Settings, store: Store, tmp_path: Path
) -> None:
    path = write_cfpb_csv(tmp_path / "cfpb.csv", ROWS)
    mapping = load_mapping("cfpb")
    checkpoints = tmp_path / "checkpoints"
    config = ingest_settings.IngestSettings(**settings.model_dump())
    async with running(ingest_app.build_service(config)):
        first = await replay(
            settings, path, mapping=mapping, limit=100, checkpoint_dir=checkpoints, console=QUIET
        )
        assert first.sent == 100
        resumed = await replay(
            settings, path, mapping=mapping, checkpoint_dir=checkpoints, console=QUIET
        )
        assert resumed.sent == 200 and resumed.complete
        again = await replay(
            settings, path, mapping=mapping, restart=True, checkpoint_dir=checkpoints, console=QUIET
        )
        assert again.sent == ROWS  # every row a second time: ingest must drop them

        async def settled() -> bool:
            return await ingest_caught_up(settings)

        await wait_for(settled, timeout=120, interval=0.5)
    outcomes = await intake_log.read(store)
    assert len(outcomes) == ROWS
    assert sum(e["outcome"] in ("new_case", "merged") for e in outcomes.values()) == ROWS
    ids = await contacts(store)
    assert len(ids) == ROWS and len(set(ids)) == ROWS
