"""Servers of their own for the restart scenarios.

Restarting the shared local broker is not an option: it holds every test run's topics
(thousands of partitions: a restart takes minutes to load them) and other runs use it.
So the restart scenarios start a private Kafka and a private MongoDB-protocol server with
the same scripts (``deploy/local/kafka.sh``, ``mongo.sh``) under their own state root
(``.local/faults-servers``, sharing the cached jars) and their own ports, restart *those*
mid-stream, and delete them afterwards."""

from __future__ import annotations

import asyncio
import os
import socket
import subprocess
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

from shared.settings import REPO_ROOT

from .harness import Feeder, Pipeline, Watcher

HOME = REPO_ROOT / ".local" / "faults-servers"
# Below the ephemeral range (32768-60999): a client reconnecting in a loop while a server
# is down may otherwise be given the server's own port as its source port (a TCP
# self-connect), and the restarted server then cannot bind it ("Address already in use").
KAFKA_PORT = 29392
KAFKA_CONTROLLER_PORT = 29393
MONGO_PORT = 28317
SHARED = ("cache", "opt", "bin")  # jars, the compiled server: reused, never rebuilt


def _env() -> dict[str, str]:
    return {
        **os.environ,
        "AMENDS_HOME": str(HOME),
        "KAFKA_PORT": str(KAFKA_PORT),
        "KAFKA_CONTROLLER_PORT": str(KAFKA_CONTROLLER_PORT),
        "KAFKA_PARTITIONS": "4",
        "MONGO_PORT": str(MONGO_PORT),
    }


def script(name: str, action: str, timeout: float = 240) -> float:
    """Run ``deploy/local/<name>.sh <action>`` for the private servers; seconds taken."""
    started = time.monotonic()
    completed = subprocess.run(
        [str(REPO_ROOT / "deploy" / "local" / f"{name}.sh"), action],
        cwd=REPO_ROOT,
        env=_env(),
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )
    if completed.returncode != 0:
        raise RuntimeError(
            f"{name}.sh {action} failed: {completed.stdout[-3000:]}{completed.stderr[-3000:]}"
        )
    return time.monotonic() - started


def _port_free(port: int) -> bool:
    with socket.socket() as sock:
        return sock.connect_ex(("127.0.0.1", port)) != 0


@asynccontextmanager
async def private_servers(
    names: tuple[str, ...] = ("kafka", "mongo"),
) -> AsyncIterator[dict[str, str]]:
    """A private Kafka and MongoDB (or only those ``names``) for one scenario; yields the
    settings to use."""
    HOME.mkdir(parents=True, exist_ok=True)
    for name in SHARED:
        link, target = HOME / name, REPO_ROOT / ".local" / name
        if target.exists() and not link.exists():
            link.symlink_to(target, target_is_directory=True)
    # Left over from an interrupted run (same state root: ours): stop it first.
    for name in names:
        await asyncio.to_thread(script, name, "down")
    ports = {"kafka": (KAFKA_PORT, KAFKA_CONTROLLER_PORT), "mongo": (MONGO_PORT,)}
    busy = [p for name in names for p in ports[name] if not _port_free(p)]
    if busy:
        raise RuntimeError(
            f"ports {busy} are used by another process; change tests/faults/infra.py"
        )
    try:
        for name in names:
            await asyncio.to_thread(script, name, "up")
        yield {
            "kafka_bootstrap_servers": f"127.0.0.1:{KAFKA_PORT}",
            "mongodb_url": (
                f"mongodb://127.0.0.1:{MONGO_PORT}/?directConnection=true&retryWrites=false"
            ),
        }
    finally:
        # Delete them (data included): nothing is left running or growing.
        for name in names:
            try:
                await asyncio.to_thread(script, name, "reset")
            except Exception as exc:  # pragma: no cover - reported, not fatal
                print(f"could not reset the private {name}: {exc}")


async def restart_server(
    name: str, pipeline: Pipeline, feeder: Feeder, watcher: Watcher, *, pause: float = 2.0
) -> dict[str, Any]:
    """``<name>.sh down``, ``pause`` seconds, ``up``; then time until the pipeline moves."""
    fault_at = time.monotonic()
    down_seconds = await asyncio.to_thread(script, name, "down")
    await asyncio.sleep(pause)
    up_seconds = await asyncio.to_thread(script, name, "up")
    back_at = time.monotonic()
    stages: dict[str, float | None] = {}
    for stage in ("accounted", "followup"):
        try:
            stages[stage] = round(await watcher.progress_after(back_at, stage, timeout=120), 2)
        except AssertionError:
            stages[stage] = None
    outage = back_at - fault_at
    recovered = [v for v in stages.values() if v is not None]
    return {
        "fault": f"{name}.sh down, {pause:.0f} s, {name}.sh up while the services run "
        f"(a private {name} server, see tests/faults/infra.py)",
        "server_down_seconds": round(down_seconds, 2),
        "server_up_seconds": round(up_seconds, 2),
        "outage_seconds": round(outage, 2),
        "recovery_seconds": round(outage + min(recovered), 2) if recovered else None,
        "recovery_after_server_back_seconds": stages,
        "recovery_stage": "first progress of accounted / followup after the server is back",
    }
