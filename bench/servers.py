"""The bench's private Kafka and MongoDB-protocol server (own ports and data under
.local/bench-servers), and the server processes' pids.
"""

from __future__ import annotations

import contextlib
import os
import subprocess
import sys
from pathlib import Path

from pydantic import SecretStr

from bench.machine import proc_status
from shared.settings import REPO_ROOT, Settings

SERVER_HOME = REPO_ROOT / ".local" / "bench-servers"
PRIVATE_KAFKA_PORT, PRIVATE_CONTROLLER_PORT, PRIVATE_MONGO_PORT = 29092, 29093, 28017


def _server_env() -> dict[str, str]:
    return {
        "KAFKA_PORT": str(PRIVATE_KAFKA_PORT),
        "KAFKA_CONTROLLER_PORT": str(PRIVATE_CONTROLLER_PORT),
        "MONGO_PORT": str(PRIVATE_MONGO_PORT),
        # Room for the growth preload (mongo-java-server keeps its page cache on the heap);
        # a cache that holds the working set, as a production database server would have.
        "MONGO_JAVA_HEAP": os.environ.get("BENCH_MONGO_HEAP", "10g"),
        "MONGO_CACHE_MB": os.environ.get("BENCH_MONGO_CACHE_MB", "4096"),
    }


def run_local_server(script: str, action: str, home: Path, env: dict[str, str]) -> None:
    """``deploy/local/<script> <action>`` with its state under ``home``; the jars and tools
    installed in ``.local`` are linked in (reused, never downloaded again)."""
    home.mkdir(parents=True, exist_ok=True)
    for name in ("cache", "opt", "bin"):
        link, installed = home / name, REPO_ROOT / ".local" / name
        if installed.exists() and not link.exists():
            link.symlink_to(installed)
    args = ["bash", str(REPO_ROOT / "deploy/local" / script), action]
    env = {**os.environ, **env, "AMENDS_HOME": str(home), "PYTHON": sys.executable}
    result = subprocess.run(args, env=env, capture_output=True, text=True)
    if result.returncode != 0:
        raise RuntimeError(f"{script} {action} failed: {result.stderr[-500:]}")


def private_servers(action: str) -> None:
    """Kafka and the MongoDB-protocol server of the bench alone (same scripts, own ports
    and data under .local/bench-servers): other work's restarts and database load stay out
    of the figures, and the growth preload never lands in anyone else's server."""
    for script in ("kafka.sh", "mongo.sh"):
        run_local_server(script, action, SERVER_HOME, _server_env())


def private_settings() -> Settings:
    return Settings(
        kafka_bootstrap_servers=f"127.0.0.1:{PRIVATE_KAFKA_PORT}",
        mongodb_url=SecretStr(
            f"mongodb://127.0.0.1:{PRIVATE_MONGO_PORT}/?directConnection=true&retryWrites=false"
        ),
    )


_private = False  # set by start_private: the servers' pid files are then under SERVER_HOME


def start_private() -> Settings:
    """Start the private servers; the pids and settings of the run are theirs from now on."""
    global _private
    private_servers("up")
    _private = True
    return private_settings()


def is_private() -> bool:
    return _private


def _mongo_pid_file() -> Path:
    return (SERVER_HOME if _private else REPO_ROOT / ".local") / "run"


def server_pids() -> dict[str, int]:
    pids = {}
    for name, file in (("kafka", "kafka.pid"), ("mongodb", "mongo.pid")):
        with contextlib.suppress(OSError, ValueError):
            pids[name] = int((_mongo_pid_file() / file).read_text().split()[0])
    return pids


def mongo_rss_mb() -> float | None:
    pid = server_pids().get("mongodb")
    if not pid:
        return None
    return round(proc_status(pid).get("VmRSS", 0) / 1024, 1)
