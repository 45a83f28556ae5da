"""The scrape-targets file: how `amends run` tells the local Prometheus what to scrape.

`amends run` may move the services off their default ports (another run holds them), so
the Prometheus config (deploy/local/prometheus.sh) does not list ports: it reads this file
through ``file_sd_configs`` and re-reads it whenever it changes. The file is Prometheus'
file-based service discovery format, one entry per service:

    [{"targets": ["127.0.0.1:8101"], "labels": {"service": "ingest", "namespace": "local"}}, ...]

``service`` and ``namespace`` are the labels the Kubernetes PodMonitor sets, so the
dashboards and alert rules work unchanged. The run writes the file once its services
listen and removes it when they stop, so a stopped pipeline is not reported as down.
"""

from __future__ import annotations

import os
from collections.abc import Iterable
from pathlib import Path

import orjson

from shared.settings import REPO_ROOT

# The default place, shared with deploy/local/prometheus.sh (PROMETHEUS_TARGETS there).
TARGETS_FILE = REPO_ROOT / ".local" / "run" / "scrape-targets.json"
NAMESPACE = "local"


def targets_file() -> Path:
    """Where the file is: the same rule as deploy/local/prometheus.sh."""
    if os.environ.get("PROMETHEUS_TARGETS"):
        return Path(os.environ["PROMETHEUS_TARGETS"])
    if os.environ.get("AMENDS_HOME"):
        return Path(os.environ["AMENDS_HOME"]) / "run" / TARGETS_FILE.name
    return TARGETS_FILE


def targets(
    ports: Iterable[tuple[str, int]], *, namespace: str = NAMESPACE, host: str = "127.0.0.1"
) -> list[dict[str, object]]:
    """file_sd entries for (service, port) pairs."""
    return [
        {"targets": [f"{host}:{port}"], "labels": {"service": name, "namespace": namespace}}
        for name, port in ports
    ]


def write_targets(
    ports: Iterable[tuple[str, int]], path: Path | None = None, *, namespace: str = NAMESPACE
) -> Path:
    """Write the file atomically (Prometheus must never read half of it)."""
    path = path or targets_file()
    path.parent.mkdir(parents=True, exist_ok=True)
    partial = path.with_name(f".{path.name}.{os.getpid()}")
    partial.write_bytes(
        orjson.dumps(targets(ports, namespace=namespace), option=orjson.OPT_INDENT_2)
    )
    partial.replace(path)
    return path


def clear_targets(path: Path | None = None) -> None:
    """Leave an empty list (file_sd keeps the last good list when the file disappears)."""
    path = path or targets_file()
    if path.exists():
        write_targets([], path)
