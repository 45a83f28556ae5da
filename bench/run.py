"""`make bench`: the pipeline's benchmarks against the real local Kafka and MongoDB server.

Parts (``--only``, comma separated; default: all):

* ``baseline``: raw aiokafka produce-then-consume of the intake event bytes (one hop) and
  raw upserts of a case document by ``_id`` with the services' own driver settings;
* ``throughput``: the four services as their own processes (as ``amends run`` starts them)
  fed at a stepped rate; the highest rate sustained for ``--duration`` seconds (consumer
  lag of every service's group does not grow, every complaint reaches its final stage);
  peak RSS of every service; a py-spy profile of every service at that rate;
* ``ops``: database commands and documents written per complaint, per service and in
  total, with every service under ``bench.opcount`` (a pymongo command listener), at
  ``--ops-rate``; the throughput part's confirming pipeline is counted the same way, at
  the sustained rate (``--no-ops-at-load`` turns that off);
* ``latency``: p50/p95/p99 from ingest receiving a complaint (``cases.stages.received_at``)
  to its assignment being stored (``cases.stages.assigned_at``), at 50 % of the sustained rate;
* ``growth``: the same check with N cases (and their queue entries and timers) already
  stored, for each N of ``--growth-sizes``.

Every run has a topic prefix, consumer groups and a database of its own, dropped at the
end. Results: ``bench/results/bench.json`` (each figure with its unit), merged with the
parts not run this time; ``python -m bench.report`` prints the markdown table.

This module owns the parts' order, the derived figures and targets, and the CLI; the rest
lives in modules named after what they own: ``figures`` (result paths, ``fig``, ``log``),
``machine`` (machine facts, /proc), ``servers`` (the private servers), ``workload``
(records, sender), ``probe`` (lag, CPU samples, the verdict on a window), ``pipeline``
(the services under test), ``throughput`` (the sustained-rate search, latency),
``profile`` (py-spy), ``baselines`` (raw Kafka and MongoDB), ``growth`` (preloaded
cases), ``ops`` (database commands per complaint, with ``opcount`` in each service).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from bench import dbcounts, servers
from bench.baselines import part_baseline
from bench.figures import RESULT_FILE, fig, log
from bench.growth import part_growth
from bench.machine import git_output, load_average, machine_facts
from bench.ops import part_ops
from bench.report import table, update_readme
from bench.servers import PRIVATE_KAFKA_PORT, PRIVATE_MONGO_PORT
from bench.throughput import part_latency, part_throughput
from shared.settings import REPO_ROOT, Settings

TARGETS = {
    "sustained_rate": 1000.0,
    "ratio_to_kafka": 0.20,
    "p99_ms": 250.0,
    "growth_within": 0.10,
    "rss_mb": 200.0,
}


def derive(results: dict[str, Any]) -> None:
    """Figures computed from others (kept current when parts are re-run separately)."""
    tp = results.get("throughput")
    kafka = results.get("baseline", {}).get("kafka", {}).get("one_hop_rate", {}).get("value")
    if tp and tp.get("sustained_rate"):
        rate = tp["sustained_rate"]["value"]
        tp["ratio_to_kafka_one_hop"] = fig(
            100 * rate / kafka if kafka else None,
            "% of the raw one-hop Kafka rate",
            note="both measured in this run"
            if "baseline" in results.get("parts_run", [])
            else "Kafka rate from the last baseline run",
        )
    results["targets"] = targets(results)


def targets(results: dict[str, Any]) -> list[dict[str, Any]]:
    out = []
    tp = results.get("throughput", {})
    rate = tp.get("sustained_rate", {}).get("value")
    ratio = tp.get("ratio_to_kafka_one_hop", {}).get("value")
    lat = results.get("latency", {}).get("ingest_received_to_assigned", {})
    p99 = lat.get("p99", {}).get("value")
    rss = [v["peak_rss"]["value"] for v in (tp.get("peak_rss") or {}).values()]
    sizes = results.get("growth", {}).get("sizes", [])
    rates = {r["cases_stored"]["value"]: r.get("sustained_rate", {}).get("value") for r in sizes}
    small, large = rates.get(10_000), rates.get(1_000_000)

    def add(target: str, measured: Any, met: bool) -> None:
        out.append({"target": target, "measured": measured, "met": met})

    add("sustained rate >= 1000 complaints/s", rate, bool(rate and rate >= 1000))
    add("rate >= 20 % of raw one-hop Kafka", ratio, bool(ratio and ratio >= 20))
    add("p99 ingest-to-assigned <= 250 ms at 20/s", p99, p99 is not None and p99 <= 250)
    add(
        "rate at 1,000,000 cases within 10 % of 10,000",
        {"10000": small, "1000000": large},
        bool(small and large is not None and large >= 0.9 * small),
    )
    add(
        "each service <= 200 MB peak RSS",
        max(rss) if rss else None,
        bool(rss and max(rss) <= 200 / 1.048576),
    )
    at_load = tp.get("db_ops_at_sustained_rate") or {}
    commands = at_load.get("round_trips_per_complaint", {}).get("value")
    add(
        "DB commands per complaint <= 1 at the sustained rate",
        commands,
        commands is not None and commands <= 1,
    )
    per_case = results.get("db_ops", {}).get("documents_written_per_new_case", {}).get("value")
    add(
        "documents written per new case <= 6 (ops part)",
        per_case,
        per_case is not None and per_case <= 6,
    )
    return out


async def main_async(args: argparse.Namespace) -> int:
    external = os.environ.get("KAFKA_BOOTSTRAP_SERVERS") or os.environ.get("MONGODB_URL")
    if args.servers == "private" and not external:
        log("starting the bench's own Kafka and MongoDB-protocol server (.local/bench-servers)")
        settings = await asyncio.to_thread(servers.start_private)
    else:
        settings = Settings()
    try:
        return await _main(args, settings)
    finally:
        if servers.is_private() and not args.keep_servers:
            log("stopping the bench's servers")
            await asyncio.to_thread(servers.private_servers, "down")


async def _main(args: argparse.Namespace, settings: Settings) -> int:
    results: dict[str, Any] = {}
    output: Path = args.output
    if output.exists() and not args.fresh:
        with contextlib.suppress(ValueError):
            results = json.loads(output.read_text())
    results["machine"] = await machine_facts(settings)
    results["commit"] = git_output("rev-parse", "HEAD")
    results["worktree_dirty"] = bool(git_output("status", "--porcelain", "--untracked-files=no"))
    results["started_at"] = datetime.now(UTC).isoformat()
    results.setdefault("load_average", {})["at_start"] = load_average()
    results["parts_run"] = sorted(args.parts)
    results["servers"] = (
        "private instances of the local servers for the bench alone (.local/bench-servers; "
        f"Kafka 127.0.0.1:{PRIVATE_KAFKA_PORT}, MongoDB-protocol 127.0.0.1:{PRIVATE_MONGO_PORT}, "
        "heap -Xmx3g): other work's restarts and database load stay out; the CPU is shared"
        if servers.is_private()
        else f"shared: {settings.kafka_bootstrap_servers}, the default MongoDB URL"
    )

    def save() -> None:
        derive(results)
        output.parent.mkdir(parents=True, exist_ok=True)
        output.write_text(json.dumps(results, indent=2, default=str) + "\n")

    if "baseline" in args.parts:
        results["baseline"] = await part_baseline(settings, args)
        save()
    if "ops" in args.parts:
        log("ops: database commands and documents written per complaint ...")
        key = "db_ops_route_before_optimisation" if args.route_before else "db_ops"
        results[key] = await part_ops(settings, args)
        for line in dbcounts.log_line(results[key]):
            log(f"  {line}")
        save()
    if "throughput" in args.parts:
        await part_throughput(settings, args, results)  # latency too, when asked
        save()
    elif "latency" in args.parts:
        await part_latency(settings, args, results)
        save()
    if "growth" in args.parts:
        await part_growth(settings, args, results)
        save()
    results["load_average"]["at_end"] = load_average()
    results["finished_at"] = datetime.now(UTC).isoformat()
    save()
    log(f"wrote {output.relative_to(REPO_ROOT) if output.is_relative_to(REPO_ROOT) else output}")
    print(table(results))
    full = {"throughput", "growth"} <= args.parts
    if args.readme and full and output == RESULT_FILE and update_readme(results):
        log("README.md table updated")
    return 0


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(prog="python -m bench.run", description=__doc__.split("\n")[0])
    p.add_argument(
        "--only",
        default="baseline,ops,throughput,latency,growth",
        help="comma-separated parts: baseline, ops, throughput, latency, growth",
    )
    p.add_argument("--duration", type=float, default=60.0, help="sustained window, s")
    p.add_argument("--probe-duration", type=float, default=20.0, help="search probe window, s")
    p.add_argument("--latency-duration", type=float, default=60.0)
    p.add_argument(
        "--latency-rate",
        type=float,
        default=20.0,
        help="complaints/s of the latency window (at most half the sustained rate)",
    )
    p.add_argument(
        "--batch-timeouts-ms",
        type=lambda v: [int(x) for x in v.split(",")],
        default=None,
        help="latency without throughput: one fresh pipeline per AMENDS_BATCH_TIMEOUT_MS "
        "value (default: the configured one)",
    )
    p.add_argument("--profile-seconds", type=float, default=20.0, help="0: no py-spy")
    p.add_argument("--drain-timeout", type=float, default=30.0)
    p.add_argument("--start-rate", type=float, default=25.0)
    p.add_argument("--max-rate", type=float, default=4000.0)
    p.add_argument("--bisect-steps", type=int, default=3)
    p.add_argument("--confirm-steps", type=int, default=4)
    p.add_argument("--growth-sizes", default="10000,1000000")
    p.add_argument(
        "--growth-rate",
        type=float,
        default=None,
        help="rate for the growth checks (default: the sustained rate)",
    )
    p.add_argument("--growth-steps", type=int, default=4)
    p.add_argument("--growth-drain-timeout", type=float, default=180.0)
    p.add_argument("--preload-budget", type=float, default=300.0, help="s per size")
    p.add_argument("--kafka-messages", type=int, default=50_000)
    p.add_argument("--mongo-docs", type=int, default=3000)
    p.add_argument("--ops-complaints", type=int, default=300)
    p.add_argument("--ops-rate", type=float, default=10.0)
    p.add_argument(
        "--ops-preload", type=int, default=0, help="closed cases stored before the ops count"
    )
    p.add_argument(
        "--route-before",
        action="store_true",
        help="ops: count with route's mirror/flush as before the bench's changes",
    )
    p.add_argument(
        "--no-readme",
        dest="readme",
        action="store_false",
        help="do not write the table into README.md after a full run",
    )
    p.add_argument(
        "--servers",
        choices=("private", "shared"),
        default="private",
        help="private: own Kafka+MongoDB instances (default); shared: the usual ones",
    )
    p.add_argument("--keep-servers", action="store_true", help="leave private servers up")
    p.add_argument(
        "--no-ops-at-load",
        dest="ops_at_load",
        action="store_false",
        help="throughput: run the confirming pipeline's services without bench.opcount "
        "(no commands and documents written per complaint at the sustained rate)",
    )
    p.add_argument("--fresh", action="store_true", help="do not merge with the last results")
    p.add_argument(
        "--output",
        type=Path,
        default=RESULT_FILE,
        help="results file to merge into and write (default bench/results/bench.json); "
        "the README is only updated from the default one",
    )
    args = p.parse_args(argv)
    args.parts = {x.strip() for x in args.only.split(",") if x.strip()}
    unknown = args.parts - {"baseline", "ops", "throughput", "latency", "growth"}
    if unknown:
        p.error(f"unknown part(s): {', '.join(sorted(unknown))}")
    args.growth_sizes = [int(x) for x in args.growth_sizes.split(",") if x.strip()]
    return args


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    try:
        import uvloop

        uvloop.install()
    except ImportError:
        pass
    return asyncio.run(main_async(args))


if __name__ == "__main__":
    raise SystemExit(main())
