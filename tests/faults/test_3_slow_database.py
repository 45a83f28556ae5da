"""A slow database: from 30% of the stream on, every chunk between the services and
MongoDB is delayed (a TCP proxy adding latency in both directions). Handlers slow down,
batches take longer than the broker's patience for nothing: nothing lost, nothing twice,
no handler error mistaken for a bad message."""

from __future__ import annotations

import asyncio
import signal
import socket
import subprocess
import sys
import time
from typing import Any

from shared.settings import REPO_ROOT, Settings

from .harness import Feeder, Pipeline, Watcher
from .scenario import run_scenario

DELAY_MS = 25  # each direction: +50 ms per round trip


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


async def test_slow_database_loses_and_duplicates_nothing(servers_up: None) -> None:
    target = Settings().mongodb_url.get_secret_value()
    hostport = target.split("://", 1)[1].split("/", 1)[0].split("@")[-1].split(",")[0]
    port = free_port()
    proxy = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "tests.faults.slowproxy",
            "--listen",
            str(port),
            "--target",
            hostport,
            "--delay-ms",
            str(DELAY_MS),
        ],
        cwd=REPO_ROOT,
        stdout=subprocess.PIPE,
    )
    try:
        assert proxy.stdout is not None
        await asyncio.to_thread(proxy.stdout.readline)  # listening
        url = f"mongodb://127.0.0.1:{port}/?directConnection=true&retryWrites=false"

        async def slow_down(pipeline: Pipeline, feeder: Feeder, watcher: Watcher) -> dict[str, Any]:
            fault_at = time.monotonic()
            proxy.send_signal(signal.SIGUSR1)
            recovery = await watcher.progress_after(fault_at, "followup")
            return {
                "fault": f"+{DELAY_MS} ms per chunk each way between services and MongoDB "
                "(TCP proxy) from 30% of the stream to the end",
                "recovery_seconds": round(recovery, 2),
                "recovery_stage": "followup (first progress under latency)",
                "latency_ms_per_round_trip": 2 * DELAY_MS,
            }

        await run_scenario(
            "slow-database", slow_down, pipeline=Pipeline("slow-database", mongodb_url=url)
        )
    finally:
        proxy.terminate()
        proxy.wait(timeout=10)
