"""The rate with N cases already stored: realistic case documents and the side documents
the services keep for them, preloaded in bulk, then the sustained check.
"""

from __future__ import annotations

import argparse
import random
import time
from collections import defaultdict
from datetime import UTC, datetime, timedelta
from typing import Any

from pymongo import UpdateOne

from bench.figures import fig, log
from bench.machine import load_average
from bench.pipeline import Pipeline
from bench.servers import mongo_rss_mb
from bench.throughput import check_rate, warm_up
from services.followup.schedule import timer_id
from services.ingest.cases import thread_field
from shared.events.envelope import derived_id
from shared.settings import Settings


def case_document(i: int, tag: str, now: datetime, *, status: str = "closed") -> dict[str, Any]:
    """A realistic stored case (the shape ingest+classify+route+followup leave behind)."""
    rnd = random.Random(i)
    customer = derived_id("customer", f"email:bench.{tag}.{i // 3}@example.com")
    contact_id = derived_id("contact", tag, str(i))
    opened = now - timedelta(minutes=5 + i % 100_000)
    channel = rnd.choice(["email", "phone", "chat", "webform", "social", "review"])
    text = (
        "Order 10452 still has not arrived although delivery was promised last week. "
        "I have written twice already and nobody answered. I want my money back. "
    ) * 2
    return {
        "_id": derived_id("case", contact_id),
        "customer_id": customer,
        "opened_at": opened,
        "updated_at": opened,
        "contacts": [
            {
                "contact_id": contact_id,
                "channel": channel,
                "source": "email",
                "kind": "complaint",
                "author": {"name": "Bench Customer", "email": f"bench.{i // 3}@example.com"},
                "subject": "Order 10452 missing",
                "text": text,
                "language": "en",
                "language_confidence": 0.98,
                "public": False,
                "received_at": opened,
                "intake_event_id": f"preload-{tag}-{i}",
                "external_ids": {"email": f"<{contact_id}@mail.example>"},
            }
        ],
        "contact_ids": [contact_id],
        "contact_count": 1,
        "repeat_contacts": 0,
        "channels": [channel],
        "external_ids": [f"email:<{contact_id}@mail.example>"],
        "language": "en",
        "public": False,
        "customer_tier": None,
        "status": status,
        "priority": rnd.choice(["P1", "P2", "P3", "P4"]),
        "category": "delivery",
        "urgency_score": rnd.randint(10, 90),
        "classification": {"category": "delivery", "model_version": "preload"},
        "assignment": {"person_id": "agent-en-1", "team": "support_emea", "assigned_at": opened},
        "stages": {
            "received_at": opened,
            "classified_at": opened,
            "assigned_at": opened,
            "followup_scheduled_at": opened,
            "resolved_at": opened + timedelta(hours=4),
        },
        "followup": {"scheduled": True, "cycle": 0, "channel": channel},
    }


def preload_customers(cases: list[dict[str, Any]]) -> list[UpdateOne]:
    """What ingest keeps about the customers of these cases (``services/ingest/cases.py``):
    on each customer document, the pin of every contact and its thread keys."""
    sets: dict[str, dict[str, Any]] = defaultdict(dict)
    for case in cases:
        (contact,) = case["contacts"]
        fields = sets[case["customer_id"]]
        fields[f"pins.{contact['contact_id']}"] = {
            "case": case["_id"],
            "intake": contact["intake_event_id"],
        }
        for key in case["external_ids"]:
            fields[f"threads.{thread_field(key)}"] = [case["_id"]]
    return [
        UpdateOne({"_id": customer}, {"$set": fields, "$inc": {"ingest_v": 1}}, upsert=True)
        for customer, fields in sets.items()
    ]


async def preload(pipe: Pipeline, n: int, budget_s: float) -> dict[str, Any]:
    """N closed cases with their queue entries, done timers and ingest's and followup's
    keyed lookup documents, by insert_many in batches."""
    db = pipe.db
    tag = pipe.tag
    now = datetime.now(UTC).replace(microsecond=0)
    started = time.monotonic()
    done = 0
    batch = 10_000  # large batches: each insert command is one commit of the store
    while done < n:
        size = min(batch, n - done)
        cases = [case_document(done + i, tag, now) for i in range(size)]
        queue = [
            {
                "_id": c["_id"],
                "customer_id": c["customer_id"],
                "state": "closed",
                "urgency": c["urgency_score"],
                "enqueued_at": c["opened_at"],
                "req": {"category": "delivery", "language": "en", "priority": c["priority"]},
                "handled_by": ["agent-en-1"],
                "classified_events": [f"preload-{i}"],
                "lease_until": datetime(1970, 1, 1, tzinfo=UTC),
                "rev": 2,
            }
            for i, c in enumerate(cases)
        ]
        # Fired timers live in ``timers_done`` (``timers`` holds only live ones).
        timers = [
            {
                "_id": timer_id(c["_id"], "interim", 0, 0),
                "case_id": c["_id"],
                "kind": "interim",
                "due_at": c["opened_at"],
                "state": "done",
                "attempts": 1,
                "payload": {"cycle": 0, "seq": 0},
                "fired_at": c["opened_at"],
                "finished_at": c["opened_at"],
            }
            for c in cases
        ]
        # ingest's customer documents (each contact's pin and thread keys); followup's
        # per-customer list of resolved cases (``resolved_cases``).
        resolved: dict[str, list[str]] = defaultdict(list)
        for c in cases:
            resolved[c["customer_id"]].append(c["_id"])
        # route's per-customer continuity document (``route_customers``, read by _id):
        # each closed case with who handled it; closed cases have no queue_waiting,
        # route_sla or route_outbox entries.
        handled: dict[str, dict[str, Any]] = defaultdict(dict)
        for q in queue:
            handled[q["customer_id"]][f"cases.{q['_id']}"] = {
                "case_id": q["_id"],
                "enqueued_at": q["enqueued_at"],
                "handled_by": q["handled_by"],
            }
        await db.cases.insert_many(cases, ordered=False)
        await db.queue.insert_many(queue, ordered=False)
        await db.timers_done.insert_many(timers, ordered=False)
        await db.customers.bulk_write(preload_customers(cases), ordered=False)
        await db.resolved_cases.bulk_write(
            [
                UpdateOne({"_id": cid}, {"$addToSet": {"case_ids": {"$each": ids}}}, upsert=True)
                for cid, ids in resolved.items()
            ],
            ordered=False,
        )
        await db.route_customers.bulk_write(
            [
                UpdateOne({"_id": cid}, {"$set": fields}, upsert=True)
                for cid, fields in handled.items()
            ],
            ordered=False,
        )
        done += size
        if done % 50_000 == 0:
            log(f"  preloaded {done}/{n} in {time.monotonic() - started:.0f} s")
        if time.monotonic() - started > budget_s:
            log(f"  preload budget of {budget_s:.0f} s spent at {done} cases: stopping there")
            break
    elapsed = time.monotonic() - started
    return {
        "requested": fig(n, "cases"),
        "stored": fig(done, "cases"),
        "preload_time": fig(elapsed, "s"),
        "preload_rate": fig(
            3 * done / max(elapsed, 1e-9),
            "documents/s",
            note="cases+queue+timers (+customers and resolved_cases per customer)",
        ),
    }


async def part_growth(
    settings: Settings, args: argparse.Namespace, results: dict[str, Any]
) -> None:
    base = args.growth_rate or results.get("throughput", {}).get("sustained_rate", {}).get("value")
    if not base:
        log("growth: no sustained rate known; run throughput first or pass --growth-rate")
        return
    rows = []
    for n in args.growth_sizes:
        pipe = Pipeline(f"g{n}", settings)
        row: dict[str, Any] = {"cases_stored": fig(n, "cases")}
        try:
            log(f"growth: preloading {n} cases (+queue entries, timers) ...")
            row["preload"] = await preload(pipe, n, args.preload_budget)
            row["mongodb_rss_after_preload"] = fig(mongo_rss_mb(), "MiB")
            log(f"  {row['preload']['preload_time']['value']} s; starting services")
            await pipe.start()
            await warm_up(pipe)
            rate = float(base)
            tried = []
            sustained = 0.0
            # Short probes stepping down (draining fully in between, so no step inherits
            # the last one's backlog), then the full window at the first rate that held.
            for _ in range(args.growth_steps):
                verdict = await check_rate(pipe, rate, args.probe_duration, args.drain_timeout)
                verdict["kind"] = "probe"
                tried.append({k: v for k, v in verdict.items() if k != "samples"})
                if verdict["sustained"]:
                    break
                if await pipe.wait_drained(args.growth_drain_timeout) is None:
                    tried[-1]["note"] = "backlog did not drain; stopped stepping down"
                    rate = 0.0
                    break
                rate = round(rate * 0.6, 1)
            else:
                rate = 0.0
            if rate:
                verdict = await check_rate(pipe, rate, args.duration, args.drain_timeout)
                verdict["kind"] = "confirm"
                tried.append({k: v for k, v in verdict.items() if k != "samples"})
                sustained = rate if verdict["sustained"] else 0.0
            note = f"probes from {base}/s down in 40 % steps, then {args.duration:.0f} s"
            row["sustained_rate"] = fig(sustained, "complaints/s", note=note)
            row["steps"] = tried
        except Exception as exc:
            row["error"] = f"{type(exc).__name__}: {exc}"
            log(f"  growth {n} failed: {row['error']}")
        finally:
            row["peak_rss"] = await pipe.stop()
            await pipe.cleanup()
        row["load_average"] = load_average()
        rows.append(row)
    results["growth"] = {
        "definition": "fresh database preloaded with N closed cases (realistic shape and "
        "customer ids) plus their route queue entries and done follow-up timers; then the "
        f"sustained check from the throughput part's rate ({base}/s): 20 s probes "
        "stepping down 40 % (draining in between) until one holds, then the full window",
        "sizes": rows,
    }
