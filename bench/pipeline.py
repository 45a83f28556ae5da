"""The pipeline under test: a database, topic prefix and consumer groups of its own, and
the four services as their own processes.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import subprocess
import sys
import time
import uuid
from collections import Counter
from pathlib import Path
from typing import Any

from aiokafka.admin import AIOKafkaAdminClient
from pymongo import AsyncMongoClient

from bench.figures import WORK, fig
from bench.machine import proc_status
from bench.probe import LagProbe, Window, monitor
from bench.workload import Record, Sender, workload
from cli import SERVICES
from cli.run import ServiceProcesses
from cli.samples import load_stream
from shared import intake_log
from shared.settings import REPO_ROOT, Settings

BASE_PORT = 8231


def bench_people() -> Path:
    """The route seed directory with capacity that never runs out (the bench measures the
    pipeline, not staffing: nobody resolves cases during a run)."""
    data = json.loads((REPO_ROOT / "services/route/seed/people.json").read_text())
    people = data["people"] if isinstance(data, dict) else data
    for person in people:
        person["max_concurrent_cases"] = 1_000_000
        person["presence"] = "available"
        person["shift"] = {
            "timezone": "UTC",
            "days": [0, 1, 2, 3, 4, 5, 6],
            "start": "00:00",
            "end": "24:00",
        }
    WORK.mkdir(parents=True, exist_ok=True)
    path = WORK / "people.json"
    path.write_text(json.dumps({"people": people}))
    return path


class Pipeline:
    """A database, topic prefix and consumer groups of its own, and the four services."""

    def __init__(
        self,
        label: str,
        base: Settings,
        *,
        count_ops: bool = False,
        env: dict[str, str] | None = None,
    ) -> None:
        tag = f"{label}{uuid.uuid4().hex[:6]}"
        self.count_ops = count_ops
        self.tag = tag
        self.settings = Settings(
            kafka_bootstrap_servers=base.kafka_bootstrap_servers,
            mongodb_url=base.mongodb_url,
            topic_prefix=f"bench{tag}.",
            mongodb_database=f"amends_bench_{tag}",
            consumer_group_prefix=f"bench{tag}",
        )
        self.env = {
            **os.environ,
            "AMENDS_MONGODB_DATABASE": self.settings.mongodb_database,
            "AMENDS_TOPIC_PREFIX": self.settings.topic_prefix,
            "AMENDS_CONSUMER_GROUP_PREFIX": self.settings.consumer_group_prefix,
            "AMENDS_KAFKA_BOOTSTRAP_SERVERS": self.settings.kafka_bootstrap_servers,
            "AMENDS_MONGODB_URL": self.settings.mongodb_url.get_secret_value(),
            "AMENDS_ROUTE_SEED_PATH": str(bench_people()),
            "PYTHONPATH": str(REPO_ROOT),
            **(env or {}),  # a setting under test (bench.throughput.part_latency)
        }
        self.procs = ServiceProcesses(self.env, base_port=BASE_PORT)
        self.procs.log_dir = REPO_ROOT / ".local" / "logs" / "bench"
        self.client: AsyncMongoClient[Any] = AsyncMongoClient(
            self.settings.mongodb_url.get_secret_value(), tz_aware=True
        )
        self.db = self.client[self.settings.mongodb_database]
        self.sender = Sender(self.settings)
        self.probe = LagProbe(self.settings)
        self.run_id = f"b{tag}"
        self.next_index = 0
        self.next_cycle = 0

    async def start(self) -> float:
        started = time.monotonic()
        if self.count_ops:
            self._start_counting()
        else:
            self.procs.start()
        await self.procs.wait_ready(timeout=180)
        await self.sender.start()
        await self.probe.start()
        return time.monotonic() - started

    def _start_counting(self) -> None:
        """The services under bench.opcount (a pymongo command listener around each)."""
        self.procs.log_dir.mkdir(parents=True, exist_ok=True)
        for index, name in enumerate(SERVICES):
            (WORK / f"ops-{name}.json").unlink(missing_ok=True)
            out = open(self.procs.log_dir / f"{name}.log", "ab")  # noqa: SIM115
            env = {**self.env, "AMENDS_HTTP_PORT": str(BASE_PORT + index)}
            self.procs.procs[name] = subprocess.Popen(
                [sys.executable, "-m", "bench.opcount", name],
                cwd=REPO_ROOT,
                env=env,
                stdout=out,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )

    async def stop(self) -> dict[str, Any]:
        rss = {name: proc_status(p.pid) for name, p in self.procs.procs.items() if p.poll() is None}
        with contextlib.suppress(Exception):
            await self.sender.stop()
        with contextlib.suppress(Exception):
            await self.probe.stop()
        await asyncio.to_thread(self.procs.stop)
        return {
            name: {
                "peak_rss": fig(round(v.get("VmHWM", 0) / 1024, 1), "MiB"),
                "rss_at_end": fig(round(v.get("VmRSS", 0) / 1024, 1), "MiB"),
            }
            for name, v in rss.items()
        }

    async def cleanup(self) -> None:
        with contextlib.suppress(Exception):
            await self.client.drop_database(self.settings.mongodb_database)
        await self.client.close()
        admin = AIOKafkaAdminClient(bootstrap_servers=self.settings.kafka_bootstrap_servers)
        with contextlib.suppress(Exception):
            await admin.start()
            prefix = self.settings.topic_prefix
            names = [t for t in await admin.list_topics() if t.startswith(prefix)]
            if names:
                await admin.delete_topics(names)
        with contextlib.suppress(Exception):
            await admin.close()

    def records(self, count: int) -> list[Record]:
        recs = workload(count, f"{self.run_id}s{self.next_index}", self.next_cycle)
        self.next_index += 1
        self.next_cycle += count // len(load_stream()) + 2
        return recs

    async def wait_drained(self, timeout: float) -> float | None:
        started = time.monotonic()
        while time.monotonic() - started < timeout:
            lag = await self.probe.lag()
            if sum(lag.values()) == 0:
                return time.monotonic() - started
            await asyncio.sleep(0.5)
        return None

    async def run_window(self, rate: float, duration: float, drain_timeout: float) -> Window:
        records = self.records(max(1, int(rate * duration)))
        window = Window(rate, duration)
        stop = asyncio.Event()
        mon = asyncio.create_task(monitor(self.probe, self.procs, window, stop))
        window.achieved = await self.sender.send(records, rate)
        # Keep sampling while draining, so the judge sees the window's tail.
        window.drain_seconds = await self.wait_drained(drain_timeout)
        stop.set()
        await mon
        window.records = records  # type: ignore[attr-defined]
        return window

    async def accounting(self, records: list[Record]) -> dict[str, Any]:
        """Where every complaint of a window stands, and its stage timestamps (by _id)."""
        ids = [r.event_id for r in records]
        outcomes: Counter[str] = Counter()
        found: set[str] = set()
        case_of: dict[str, str] = {}
        for start in range(0, len(ids), 1000):
            chunk = await intake_log.read(self.db, ids=ids[start : start + 1000])
            for doc in chunk.values():
                outcomes[doc["outcome"]] += 1
                found.add(doc["_id"])
                if doc["outcome"] == "new_case":
                    case_of[doc["_id"]] = doc["case_id"]
        dead = await self.db.dead_letters.count_documents({})
        case_ids = list(case_of.values())
        stages: dict[str, dict[str, Any]] = {}
        for start in range(0, len(case_ids), 1000):
            async for doc in self.db.cases.find(
                {"_id": {"$in": case_ids[start : start + 1000]}}, {"stages": 1}
            ):
                stages[doc["_id"]] = doc.get("stages") or {}
        complete = sum(1 for s in stages.values() if "followup_scheduled_at" in s)
        ms_received: list[float] = []
        ms_sent: list[float] = []
        ms_followup: list[float] = []
        for event_id, case_id in case_of.items():
            s = stages.get(case_id) or {}
            if "assigned_at" in s and "received_at" in s:
                ms_received.append((s["assigned_at"] - s["received_at"]).total_seconds() * 1000)
                ms_sent.append(
                    (s["assigned_at"].timestamp() - self.sender.sent_at[event_id]) * 1000
                )
            if "followup_scheduled_at" in s and "received_at" in s:
                ms_followup.append(
                    (s["followup_scheduled_at"] - s["received_at"]).total_seconds() * 1000
                )
        return {
            "complaints_sent": len(records),
            "outcomes": dict(outcomes),
            "missing": len(records) - sum(outcomes.values()),
            "missing_examples": [
                [r.event_id, dict(r.headers).get("ce_sourceformat", b"").decode()]
                for r in records
                if r.event_id not in found
            ][:5],
            "dead_letters": dead,
            "new_cases": len(case_of),
            "cases_followup_scheduled": complete,
            "ms_received_to_assigned": ms_received,
            "ms_sent_to_assigned": ms_sent,
            "ms_received_to_followup": ms_followup,
        }
