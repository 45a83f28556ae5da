"""A consumer frozen past its session timeout, then thawed (SIGSTOP, SIGCONT: a long GC
pause, a starved container, a laptop lid): the group evicts it and hands its partitions
to the other replica, which handles the frozen one's poll again. Thawed, the old
consumer finishes what it held -- its guarded writes change nothing twice, its events
carry the same ids, its offset commit is refused -- and rejoins: nothing lost, nothing
twice."""

from __future__ import annotations

import asyncio
import signal
import time
from typing import Any

import pytest

from .harness import Feeder, Pipeline, Watcher
from .scenario import run_scenario

# aiokafka's default session.timeout.ms is 10 s (the services do not change it): frozen
# for longer, the member is evicted before it can heartbeat again.
SESSION_TIMEOUT_SECONDS = 10.0
FROZEN_SECONDS = SESSION_TIMEOUT_SECONDS + 6.0
STAGE = {"ingest": "accounted", "classify": "classified"}
# Long enough that work is left once the second replica holds partitions: a batch
# handler drains the short default stream before the second replica has joined.
COUNT = 1200


@pytest.mark.parametrize("service", list(STAGE))
async def test_consumer_frozen_past_session_timeout_loses_and_duplicates_nothing(
    servers_up: None, service: str
) -> None:
    async def fault(pipeline: Pipeline, feeder: Feeder, watcher: Watcher) -> dict[str, Any]:
        second = pipeline.start(service, replica=1)
        await pipeline.wait_ready(service, 1)
        # Wait until both replicas hold partitions (each has handled records), so the
        # frozen one is frozen with work in hand.
        started = time.monotonic()
        while time.monotonic() - started < 60:
            counts = [
                await pipeline.metric(service, r, "amends_messages_processed_total") for r in (0, 1)
            ]
            if all(c > 0 for c in counts):
                break
            await asyncio.sleep(0.2)
        frozen = pipeline.procs[(service, 0)]
        frozen_at = time.monotonic()
        frozen.popen.send_signal(signal.SIGSTOP)
        try:
            await asyncio.sleep(FROZEN_SECONDS)
        finally:
            frozen.popen.send_signal(signal.SIGCONT)
        thawed_at = time.monotonic()
        recovery = await watcher.progress_after(frozen_at, STAGE[service])
        return {
            "fault": f"{service} replica 0 frozen (SIGSTOP) for {FROZEN_SECONDS:.0f} s, past "
            f"the {SESSION_TIMEOUT_SECONDS:.0f} s session timeout, while replica 1 shares its "
            "group; then thawed (SIGCONT)",
            "second_replica_alive": second.alive,
            "frozen_seconds": round(thawed_at - frozen_at, 2),
            "recovery_seconds": round(recovery, 2),
            "recovery_stage": STAGE[service],
            "longest_stall_seconds": round(
                watcher.longest_stall(STAGE[service], frozen_at, time.monotonic()), 2
            ),
        }

    figures = await run_scenario(
        f"consumer-paused-{service}", fault, count=COUNT, settle_timeout=240
    )
    # The group moved on without the frozen member: progress resumed before it thawed.
    assert figures["recovery_seconds"] < FROZEN_SECONDS + 30, figures
