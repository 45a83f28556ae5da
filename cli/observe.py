"""`amends observe up|down|status`: the local Prometheus beside the running services.

deploy/local/prometheus.sh does the work (build once, write the config, start, wait until
ready); this adds where to look next.
"""

from __future__ import annotations

import os
import subprocess

from shared.settings import REPO_ROOT

SCRIPT = REPO_ROOT / "deploy/local/prometheus.sh"


def observe(action: str) -> int:
    code = subprocess.run(["bash", str(SCRIPT), action], check=False).returncode
    if action == "up" and code == 0:
        url = f"http://127.0.0.1:{os.environ.get('PROMETHEUS_PORT', '9090')}"
        print(
            f"Open {url}/consoles/amends.html (services, alerts, complaints; loopback only).\n"
            f"API: {url}/api/v1/targets, {url}/api/v1/alerts, {url}/api/v1/rules,\n"
            f"     {url}/api/v1/query?query=up\n"
            "It scrapes the services of a running `amends run` (`make run`); "
            "`amends observe down` stops it."
        )
    return code
