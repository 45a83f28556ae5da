"""`make bench`: the pipeline's benchmarks against the real local Kafka and MongoDB server.

Parts (``--only``, comma separated; default: all):

* ``baseline``: raw aiokafka produce-then-consume of the intake event bytes (one hop) and
  raw upserts of a case document by ``_id`` with the services' own driver settings;
* ``throughput``: the four services as their own processes (as ``amends run`` starts them)
  fed at a stepped rate; the highest rate sustained for ``--duration`` seconds (consumer
  lag of every service's group does not grow, every complaint reaches its final stage);
  peak RSS of every service; a py-spy profile of every service at that rate;
* ``latency``: p50/p95/p99 from ingest receiving a complaint (``cases.stages.received_at``)
  to its assignment being stored (``cases.stages.assigned_at``), at 50 % of the sustained rate;
* ``growth``: the same check with N cases (and their queue entries and timers) already
  stored, for each N of ``--growth-sizes``.

Every run has a topic prefix, consumer groups and a database of its own, dropped at the
end. Results: ``bench/results/bench.json`` (each figure with its unit), merged with the
parts not run this time; ``python -m bench.report`` prints the markdown table.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import importlib.metadata
import json
import os
import platform
import random
import re
import shutil
import statistics
import subprocess
import sys
import time
import uuid
from collections import Counter, defaultdict
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from functools import lru_cache
from pathlib import Path
from typing import Any

import orjson
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, TopicPartition
from aiokafka.admin import AIOKafkaAdminClient, NewTopic
from pydantic import SecretStr
from pymongo import AsyncMongoClient, UpdateOne

from cli import SERVICES
from cli.run import ServiceProcesses
from cli.samples import RECORD_CONTENT_TYPE, load_stream, render_record
from services.followup.schedule import timer_id
from services.ingest.cases import pin_key, thread_key
from shared.events import catalogue
from shared.events.envelope import derived_id
from shared.settings import REPO_ROOT, Settings

RESULTS = REPO_ROOT / "bench" / "results"
RESULT_FILE = RESULTS / "bench.json"
WORK = REPO_ROOT / ".local" / "bench"
BASE_PORT = 8231

# What each service's consumer group reads (shared/events/catalogue.py; services/*/app.py).
INPUTS: dict[str, tuple[str, ...]] = {
    "ingest": (catalogue.INTAKE.topic,),
    "classify": (catalogue.RECEIVED.topic,),
    "route": (
        catalogue.CLASSIFIED.topic,
        catalogue.DIRECTORY.topic,
        catalogue.PRESENCE.topic,
        catalogue.ACTIVITY.topic,
        catalogue.RESOLVED.topic,
    ),
    "followup": (
        catalogue.ASSIGNED.topic,
        catalogue.ACTIVITY.topic,
        catalogue.RESOLVED.topic,
        catalogue.RECEIVED.topic,
    ),
}

TARGETS = {
    "sustained_rate": 1000.0,
    "ratio_to_kafka": 0.20,
    "p99_ms": 250.0,
    "growth_within": 0.10,
    "rss_mb": 200.0,
}


STAMP = b"2026-01-01T00:00:00+00:00"


def fig(value: Any, unit: str, **extra: Any) -> dict[str, Any]:
    """Every figure carries its unit."""
    if isinstance(value, float):
        value = round(value, 3 if abs(value) < 10 else 1)
    return {"value": value, "unit": unit, **extra}


def log(*parts: Any) -> None:
    print(f"[bench {time.strftime('%H:%M:%S')}]", *parts, file=sys.stderr, flush=True)


# -- machine facts --------------------------------------------------------------------


def _git(*args: str) -> str:
    try:
        return subprocess.run(
            ["git", *args], cwd=REPO_ROOT, capture_output=True, text=True, check=True
        ).stdout.strip()
    except (OSError, subprocess.CalledProcessError):
        return ""


def _meminfo() -> dict[str, int]:
    values: dict[str, int] = {}
    with contextlib.suppress(OSError):
        for line in Path("/proc/meminfo").read_text().splitlines():
            name, _, rest = line.partition(":")
            values[name] = int(rest.split()[0])  # kB
    return values


def _cpu_model() -> str:
    with contextlib.suppress(OSError):
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    return platform.processor()


def _version(package: str) -> str | None:
    try:
        return importlib.metadata.version(package)
    except importlib.metadata.PackageNotFoundError:
        return None


async def machine_facts(settings: Settings) -> dict[str, Any]:
    mem = _meminfo()
    mongo_version = None
    client: AsyncMongoClient[Any] = AsyncMongoClient(
        settings.mongodb_url.get_secret_value(), serverSelectionTimeoutMS=5000
    )
    try:
        info = await client.admin.command("buildInfo")
        mongo_version = info.get("version")
    except Exception as exc:
        mongo_version = f"unknown ({type(exc).__name__})"
    finally:
        await client.close()
    server_note = os.environ.get("MONGODB_URL") or "local mongo-java-server 1.47.0 (H2 MVStore)"
    return {
        "cores": fig(os.cpu_count() or 0, "logical CPUs"),
        "cpu_model": _cpu_model(),
        "memory_total": fig(round(mem.get("MemTotal", 0) / 1024), "MiB"),
        "memory_available_at_start": fig(round(mem.get("MemAvailable", 0) / 1024), "MiB"),
        "os": f"{platform.system()} {platform.release()}",
        "python": platform.python_version(),
        "versions": {
            "kafka_broker": os.environ.get("KAFKA_VERSION", "4.4.0")
            if not os.environ.get("KAFKA_BOOTSTRAP_SERVERS")
            else "external",
            "mongodb_server": f"{server_note}; reports {mongo_version}",
            **{p: _version(p) for p in ("aiokafka", "faststream", "pymongo", "orjson", "uvloop")},
            **{p: _version(p) for p in ("pydantic", "uvicorn", "py-spy")},
        },
        "shared_machine": "Kafka, the database, the four services and the load generator "
        "share these cores; other engineers' work (tests, fault runs) may run at the same "
        "time: see load_average.",
    }


def load_average() -> list[float]:
    return [round(x, 2) for x in os.getloadavg()]


# -- workload -------------------------------------------------------------------------


def _bad_positions() -> set[int]:
    """Lines of the sample stream that are malformed on purpose (dead letters)."""
    return {i for i, line in enumerate(load_stream()) if "note" in line}


@dataclass
class Record:
    event_id: str
    value: bytes
    key: bytes | None
    headers: list[tuple[str, bytes]]  # without ce_id / ce_time (set when sent)


_PHONE = re.compile(r"\+\d{1,3}(?: \d+)*? ?\d*\$\{C\}[\d ]*\d|\+\d{1,3}(?: \d+)*? ?\d*\$\{C\}")


def _phone_for(template: str, cycle: int) -> str:
    """The template's phone number with the cycle's digits in its subscriber part: the same
    length and prefix (so still a valid number), unique for 10,000+ cycles."""
    groups = template.split(" ")
    at = next(i for i, g in enumerate(groups) if "${C}" in g)
    first = at
    digits = sum(ch.isdigit() for g in groups[at:] for ch in g) + 1
    while digits < 4 and first > 2:
        first -= 1
        digits += sum(ch.isdigit() for ch in groups[first])
    fill = iter(f"{cycle % 10**digits:0{digits}d}")
    tail = " ".join(groups[first:]).replace("${C}", "C")
    new_tail = "".join(next(fill) if ch.isdigit() or ch == "C" else ch for ch in tail)
    return " ".join([*groups[:first], new_tail])


@lru_cache(maxsize=1)
def _templates() -> tuple[tuple[dict[str, Any], tuple[str, ...]], ...]:
    """Stream lines with their phone templates replaced by slots (see _phone_for)."""
    out = []
    for line in load_stream():
        if "payload" not in line:
            out.append((line, ()))
            continue
        payload = line["payload"]
        text = payload if isinstance(payload, str) else orjson.dumps(payload).decode()
        phones = tuple(dict.fromkeys(_PHONE.findall(text)))
        for n, phone in enumerate(phones):
            text = text.replace(phone, f"PHONESLOT{n}X")
        out.append(({**line, "payload": text}, phones))
    return tuple(out)


def workload(count: int, run_id: str, first_cycle: int = 0) -> list[Record]:
    """``count`` well-formed sample records (all channels, merges, duplicates, praise).

    Like ``cli.samples.iter_sample_records``, but cycle numbers (identities) continue from
    ``first_cycle``, so successive windows of one run get customers of their own, and
    phone numbers stay valid however many cycles are rendered."""
    bad = _bad_positions()
    templates = _templates()
    now = datetime.now(UTC)
    out: list[Record] = []
    index = 0
    while len(out) < count:
        cycle, position = divmod(index, len(templates))
        index += 1
        if position in bad:
            continue
        line, phones = templates[position]
        c = first_cycle + cycle
        value, key = render_record(line, f"{run_id}-c{c}", c, now)
        for n, phone in enumerate(phones):
            value = value.replace(f"PHONESLOT{n}X".encode(), _phone_for(phone, c).encode())
        media = line.get("content_type", RECORD_CONTENT_TYPE)
        headers = [
            ("ce_specversion", b"1.0"),
            ("ce_source", b"/amends/bench"),
            ("ce_type", catalogue.INTAKE.event_type.encode()),
            ("ce_sourceformat", str(line["sourceformat"]).encode()),
            ("ce_datacontenttype", str(media).encode()),
            ("content-type", RECORD_CONTENT_TYPE.encode()),
        ]
        out.append(
            Record(
                f"{run_id}-{index - 1:07d}",
                value,
                key.encode() if key else None,
                headers,
            )
        )
    return out


def producer_for(settings: Settings, **overrides: Any) -> AIOKafkaProducer:
    # The scaffold's producer settings (shared/service.py build_broker).
    options: dict[str, Any] = {
        "bootstrap_servers": settings.kafka_bootstrap_servers,
        "enable_idempotence": True,
        "acks": "all",
        "linger_ms": 5,
        "max_batch_size": 256 * 1024,
    }
    options.update(overrides)
    return AIOKafkaProducer(**options)


class Sender:
    """Paced load generator; remembers when each complaint was sent."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.producer = producer_for(settings)
        self.sent_at: dict[str, float] = {}
        self.sent = 0

    async def start(self) -> None:
        await self.producer.start()

    async def stop(self) -> None:
        await self.producer.stop()

    async def send(self, records: list[Record], rate: float) -> float:
        """Send at ``rate`` per second; returns the achieved rate."""
        topic = self.settings.topic(catalogue.INTAKE.topic)
        loop = asyncio.get_running_loop()
        started = loop.time()
        futures = []
        i = 0
        n = len(records)
        while i < n:
            due = min(n, int((loop.time() - started) * rate) + 1)
            while i < due:
                r = records[i]
                now = time.time()
                stamp = datetime.fromtimestamp(now, UTC).isoformat().encode()
                headers = [*r.headers, ("ce_id", r.event_id.encode()), ("ce_time", stamp)]
                futures.append(await self.producer.send(topic, r.value, key=r.key, headers=headers))
                self.sent_at[r.event_id] = now
                self.sent += 1
                i += 1
            await asyncio.sleep(0.005)
        await asyncio.gather(*futures)
        return n / max(1e-9, loop.time() - started)


# -- observing the pipeline -----------------------------------------------------------


def proc_status(pid: int) -> dict[str, int]:
    values: dict[str, int] = {}
    with contextlib.suppress(OSError):
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith(("VmHWM", "VmRSS")):
                name, rest = line.split(":", 1)
                values[name] = int(rest.split()[0])  # kB
    return values


def cpu_seconds(pid: int) -> float:
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")
    except (OSError, IndexError, ValueError):
        return 0.0


def server_pids() -> dict[str, int]:
    pids = {}
    for name, file in (("kafka", "kafka.pid"), ("mongodb", "mongo.pid")):
        with contextlib.suppress(OSError, ValueError):
            pids[name] = int((_mongo_pid_file() / file).read_text().split()[0])
    return pids


class LagProbe:
    """Consumer lag (end offset - committed offset) of each service's group, from Kafka."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.admin = AIOKafkaAdminClient(bootstrap_servers=settings.kafka_bootstrap_servers)
        self.consumer = AIOKafkaConsumer(bootstrap_servers=settings.kafka_bootstrap_servers)
        self.partitions: dict[str, list[TopicPartition]] = {}

    async def start(self) -> None:
        await self.admin.start()
        await self.consumer.start()
        deadline = time.monotonic() + 60
        for service, topics in INPUTS.items():
            tps: list[TopicPartition] = []
            for topic in topics:
                name = self.settings.topic(topic)
                # Every input topic must be known, or its lag would silently count as 0.
                while not (parts := self.consumer.partitions_for_topic(name)):
                    if time.monotonic() > deadline:
                        raise RuntimeError(f"topic {name} has no partitions in the metadata")
                    await self.consumer._client.force_metadata_update()
                    await asyncio.sleep(0.5)
                tps.extend(TopicPartition(name, p) for p in sorted(parts))
            self.partitions[service] = tps

    async def stop(self) -> None:
        await self.consumer.stop()
        await self.admin.close()

    async def lag(self) -> dict[str, int]:
        all_tps = sorted({tp for tps in self.partitions.values() for tp in tps})
        ends = await self.consumer.end_offsets(all_tps) if all_tps else {}
        out = {}
        for service, tps in self.partitions.items():
            committed = await self.admin.list_consumer_group_offsets(
                self.settings.group_id(service)
            )
            total = 0
            for tp in tps:
                meta = committed.get(tp)
                done = meta.offset if meta is not None and meta.offset >= 0 else 0
                total += max(0, ends.get(tp, 0) - done)
            out[service] = total
        return out


@dataclass
class Window:
    rate: float
    duration: float
    samples: list[dict[str, Any]] = field(default_factory=list)
    achieved: float = 0.0
    drain_seconds: float | None = None


async def monitor(
    probe: LagProbe, procs: ServiceProcesses, window: Window, stop: asyncio.Event
) -> None:
    started = time.monotonic()
    pids = {name: p.pid for name, p in procs.procs.items()} | server_pids()
    last_cpu = {name: cpu_seconds(pid) for name, pid in pids.items()}
    last_t = started
    while not stop.is_set():
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(stop.wait(), timeout=2.0)
        now = time.monotonic()
        try:
            lag = await probe.lag()
        except Exception as exc:
            log(f"lag probe failed: {exc!r}")
            continue
        cpu = {name: cpu_seconds(pid) for name, pid in pids.items()}
        dt = max(1e-6, now - last_t)
        window.samples.append(
            {
                "t": round(now - started, 2),
                "lag": lag,
                "cpu_percent": {n: round(100 * (cpu[n] - last_cpu.get(n, 0)) / dt) for n in cpu},
            }
        )
        last_cpu, last_t = cpu, now


def _slope(points: list[tuple[float, float]]) -> float:
    if len(points) < 2:
        return 0.0
    xs, ys = zip(*points, strict=True)
    mx, my = statistics.fmean(xs), statistics.fmean(ys)
    den = sum((x - mx) ** 2 for x in xs)
    return sum((x - mx) * (y - my) for x, y in zip(xs, ys, strict=True)) / den if den else 0.0


def judge(window: Window) -> dict[str, Any]:
    """Sustained: the generator kept the rate and the total lag did not grow."""
    points = [
        (s["t"], float(sum(s["lag"].values())))
        for s in window.samples
        if s["t"] <= window.duration + 1
    ]
    half = [p for p in points if p[0] >= window.duration / 3]
    slope = _slope(half)
    final = points[-1][1] if points else 0.0
    peak = max((p[1] for p in points), default=0.0)
    cpu: dict[str, list[float]] = defaultdict(list)
    for s in window.samples:
        if s["t"] <= window.duration:
            for name, value in s["cpu_percent"].items():
                cpu[name].append(value)
    allowed_final = max(2.0 * window.rate, 400.0)
    sustained = (
        window.achieved >= 0.95 * window.rate
        and slope <= max(0.02 * window.rate, 2.0)
        and final <= allowed_final
    )
    return {
        "offered_rate": fig(window.rate, "complaints/s"),
        "achieved_send_rate": fig(window.achieved, "complaints/s"),
        "window": fig(window.duration, "s"),
        "lag_growth": fig(slope, "messages/s", note="least-squares slope, last 2/3 of window"),
        "lag_final": fig(final, "messages"),
        "lag_peak": fig(peak, "messages"),
        "drain_after_window": fig(window.drain_seconds, "s"),
        "cpu_mean": {
            n: fig(statistics.fmean(v), "% of one core") for n, v in sorted(cpu.items()) if v
        },
        "sustained": sustained,
    }


# -- the pipeline under test ----------------------------------------------------------


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

    def __init__(self, label: str, base: Settings, *, count_ops: bool = False) -> None:
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
            async for doc in self.db.intake_log.find(
                {"_id": {"$in": ids[start : start + 1000]}}, {"outcome": 1, "case_id": 1}
            ):
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


def percentiles(values: list[float]) -> dict[str, Any]:
    if not values:
        return {}
    ordered = sorted(values)

    def pick(q: float) -> float:
        return ordered[min(len(ordered) - 1, max(0, round(q * len(ordered) + 0.5) - 1))]

    return {
        "p50": fig(pick(0.50), "ms"),
        "p95": fig(pick(0.95), "ms"),
        "p99": fig(pick(0.99), "ms"),
        "max": fig(ordered[-1], "ms"),
        "samples": fig(len(ordered), "cases"),
    }


async def check_rate(
    pipe: Pipeline, rate: float, duration: float, drain_timeout: float
) -> dict[str, Any]:
    log(f"  offering {rate:.0f}/s for {duration:.0f} s ...")
    window = await pipe.run_window(rate, duration, drain_timeout)
    verdict = judge(window)
    acct = await pipe.accounting(window.records)  # type: ignore[attr-defined]
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


# -- profiling ------------------------------------------------------------------------


async def profile_services(pipe: Pipeline, rate: float, seconds: float) -> dict[str, Any]:
    py_spy = shutil.which("py-spy") or str(Path(sys.executable).parent / "py-spy")
    if not Path(py_spy).exists():
        return {"error": "py-spy not installed (pip install py-spy)"}
    out_dir = RESULTS / "profiles"
    out_dir.mkdir(parents=True, exist_ok=True)
    jobs = {}
    for name, proc in pipe.procs.procs.items():
        out = out_dir / f"{name}.txt"
        jobs[name] = (
            await asyncio.create_subprocess_exec(
                py_spy,
                "record",
                "--pid",
                str(proc.pid),
                "--duration",
                str(int(seconds)),
                "--rate",
                "50",
                "--format",
                "raw",
                "--nonblocking",
                "--output",
                str(out),
                stdout=asyncio.subprocess.DEVNULL,
                stderr=asyncio.subprocess.PIPE,
            ),
            out,
        )
    await asyncio.sleep(1)
    window = await pipe.run_window(rate, seconds - 2, 60)
    summaries: dict[str, Any] = {"rate": fig(rate, "complaints/s"), "services": {}}
    for name, (job, out) in jobs.items():
        _, err = await job.communicate()
        if not out.exists():
            summaries["services"][name] = {"error": err.decode()[-300:]}
            continue
        summaries["services"][name] = summarise_profile(out.read_text())
    summaries["cpu_mean"] = judge(window)["cpu_mean"]
    return summaries


CATEGORIES = (
    ("pymongo/bson (driver)", ("pymongo/", "bson/")),
    ("aiokafka", ("aiokafka/",)),
    ("faststream", ("faststream/",)),
    ("pydantic", ("pydantic/", "pydantic_core/")),
    ("asyncio/uvloop", ("asyncio/", "uvloop/")),
    ("prometheus", ("prometheus_client/",)),
    ("logging", ("logging/",)),
    ("classify model/scoring", ("services/classify/",)),
    ("service code", ("services/",)),
    ("shared scaffold", ("shared/",)),
)


def _category(frame: str) -> str:
    for name, needles in CATEGORIES:
        if any(n in frame for n in needles):
            return name
    return "other"


def summarise_profile(raw: str) -> dict[str, Any]:
    """Top self and inclusive costs from py-spy's collapsed stacks (on-CPU samples)."""
    self_cost: Counter[str] = Counter()
    incl: Counter[str] = Counter()
    cat: Counter[str] = Counter()
    total = 0
    for line in raw.splitlines():
        stack, _, count = line.rpartition(" ")
        if not stack or not count.isdigit():
            continue
        n = int(count)
        total += n
        frames = [f for f in stack.split(";") if not f.startswith(("process ", "thread "))]
        if not frames:
            continue
        self_cost[_short(frames[-1])] += n
        for f in {_short(f) for f in frames}:
            incl[f] += n
        # Charge the sample to the innermost frame that is in a known category.
        chosen = "other"
        for f in reversed(frames):
            c = _category(f)
            if c != "other":
                chosen = c
                break
        cat[chosen] += n
    if not total:
        return {"samples": 0}

    def pct(c: Counter[str], k: int) -> list[list[Any]]:
        return [[name, round(100 * n / total, 1)] for name, n in c.most_common(k)]

    return {
        "samples": total,
        "by_category_percent": dict(pct(cat, 20)),
        "top_self_percent": pct(self_cost, 12),
        "top_inclusive_percent": [
            row for row in pct(incl, 60) if "services/" in row[0] or "shared/" in row[0]
        ][:15],
    }


def _short(frame: str) -> str:
    # "func (path/to/file.py:123)" -> "func (pkg/file.py)"
    name, _, where = frame.partition(" (")
    where = where.rstrip(")")
    path = where.rsplit(":", 1)[0]
    for marker in ("site-packages/", "/work/main/", "lib/python3"):
        if marker in path:
            path = path.split(marker, 1)[1]
    return f"{name} ({path})"


# -- baselines ------------------------------------------------------------------------


async def baseline_kafka(settings: Settings, messages: int) -> dict[str, Any]:
    tag = uuid.uuid4().hex[:6]
    topic = f"bench{tag}.baseline"
    admin = AIOKafkaAdminClient(bootstrap_servers=settings.kafka_bootstrap_servers)
    await admin.start()
    await admin.create_topics([NewTopic(topic, settings.topic_partitions, 1)])
    records = workload(min(messages, 2000), f"base{tag}")
    payload_bytes = statistics.fmean(len(r.value) for r in records)
    consumer = AIOKafkaConsumer(
        topic,
        bootstrap_servers=settings.kafka_bootstrap_servers,
        group_id=f"bench{tag}-baseline",
        auto_offset_reset="earliest",
        enable_auto_commit=False,
        max_poll_records=500,
    )
    await consumer.start()
    producer = producer_for(settings)
    await producer.start()
    got = 0
    try:
        # Let the group settle on the empty topic before timing.
        deadline = time.monotonic() + 20
        while not consumer.assignment() and time.monotonic() < deadline:
            await consumer.getmany(timeout_ms=200)

        async def consume() -> float:
            nonlocal got
            while got < messages:
                batch = await consumer.getmany(timeout_ms=500, max_records=500)
                got += sum(len(v) for v in batch.values())
                if batch:
                    await consumer.commit()
            return time.perf_counter()

        consuming = asyncio.create_task(consume())
        started = time.perf_counter()
        futures = []
        for i in range(messages):
            r = records[i % len(records)]
            headers = [*r.headers, ("ce_id", f"{tag}-{i}".encode()), ("ce_time", STAMP)]
            futures.append(await producer.send(topic, r.value, key=r.key, headers=headers))
        await asyncio.gather(*futures)
        produced = time.perf_counter()
        consumed = await asyncio.wait_for(consuming, timeout=300)
    finally:
        await producer.stop()
        await consumer.stop()
        with contextlib.suppress(Exception):
            await admin.delete_topics([topic])
        await admin.close()
    return {
        "messages": fig(messages, "messages"),
        "mean_value_size": fig(payload_bytes, "bytes"),
        "producer": "aiokafka, acks=all, idempotent, linger 5 ms, no compression (the scaffold's)",
        "consumer": "aiokafka consumer group, getmany(500), commit per batch",
        "produce_rate": fig(messages / (produced - started), "messages/s"),
        "one_hop_rate": fig(messages / (consumed - started), "messages/s"),
    }


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


def preload_case_keys(case: dict[str, Any]) -> list[dict[str, Any]]:
    """What ingest keeps beside a case (``services/ingest/cases.py``): the pin of its
    contact and the customer's thread key of each external id."""
    (contact,) = case["contacts"]
    keys: list[dict[str, Any]] = [
        {
            "_id": pin_key(contact["contact_id"]),
            "case_id": case["_id"],
            "intake_event_id": contact["intake_event_id"],
            "customer_id": case["customer_id"],
            "pinned_at": case["opened_at"],
        }
    ]
    for key in case["external_ids"]:
        keys.append(
            {
                "_id": thread_key(case["customer_id"], key),
                "case_ids": [case["_id"]],
                "customer_id": case["customer_id"],
                "key": key,
            }
        )
    return keys


async def baseline_mongodb(settings: Settings, count: int) -> dict[str, Any]:
    client: AsyncMongoClient[Any] = AsyncMongoClient(
        settings.mongodb_url.get_secret_value(), tz_aware=True
    )
    tag = uuid.uuid4().hex[:6]
    db = client[f"amends_bench_base{tag}"]
    coll = db.cases
    now = datetime.now(UTC).replace(microsecond=0)
    docs = [case_document(i, tag, now) for i in range(count)]

    async def run(label: str, fn: Any) -> float:
        started = time.perf_counter()
        await fn()
        return count / (time.perf_counter() - started)

    def body(d: dict[str, Any]) -> dict[str, Any]:
        return {k: v for k, v in d.items() if k != "_id"}

    async def sequential() -> None:
        for d in docs:
            await coll.update_one({"_id": d["_id"]}, {"$set": body(d)}, upsert=True)

    async def concurrent() -> None:
        queue = list(docs)

        async def worker() -> None:
            while queue:
                d = queue.pop()
                await coll.update_one({"_id": d["_id"]}, {"$set": body(d)}, upsert=True)

        await asyncio.gather(*(worker() for _ in range(8)))

    async def bulk() -> None:
        for start in range(0, count, 500):
            await coll.bulk_write(
                [
                    UpdateOne({"_id": d["_id"]}, {"$set": body(d)}, upsert=True)
                    for d in docs[start : start + 500]
                ],
                ordered=False,
            )

    try:
        new_seq = await run("new", sequential)
        existing_seq = await run("existing", sequential)
        await coll.drop()
        new_conc = await run("new8", concurrent)
        await coll.drop()
        new_bulk = await run("bulk", bulk)
        read_started = time.perf_counter()
        for d in docs[: min(count, 2000)]:
            await coll.find_one({"_id": d["_id"]})
        find_rate = min(count, 2000) / (time.perf_counter() - read_started)
    finally:
        await client.drop_database(db.name)
        await client.close()
    return {
        "documents": fig(count, "case documents"),
        "document_size": fig(len(orjson.dumps(docs[0], default=str)), "bytes (JSON)"),
        "upsert_new_sequential": fig(
            new_seq, "upserts/s", note="update_one $set upsert by _id, 1 in flight"
        ),
        "upsert_existing_sequential": fig(existing_seq, "upserts/s"),
        "upsert_new_8_in_flight": fig(new_conc, "upserts/s"),
        "upsert_new_bulk_500": fig(
            new_bulk, "upserts/s", note="bulk_write UpdateOne upserts, unordered"
        ),
        "find_one_by_id": fig(find_rate, "reads/s"),
    }


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


# -- growth preload -------------------------------------------------------------------


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
        # ingest's keyed lookups: each contact's pin and its thread keys (``case_keys``);
        # followup's per-customer list of resolved cases (``resolved_cases``).
        case_keys = [key for c in cases for key in preload_case_keys(c)]
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
        await db.case_keys.insert_many(case_keys, ordered=False)
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
            5 * done / max(elapsed, 1e-9),
            "documents/s",
            note="cases+queue+timers+2 case_keys (+resolved_cases per customer)",
        ),
    }


def mongo_rss_mb() -> float | None:
    pid = server_pids().get("mongodb")
    if not pid:
        return None
    return round(proc_status(pid).get("VmRSS", 0) / 1024, 1)


# -- private servers ------------------------------------------------------------------

SERVER_HOME = REPO_ROOT / ".local" / "bench-servers"
PRIVATE_KAFKA_PORT, PRIVATE_CONTROLLER_PORT, PRIVATE_MONGO_PORT = 29092, 29093, 28017


def _server_env() -> dict[str, str]:
    return {
        "KAFKA_PORT": str(PRIVATE_KAFKA_PORT),
        "KAFKA_CONTROLLER_PORT": str(PRIVATE_CONTROLLER_PORT),
        "MONGO_PORT": str(PRIVATE_MONGO_PORT),
        # Room for the growth preload (mongo-java-server keeps its page cache on the heap);
        # a cache that holds the working set, as a production database server would have.
        "MONGO_JAVA_HEAP": os.environ.get("BENCH_MONGO_HEAP", "10g"),
        "MONGO_CACHE_MB": os.environ.get("BENCH_MONGO_CACHE_MB", "4096"),
    }


def run_local_server(script: str, action: str, home: Path, env: dict[str, str]) -> None:
    """``deploy/local/<script> <action>`` with its state under ``home``; the jars and tools
    installed in ``.local`` are linked in (reused, never downloaded again)."""
    home.mkdir(parents=True, exist_ok=True)
    for name in ("cache", "opt", "bin"):
        link, installed = home / name, REPO_ROOT / ".local" / name
        if installed.exists() and not link.exists():
            link.symlink_to(installed)
    args = ["bash", str(REPO_ROOT / "deploy/local" / script), action]
    env = {**os.environ, **env, "AMENDS_HOME": str(home), "PYTHON": sys.executable}
    result = subprocess.run(args, env=env, capture_output=True, text=True)
    if result.returncode != 0:
        raise RuntimeError(f"{script} {action} failed: {result.stderr[-500:]}")


def private_servers(action: str) -> None:
    """Kafka and the MongoDB-protocol server of the bench alone (same scripts, own ports
    and data under .local/bench-servers): other work's restarts and database load stay out
    of the figures, and the growth preload never lands in anyone else's server."""
    for script in ("kafka.sh", "mongo.sh"):
        run_local_server(script, action, SERVER_HOME, _server_env())


def private_settings() -> Settings:
    return Settings(
        kafka_bootstrap_servers=f"127.0.0.1:{PRIVATE_KAFKA_PORT}",
        mongodb_url=SecretStr(
            f"mongodb://127.0.0.1:{PRIVATE_MONGO_PORT}/?directConnection=true&retryWrites=false"
        ),
    )


def _mongo_pid_file() -> Path:
    return (SERVER_HOME if _PRIVATE else REPO_ROOT / ".local") / "run"


_PRIVATE = False


# -- parts ----------------------------------------------------------------------------


async def part_baseline(settings: Settings, args: argparse.Namespace) -> dict[str, Any]:
    log("baseline: Kafka one hop ...")
    kafka = await baseline_kafka(settings, args.kafka_messages)
    log(f"  {kafka['one_hop_rate']['value']} msg/s one hop")
    log("baseline: MongoDB upserts by _id ...")
    mongo = await baseline_mongodb(settings, args.mongo_docs)
    log(f"  {mongo['upsert_new_sequential']['value']} upserts/s (1 in flight)")
    return {"kafka": kafka, "mongodb": mongo, "load_average": load_average()}


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
    pipe = Pipeline("tp", settings)
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
        }
        if rate and "latency" in args.parts:
            lat_rate = round(rate / 2, 1)
            log(f"latency: at {lat_rate}/s for {args.latency_duration:.0f} s")
            window = await pipe.run_window(lat_rate, args.latency_duration, args.drain_timeout)
            acct = await pipe.accounting(window.records)  # type: ignore[attr-defined]
            results["latency"] = {
                "definition": "per new case: cases.stages.assigned_at (route's clock when it "
                "stores the assignment) minus cases.stages.received_at (ingest's clock when it "
                "handles the intake record); same host clock, millisecond precision. Also "
                "from the load generator's send time (ce_time) to assigned_at.",
                "rate": fig(lat_rate, "complaints/s"),
                "window": fig(args.latency_duration, "s"),
                "ingest_received_to_assigned": percentiles(acct["ms_received_to_assigned"]),
                "sent_to_assigned": percentiles(acct["ms_sent_to_assigned"]),
                "ingest_received_to_followup_scheduled": percentiles(
                    acct["ms_received_to_followup"]
                ),
                "judge": {k: v for k, v in judge(window).items() if k != "samples"},
                "load_average": load_average(),
            }
            pcts = results["latency"]["ingest_received_to_assigned"]
            log("  p50/p95/p99 ms:", *(pcts.get(p, {}).get("value") for p in ("p50", "p95", "p99")))
        if rate and args.profile_seconds > 0:
            log(f"profile: py-spy on every service at {rate}/s for {args.profile_seconds:.0f} s")
            results["profile"] = await profile_services(pipe, rate, args.profile_seconds)
    finally:
        rss = await pipe.stop()
        await pipe.cleanup()
    results.setdefault("throughput", {})["peak_rss"] = rss
    results["throughput"]["peak_rss_search_run"] = search_rss
    log("  peak RSS: " + ", ".join(f"{k} {v['peak_rss']['value']} MiB" for k, v in rss.items()))


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
    add("p99 ingest-to-assigned <= 250 ms at 50 % rate", p99, p99 is not None and p99 <= 250)
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
    return out


async def main_async(args: argparse.Namespace) -> int:
    global _PRIVATE
    external = os.environ.get("KAFKA_BOOTSTRAP_SERVERS") or os.environ.get("MONGODB_URL")
    if args.servers == "private" and not external:
        log("starting the bench's own Kafka and MongoDB-protocol server (.local/bench-servers)")
        await asyncio.to_thread(private_servers, "up")
        _PRIVATE = True
        settings = private_settings()
    else:
        settings = Settings()
    try:
        return await _main(args, settings)
    finally:
        if _PRIVATE and not args.keep_servers:
            log("stopping the bench's servers")
            await asyncio.to_thread(private_servers, "down")


async def _main(args: argparse.Namespace, settings: Settings) -> int:
    results: dict[str, Any] = {}
    if RESULT_FILE.exists() and not args.fresh:
        with contextlib.suppress(ValueError):
            results = json.loads(RESULT_FILE.read_text())
    results["machine"] = await machine_facts(settings)
    results["commit"] = _git("rev-parse", "HEAD")
    results["worktree_dirty"] = bool(_git("status", "--porcelain", "--untracked-files=no"))
    results["started_at"] = datetime.now(UTC).isoformat()
    results.setdefault("load_average", {})["at_start"] = load_average()
    results["parts_run"] = sorted(args.parts)
    results["servers"] = (
        "private instances of the local servers for the bench alone (.local/bench-servers; "
        f"Kafka 127.0.0.1:{PRIVATE_KAFKA_PORT}, MongoDB-protocol 127.0.0.1:{PRIVATE_MONGO_PORT}, "
        "heap -Xmx3g): other work's restarts and database load stay out; the CPU is shared"
        if _PRIVATE
        else f"shared: {settings.kafka_bootstrap_servers}, the default MongoDB URL"
    )

    def save() -> None:
        derive(results)
        RESULTS.mkdir(parents=True, exist_ok=True)
        RESULT_FILE.write_text(json.dumps(results, indent=2, default=str) + "\n")

    if "baseline" in args.parts:
        results["baseline"] = await part_baseline(settings, args)
        save()
    if "ops" in args.parts:
        log("ops: database round trips per complaint ...")
        key = "db_ops_route_before_optimisation" if args.route_before else "db_ops"
        results[key] = await part_ops(settings, args)
        ops = results[key]
        log(
            f"  {ops['round_trips_per_complaint']['value']} commands/complaint:",
            *(f"{k} {v['round_trips_per_complaint']}" for k, v in ops["services"].items()),
        )
        save()
    if "throughput" in args.parts or "latency" in args.parts:
        await part_throughput(settings, args, results)
        save()
    if "growth" in args.parts:
        await part_growth(settings, args, results)
        save()
    results["load_average"]["at_end"] = load_average()
    results["finished_at"] = datetime.now(UTC).isoformat()
    save()
    log(f"wrote {RESULT_FILE.relative_to(REPO_ROOT)}")
    from bench.report import table, update_readme

    print(table(results))
    if args.readme and {"throughput", "growth"} <= args.parts and update_readme(results):
        log("README.md table updated")
    return 0


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(prog="python -m bench.run", description=__doc__.split("\n")[0])
    p.add_argument(
        "--only",
        default="baseline,ops,throughput,latency,growth",
        help="comma-separated parts: baseline, throughput, latency, growth",
    )
    p.add_argument("--duration", type=float, default=60.0, help="sustained window, s")
    p.add_argument("--probe-duration", type=float, default=20.0, help="search probe window, s")
    p.add_argument("--latency-duration", type=float, default=60.0)
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
    p.add_argument("--fresh", action="store_true", help="do not merge with the last results")
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
