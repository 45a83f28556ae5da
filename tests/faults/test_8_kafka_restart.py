"""Restart of the Kafka broker mid-stream (kafka.sh down/up while the services run): the
services reconnect by themselves, the batch whose publish failed is NACKed and
redelivered, the feeder resends what the broker did not acknowledge: nothing lost,
nothing twice. Uses a private broker (tests/faults/infra.py), never the shared one."""

from __future__ import annotations

from typing import Any

from .harness import Feeder, Pipeline, Watcher
from .infra import private_servers, restart_server
from .scenario import run_scenario


async def test_kafka_broker_restart_loses_and_duplicates_nothing(servers_up: None) -> None:
    async def fault(pipeline: Pipeline, feeder: Feeder, watcher: Watcher) -> dict[str, Any]:
        return await restart_server("kafka", pipeline, feeder, watcher)

    async with private_servers() as servers:
        figures = await run_scenario(
            "kafka-restart",
            fault,
            settle_timeout=240,
            pipeline=Pipeline("kafka-restart", servers=servers),
        )
    assert figures["recovery_seconds"] is not None
