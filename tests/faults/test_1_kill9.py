"""kill -9 of each service mid-stream, restarted a second later: nothing lost, nothing
twice. A killed process leaves handled-but-uncommitted records (redelivered to the new
process: idempotent handlers), effects stored but not published (republished on
redelivery with the same event id), and a dead consumer-group member (evicted after the
session timeout)."""

from __future__ import annotations

from typing import Any

import pytest

from .harness import Feeder, Pipeline, Watcher
from .scenario import kill_and_restart, run_scenario

STAGE = {"ingest": "accounted", "classify": "classified", "route": "routed", "followup": "followup"}


@pytest.mark.parametrize("service", list(STAGE))
async def test_kill9_and_restart_loses_and_duplicates_nothing(
    servers_up: None, service: str
) -> None:
    async def fault(pipeline: Pipeline, feeder: Feeder, watcher: Watcher) -> dict[str, Any]:
        return await kill_and_restart(pipeline, watcher, service, STAGE[service])

    figures = await run_scenario(f"kill9-{service}", fault)
    assert figures["recovery_seconds"] < 90
