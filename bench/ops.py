"""Database commands and documents written per complaint, by service, command and
collection (the services run under bench.opcount, which counts them in each process).
"""

from __future__ import annotations

import argparse
import asyncio
import json
from collections import Counter
from typing import Any

from bench.figures import WORK, fig
from bench.growth import preload
from bench.opcount import KINDS
from bench.pipeline import Pipeline
from bench.throughput import warm_up
from cli import SERVICES
from shared.settings import Settings

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


async def part_ops(settings: Settings, args: argparse.Namespace) -> dict[str, Any]:
    """Database round trips and documents written per complaint, by service, command and
    collection."""
    pipe = Pipeline("ops", settings, count_ops=True)
    if args.route_before:
        pipe.env["BENCH_ROUTE_BASELINE"] = "1"
    preloaded = None
    try:
        if args.ops_preload:  # which commands get slower as history grows
            preloaded = await preload(pipe, args.ops_preload, args.preload_budget)
        await pipe.start()
        await warm_up(pipe)
        await asyncio.sleep(3)  # opcount writes its counters every 2 s
        before = {name: read_snapshot(name) for name in SERVICES}
        n = args.ops_complaints
        window = await pipe.run_window(args.ops_rate, n / args.ops_rate, args.drain_timeout)
        await asyncio.sleep(3)
        after = {name: read_snapshot(name) for name in SERVICES}
        acct = await pipe.accounting(window.records)  # type: ignore[attr-defined]
    finally:
        await pipe.stop()
        await pipe.cleanup()
    sent = acct["complaints_sent"]
    per_service = {name: per_complaint(before[name], after[name], sent) for name in SERVICES}
    # System totals from the raw counts (the per-service figures are rounded).
    system: Counter[str] = Counter()
    for name in SERVICES:
        d = window_counts(before[name], after[name])
        system.update({k: d[k].total() for k in ("count", "written", *KINDS)})
    commands, written = system["count"] / sent, system["written"] / sent
    kinds = {k: system[k] / sent for k in KINDS}
    new_cases = acct["new_cases"]
    return {
        "complaints": fig(sent, "complaints"),
        "new_cases": fig(new_cases, "cases"),
        "rate": fig(args.ops_rate, "complaints/s"),
        "round_trips_per_complaint": fig(commands, "database commands/complaint"),
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
        "documents_written": {k: fig(v, "documents/complaint") for k, v in kinds.items()},
        "preloaded": preloaded,
        "services": per_service,
        "note": "counted by a pymongo CommandListener in each service process "
        "(bench/opcount.py); background loops (timers, sweeps, drain) included. Documents "
        "written, from each write command's reply: update nModified + upserted, insert "
        "documents sent less write errors, findAndModify 1 when it matched or upserted "
        "(a matched no-op counts); deletes apart",
    }
