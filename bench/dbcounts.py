"""Database commands and documents written per complaint, from the counters bench.opcount
writes in each service process (``.local/bench/ops-<service>.json``), between two snapshots.
"""

from __future__ import annotations

import json
from collections import Counter
from typing import Any

from bench.figures import WORK, fig
from bench.opcount import KINDS
from cli import SERVICES

# opcount writes its counters every 2 s: wait this long after a window before reading them.
SETTLE_SECONDS = 3.0

NOTE = (
    "counted by a pymongo CommandListener in each service process "
    "(bench/opcount.py); background loops (timers, sweeps, drain) included. Documents "
    "written, from each write command's reply: update nModified + upserted, insert "
    "documents sent less write errors, findAndModify 1 when it matched or upserted "
    "(a matched no-op counts); deletes apart"
)

Snapshot = dict[str, dict[str, int]]  # counter name -> "command collection" -> total


def read_snapshot(service: str) -> Snapshot:
    """The counters ``bench.opcount`` last wrote for ``service`` (empty before its first)."""
    try:
        data = json.loads((WORK / f"ops-{service}.json").read_text())
    except (OSError, ValueError):
        data = {}
    return {name: data.get(name, {}) for name in ("count", "micros", *KINDS)}


def window_counts(before: Snapshot, after: Snapshot) -> dict[str, Counter[str]]:
    """Each counter's growth between two snapshots of one service."""
    names = ("count", "micros", *KINDS)
    out = {n: Counter(after.get(n, {})) - Counter(before.get(n, {})) for n in names}
    out["written"] = out["inserted"] + out["upserted"] + out["modified"]
    return out


def per_complaint(before: Snapshot, after: Snapshot, complaints: int) -> dict[str, Any]:
    """One service's commands and written documents in the window, per complaint."""
    d = window_counts(before, after)
    count, micros, written = d["count"], d["micros"], d["written"]
    ops = {
        k: {
            "per_complaint": round(v / complaints, 2),
            "mean_ms": round(micros[k] / v / 1000, 2) if v else None,
            "written_per_complaint": round(written[k] / complaints, 2),
        }
        for k, v in count.most_common()
    }
    return {
        "round_trips_per_complaint": round(count.total() / complaints, 2),
        "documents_written_per_complaint": round(written.total() / complaints, 2),
        "documents_written": {k: round(d[k].total() / complaints, 2) for k in KINDS},
        "by_command": ops,
    }


def read_all() -> dict[str, Snapshot]:
    return {name: read_snapshot(name) for name in SERVICES}


def summarise(
    before: dict[str, Snapshot], after: dict[str, Snapshot], sent: int, new_cases: int
) -> dict[str, Any]:
    """Per complaint of a window (``sent`` complaints): the system's figures and each
    service's."""
    per_service = {name: per_complaint(before[name], after[name], sent) for name in SERVICES}
    # System totals from the raw counts (the per-service figures are rounded).
    system: Counter[str] = Counter()
    for name in SERVICES:
        d = window_counts(before[name], after[name])
        system.update({k: d[k].total() for k in ("count", "written", *KINDS)})
    written = system["written"] / sent
    return {
        "round_trips_per_complaint": fig(system["count"] / sent, "database commands/complaint"),
        "documents_written_per_complaint": fig(
            written,
            "documents/complaint",
            note="inserted + upserted + modified, all services",
        ),
        "documents_written_per_new_case": fig(
            written * sent / new_cases if new_cases else None,
            "documents/new case",
            note="every write of the window (merges, duplicates, praise too) over its new cases",
        ),
        "documents_written": {k: fig(system[k] / sent, "documents/complaint") for k in KINDS},
        "services": per_service,
    }


def log_line(ops: dict[str, Any]) -> list[str]:
    """The two lines the bench prints for a count."""
    services = ops["services"].items()
    return [
        f"{ops['round_trips_per_complaint']['value']} commands/complaint: "
        + " ".join(f"{k} {v['round_trips_per_complaint']}" for k, v in services),
        f"{ops['documents_written_per_complaint']['value']} documents written/complaint "
        f"({ops['documents_written_per_new_case']['value']} per new case): "
        + " ".join(f"{k} {v['documents_written_per_complaint']}" for k, v in services),
    ]
