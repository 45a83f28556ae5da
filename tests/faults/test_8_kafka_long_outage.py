"""A Kafka outage longer than the producers' request timeout (30 s): batches the services
and the feeder had in flight expire while the broker is away. The pipeline must resume by
itself when the broker is back (an idempotent producer whose batch expired must not stay
wedged) and still lose and duplicate nothing."""

from __future__ import annotations

from typing import Any

from .harness import Feeder, Pipeline, Watcher
from .infra import private_servers, restart_server
from .scenario import run_scenario


async def test_kafka_outage_longer_than_the_request_timeout(servers_up: None) -> None:
    async def fault(pipeline: Pipeline, feeder: Feeder, watcher: Watcher) -> dict[str, Any]:
        return await restart_server("kafka", pipeline, feeder, watcher, pause=40.0)

    async with private_servers() as servers:
        figures = await run_scenario(
            "kafka-long-outage",
            fault,
            settle_timeout=240,
            pipeline=Pipeline("kafka-long-outage", servers=servers),
        )
    assert figures["recovery_seconds"] is not None
