"""Facts about the machine and its processes: cores, memory, versions, load, RSS, CPU time."""

from __future__ import annotations

import contextlib
import importlib.metadata
import os
import platform
import subprocess
from pathlib import Path
from typing import Any

from pymongo import AsyncMongoClient

from bench.figures import fig
from shared.settings import REPO_ROOT, Settings


def git_output(*args: str) -> str:
    try:
        return subprocess.run(
            ["git", *args], cwd=REPO_ROOT, capture_output=True, text=True, check=True
        ).stdout.strip()
    except (OSError, subprocess.CalledProcessError):
        return ""


def _meminfo() -> dict[str, int]:
    values: dict[str, int] = {}
    with contextlib.suppress(OSError):
        for line in Path("/proc/meminfo").read_text().splitlines():
            name, _, rest = line.partition(":")
            values[name] = int(rest.split()[0])  # kB
    return values


def _cpu_model() -> str:
    with contextlib.suppress(OSError):
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    return platform.processor()


def _version(package: str) -> str | None:
    try:
        return importlib.metadata.version(package)
    except importlib.metadata.PackageNotFoundError:
        return None


async def machine_facts(settings: Settings) -> dict[str, Any]:
    mem = _meminfo()
    mongo_version = None
    client: AsyncMongoClient[Any] = AsyncMongoClient(
        settings.mongodb_url.get_secret_value(), serverSelectionTimeoutMS=5000
    )
    try:
        info = await client.admin.command("buildInfo")
        mongo_version = info.get("version")
    except Exception as exc:
        mongo_version = f"unknown ({type(exc).__name__})"
    finally:
        await client.close()
    server_note = os.environ.get("MONGODB_URL") or "local mongo-java-server 1.47.0 (H2 MVStore)"
    return {
        "cores": fig(os.cpu_count() or 0, "logical CPUs"),
        "cpu_model": _cpu_model(),
        "memory_total": fig(round(mem.get("MemTotal", 0) / 1024), "MiB"),
        "memory_available_at_start": fig(round(mem.get("MemAvailable", 0) / 1024), "MiB"),
        "os": f"{platform.system()} {platform.release()}",
        "python": platform.python_version(),
        "versions": {
            "kafka_broker": os.environ.get("KAFKA_VERSION", "4.4.0")
            if not os.environ.get("KAFKA_BOOTSTRAP_SERVERS")
            else "external",
            "mongodb_server": f"{server_note}; reports {mongo_version}",
            **{p: _version(p) for p in ("aiokafka", "faststream", "pymongo", "orjson", "uvloop")},
            **{p: _version(p) for p in ("pydantic", "uvicorn", "py-spy")},
        },
        "shared_machine": "Kafka, the database, the four services and the load generator "
        "share these cores; other engineers' work (tests, fault runs) may run at the same "
        "time: see load_average.",
    }


def load_average() -> list[float]:
    return [round(x, 2) for x in os.getloadavg()]


def proc_status(pid: int) -> dict[str, int]:
    values: dict[str, int] = {}
    with contextlib.suppress(OSError):
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith(("VmHWM", "VmRSS")):
                name, rest = line.split(":", 1)
                values[name] = int(rest.split()[0])  # kB
    return values


def cpu_seconds(pid: int) -> float:
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")
    except (OSError, IndexError, ValueError):
        return 0.0
