"""`amends stats`: how the pipeline is doing, from MongoDB, computed by the server.

Every figure is an aggregation (``$match`` on indexed fields, ``$group`` with ``$sum: 1``)
or a count, never a scan in Python, and only uses what both MongoDB and FerretDB 1.24
run (FerretDB 1.24 has no ``$facet``, ``$avg``, ``$push``, ``$cond``, ``$subtract`` or
``$median``; ``$sum`` of a nested field returns 0 there). So:

* medians are read with sort + skip on an indexed duration field (followup's
  ``measures.ttfr_seconds`` / ``measures.ttr_seconds``): one document fetched per median;
* the CSAT mean is computed from the (at most five) groups of ``measures.csat`` (followup
  keeps every answer on the 1-5 scale);
* SLA met/breached come from followup's ``measures.first_response_sla`` /
  ``measures.resolution_sla`` ("met" / "breached"), plus the open cases whose clock is
  overdue right now (``sla.*_due`` < now and no first response / resolution yet).

``--since T`` limits case figures to cases opened at or after T (``opened_at`` index) and
dead letters to those that failed at or after T (``failed_at`` index).
"""

from __future__ import annotations

from argparse import Namespace
from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any

from pymongo import IndexModel
from rich.console import Console
from rich.table import Table

from shared.settings import Settings
from shared.store import Document, IndexSpec, Store

from .format import (
    duration,
    iso,
    make_console,
    open_store,
    parse_time,
    require_data,
    to_json,
)

OPEN_STATUSES = ("open", "queued", "assigned", "reopened")
NONE_LABELS = {"team": "unassigned", "priority": "unscored", "channel": "unknown"}

# Duration fields are sorted for medians; declared here, created by `amends stats`.
STATS_INDEXES = (
    IndexSpec(
        "cases",
        (
            IndexModel([("measures.ttfr_seconds", 1)], name="measures_ttfr_seconds"),
            IndexModel([("measures.ttr_seconds", 1)], name="measures_ttr_seconds"),
            IndexModel([("status", 1), ("sla.first_response_due", 1)], name="status_fr_due"),
            IndexModel([("status", 1), ("sla.resolution_due", 1)], name="status_res_due"),
        ),
    ),
)


def since_filter(field: str, since: datetime | None) -> Document:
    return {field: {"$gte": since}} if since else {}


def _label(value: Any, dimension: str) -> str:
    if value is None:
        return NONE_LABELS.get(dimension, "none")
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)


async def count_by(
    store: Store,
    match: Mapping[str, Any],
    field: str,
    *,
    unwind: bool = False,
    dimension: str = "",
) -> dict[str, int]:
    """``{value: count}`` of ``field`` over the matching cases, largest first."""
    pipeline: list[Document] = [{"$match": dict(match)}]
    if unwind:
        pipeline.append({"$unwind": f"${field}"})
    pipeline.append({"$group": {"_id": f"${field}", "n": {"$sum": 1}}})
    counts: dict[str, int] = {}
    async for row in await store["cases"].aggregate(pipeline):
        key = _label(row["_id"], dimension)
        counts[key] = counts.get(key, 0) + int(row["n"])
    return dict(sorted(counts.items(), key=lambda item: (-item[1], item[0])))


async def median(store: Store, field: str, since: datetime | None) -> tuple[float | None, int]:
    """Median of a numeric, indexed field: count, then sort + skip to the middle."""
    match: Document = {field: {"$gte": 0}, **since_filter("opened_at", since)}
    count = await store["cases"].count_documents(match)
    if count == 0:
        return None, 0
    middle = (count - 1) // 2
    take = 1 if count % 2 else 2
    cursor = (
        store["cases"].find(match, {field: 1, "_id": 0}).sort(field, 1).skip(middle).limit(take)
    )
    found = [_number(row, field) async for row in cursor]
    values = [v for v in found if v is not None]
    return (sum(values) / len(values) if values else None), count


def _number(row: Mapping[str, Any], path: str) -> float | None:
    value: Any = row
    for part in path.split("."):
        value = value.get(part) if isinstance(value, Mapping) else None
    return float(value) if isinstance(value, int | float) else None


async def sla_clock(
    store: Store, since: datetime | None, now: datetime, clock: str, done_stage: str
) -> dict[str, int]:
    """met / breached (recorded by followup) and open cases overdue right now."""
    window = since_filter("opened_at", since)
    recorded = await count_by(store, window, f"measures.{clock}_sla")
    overdue = await store["cases"].count_documents(
        {
            "status": {"$in": list(OPEN_STATUSES)},
            f"sla.{clock}_due": {"$lt": now},
            f"stages.{done_stage}": {"$exists": False},
            **window,
        }
    )
    met, late = recorded.get("met", 0), recorded.get("breached", 0)
    return {
        "met": met,
        "breached": late + overdue,
        "breached_done_late": late,
        "overdue_open": overdue,
    }


async def csat(store: Store, since: datetime | None) -> dict[str, Any]:
    """Answers, mean and distribution of followup's 1-5 ``measures.csat``."""
    pipeline: list[Document] = [
        {"$match": {"measures.csat": {"$gte": 0}, **since_filter("opened_at", since)}},
        {"$group": {"_id": "$measures.csat", "n": {"$sum": 1}}},
    ]
    groups = [row async for row in await store["cases"].aggregate(pipeline)]
    return summarise_satisfaction([("csat", row["_id"], 5, int(row["n"])) for row in groups])


def summarise_satisfaction(
    groups: list[tuple[str | None, Any, Any, int]],
) -> dict[str, Any]:
    """From (kind, score, scale_max, count) groups: CSAT mean/distribution and NPS."""
    distribution: dict[str, int] = {}
    total = weighted = 0.0
    scale_max: int | None = None
    promoters = detractors = nps_total = 0
    for kind, score, scale, n in groups:
        if not isinstance(score, int | float):
            continue
        if kind == "nps":
            nps_total += n
            promoters += n if score >= 9 else 0
            detractors += n if score <= 6 else 0
            continue
        key = f"{score:g}" if isinstance(score, float) else str(score)
        distribution[key] = distribution.get(key, 0) + n
        total += n
        weighted += score * n
        if isinstance(scale, int | float):
            scale_max = max(scale_max or 0, int(scale))
    result: dict[str, Any] = {
        "responses": int(total),
        "mean": round(weighted / total, 3) if total else None,
        "scale_max": scale_max,
        "distribution": dict(sorted(distribution.items(), key=lambda kv: float(kv[0]))),
    }
    if nps_total:
        result["nps"] = {
            "responses": nps_total,
            "score": round(100 * (promoters - detractors) / nps_total, 1),
        }
    return result


async def dead_letters(store: Store, since: datetime | None) -> dict[str, Any]:
    pipeline: list[Document] = [
        {"$match": since_filter("failed_at", since)},
        {"$group": {"_id": "$reason", "n": {"$sum": 1}}},
    ]
    by_reason = {
        _label(row["_id"], "reason"): int(row["n"])
        async for row in await store["dead_letters"].aggregate(pipeline)
    }
    ordered = dict(sorted(by_reason.items(), key=lambda item: (-item[1], item[0])))
    return {"total": sum(ordered.values()), "by_reason": ordered}


async def collect(store: Store, since: datetime | None, now: datetime) -> dict[str, Any]:
    window = since_filter("opened_at", since)
    open_match = {"status": {"$in": list(OPEN_STATUSES)}, **window}
    by_status = await count_by(store, window, "status")
    open_by_status = {s: n for s, n in by_status.items() if s in OPEN_STATUSES}
    first_response, first_response_n = await median(store, "measures.ttfr_seconds", since)
    resolution, resolution_n = await median(store, "measures.ttr_seconds", since)
    return {
        "generated_at": now,
        "since": since,
        "cases": {"total": sum(by_status.values()), "by_status": by_status},
        "open": {
            "total": sum(open_by_status.values()),
            "by_status": open_by_status,
            "by_priority": await count_by(store, open_match, "priority", dimension="priority"),
            "by_team": await count_by(store, open_match, "assignment.team", dimension="team"),
            "by_channel": await count_by(
                store, open_match, "channels", unwind=True, dimension="channel"
            ),
        },
        "sla": {
            "first_response": await sla_clock(
                store, since, now, "first_response", "first_response_at"
            ),
            "resolution": await sla_clock(store, since, now, "resolution", "resolved_at"),
        },
        "median_seconds": {
            "first_response": first_response,
            "first_response_cases": first_response_n,
            "resolution": resolution,
            "resolution_cases": resolution_n,
        },
        "csat": await csat(store, since),
        "dead_letters": await dead_letters(store, since),
    }


# -- rendering -------------------------------------------------------------------------


def _counts_table(
    title: str, sections: Mapping[str, Mapping[str, int]], unit: str = "cases"
) -> Table:
    table = Table(title=title, title_justify="left", min_width=44)
    table.add_column("")
    table.add_column(unit, justify="right")
    for heading, counts in sections.items():
        table.add_row(f"[bold]{heading}[/bold]", "")
        for name, n in counts.items():
            table.add_row(f"  {name}", str(n))
        if not counts:
            table.add_row("  —", "0")
    return table


def render(result: Mapping[str, Any], console: Console) -> None:
    since = result["since"]
    window = f"cases opened since {iso(since)}" if since else "all time"
    console.print(f"[bold]amends stats[/bold] at {iso(result['generated_at'])}, {window}")
    console.print(
        f"cases: {result['cases']['total']}  open (unresolved): {result['open']['total']}"
    )
    opened = result["open"]
    console.print(
        _counts_table(
            "Cases",
            {
                "all cases by status": result["cases"]["by_status"],
                "open by priority": opened["by_priority"],
                "open by team": opened["by_team"],
                "open by channel (once per channel)": opened["by_channel"],
            },
        )
    )
    sla = Table(title="SLA", title_justify="left")
    for column in ("clock", "met", "breached", "done late", "open, overdue now"):
        sla.add_column(column, justify="left" if column == "clock" else "right")
    for clock in ("first_response", "resolution"):
        row = result["sla"][clock]
        sla.add_row(
            clock.replace("_", " "),
            str(row["met"]),
            str(row["breached"]),
            str(row["breached_done_late"]),
            str(row["overdue_open"]),
        )
    console.print(sla)
    medians = result["median_seconds"]
    console.print(
        f"median time to first response: {duration(medians['first_response'])} "
        f"({medians['first_response_cases']} cases)\n"
        f"median time to resolution:     {duration(medians['resolution'])} "
        f"({medians['resolution_cases']} cases)"
    )
    render_csat(result["csat"], console)
    letters = result["dead_letters"]
    console.print(
        _counts_table(
            f"Dead letters: {letters['total']}", {"by reason": letters["by_reason"]}, "letters"
        )
    )


def render_csat(summary: Mapping[str, Any], console: Console) -> None:
    if not summary["responses"]:
        console.print("CSAT: no answers yet")
    else:
        scale = f"/{summary['scale_max']}" if summary["scale_max"] else ""
        console.print(
            f"CSAT: mean {summary['mean']:.2f}{scale} over {summary['responses']} answers"
        )
        top = max(summary["distribution"].values())
        for score, n in summary["distribution"].items():
            bar = "█" * max(1, round(30 * n / top))
            console.print(f"  {score:>3} {bar} {n}")
    if "nps" in summary:
        console.print(
            f"NPS: {summary['nps']['score']:+.1f} over {summary['nps']['responses']} answers"
        )


async def show_stats(
    settings: Settings,
    since: datetime | None,
    *,
    as_json: bool = False,
    console: Console | None = None,
    now: datetime | None = None,
) -> int:
    console = console or make_console()
    store = await open_store(settings)
    try:
        await require_data(store, settings)  # before creating indexes in a wrong database
        await ensure_stats_indexes(store)
        result = await collect(store, since, now or datetime.now(UTC))
    finally:
        await store.close()
    if as_json:
        console.out(to_json(result), highlight=False)
    else:
        render(result, console)
    return 0


async def ensure_stats_indexes(store: Store) -> None:
    """Create the missing ones only (FerretDB 1.24 panics re-creating some indexes)."""
    for spec in STATS_INDEXES:
        collection = store[spec.collection]
        existing = {index["name"] async for index in await collection.list_indexes()}
        missing = [model for model in spec.indexes if model.document["name"] not in existing]
        if missing:
            await collection.create_indexes(missing)


async def run(settings: Settings, args: Namespace) -> int:
    """`amends stats` from its parsed arguments."""
    since = parse_time(args.since) if args.since else None
    return await show_stats(settings, since, as_json=args.json)
