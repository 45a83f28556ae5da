"""kill -9 at the worst moment of a batch handler: after its poll's bulk writes are
stored, before the poll's events are published and its offsets committed
(``crash_after_write``). The poll is redelivered to the restarted process, which finds
every effect stored, writes nothing twice and announces the same events again: nothing
lost, nothing twice. For each service written against whole polls."""

from __future__ import annotations

import asyncio
import time
from typing import Any

import pytest

from .harness import Feeder, Pipeline, Watcher
from .scenario import run_scenario

STAGE = {
    "ingest": "accounted",
    "classify": "classified",
    "route": "routed",
    "followup": "followup",
}
# What counts as a poll: one with output (ingest, classify and route announce what they
# decide), or any topic's poll handled (followup's here plan follow-ups, announce nothing).
MODE = {"ingest": "output", "classify": "output", "route": "output", "followup": "handled"}
# The first such poll: it holds whatever arrived while the process was swapped.
# (A later poll may never come on a slow machine: the backlog fits in one or two polls.)
CRASH_AFTER_POLLS = 1


@pytest.mark.parametrize("service", list(STAGE))
async def test_kill9_between_bulk_write_and_commit_loses_and_duplicates_nothing(
    servers_up: None, service: str
) -> None:
    async def fault(pipeline: Pipeline, feeder: Feeder, watcher: Watcher) -> dict[str, Any]:
        # Swap the running process for one that dies after its first poll's writes.
        pipeline.terminate(service)
        command = (
            "-m",
            "tests.faults.crash_after_write",
            service,
            str(CRASH_AFTER_POLLS),
            MODE[service],
        )
        crashing = pipeline.start(service, command=command)
        started = time.monotonic()
        while crashing.alive:
            assert time.monotonic() - started < 120, "the crashing process never crashed"
            await asyncio.sleep(0.1)
        crashed_at = time.monotonic()
        assert "SIGKILL after poll" in crashing.log_path.read_text()
        pipeline.start(service)
        ready = await pipeline.wait_ready(service)
        recovery = await watcher.progress_after(crashed_at, STAGE[service])
        return {
            "fault": f"{service} killed (SIGKILL) after poll {CRASH_AFTER_POLLS}'s bulk "
            "writes, before its publish and commit; restarted",
            "crashed_after_seconds": round(crashed_at - started, 2),
            "restart_ready_seconds": round(ready, 2),
            "recovery_seconds": round(recovery, 2),
            "recovery_stage": STAGE[service],
        }

    figures = await run_scenario(f"crash-after-write-{service}", fault)
    assert figures["recovery_seconds"] < 90
