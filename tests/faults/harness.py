"""Fault-injection harness: the four services as processes over the real servers, a stream
of complaints in flight, a fault, and a count that accounts for every complaint.

    pipeline = Pipeline("kill9-classify")       # isolated topics, database, groups
    pipeline.start_all(); await pipeline.wait_all_ready()
    feeder = Feeder(pipeline, count=400, rate=80); task = asyncio.create_task(feeder.run())
    ... pipeline.kill9("classify"); pipeline.start("classify") ...
    figures = await settle_and_count(pipeline, feeder)   # waits, then counts
    record_figures("kill9-classify", figures)            # bench/results/faults.json

The count (``Accounting``) reads only what the pipeline stored (``intake_log``,
``dead_letters``, ``cases``, ``timers``, ``timers_done``) and what it published (the Kafka
topics), so it proves the guarantees from the outside:

* every intake event id sent has exactly one outcome in ``intake_log`` or one dead letter
  with a reason (``lost`` / ``multiple_outcomes`` otherwise);
* every new_case/merged outcome names a case that holds that contact exactly once, and no
  contact or intake event is on two cases (``duplicated``);
* every case is classified (one ``classification_history`` entry per contact), assigned or
  queued, and its follow-up scheduled when assigned, with one interim timer
  (``stage_lost`` / ``stage_duplicated``).
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import platform
import signal
import subprocess
import sys
import time
import uuid
from collections import Counter, defaultdict
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, TopicPartition

from bench.probe import LagProbe
from cli import SERVICES
from cli.samples import SampleRecord, iter_sample_records, load_stream
from shared import intake_log
from shared.events import catalogue
from shared.settings import REPO_ROOT, Settings
from shared.store import Store
from tests.support import isolated_settings

RESULTS = REPO_ROOT / "bench" / "results" / "faults.json"
LOG_ROOT = REPO_ROOT / ".local" / "logs" / "faults"
SEED = REPO_ROOT / "services" / "route" / "seed" / "people.json"


def malformed_positions() -> dict[int, str]:
    """Positions in the sample stream that are malformed on purpose, with their note."""
    return {i: line["note"] for i, line in enumerate(load_stream()) if line.get("note")}


def offline_rejection(record: SampleRecord) -> str | None:
    """The reason ingest's adapter refuses this record (None: it is well-formed), found
    without any server: the dead letters a run must show, and no others."""
    from services.ingest.adapters import IntakeMeta, adapter_for
    from shared.service import Rejected

    meta = IntakeMeta(
        source_format=record.source_format,
        event_id=record.event_id,
        event_time=datetime.now(UTC),
        content_type=record.media_type,
        default_phone_region="FI",
    )
    try:
        adapter_for(record.source_format)(record.value, meta)
    except Rejected as exc:
        return exc.reason
    except Exception as exc:  # the service would dead-letter it as handler_error
        return f"handler_error: {type(exc).__name__}"
    return None


# -- processes -------------------------------------------------------------------------


@dataclass
class Proc:
    name: str
    replica: int
    port: int
    popen: subprocess.Popen[bytes]
    log_path: Path

    @property
    def pid(self) -> int:
        return self.popen.pid

    @property
    def alive(self) -> bool:
        return self.popen.poll() is None


class Pipeline:
    """The services of one scenario, each with per-process control (kill -9, restart,
    a second replica on its own port in the same consumer group)."""

    def __init__(
        self,
        scenario: str,
        *,
        base_port: int | None = None,
        mongodb_url: str | None = None,
        extra_env: dict[str, str] | None = None,
        servers: dict[str, str] | None = None,
    ) -> None:
        """``mongodb_url``: what the services use (a proxy); ``servers``: other Kafka and
        MongoDB for everything (``kafka_bootstrap_servers``, ``mongodb_url``)."""
        self.scenario = scenario
        self.settings = isolated_settings(**(servers or {}))
        # AMENDS_FAULTS_BASE_PORT: another range, so two runs on one host do not collide.
        self.base_port = base_port or int(os.environ.get("AMENDS_FAULTS_BASE_PORT", "8400"))
        self.log_dir = LOG_ROOT / f"{scenario}-{self.settings.consumer_group_prefix}"
        self.env = {
            **os.environ,
            "AMENDS_TOPIC_PREFIX": self.settings.topic_prefix,
            "AMENDS_MONGODB_DATABASE": self.settings.mongodb_database,
            "AMENDS_CONSUMER_GROUP_PREFIX": self.settings.consumer_group_prefix,
            "AMENDS_BATCH_TIMEOUT_MS": "20",
            "AMENDS_ROUTE_SEED_PATH": str(SEED),
            "AMENDS_LOG_JSON": "true",
            "PYTHONPATH": str(REPO_ROOT),
            **(extra_env or {}),
        }
        if servers:
            self.env["KAFKA_BOOTSTRAP_SERVERS"] = self.settings.kafka_bootstrap_servers
            self.env["MONGODB_URL"] = self.settings.mongodb_url.get_secret_value()
            for name in ("AMENDS_KAFKA_BOOTSTRAP_SERVERS", "AMENDS_MONGODB_URL"):
                self.env.pop(name, None)
        if mongodb_url:
            self.env["MONGODB_URL"] = mongodb_url
            self.env.pop("AMENDS_MONGODB_URL", None)
        # The harness itself always reads the database directly (never through a proxy).
        self.store = Store(self.settings)
        self.procs: dict[tuple[str, int], Proc] = {}
        self.restarts: Counter[str] = Counter()
        self.stopped: set[tuple[str, int]] = set()  # terminated on purpose

    def port(self, name: str, replica: int = 0) -> int:
        return self.base_port + SERVICES.index(name) * 10 + replica

    def start(self, name: str, replica: int = 0, *, command: Sequence[str] = ()) -> Proc:
        """Start ``python -m services.<name>``, or ``python <command>`` in its place."""
        self.log_dir.mkdir(parents=True, exist_ok=True)
        log_path = self.log_dir / f"{name}-{replica}.log"
        port = self.port(name, replica)
        log = open(log_path, "ab")  # noqa: SIM115 - owned by the child
        popen = subprocess.Popen(
            [sys.executable, *(command or ("-m", f"services.{name}"))],
            cwd=REPO_ROOT,
            env={**self.env, "AMENDS_HTTP_PORT": str(port)},
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        log.close()
        if (name, replica) in self.procs:
            self.restarts[name] += 1
        self.stopped.discard((name, replica))
        proc = Proc(name, replica, port, popen, log_path)
        self.procs[(name, replica)] = proc
        return proc

    def start_all(self) -> None:
        for name in SERVICES:
            self.start(name)

    def kill9(self, name: str, replica: int = 0) -> None:
        proc = self.procs[(name, replica)]
        proc.popen.send_signal(signal.SIGKILL)
        proc.popen.wait(timeout=10)

    def terminate(self, name: str, replica: int = 0, timeout: float = 30) -> float:
        """SIGTERM (graceful shutdown: leave the group); seconds it took."""
        proc = self.procs[(name, replica)]
        self.stopped.add((name, replica))
        started = time.monotonic()
        if proc.alive:
            proc.popen.send_signal(signal.SIGTERM)
            try:
                proc.popen.wait(timeout=timeout)
            except subprocess.TimeoutExpired:
                proc.popen.kill()
                proc.popen.wait(timeout=10)
        return time.monotonic() - started

    async def wait_ready(self, name: str, replica: int = 0, timeout: float = 120) -> float:
        proc = self.procs[(name, replica)]
        started = time.monotonic()
        url = f"http://127.0.0.1:{proc.port}/readyz"
        async with httpx.AsyncClient(timeout=2) as client:
            while True:
                if not proc.alive:
                    raise RuntimeError(
                        f"{name}#{replica} exited with {proc.popen.returncode}; "
                        f"see {proc.log_path}:\n{tail(proc.log_path)}"
                    )
                with contextlib.suppress(httpx.HTTPError):
                    if (await client.get(url)).status_code == 200:
                        return time.monotonic() - started
                if time.monotonic() - started > timeout:
                    raise RuntimeError(f"{name}#{replica} not ready after {timeout} s")
                await asyncio.sleep(0.25)

    async def wait_all_ready(self, timeout: float = 120) -> None:
        await asyncio.gather(
            *(self.wait_ready(n, r, timeout) for (n, r), p in self.procs.items() if p.alive)
        )

    def alive(self) -> dict[str, bool]:
        """Liveness of every process not stopped on purpose."""
        return {
            f"{n}#{r}": p.alive for (n, r), p in self.procs.items() if (n, r) not in self.stopped
        }

    async def metric(self, name: str, replica: int, metric: str) -> float:
        """Sum of one metric's samples on a process's /metrics."""
        url = f"http://127.0.0.1:{self.port(name, replica)}/metrics"
        async with httpx.AsyncClient(timeout=5) as client:
            text = (await client.get(url)).text
        total = 0.0
        for line in text.splitlines():
            if line.startswith(metric) and not line.startswith("#"):
                head = line.split(" ")[0]
                if head == metric or head.startswith(metric + "{"):
                    total += float(line.rsplit(" ", 1)[1])
        return total

    def stop_all(self) -> None:
        for proc in self.procs.values():
            if proc.alive:
                proc.popen.send_signal(signal.SIGTERM)
        for proc in self.procs.values():
            try:
                proc.popen.wait(timeout=30)
            except subprocess.TimeoutExpired:
                proc.popen.kill()
                proc.popen.wait(timeout=10)

    async def close(self, *, drop: bool = True) -> None:
        self.stop_all()
        if drop:
            with contextlib.suppress(Exception):
                await self.store.client.drop_database(self.settings.mongodb_database)
        await self.store.close()

    def logged_errors(self) -> dict[str, dict[str, int]]:
        """ERROR/CRITICAL log lines per process: aiokafka's transient metadata messages
        (a topic just created, a leader moving: retried by the client) apart from the rest."""
        errors: dict[str, dict[str, int]] = {}
        for proc in self.procs.values():
            counts: Counter[str] = Counter()
            with contextlib.suppress(OSError):
                for line in proc.log_path.read_text(errors="replace").splitlines():
                    if not (
                        '"level":"error"' in line
                        or '"level":"critical"' in line
                        or "mERROR" in line  # FastStream's own (coloured) log lines
                        or "mCRITICAL" in line
                    ):
                        continue
                    transient = any(m in line for m in TRANSIENT_KAFKA_MESSAGES)
                    counts["transient_kafka_metadata" if transient else "other"] += 1
            if counts:
                errors[f"{proc.name}#{proc.replica}"] = dict(counts)
        return errors


TRANSIENT_KAFKA_MESSAGES = (
    "not found in cluster metadata",
    "NotLeaderForPartitionError",
    "StaleMetadata",
    "Unable connect to node",
    "Unable to update metadata",
    "Failed fetch offsets",
    "Failed fetch messages",
    "NodeNotReadyError",
    "GroupCoordinatorNotAvailableError",
    "Heartbeat",
    "LeaveGroup request failed",
)


def tail(path: Path, lines: int = 30) -> str:
    with contextlib.suppress(OSError):
        return "\n".join(path.read_text(errors="replace").splitlines()[-lines:])
    return ""


def rss_kib(pid: int) -> int | None:
    """Resident set size of a process (VmRSS from /proc), KiB."""
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    except OSError:
        return None
    return None


# -- feeding ---------------------------------------------------------------------------


class Feeder:
    """Sends ``count`` sample complaints at ``rate``/s with unique intake event ids.

    A send that fails (the broker is away) is retried with the same event id until it is
    acknowledged, so every id counted as sent is in Kafka at least once.
    """

    def __init__(self, pipeline: Pipeline, count: int, rate: float) -> None:
        self.settings: Settings = pipeline.settings
        self.count = count
        self.rate = rate
        self.run_id = f"f{uuid.uuid4().hex[:8]}"
        self.sent_ids: list[str] = []
        self.expected_dead: dict[str, str] = {}
        self.resends = 0
        self.sample_defects: Counter[str] = Counter()
        self.started_at: float | None = None
        self.finished_at: float | None = None

    def _producer(self) -> AIOKafkaProducer:
        return AIOKafkaProducer(
            bootstrap_servers=self.settings.kafka_bootstrap_servers,
            enable_idempotence=True,
            linger_ms=5,
            request_timeout_ms=10_000,
        )

    async def run(self) -> None:
        producer = self._producer()
        await producer.start()
        topic = self.settings.topic(catalogue.INTAKE.topic)
        malformed = malformed_positions()
        period = len(load_stream())
        self.started_at = time.monotonic()
        try:
            for index, record in enumerate(iter_sample_records(self.count, self.run_id)):
                encoded = record.kafka_headers("/amends/faults")
                key = record.key.encode() if record.key else None
                while True:
                    try:
                        await asyncio.wait_for(
                            producer.send_and_wait(topic, record.value, key=key, headers=encoded),
                            timeout=15,
                        )
                        break
                    except Exception:
                        # A fresh producer (new producer id): an idempotent producer whose
                        # batch expired while the broker was away is refused for good
                        # (OutOfOrderSequenceException) -- aiokafka does not reset it.
                        self.resends += 1
                        with contextlib.suppress(Exception):
                            await asyncio.wait_for(producer.stop(), timeout=5)
                        await asyncio.sleep(0.5)
                        producer = self._producer()
                        with contextlib.suppress(Exception):
                            await producer.start()
                self.sent_ids.append(record.event_id)
                if index % period in malformed:
                    self.expected_dead[record.event_id] = malformed[index % period]
                else:
                    reason = offline_rejection(record)
                    if reason is not None:
                        # Not meant to be malformed: the sample stream renders an invalid
                        # record at this cycle (see the figures' sample_stream_defects).
                        self.expected_dead[record.event_id] = reason
                        self.sample_defects[f"line {index % period}: {reason}"] += 1
                ahead = (index + 1) / self.rate - (time.monotonic() - self.started_at)
                if ahead > 0:
                    await asyncio.sleep(ahead)
        finally:
            self.finished_at = time.monotonic()
            await producer.stop()


# -- counting --------------------------------------------------------------------------


@dataclass
class Accounting:
    sent: int = 0
    outcomes: dict[str, int] = field(default_factory=dict)
    stored: int = 0  # intake events that became a contact on exactly one case
    cases: int = 0
    classified: int = 0
    assigned: int = 0
    queued: int = 0
    followup_scheduled: int = 0
    dead_lettered: int = 0
    dead_letter_reasons: dict[str, int] = field(default_factory=dict)
    unexpected_dead_letters: int = 0
    downstream_dead_letters: dict[str, int] = field(default_factory=dict)
    lost: int = 0
    lost_detail: dict[str, int] = field(default_factory=dict)
    duplicated: int = 0
    duplicated_detail: dict[str, int] = field(default_factory=dict)
    redelivered_records: dict[str, int] = field(default_factory=dict)
    # Records not yet committed per service's group: a poll still to be handled again
    # (a crashed consumer's, redelivered once its session expires) may still write.
    consumer_lag: dict[str, int] = field(default_factory=dict)
    examples: dict[str, list[str]] = field(default_factory=dict)

    @property
    def accounted(self) -> int:
        return sum(self.outcomes.values()) + self.dead_lettered

    def settled(self) -> bool:
        return (
            self.sent > 0
            and self.accounted >= self.sent
            and self.classified == self.cases
            and self.assigned + self.queued == self.cases
            and self.followup_scheduled == self.assigned
            and bool(self.consumer_lag)
            and not any(self.consumer_lag.values())
        )


async def count_progress(store: Store, run_id: str) -> dict[str, int]:
    """Cheap progress counters (for recovery times and settling)."""
    prefix = {"$regex": f"^{run_id}-"}
    logged = len(await intake_log.read(store, prefix=f"{run_id}-"))
    dead = await store["dead_letters"].count_documents({"event_id": prefix})
    cases = store["cases"]
    return {
        "accounted": logged + dead,
        "cases": await cases.count_documents({}),
        "classified": await cases.count_documents({"stages.classified_at": {"$exists": True}}),
        "routed": await cases.count_documents(
            {"$or": [{"stages.assigned_at": {"$exists": True}}, {"status": "queued"}]}
        ),
        "assigned": await cases.count_documents({"stages.assigned_at": {"$exists": True}}),
        "followup": await cases.count_documents(
            {"stages.followup_scheduled_at": {"$exists": True}}
        ),
    }


async def account(
    pipeline: Pipeline, feeder: Feeder, *, kafka: bool = True, lag: LagProbe | None = None
) -> Accounting:
    """The full count of where every complaint of the run ended (with each group's lag,
    read by ``lag``)."""
    store = pipeline.store
    acc = Accounting(sent=len(set(feeder.sent_ids)))
    if lag is not None:
        acc.consumer_lag = await _lag(lag)
    sent = set(feeder.sent_ids)
    lost: Counter[str] = Counter()
    dup: Counter[str] = Counter()
    examples: dict[str, list[str]] = defaultdict(list)

    def note(counter: Counter[str], kind: str, example: str, n: int = 1) -> None:
        counter[kind] += n
        if len(examples[kind]) < 5:
            examples[kind].append(example)

    outcomes = await intake_log.read(store, prefix=f"{feeder.run_id}-")
    acc.outcomes = dict(Counter(e["outcome"] for e in outcomes.values()))

    dead: dict[str, list[dict[str, Any]]] = defaultdict(list)
    downstream: Counter[str] = Counter()
    async for letter in store["dead_letters"].find({}):
        event_id = str(letter.get("event_id") or "")
        if event_id in sent:
            dead[event_id].append(letter)
        else:
            downstream[f"{letter.get('topic')}: {letter.get('reason')}"] += 1
    acc.dead_lettered = len(dead)
    acc.dead_letter_reasons = dict(Counter(ls[0]["reason"] for ls in dead.values()))
    acc.downstream_dead_letters = dict(downstream)
    for event_id in dead:
        if event_id not in feeder.expected_dead:
            acc.unexpected_dead_letters += 1
            note(lost, "unexpected_dead_letter", f"{event_id}: {dead[event_id][0]['reason']}")
    for event_id, letters in dead.items():
        offsets = {(ltr.get("topic"), ltr.get("partition"), ltr.get("offset")) for ltr in letters}
        if len(letters) > 1 and len(offsets) == len(letters):
            # The same intake id dead-lettered from two records: only if it was resent.
            pass
        if event_id in outcomes:
            note(dup, "intake_outcome_and_dead_letter", event_id)
    for event_id in sent - set(outcomes) - set(dead):
        note(lost, "intake_without_outcome", event_id)
    for event_id, reason in feeder.expected_dead.items():
        if event_id not in dead and event_id in outcomes:
            note(dup, "malformed_record_accepted", f"{event_id}: {reason}")

    # Cases: every contact once, on one case; every case through every stage.
    contact_cases: dict[str, list[str]] = defaultdict(list)
    intake_cases: dict[str, list[str]] = defaultdict(list)
    case_ids: set[str] = set()
    async for case in store["cases"].find({}):
        case_id = str(case["_id"])
        case_ids.add(case_id)
        acc.cases += 1
        contacts = [c for c in case.get("contacts") or [] if isinstance(c, dict)]
        ids = case.get("contact_ids") or []
        if len(ids) != len(set(ids)):
            note(dup, "contact_twice_on_a_case", case_id, len(ids) - len(set(ids)))
        if len(contacts) != len(ids) or case.get("contact_count", len(ids)) != len(ids):
            note(dup, "contact_count_mismatch", case_id)
        for contact in contacts:
            contact_cases[str(contact.get("contact_id"))].append(case_id)
            if contact.get("intake_event_id"):
                intake_cases[str(contact["intake_event_id"])].append(case_id)
        stages = case.get("stages") or {}
        history = case.get("classification_history") or []
        classified_contacts = Counter(str(h.get("contact_id")) for h in history)
        if "classified_at" in stages:
            acc.classified += 1
        else:
            note(lost, "case_not_classified", case_id)
        for contact_id, n in classified_contacts.items():
            if n > 1:
                note(dup, "contact_classified_twice", f"{case_id}/{contact_id}", n - 1)
        for contact in contacts:
            if str(contact.get("contact_id")) not in classified_contacts:
                note(lost, "contact_not_classified", f"{case_id}/{contact.get('contact_id')}")
        assigned = "assigned_at" in stages
        acc.assigned += assigned
        acc.queued += case.get("status") == "queued" and not assigned
        if not assigned and case.get("status") != "queued":
            note(lost, "case_not_assigned_or_queued", case_id)
        history_ids = [
            str(h.get("event_id") or h.get("assignment_id") or "")
            for h in case.get("assignment_history") or []
            if isinstance(h, dict)
        ]
        history_ids = [h for h in history_ids if h]
        if len(history_ids) != len(set(history_ids)):
            note(dup, "assignment_recorded_twice", case_id)
        if "followup_scheduled_at" in stages:
            acc.followup_scheduled += 1
        elif assigned:
            note(lost, "followup_not_scheduled", case_id)
    for contact_id, where in contact_cases.items():
        if len(where) > 1:
            note(dup, "contact_on_two_cases", f"{contact_id}: {sorted(where)}", len(where) - 1)
    for intake_id, where in intake_cases.items():
        if len(set(where)) > 1:
            note(dup, "intake_event_on_two_cases", f"{intake_id}: {sorted(where)}")

    # Outcomes point at the case that holds them; every case was opened by one outcome.
    opened_by: Counter[str] = Counter()
    for intake_id, entry in outcomes.items():
        if entry["outcome"] in ("new_case", "merged"):
            case_id = str(entry.get("case_id"))
            if intake_id not in intake_cases or case_id not in intake_cases[intake_id]:
                note(lost, "outcome_without_contact_on_case", f"{intake_id} -> {case_id}")
            else:
                acc.stored += 1
            if entry["outcome"] == "new_case":
                opened_by[case_id] += 1
    for case_id in case_ids:
        if opened_by[case_id] == 0:
            note(dup, "case_without_new_case_outcome", case_id)
        elif opened_by[case_id] > 1:
            note(dup, "case_opened_twice", case_id, opened_by[case_id] - 1)

    # Follow-up timers: one per case, kind, cycle and sequence.
    # Live timers are in ``timers``, finished ones in ``timers_done``; one that finished
    # while a crash interrupted the move is in both (the same timer: counted once).
    timers: Counter[tuple[Any, Any, Any, Any]] = Counter()
    seen_timers: dict[Any, dict[str, Any]] = {}
    for collection in ("timers", "timers_done"):
        async for timer in store[collection].find({}, {"case_id": 1, "kind": 1, "payload": 1}):
            seen_timers.setdefault(timer["_id"], timer)
    for timer in seen_timers.values():
        payload = timer.get("payload") or {}
        timers[
            (timer.get("case_id"), timer.get("kind"), payload.get("cycle"), payload.get("seq"))
        ] += 1
    for key, n in timers.items():
        if n > 1:
            note(dup, "followup_timer_twice", str(key), n - 1)
    interim_cases = {k[0] for k in timers if k[1] == "interim"}
    missing_timers = 0
    async for case in store["cases"].find(
        {"stages.followup_scheduled_at": {"$exists": True}}, {"status": 1}
    ):
        if case["_id"] not in interim_cases and case.get("status") not in ("resolved", "closed"):
            missing_timers += 1
            note(lost, "followup_timer_missing", str(case["_id"]))

    if kafka:
        acc.redelivered_records = await redelivered_records(pipeline.settings)

    acc.lost_detail = dict(lost)
    acc.duplicated_detail = dict(dup)
    acc.lost = sum(lost.values())
    acc.duplicated = sum(dup.values())
    acc.examples = {k: v for k, v in examples.items() if v}
    return acc


async def redelivered_records(settings: Settings) -> dict[str, int]:
    """Records published more than once with one event id, per topic (at-least-once at
    work: a crash between publishing and committing republishes; consumers drop them)."""
    topics = [
        catalogue.RECEIVED.topic,
        catalogue.CLASSIFIED.topic,
        catalogue.ASSIGNED.topic,
    ]
    result: dict[str, int] = {}
    for topic in topics:
        consumer = AIOKafkaConsumer(
            bootstrap_servers=settings.kafka_bootstrap_servers,
            auto_offset_reset="earliest",
            enable_auto_commit=False,
            group_id=None,
        )
        await consumer.start()
        ids: Counter[str] = Counter()
        try:
            partitions = await consumer._client.fetch_all_metadata()
            tps = [
                TopicPartition(settings.topic(topic), p)
                for p in partitions.partitions_for_topic(settings.topic(topic)) or ()
            ]
            consumer.assign(tps)
            await consumer.seek_to_beginning(*tps)
            end = await consumer.end_offsets(tps)
            deadline = time.monotonic() + 60
            while time.monotonic() < deadline:
                positions = [await consumer.position(tp) for tp in tps]
                if all(pos >= end[tp] for pos, tp in zip(positions, tps, strict=True)):
                    break
                batch = await consumer.getmany(timeout_ms=500)
                for recs in batch.values():
                    for rec in recs:
                        ce_id = dict(rec.headers or []).get("ce_id", b"").decode()
                        ids[ce_id] += 1
        finally:
            await consumer.stop()
        result[topic] = sum(n - 1 for n in ids.values() if n > 1)
        result[f"{topic}:distinct"] = len(ids)
    return result


# -- progress, recovery, settling -------------------------------------------------------


class Watcher:
    """Polls the progress counters; tells when a stage moved after a moment (recovery)."""

    def __init__(self, pipeline: Pipeline, feeder: Feeder, interval: float = 0.25) -> None:
        self.pipeline = pipeline
        self.feeder = feeder
        self.interval = interval
        self.samples: list[tuple[float, dict[str, int]]] = []
        self._task: asyncio.Task[None] | None = None

    async def _loop(self) -> None:
        while True:
            with contextlib.suppress(Exception):
                self.samples.append(
                    (
                        time.monotonic(),
                        await count_progress(self.pipeline.store, self.feeder.run_id),
                    )
                )
            await asyncio.sleep(self.interval)

    def start(self) -> None:
        self._task = asyncio.create_task(self._loop())

    async def stop(self) -> None:
        if self._task:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task

    def latest(self) -> dict[str, int]:
        return self.samples[-1][1] if self.samples else {}

    def caught_up(self, stage: str, values: dict[str, int]) -> bool:
        """Feeding is over and ``stage`` holds everything the stage before it produced:
        it has nothing left to do, so it cannot make progress."""
        if self.feeder.finished_at is None:
            return False
        upstream = {
            "accounted": len(set(self.feeder.sent_ids)),
            "classified": values.get("cases", 0),
            "routed": values.get("cases", 0),
            "followup": values.get("assigned", 0),
        }[stage]
        return values.get(stage, 0) >= upstream > 0

    async def progress_after(self, since: float, stage: str, timeout: float = 180) -> float:
        """Seconds from ``since`` (the fault) until ``stage`` exceeds its value in the first
        sample taken after it: work stored by the process(es) running after the fault. If
        nothing is left for the stage (the crashed process's last poll held the whole
        backlog and the feed is over), until the first sample from now on that shows so."""
        asked_at = time.monotonic()
        deadline = asked_at + timeout
        while time.monotonic() < deadline:
            after = [(at, values) for at, values in self.samples if at > since]
            if after:
                base = after[0][1].get(stage, 0)
                for at, values in after[1:]:
                    if values.get(stage, 0) > base:
                        return at - since
                for at, values in after:
                    if at >= asked_at and self.caught_up(stage, values):
                        return at - since
            await asyncio.sleep(self.interval)
        raise AssertionError(f"{stage} made no progress within {timeout} s of the fault")

    def longest_stall(self, stage: str, start: float, end: float) -> float:
        """Longest time ``stage`` did not move between ``start`` and ``end``."""
        longest = 0.0
        last_change: float | None = None
        previous: int | None = None
        for at, values in self.samples:
            if at < start or at > end:
                continue
            value = values.get(stage, 0)
            if previous is None or value != previous:
                if last_change is not None:
                    longest = max(longest, at - last_change)
                last_change = at
                previous = value
        if last_change is not None:
            longest = max(longest, end - last_change)
        return longest


async def settle(
    pipeline: Pipeline, feeder: Feeder, *, timeout: float = 240, quiet_seconds: float = 3
) -> tuple[Accounting, float]:
    """Wait until every complaint is accounted for, every case went through every stage
    (and stays so for ``quiet_seconds``) and every group committed all it read; then count.
    Returns the count and the seconds from the end of feeding to settled.

    The counts alone can be complete while a poll is still to be handled again: a process
    killed after some of a poll's writes leaves the rest to the redelivery, which comes
    once its group notices it is gone (the session timeout)."""
    deadline = time.monotonic() + timeout
    stable_since: float | None = None
    last: dict[str, int] | None = None
    probe = LagProbe(pipeline.settings)
    await probe.start()
    try:
        while True:
            progress = await count_progress(pipeline.store, feeder.run_id)
            done = (
                progress["accounted"] >= len(set(feeder.sent_ids)) > 0
                and progress["classified"] == progress["cases"]
                and progress["routed"] == progress["cases"]
                and progress["followup"] >= 0
            )
            if done and progress == last:
                stable_since = stable_since or time.monotonic()
                if time.monotonic() - stable_since >= quiet_seconds:
                    acc = await account(pipeline, feeder, kafka=False, lag=probe)
                    if acc.settled() or time.monotonic() > deadline:
                        break
            else:
                stable_since = None
            last = progress
            if time.monotonic() > deadline:
                break
            await asyncio.sleep(0.5)
        acc = await account(pipeline, feeder, lag=probe)
    finally:
        await probe.stop()
    finished = feeder.finished_at or time.monotonic()
    return acc, time.monotonic() - finished


async def _lag(probe: LagProbe) -> dict[str, int]:
    try:
        return await probe.lag()
    except Exception as exc:  # Kafka not answering: not settled, say why
        return {f"unknown ({type(exc).__name__})": 1}


# -- results ---------------------------------------------------------------------------


def machine_facts() -> dict[str, Any]:
    commit = subprocess.run(
        ["git", "rev-parse", "HEAD"], cwd=REPO_ROOT, capture_output=True, text=True, check=False
    ).stdout.strip()
    dirty = bool(
        subprocess.run(
            ["git", "status", "--porcelain"],
            cwd=REPO_ROOT,
            capture_output=True,
            text=True,
            check=False,
        ).stdout.strip()
    )
    mem_kib = 0
    with contextlib.suppress(OSError):
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith("MemTotal:"):
                mem_kib = int(line.split()[1])
    return {
        "cpus": os.cpu_count(),
        "memory_mib": mem_kib // 1024,
        "platform": platform.platform(),
        "python": platform.python_version(),
        "git_commit": commit,
        "git_dirty": dirty,
    }


def record_figures(scenario: str, figures: dict[str, Any], path: Path = RESULTS) -> None:
    """Merge one scenario's figures into ``bench/results/faults.json``."""
    path.parent.mkdir(parents=True, exist_ok=True)
    data: dict[str, Any] = {}
    if path.exists():
        with contextlib.suppress(ValueError):
            data = json.loads(path.read_text())
    data.setdefault("scenarios", {})[scenario] = {
        **figures,
        "recorded_at": datetime.now(UTC).isoformat(timespec="seconds"),
    }
    data["machine"] = machine_facts()
    data["description"] = (
        "Fault tests (tests/faults): the four services as processes over the real local "
        "Kafka and MongoDB-protocol server, a stream of sample complaints in flight, one "
        "fault mid-stream. sent: intake events sent; stored: those that became a contact "
        "on exactly one case; outcomes: intake_log outcome per intake event; lost / "
        "duplicated: must be 0 (detail per kind); dead_lettered: intake events "
        "dead-lettered with their reasons (the sample stream's malformed records); "
        "recovery_seconds: from the fault to the next progress of the affected stage; "
        "redelivered_records: records published again with the same event id (at-least-"
        "once at work; consumers drop them by id)."
    )
    data["scenarios"] = dict(sorted(data["scenarios"].items()))
    path.write_text(json.dumps(data, indent=2, sort_keys=False, default=str) + "\n")


def figures_of(acc: Accounting, **extra: Any) -> dict[str, Any]:
    values = asdict(acc)
    ordered = {
        "sent": values.pop("sent"),
        "stored": values.pop("stored"),
        "duplicated": values.pop("duplicated"),
        "lost": values.pop("lost"),
        "dead_lettered": values.pop("dead_lettered"),
    }
    ordered.update(extra)
    ordered.update(values)
    return ordered
