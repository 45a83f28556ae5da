"""The database killed (SIGKILL) in the middle of a bulk write: a proxy between the
services and a private MongoDB-protocol server forwards a multi-statement write command
and kills the server before it can reply (tests/faults/killproxy.py). The writer cannot
know how much of its batch was stored; its poll retries once the server is back, the
guarded updates store what is missing and nothing twice: nothing lost, nothing twice."""

from __future__ import annotations

import asyncio
import signal
import subprocess
import sys
import time
from typing import Any

from shared.settings import REPO_ROOT

from .harness import Feeder, Pipeline, Watcher
from .infra import HOME, private_servers, script
from .scenario import run_scenario
from .test_3_slow_database import free_port

PAUSE_SECONDS = 2.0


async def test_database_killed_mid_bulk_write_loses_and_duplicates_nothing(
    servers_up: None,
) -> None:
    async with private_servers() as servers:
        target = servers["mongodb_url"].split("://", 1)[1].split("/", 1)[0]
        port = free_port()
        proxy = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "tests.faults.killproxy",
                "--listen",
                str(port),
                "--target",
                target,
                "--pid-file",
                str(HOME / "run" / "mongo.pid"),
            ],
            cwd=REPO_ROOT,
            stdout=subprocess.PIPE,
            text=True,
        )
        try:
            assert proxy.stdout is not None
            stdout = proxy.stdout
            await asyncio.to_thread(stdout.readline)  # listening

            async def kill_mid_write(
                pipeline: Pipeline, feeder: Feeder, watcher: Watcher
            ) -> dict[str, Any]:
                armed_at = time.monotonic()
                proxy.send_signal(signal.SIGUSR1)
                line = await asyncio.wait_for(asyncio.to_thread(stdout.readline), 90)
                killed_at = time.monotonic()
                assert line.startswith("killed "), line
                await asyncio.sleep(PAUSE_SECONDS)
                up_seconds = await asyncio.to_thread(script, "mongo", "up")
                back_at = time.monotonic()
                recovery = await watcher.progress_after(back_at, "followup", timeout=180)
                _, command, collection, statements = line.split()
                return {
                    "fault": "MongoDB killed (SIGKILL) the moment a write command of >= 3 "
                    f"statements reached it (a proxy, tests/faults/killproxy.py); up again "
                    f"after {PAUSE_SECONDS:.0f} s (a private server, see tests/faults/infra.py)",
                    "killed_during": f"{command} {collection} ({statements} statements)",
                    "armed_to_kill_seconds": round(killed_at - armed_at, 2),
                    "server_up_seconds": round(up_seconds, 2),
                    "recovery_seconds": round(back_at - killed_at + recovery, 2),
                    "recovery_stage": "followup, after the server is back",
                }

            url = f"mongodb://127.0.0.1:{port}/?directConnection=true&retryWrites=false"
            figures = await run_scenario(
                "database-killed-mid-bulk-write",
                kill_mid_write,
                settle_timeout=240,
                pipeline=Pipeline(
                    "database-killed-mid-bulk-write", servers=servers, mongodb_url=url
                ),
            )
        finally:
            proxy.terminate()
            proxy.wait(timeout=10)
    assert int(figures["killed_during"].split("(")[1].split()[0]) >= 3
