"""`amends infra up|down|status`: the local Kafka and MongoDB-protocol server.

The scripts in deploy/local/ do the work (install what is missing, start, wait for a
protocol-level answer). When KAFKA_BOOTSTRAP_SERVERS or MONGODB_URL is set, that server
is external and left alone.
"""

from __future__ import annotations

import os
import subprocess
import sys

from shared.settings import REPO_ROOT

SCRIPTS = {
    "kafka": (REPO_ROOT / "deploy/local/kafka.sh", "KAFKA_BOOTSTRAP_SERVERS"),
    "mongodb": (REPO_ROOT / "deploy/local/mongo.sh", "MONGODB_URL"),
}


def external(server: str) -> str | None:
    env_name = SCRIPTS[server][1]
    return os.environ.get(env_name) or os.environ.get(f"AMENDS_{env_name}")


def infra(action: str, *, quiet: bool = False) -> int:
    """Run ``action`` (up, down, status) for each local server; returns an exit code."""
    worst = 0
    for server, (script, env_name) in SCRIPTS.items():
        if external(server):
            if not quiet:
                print(f"{server}: external ({env_name} is set), not managed here")
            continue
        env = {**os.environ, "PYTHON": sys.executable}
        result = subprocess.run(
            ["bash", str(script), action],
            env=env,
            stdout=subprocess.DEVNULL if quiet else None,
            check=False,
        )
        if result.returncode != 0:
            print(
                f"{server}: `{script.name} {action}` failed (exit {result.returncode}); "
                f"see .local/logs/",
                file=sys.stderr,
            )
            worst = max(worst, result.returncode)
    return worst
