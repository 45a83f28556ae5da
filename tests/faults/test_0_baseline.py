"""Control: the same stream with no fault (the figures every fault is compared with)."""

from __future__ import annotations

from typing import Any

from .harness import Feeder, Pipeline, Watcher
from .scenario import run_scenario


async def no_fault(pipeline: Pipeline, feeder: Feeder, watcher: Watcher) -> dict[str, Any]:
    return {"fault": "none"}


async def test_baseline_every_complaint_is_one_case_or_a_dead_letter(servers_up: None) -> None:
    await run_scenario("baseline", no_fault)
