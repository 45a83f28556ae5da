"""Database commands per complaint, by service, command and collection (the services run
under bench.opcount).
"""

from __future__ import annotations

import argparse
import asyncio
import json
from collections import Counter
from typing import Any

from bench.figures import WORK, fig
from bench.growth import preload
from bench.pipeline import Pipeline
from bench.throughput import warm_up
from cli import SERVICES
from shared.settings import Settings


async def part_ops(settings: Settings, args: argparse.Namespace) -> dict[str, Any]:
    """Database round trips per complaint, by service, command and collection."""

    def snapshot() -> dict[str, dict[str, Counter[str]]]:
        out = {}
        for name in SERVICES:
            try:
                data = json.loads((WORK / f"ops-{name}.json").read_text())
            except (OSError, ValueError):
                data = {"count": {}, "micros": {}}
            out[name] = {"count": Counter(data["count"]), "micros": Counter(data["micros"])}
        return out

    pipe = Pipeline("ops", settings, count_ops=True)
    if args.route_before:
        pipe.env["BENCH_ROUTE_BASELINE"] = "1"
    preloaded = None
    try:
        if args.ops_preload:  # which commands get slower as history grows
            preloaded = await preload(pipe, args.ops_preload, args.preload_budget)
        await pipe.start()
        await warm_up(pipe)
        await asyncio.sleep(3)
        before = snapshot()
        n = args.ops_complaints
        window = await pipe.run_window(args.ops_rate, n / args.ops_rate, args.drain_timeout)
        await asyncio.sleep(3)
        after = snapshot()
        acct = await pipe.accounting(window.records)  # type: ignore[attr-defined]
    finally:
        await pipe.stop()
        await pipe.cleanup()
    per_service: dict[str, Any] = {}
    total = 0.0
    for name in SERVICES:
        diff = after[name]["count"] - before[name]["count"]
        micros = after[name]["micros"] - before[name]["micros"]
        ops = {
            k: {
                "per_complaint": round(v / n, 2),
                "mean_ms": round(micros[k] / v / 1000, 2) if v else None,
            }
            for k, v in diff.most_common()
        }
        count = sum(diff.values()) / n
        total += count
        per_service[name] = {"round_trips_per_complaint": round(count, 2), "by_command": ops}
    return {
        "complaints": fig(n, "complaints"),
        "new_cases": fig(acct["new_cases"], "cases"),
        "rate": fig(args.ops_rate, "complaints/s"),
        "round_trips_per_complaint": fig(total, "database commands/complaint"),
        "preloaded": preloaded,
        "services": per_service,
        "note": "counted by a pymongo CommandListener in each service process "
        "(bench/opcount.py); background loops (timers, sweeps, drain) included",
    }
