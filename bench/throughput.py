"""The sustained rate: probes that ladder up and bisect, the full-length confirmation on a
fresh pipeline, then the latency window and the profile on that same pipeline.
"""

from __future__ import annotations

import argparse
import asyncio
from typing import Any

from bench import dbcounts
from bench.figures import fig, log, percentiles
from bench.machine import load_average
from bench.pipeline import Pipeline
from bench.probe import judge
from bench.profile import profile_services
from cli import SERVICES
from shared.settings import Settings


async def check_rate(
    pipe: Pipeline, rate: float, duration: float, drain_timeout: float
) -> dict[str, Any]:
    log(f"  offering {rate:.0f}/s for {duration:.0f} s ...")
    before = dbcounts.read_all() if pipe.count_ops else None
    window = await pipe.run_window(rate, duration, drain_timeout)
    verdict = judge(window)
    acct = await pipe.accounting(window.records)  # type: ignore[attr-defined]
    if before is not None:
        # The window's commands and writes, at this rate (a poll holds more records the
        # higher the rate, which is what batching is judged by).
        await asyncio.sleep(dbcounts.SETTLE_SECONDS)
        sent = acct["complaints_sent"]
        verdict["db_ops"] = dbcounts.summarise(before, dbcounts.read_all(), sent, acct["new_cases"])
    complete = acct["new_cases"] > 0 and acct["cases_followup_scheduled"] == acct["new_cases"]
    verdict["sustained"] = bool(verdict["sustained"] and complete and acct["missing"] == 0)
    verdict["accounting"] = {k: v for k, v in acct.items() if not k.startswith("ms_")}
    verdict["cases_per_s"] = fig(acct["new_cases"] / duration, "new cases/s")
    verdict["latency_received_to_assigned"] = percentiles(acct["ms_received_to_assigned"])
    verdict["samples"] = window.samples
    log(
        f"  -> {'SUSTAINED' if verdict['sustained'] else 'not sustained'}: achieved "
        f"{window.achieved:.0f}/s, lag slope {verdict['lag_growth']['value']}/s, final lag "
        f"{verdict['lag_final']['value']}, drain {window.drain_seconds}, peak lag "
        + ", ".join(
            f"{n} {max((x['lag'].get(n, 0) for x in window.samples), default=0)}" for n in SERVICES
        )
        + ", cpu "
        + ", ".join(f"{k} {v['value']:.0f}%" for k, v in verdict["cpu_mean"].items())
    )
    for line in dbcounts.log_line(verdict["db_ops"]) if "db_ops" in verdict else ():
        log(f"     {line}")
    return verdict


async def warm_up(pipe: Pipeline) -> None:
    # First records pay for imports, connections, group joins: keep them out of windows.
    await pipe.run_window(20, 5, 60)


async def find_sustained(
    pipe: Pipeline, args: argparse.Namespace
) -> tuple[float, list[dict[str, Any]]]:
    """Ladder up (x2) with short probes, bisect, then confirm for the full duration."""
    steps: list[dict[str, Any]] = []
    probe_s = args.probe_duration
    drain = args.drain_timeout
    rate = args.start_rate
    good, bad = 0.0, None
    while rate <= args.max_rate:
        verdict = await check_rate(pipe, rate, probe_s, drain)
        verdict["kind"] = "probe"
        steps.append(verdict)
        if verdict["sustained"]:
            good, rate = rate, rate * 2
        else:
            bad = rate
            break
    if bad is not None:
        for _ in range(args.bisect_steps):
            mid = (good + bad) / 2
            if good and (bad - good) / good < 0.08:
                break
            verdict = await check_rate(pipe, mid, probe_s, drain)
            verdict["kind"] = "probe"
            steps.append(verdict)
            if verdict["sustained"]:
                good = mid
            else:
                bad = mid
    return good or args.start_rate / 2, steps


async def confirm_rate(
    pipe: Pipeline, candidate: float, args: argparse.Namespace, steps: list[dict[str, Any]]
) -> float:
    """The full window on a fresh pipeline; step down 10 % at a time until it holds."""
    for _ in range(args.confirm_steps):
        verdict = await check_rate(pipe, candidate, args.duration, args.drain_timeout)
        verdict["kind"] = "confirm"
        steps.append(verdict)
        if verdict["sustained"]:
            return candidate
        candidate = round(candidate * 0.9, 1)
    return 0.0


LATENCY_DEFINITION = (
    "per new case: cases.stages.assigned_at (route's clock when it stores the assignment) "
    "minus cases.stages.received_at (ingest's clock when it handles the intake record); same "
    "host clock, millisecond precision. Also from the load generator's send time (ce_time) "
    "to assigned_at."
)


async def latency_window(pipe: Pipeline, rate: float, args: argparse.Namespace) -> dict[str, Any]:
    """Per-case latency percentiles of one window at ``rate`` on a warmed-up pipeline."""
    log(f"latency: at {rate}/s for {args.latency_duration:.0f} s")
    window = await pipe.run_window(rate, args.latency_duration, args.drain_timeout)
    acct = await pipe.accounting(window.records)  # type: ignore[attr-defined]
    pcts = percentiles(acct["ms_received_to_assigned"])
    log("  p50/p95/p99 ms:", *(pcts.get(p, {}).get("value") for p in ("p50", "p95", "p99")))
    return {
        "definition": LATENCY_DEFINITION,
        "rate": fig(rate, "complaints/s"),
        "window": fig(args.latency_duration, "s"),
        "ingest_received_to_assigned": pcts,
        "sent_to_assigned": percentiles(acct["ms_sent_to_assigned"]),
        "ingest_received_to_followup_scheduled": percentiles(acct["ms_received_to_followup"]),
        "judge": {k: v for k, v in judge(window).items() if k != "samples"},
        "load_average": load_average(),
    }


async def part_latency(
    settings: Settings, args: argparse.Namespace, results: dict[str, Any]
) -> None:
    """The latency window alone (no throughput search), on a fresh pipeline per value of
    ``--batch-timeouts-ms`` (how long an idle consumer's poll waits, then sleeps, in
    FastStream's batch loop): each value's percentiles and their ratio to the first's,
    measured in the same run."""
    runs: list[dict[str, Any]] = []
    for timeout_ms in args.batch_timeouts_ms or [settings.batch_timeout_ms]:
        env = {"AMENDS_BATCH_TIMEOUT_MS": str(timeout_ms)}
        pipe = Pipeline(f"lt{timeout_ms}", settings, env=env)
        try:
            log(f"latency: batch timeout {timeout_ms} ms, fresh pipeline ...")
            await pipe.start()
            await warm_up(pipe)
            figures = await latency_window(pipe, args.latency_rate, args)
            runs.append({"batch_timeout_ms": timeout_ms, **figures})
        finally:
            await pipe.stop()
            await pipe.cleanup()
    first = runs[0]["ingest_received_to_assigned"]
    for run in runs:
        mine = run["ingest_received_to_assigned"]
        run["ratio_to_first"] = {
            p: round(mine[p]["value"] / first[p]["value"], 3)
            for p in ("p50", "p95", "p99")
            if p in mine and first.get(p, {}).get("value")
        }
    results["latency_by_batch_timeout"] = {
        "definition": LATENCY_DEFINITION,
        "baseline": "the first run (ratios are to it); values repeat to show the noise",
        "runs": runs,
    }


async def part_throughput(
    settings: Settings, args: argparse.Namespace, results: dict[str, Any]
) -> None:
    search = Pipeline("ts", settings)
    try:
        log("throughput: starting the four services for the search ...")
        await search.start()
        await warm_up(search)
        candidate, steps = await find_sustained(search, args)
    finally:
        search_rss = await search.stop()
        await search.cleanup()
    # The full-length check on a fresh database: its size is known (empty + warm-up).
    # Counted (bench.opcount) unless --no-ops-at-load: commands and writes at full load.
    pipe = Pipeline("tp", settings, count_ops=args.ops_at_load)
    try:
        log(f"throughput: fresh pipeline; confirming {candidate}/s for {args.duration:.0f} s")
        ready = await pipe.start()
        await warm_up(pipe)
        rate = await confirm_rate(pipe, candidate, args, steps)
        log(f"throughput: sustained {rate}/s")
        confirms = [s for s in steps if s["kind"] == "confirm" and s["sustained"]]
        confirm = confirms[-1] if confirms else None
        results["throughput"] = {
            "definition": "highest offered rate of well-formed intake complaints (all "
            "channels; merges, exact duplicates and praise included as in the sample stream) "
            f"held for {args.duration:.0f} s with the summed consumer lag of the four "
            "services' groups not growing (slope <= 2 % of the rate) and every new case of "
            "the window reaching stages.followup_scheduled_at, none missing",
            "sustained_rate": fig(rate, "complaints/s"),
            "sustained_case_rate": confirm["cases_per_s"] if confirm else fig(0.0, "new cases/s"),
            "steps": [{k: v for k, v in s.items() if k != "samples"} for s in steps],
            "lag_samples_of_confirm_window": confirm["samples"] if confirm else [],
            "load_average": load_average(),
            "services_ready_in": fig(ready, "s"),
            # The confirm window's commands and writes (absent with --no-ops-at-load).
            "db_ops_at_sustained_rate": {**confirm["db_ops"], "note": dbcounts.NOTE}
            if confirm and "db_ops" in confirm
            else None,
        }
        if rate and "latency" in args.parts:
            # The figure (20/s), or half the sustained rate on a slower machine.
            lat_rate = min(args.latency_rate, round(rate / 2, 1))
            results["latency"] = await latency_window(pipe, lat_rate, args)
        if rate and args.profile_seconds > 0:
            log(f"profile: py-spy on every service at {rate}/s for {args.profile_seconds:.0f} s")
            results["profile"] = await profile_services(pipe, rate, args.profile_seconds)
    finally:
        rss = await pipe.stop()
        await pipe.cleanup()
    results.setdefault("throughput", {})["peak_rss"] = rss
    results["throughput"]["peak_rss_search_run"] = search_rss
    log("  peak RSS: " + ", ".join(f"{k} {v['peak_rss']['value']} MiB" for k, v in rss.items()))
