"""Restart of the database mid-stream (mongo.sh down/up while the services run): an
outage, not bad input: handlers retry with backoff and, past the budget, the batch is
NACKed and redelivered; nothing is dead-lettered for it, nothing lost, nothing twice.
Uses a private database server (tests/faults/infra.py), never the shared one."""

from __future__ import annotations

from typing import Any

from .harness import Feeder, Pipeline, Watcher
from .infra import private_servers, restart_server
from .scenario import run_scenario


async def test_database_restart_loses_and_duplicates_nothing(servers_up: None) -> None:
    async def fault(pipeline: Pipeline, feeder: Feeder, watcher: Watcher) -> dict[str, Any]:
        return await restart_server("mongo", pipeline, feeder, watcher)

    async with private_servers() as servers:
        figures = await run_scenario(
            "database-restart",
            fault,
            settle_timeout=240,
            pipeline=Pipeline("database-restart", servers=servers),
        )
    assert figures["recovery_seconds"] is not None
