"""The ``ops`` part: database commands and documents written per complaint, by service,
command and collection, at a low rate (the services run under bench.opcount).
"""

from __future__ import annotations

import argparse
import asyncio
from typing import Any

from bench import dbcounts
from bench.figures import fig
from bench.growth import preload
from bench.pipeline import Pipeline
from bench.throughput import warm_up
from shared.settings import Settings


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
        await asyncio.sleep(dbcounts.SETTLE_SECONDS)
        before = dbcounts.read_all()
        n = args.ops_complaints
        window = await pipe.run_window(args.ops_rate, n / args.ops_rate, args.drain_timeout)
        await asyncio.sleep(dbcounts.SETTLE_SECONDS)
        after = dbcounts.read_all()
        acct = await pipe.accounting(window.records)  # type: ignore[attr-defined]
    finally:
        await pipe.stop()
        await pipe.cleanup()
    sent = acct["complaints_sent"]
    counts = dbcounts.summarise(before, after, sent, acct["new_cases"])
    return {
        "complaints": fig(sent, "complaints"),
        "new_cases": fig(acct["new_cases"], "cases"),
        "rate": fig(args.ops_rate, "complaints/s"),
        **{k: v for k, v in counts.items() if k != "services"},
        "preloaded": preloaded,
        "services": counts["services"],
        "note": dbcounts.NOTE,
    }
