"""Soak: the four services as processes over the real servers, fed at a steady rate for a
configurable time; reports memory (VmRSS) of each process at start and end, consumer lag,
errors, and the same loss / duplicate accounting as the fault tests.

    python -m bench.soak --seconds 600 --rate 20      # `make soak` (SOAK_SECONDS)

Writes bench/results/soak.json. Exit status 1 when a complaint was lost or duplicated.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import sys
import time
from datetime import UTC, datetime
from typing import Any

from shared.settings import REPO_ROOT
from tests.faults.harness import (
    SERVICES,
    Feeder,
    Pipeline,
    Watcher,
    figures_of,
    machine_facts,
    rss_kib,
    settle,
)

RESULT = REPO_ROOT / "bench" / "results" / "soak.json"


async def lag(pipeline: Pipeline) -> dict[str, float]:
    """Sum of amends_consumer_lag_messages per service (from its /metrics)."""
    values: dict[str, float] = {}
    for name in SERVICES:
        with contextlib.suppress(Exception):
            values[name] = await pipeline.metric(name, 0, "amends_consumer_lag_messages")
    return values


def memory(pipeline: Pipeline) -> dict[str, float | None]:
    out: dict[str, float | None] = {}
    for (name, replica), proc in pipeline.procs.items():
        kib = rss_kib(proc.pid) if proc.alive else None
        out[f"{name}#{replica}"] = round(kib / 1024, 1) if kib else None
    return out


async def soak(seconds: float, rate: float, warmup: float, out: str | None) -> int:
    pipeline = Pipeline("soak", base_port=8500)
    samples: list[dict[str, Any]] = []
    log = lambda *a: print(*a, file=sys.stderr, flush=True)  # noqa: E731
    try:
        pipeline.start_all()
        await pipeline.wait_all_ready()
        await asyncio.sleep(warmup)
        count = int(seconds * rate)
        feeder = Feeder(pipeline, count, rate)
        watcher = Watcher(pipeline, feeder, interval=2.0)
        memory_start = memory(pipeline)
        log(f"soak: {count} complaints at {rate}/s for {seconds:.0f} s; rss MiB {memory_start}")
        watcher.start()
        started = time.monotonic()
        feeding = asyncio.create_task(feeder.run())
        next_sample = started
        while not feeding.done():
            await asyncio.sleep(0.5)
            if time.monotonic() >= next_sample:
                next_sample += 15
                sample = {
                    "t_seconds": round(time.monotonic() - started, 1),
                    "sent": len(feeder.sent_ids),
                    **{f"progress_{k}": v for k, v in watcher.latest().items()},
                    "lag": await lag(pipeline),
                    "rss_mib": memory(pipeline),
                }
                samples.append(sample)
                log(f"  {json.dumps(sample)}")
        await feeding
        memory_end = memory(pipeline)
        lag_end = await lag(pipeline)
        acc, settle_seconds = await settle(pipeline, feeder, timeout=max(240, seconds))
        await watcher.stop()
        lag_settled = await lag(pipeline)
        memory_settled = memory(pipeline)
        loaded = samples[1]["rss_mib"] if len(samples) > 1 else memory_start
        max_lag = {
            name: max((s["lag"].get(name, 0) for s in samples), default=0) for name in SERVICES
        }
        figures = figures_of(
            acc,
            seconds=seconds,
            rate_per_second=rate,
            feed_seconds=round((feeder.finished_at or 0) - (feeder.started_at or 0), 1),
            settled_seconds_after_feed=round(settle_seconds, 1),
            memory_mib_start=memory_start,
            memory_mib_end_of_feed=memory_end,
            memory_mib_settled=memory_settled,
            memory_growth_mib={
                k: round((memory_end.get(k) or 0) - (v or 0), 1) for k, v in memory_start.items()
            },
            # Models and caches load with the first records: growth under steady traffic.
            memory_growth_since_first_loaded_sample_mib={
                k: round((memory_end.get(k) or 0) - (loaded.get(k) or 0), 1) for k in memory_start
            },
            consumer_lag_end_of_feed=lag_end,
            consumer_lag_settled=lag_settled,
            consumer_lag_max_sampled=max_lag,
            errors={
                "unexpected_dead_letters": acc.unexpected_dead_letters,
                "downstream_dead_letters": acc.downstream_dead_letters,
                "error_log_lines": dict(pipeline.logged_errors()),
                "processes_not_running": [n for n, a in pipeline.alive().items() if not a],
            },
            sample_stream_defects=dict(feeder.sample_defects),
            feeder_resends=feeder.resends,
            settled=acc.settled(),
        )
        result = {
            "description": "Soak (bench/soak.py, `make soak`): the four services as processes "
            "over the real local Kafka and MongoDB-protocol server, sample complaints at a "
            "steady rate; memory (VmRSS, MiB) per process at start / end of feed / settled, "
            "consumer lag (amends_consumer_lag_messages summed per service), errors, and the "
            "loss / duplicate accounting of the fault tests (tests/faults/harness.py).",
            "recorded_at": datetime.now(UTC).isoformat(timespec="seconds"),
            "machine": machine_facts(),
            "figures": figures,
            "samples": samples,
        }
        path = RESULT if out is None else REPO_ROOT / out
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps(result, indent=2, default=str) + "\n")
        log(
            f"soak: sent {acc.sent} stored {acc.stored} lost {acc.lost} "
            f"duplicated {acc.duplicated} dead-lettered {acc.dead_lettered} -> {path}"
        )
        ok = acc.lost == 0 and acc.duplicated == 0 and acc.unexpected_dead_letters == 0
        return 0 if ok else 1
    finally:
        await pipeline.close()


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--seconds", type=float, default=600)
    parser.add_argument("--rate", type=float, default=20, help="complaints per second")
    parser.add_argument("--warmup", type=float, default=5, help="seconds before measuring")
    parser.add_argument("--out", default=None, help="result path (default bench/results/soak.json)")
    args = parser.parse_args()
    return asyncio.run(soak(args.seconds, args.rate, args.warmup, args.out))


if __name__ == "__main__":
    sys.exit(main())
