"""One fault scenario: start the pipeline, feed, inject the fault mid-stream, settle, count,
record the figures, assert 0 lost and 0 duplicated."""

from __future__ import annotations

import asyncio
import contextlib
import os
import time
from collections.abc import Awaitable, Callable
from typing import Any

from .harness import Feeder, Pipeline, Watcher, figures_of, record_figures, settle

Fault = Callable[[Pipeline, Feeder, Watcher], Awaitable[dict[str, Any]]]

# Small enough for the whole folder to run in minutes on a 2-core machine, large enough
# that the fault lands while hundreds of complaints are in flight.
COUNT = 400
RATE = 60.0


async def run_scenario(
    name: str,
    fault: Fault,
    *,
    count: int = COUNT,
    rate: float = RATE,
    fault_after: float = 0.3,
    settle_timeout: float = 180,
    pipeline: Pipeline | None = None,
) -> dict[str, Any]:
    """Run ``fault`` once ``fault_after`` of the stream was sent; return the figures."""
    pipeline = pipeline or Pipeline(name)
    started = time.monotonic()
    passed = False
    try:
        pipeline.start_all()
        await pipeline.wait_all_ready()
        ready_seconds = time.monotonic() - started
        feeder = Feeder(pipeline, count, rate)
        watcher = Watcher(pipeline, feeder)
        watcher.start()
        feeding = asyncio.create_task(feeder.run())
        try:
            while len(feeder.sent_ids) < count * fault_after and not feeding.done():
                await asyncio.sleep(0.05)
            in_flight = len(feeder.sent_ids) - watcher.latest().get("accounted", 0)
            fault_figures = await fault(pipeline, feeder, watcher)
            await feeding
            acc, settle_seconds = await settle(pipeline, feeder, timeout=settle_timeout)
        finally:
            feeding.cancel()  # never leave a feeder running past its scenario
            with contextlib.suppress(BaseException):
                await feeding
            await watcher.stop()
        dead_processes = [n for n, alive in pipeline.alive().items() if not alive]
        figures = figures_of(
            acc,
            rate_per_second=rate,
            sent_when_fault_injected=int(count * fault_after),
            in_flight_at_fault=in_flight,
            **fault_figures,
            feed_seconds=round((feeder.finished_at or 0) - (feeder.started_at or 0), 2),
            settled_seconds_after_feed=round(settle_seconds, 2),
            services_ready_seconds=round(ready_seconds, 2),
            feeder_resends=feeder.resends,
            sample_stream_defects=dict(feeder.sample_defects),
            processes_not_running_at_end=dead_processes,
            error_log_lines=dict(pipeline.logged_errors()),
            settled=acc.settled(),
        )
        record_figures(name, figures)
        assert not dead_processes, f"processes died: {dead_processes}"
        assert acc.sent == count
        assert acc.lost == 0, f"lost: {acc.lost_detail} {acc.examples}"
        assert acc.duplicated == 0, f"duplicated: {acc.duplicated_detail} {acc.examples}"
        assert acc.unexpected_dead_letters == 0, acc.examples
        assert acc.settled(), figures
        passed = True
        return figures
    finally:
        # AMENDS_FAULTS_KEEP_FAILED=1 leaves a failed scenario's database for a look.
        keep = not passed and os.environ.get("AMENDS_FAULTS_KEEP_FAILED") == "1"
        if keep:
            print(f"kept database {pipeline.settings.mongodb_database}", flush=True)
        await pipeline.close(drop=not keep)


async def kill_and_restart(
    pipeline: Pipeline, watcher: Watcher, service: str, stage: str, down_seconds: float = 1.0
) -> dict[str, Any]:
    """kill -9 one service, restart it after ``down_seconds``; time until it progresses."""
    fault_at = time.monotonic()
    pipeline.kill9(service)
    await asyncio.sleep(down_seconds)
    pipeline.start(service)
    ready = await pipeline.wait_ready(service)
    recovery = await watcher.progress_after(fault_at, stage)
    return {
        "fault": f"kill -9 {service}, restarted {down_seconds:.0f} s later",
        "restart_ready_seconds": round(ready, 2),
        "recovery_seconds": round(recovery, 2),
        "recovery_stage": stage,
    }
