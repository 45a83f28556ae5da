"""A second replica of every service joins mid-stream (consumer-group rebalance: the
partitions move while records are in flight), then leaves gracefully (another
rebalance): nothing lost, nothing twice. Two replicas of ingest may handle one
customer's contacts at the same moment; their writes are atomic and guarded."""

from __future__ import annotations

import asyncio
import time
from typing import Any

from .harness import SERVICES, Feeder, Pipeline, Watcher
from .scenario import run_scenario


async def second_replicas_join_and_leave(
    pipeline: Pipeline, feeder: Feeder, watcher: Watcher
) -> dict[str, Any]:
    joined_at = time.monotonic()
    for name in SERVICES:
        pipeline.start(name, replica=1)
    ready = await asyncio.gather(*(pipeline.wait_ready(n, 1) for n in SERVICES))

    # Let the group rebalance and both replicas work side by side: until every second
    # replica has handled records (partitions moved to it), at most until 80% is sent.
    async def handled() -> dict[str, float]:
        return {n: await pipeline.metric(n, 1, "amends_messages_processed_total") for n in SERVICES}

    while len(feeder.sent_ids) < feeder.count * 0.8 and feeder.finished_at is None:
        if all(count > 0 for count in (await handled()).values()):
            break
        await asyncio.sleep(0.5)
    handled_by_second = await handled()
    left_at = time.monotonic()
    leave_seconds = await asyncio.gather(
        *(asyncio.to_thread(pipeline.terminate, n, 1) for n in SERVICES)
    )
    try:
        recovery: float | None = round(
            await watcher.progress_after(left_at, "accounted", timeout=60), 2
        )
    except AssertionError:
        recovery = None  # nothing was left to do when they had gone
    return {
        "fault": "a second replica of each service joins at 15% of the stream, leaves "
        "(SIGTERM) once each has handled records (at most at 80%)",
        "join_ready_seconds": round(max(ready), 2),
        "leave_seconds": round(max(leave_seconds), 2),
        "longest_intake_stall_seconds": round(
            watcher.longest_stall("accounted", joined_at, time.monotonic()), 2
        ),
        "recovery_seconds": recovery,
        "recovery_stage": "accounted (after the replicas left)",
        "records_handled_by_second_replicas": handled_by_second,
        "replicas_joined_at_s": round(joined_at - (feeder.started_at or joined_at), 2),
        "replicas_left_at_s": round(left_at - (feeder.started_at or left_at), 2),
    }


async def test_replicas_joining_and_leaving_lose_and_duplicate_nothing(
    servers_up: None,
) -> None:
    figures = await run_scenario(
        "rebalance-join-leave", second_replicas_join_and_leave, count=680, rate=40, fault_after=0.15
    )
    # The partitions did move: each second replica handled records while it was there.
    assert all(figures["records_handled_by_second_replicas"].values()), figures
