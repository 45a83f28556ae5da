"""`amends stats` on a million cases: seed N realistic cases into a private MongoDB-protocol
server, then time the real command (a subprocess, as an operator runs it).

    .venv/bin/python -m bench.stats [--cases 1000000] [--runs 3] [--keep]

The server is this benchmark's own (``deploy/local/mongo.sh`` with ``AMENDS_HOME=
.local/stats-server``, port 28117, a larger heap), never the shared one nor `make bench`'s;
its database is dropped at the end unless ``--keep`` (then a second run reuses the seeded
cases).
Results: ``bench/results/stats.json``.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import random
import statistics
import subprocess
import sys
import time
from datetime import UTC, datetime, timedelta
from typing import Any

from pydantic import SecretStr
from pymongo import AsyncMongoClient

from bench.figures import RESULTS, fig, log
from bench.growth import case_document
from bench.machine import load_average, machine_facts, proc_status
from bench.servers import run_local_server
from shared.settings import REPO_ROOT, Settings

RESULT_FILE = RESULTS / "stats.json"
DATABASE = "amends_bench_stats"
SERVER_HOME = REPO_ROOT / ".local" / "stats-server"
MONGO_PORT = 28117
STATUSES = (
    # (status, share): most cases of a year-old installation are closed.
    ("closed", 0.86),
    ("resolved", 0.05),
    ("assigned", 0.04),
    ("queued", 0.02),
    ("open", 0.02),
    ("reopened", 0.01),
)
TEAMS = ("support_emea", "support_apac", "billing", "logistics", "escalations", None)
CHANNELS = ("email", "phone", "chat", "webform", "social", "review", "survey", "crm")


def stats_case(i: int, now: datetime) -> dict[str, Any]:
    """A case as the four services leave it, with the fields `amends stats` reads varied."""
    rnd = random.Random(i)
    doc = case_document(i, "stats", now)
    opened = now - timedelta(seconds=rnd.randint(60, 365 * 86_400))
    pick = rnd.random()
    status = "closed"
    for name, share in STATUSES:
        if pick < share:
            status = name
            break
        pick -= share
    channels = rnd.sample(CHANNELS, rnd.choice((1, 1, 1, 2, 3)))
    first_response = rnd.lognormvariate(8, 1.2)  # seconds, median ~50 min
    resolution = first_response + rnd.lognormvariate(11, 1.0)
    done = status in ("closed", "resolved")
    measures: dict[str, Any] = {}
    if done or rnd.random() < 0.5:
        measures["ttfr_seconds"] = round(first_response, 1)
        measures["first_response_sla"] = "met" if first_response < 4 * 3600 else "breached"
    if done:
        measures["ttr_seconds"] = round(resolution, 1)
        measures["resolution_sla"] = "met" if resolution < 3 * 86_400 else "breached"
        if rnd.random() < 0.3:
            measures["csat"] = rnd.choice((1, 2, 3, 4, 4, 5, 5, 5))
    doc.update(
        status=status,
        opened_at=opened,
        updated_at=opened,
        channels=channels,
        priority=rnd.choice(("P1", "P2", "P2", "P3", "P3", "P3", "P4")),
        assignment={"person_id": f"agent-{i % 40}", "team": rnd.choice(TEAMS)},
        sla={
            "first_response_due": opened + timedelta(hours=4),
            "resolution_due": opened + timedelta(days=3),
        },
        measures=measures,
    )
    if not done:
        doc["stages"] = {k: v for k, v in doc["stages"].items() if k != "resolved_at"}
    return doc


async def seed(settings: Settings, n: int, batch: int) -> dict[str, Any]:
    client: AsyncMongoClient[Any] = AsyncMongoClient(
        settings.mongodb_url.get_secret_value(), tz_aware=True
    )
    db = client[DATABASE]
    try:
        have = await db.cases.estimated_document_count()
        if have >= n:
            log(f"seed: {have} cases already stored (--keep run): reusing them")
            return {"stored": fig(have, "cases"), "seed_time": fig(0, "s", note="reused")}
        await db.cases.drop()
        now = datetime.now(UTC).replace(microsecond=0)
        started = time.monotonic()
        for start in range(0, n, batch):
            docs = [stats_case(i, now) for i in range(start, min(start + batch, n))]
            await db.cases.insert_many(docs, ordered=False)
            if (start + batch) % 100_000 == 0:
                log(f"  seeded {start + batch}/{n} in {time.monotonic() - started:.0f} s")
        elapsed = time.monotonic() - started
        return {
            "stored": fig(n, "cases"),
            "seed_time": fig(elapsed, "s"),
            "seed_rate": fig(n / elapsed, "cases/s"),
        }
    finally:
        await client.close()


def time_command(settings: Settings, args: list[str], runs: int) -> dict[str, Any]:
    """Wall time of ``amends stats ARGS --json`` as its own process, ``runs`` times."""
    env = {
        **os.environ,
        "MONGODB_URL": settings.mongodb_url.get_secret_value(),
        "AMENDS_MONGODB_DATABASE": DATABASE,
    }
    command = [str(REPO_ROOT / ".venv/bin/amends"), "stats", *args, "--json"]
    times: list[float] = []
    output: dict[str, Any] = {}
    for _ in range(runs):
        started = time.monotonic()
        result = subprocess.run(command, env=env, capture_output=True, text=True, check=False)
        times.append(time.monotonic() - started)
        if result.returncode != 0:
            raise RuntimeError(f"amends stats failed: {result.stderr[-800:]}")
        output = json.loads(result.stdout)
    return {
        "command": "amends " + " ".join(["stats", *args, "--json"]),
        "wall_time_median": fig(statistics.median(times), "s"),
        "wall_time_runs": fig([round(t, 2) for t in times], "s"),
        "cases_total": fig(output["cases"]["total"], "cases"),
        "open_total": fig(output["open"]["total"], "cases"),
    }


def server_settings() -> Settings:
    return Settings(
        mongodb_url=SecretStr(
            f"mongodb://127.0.0.1:{MONGO_PORT}/?directConnection=true&retryWrites=false"
        )
    )


def mongo_server(action: str, heap: str, cache_mb: int) -> None:
    env = {"MONGO_PORT": str(MONGO_PORT), "MONGO_JAVA_HEAP": heap, "MONGO_CACHE_MB": str(cache_mb)}
    run_local_server("mongo.sh", action, SERVER_HOME, env)


def mongo_rss_mib() -> float | None:
    pid_file = SERVER_HOME / "run" / "mongo.pid"
    try:
        return round(proc_status(int(pid_file.read_text().strip())).get("VmHWM", 0) / 1024, 1)
    except (OSError, ValueError):
        return None


async def main_async(args: argparse.Namespace) -> int:
    settings = server_settings()
    mongo_server("up", args.heap, args.cache_mb)
    try:
        log(f"seed: {args.cases} cases into {DATABASE} on port {MONGO_PORT} ...")
        seeded = await seed(settings, args.cases, args.batch)
        log(f"  {seeded}")
        since = (datetime.now(UTC) - timedelta(days=7)).strftime("%Y-%m-%dT%H:%M:%SZ")
        runs = {}
        for label, extra in (("all_time", []), ("since_7_days", ["--since", since])):
            log(f"amends stats {' '.join(extra)} x{args.runs} ...")
            runs[label] = time_command(settings, extra, args.runs)
            log(f"  {runs[label]['wall_time_median']}")
        results = {
            "measured_at": datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ"),
            "machine": await machine_facts(settings),
            "load_average": load_average(),
            "seed": seeded,
            "runs": runs,
            "mongo_peak_rss": fig(mongo_rss_mib(), "MiB"),
            "server": {"heap": args.heap, "cache_mb": fig(args.cache_mb, "MiB")},
        }
        if not args.keep:
            url = settings.mongodb_url.get_secret_value()
            client: AsyncMongoClient[Any] = AsyncMongoClient(url)
            await client.drop_database(DATABASE)
            await client.close()
    finally:
        if not args.keep:
            mongo_server("down", args.heap, args.cache_mb)
    RESULTS.mkdir(parents=True, exist_ok=True)
    RESULT_FILE.write_text(json.dumps(results, indent=1, default=str) + "\n")
    log(f"wrote {RESULT_FILE.relative_to(REPO_ROOT)}")
    return 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.stats", description=__doc__)
    parser.add_argument("--cases", type=int, default=1_000_000, help="cases to seed")
    parser.add_argument("--batch", type=int, default=10_000, help="insert_many batch size")
    parser.add_argument("--runs", type=int, default=3, help="timed runs of each command")
    parser.add_argument("--heap", default="8g", help="Java heap of the private server")
    parser.add_argument(
        "--cache-mb", type=int, default=4096, help="page cache of the server (in the heap)"
    )
    parser.add_argument("--keep", action="store_true", help="keep the server and its data")
    return asyncio.run(main_async(parser.parse_args(argv)))


if __name__ == "__main__":
    sys.exit(main())
