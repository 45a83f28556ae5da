"""`amends run`: the whole pipeline on this machine, fed with the bundled sample stream.

Starts the local servers (unless external URLs are set) and the four services as their
own processes, feeds N complaints, shows progress read from MongoDB, and ends with a
summary that accounts for every input: a new case, a contact merged into a case, an
exact duplicate, praise, or a dead letter with its reason. ``missing`` must be 0.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import shutil
import signal
import subprocess
import sys
import time
import uuid
from collections import Counter
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx
import orjson
from aiokafka import AIOKafkaProducer

from cli import SERVICES
from shared import intake_log
from shared.events import catalogue
from shared.kafka import kafka_client_options
from shared.settings import REPO_ROOT, Settings
from shared.store import Store

from . import infra, scrape
from .format import CliError, kafka_topics, open_store
from .target import remember_demo

BASE_PORT = 8101
DEMO_DATABASE = "amends_demo"
DEMO_TOPIC_PREFIX = "demo."


@dataclass
class Progress:
    sent: int = 0
    outcomes: Counter[str] = field(default_factory=Counter)
    dead_letters: Counter[str] = field(default_factory=Counter)
    downstream_dead_letters: Counter[str] = field(default_factory=Counter)
    cases: int = 0
    classified: int = 0
    assigned: int = 0
    queued: int = 0
    followup_scheduled: int = 0
    example_case_id: str | None = None  # the most urgent assigned case, for `amends case`

    @property
    def accounted(self) -> int:
        return sum(self.outcomes.values()) + sum(self.dead_letters.values())

    def pipeline_settled(self) -> bool:
        return (
            self.cases > 0
            and self.classified == self.cases
            and (self.followup_scheduled + self.queued == self.cases)
        )


def free_base_port(start: int = BASE_PORT, count: int = len(SERVICES)) -> int:
    """The first port from ``start`` on where ``count`` consecutive ports are free."""
    import socket

    for base in range(start, start + 1000, count):
        try:
            for port in range(base, base + count):
                with socket.socket() as probe:
                    probe.bind(("127.0.0.1", port))
        except OSError:
            continue
        return base
    raise CliError(f"no {count} free consecutive ports from {start} for the services' HTTP")


class ServiceProcesses:
    """The four services as child processes, logs under .local/logs/."""

    def __init__(self, env: dict[str, str], base_port: int = BASE_PORT) -> None:
        self.env = env
        self.base_port = base_port
        self.procs: dict[str, subprocess.Popen[bytes]] = {}
        self.log_dir = REPO_ROOT / ".local" / "logs"

    def ports(self) -> list[tuple[str, int]]:
        """(service, HTTP port) of each service: /healthz, /readyz, /metrics."""
        return [(name, self.base_port + index) for index, name in enumerate(SERVICES)]

    def service_env(self, name: str, port: int) -> dict[str, str]:
        """The environment of one service (a test may give one service its own)."""
        return {**self.env, "AMENDS_HTTP_PORT": str(port)}

    def start(self) -> None:
        self.log_dir.mkdir(parents=True, exist_ok=True)
        for index, name in enumerate(SERVICES):
            log = open(self.log_dir / f"{name}.log", "ab")  # noqa: SIM115 - owned by the child
            env = self.service_env(name, self.base_port + index)
            self.procs[name] = subprocess.Popen(
                [sys.executable, "-m", f"services.{name}"],
                cwd=REPO_ROOT,
                env=env,
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,  # Ctrl-C reaches us; we stop them in order
            )

    async def wait_ready(self, timeout: float = 90.0) -> None:
        deadline = time.monotonic() + timeout
        async with httpx.AsyncClient(timeout=2) as client:
            for index, name in enumerate(SERVICES):
                url = f"http://127.0.0.1:{self.base_port + index}/readyz"
                while True:
                    proc = self.procs[name]
                    if proc.poll() is not None:
                        raise CliError(
                            f"{name} exited with {proc.returncode}; see {self.log_dir}/{name}.log"
                        )
                    with contextlib.suppress(httpx.HTTPError):
                        if (await client.get(url)).status_code == 200:
                            break
                    if time.monotonic() > deadline:
                        raise CliError(
                            f"{name} not ready at {url} after {timeout:.0f} s; "
                            f"see {self.log_dir}/{name}.log"
                        )
                    await asyncio.sleep(0.3)

    def stop(self) -> None:
        for proc in self.procs.values():
            if proc.poll() is None:
                proc.send_signal(signal.SIGTERM)
        for name, proc in self.procs.items():
            try:
                proc.wait(timeout=25)
            except subprocess.TimeoutExpired:
                print(f"{name} did not stop in 25 s; killing it", file=sys.stderr)
                proc.kill()


async def feed(
    settings: Settings, run_id: str, count: int, rate: float, progress: Progress
) -> None:
    from cli.samples import iter_sample_records

    producer = AIOKafkaProducer(
        **kafka_client_options(settings),
        enable_idempotence=True,
        linger_ms=5,
    )
    await producer.start()
    topic = settings.topic(catalogue.INTAKE.topic)
    started = time.monotonic()
    try:
        for index, record in enumerate(iter_sample_records(count, run_id)):
            await producer.send(
                topic,
                record.value,
                key=record.key.encode() if record.key else None,
                headers=record.kafka_headers("/amends/run", f"{run_id}-{index:06d}"),
            )
            progress.sent += 1
            if rate > 0:
                ahead = (index + 1) / rate - (time.monotonic() - started)
                if ahead > 0:
                    await asyncio.sleep(ahead)
        await producer.flush()
    finally:
        await producer.stop()


async def observe(store: Store, run_id: str, progress: Progress) -> None:
    """Read where every input of this run stands (intake_log, dead_letters, cases)."""
    outcomes: Counter[str] = Counter()
    case_ids: set[str] = set()
    for entry in (await intake_log.read(store, prefix=f"{run_id}-")).values():
        outcomes[entry["outcome"]] += 1
        if entry.get("case_id"):
            case_ids.add(entry["case_id"])
    intake_dead: Counter[str] = Counter()
    downstream: Counter[str] = Counter()
    async for letter in store["dead_letters"].find({}, {"event_id": 1, "reason": 1, "topic": 1}):
        if str(letter.get("event_id", "")).startswith(f"{run_id}-"):
            intake_dead[letter["reason"]] += 1
        elif not letter["topic"].endswith(catalogue.INTAKE.topic):
            downstream[f"{letter['topic']}: {letter['reason']}"] += 1
    stats = Counter[str]()
    ids = list(case_ids)
    best: tuple[int, str] | None = None
    for start in range(0, len(ids), 500):
        cursor = store["cases"].find(
            {"_id": {"$in": ids[start : start + 500]}},
            {"stages": 1, "status": 1, "classification.urgency.score": 1},
        )
        async for case in cursor:
            stages = case.get("stages") or {}
            if "assigned_at" in stages:
                score = ((case.get("classification") or {}).get("urgency") or {}).get("score")
                candidate = (int(score or 0), str(case["_id"]))
                best = candidate if best is None or candidate > best else best
            stats["cases"] += 1
            stats["classified"] += "classified_at" in stages
            stats["assigned"] += "assigned_at" in stages
            stats["queued"] += case.get("status") == "queued"
            stats["followup"] += "followup_scheduled_at" in stages
    progress.outcomes = outcomes
    progress.dead_letters = intake_dead
    progress.downstream_dead_letters = downstream
    progress.cases = stats["cases"]
    progress.classified = stats["classified"]
    progress.assigned = stats["assigned"]
    progress.queued = stats["queued"]
    progress.followup_scheduled = stats["followup"]
    progress.example_case_id = best[1] if best else next(iter(sorted(case_ids)), None)


def summary(
    progress: Progress,
    count: int,
    elapsed: float,
    database: str = "",
    topic_prefix: str = "",
    started_at: datetime | None = None,
) -> dict[str, Any]:
    return {
        "inputs": count,
        "sent": progress.sent,
        "new_cases": progress.outcomes.get("new_case", 0),
        "merged_into_existing_case": progress.outcomes.get("merged", 0),
        "exact_duplicates_dropped": progress.outcomes.get("duplicate", 0),
        "praise_recorded": progress.outcomes.get("praise", 0),
        "dead_lettered": sum(progress.dead_letters.values()),
        "dead_letter_reasons": dict(progress.dead_letters),
        "missing": count - progress.accounted,
        "cases": progress.cases,
        "classified": progress.classified,
        "assigned": progress.assigned,
        "queued_waiting_for_capacity": progress.queued,
        "followup_scheduled": progress.followup_scheduled,
        "downstream_dead_letters": dict(progress.downstream_dead_letters),
        "elapsed_seconds": round(elapsed, 2),
        "database": database,
        "topic_prefix": topic_prefix,
        "example_case_id": progress.example_case_id,
        "next_commands": next_commands(progress.example_case_id, started_at),
    }


def amends_command() -> str:
    """How the user types `amends` here: bare when it is on PATH, else the venv's path."""
    ours = Path(sys.executable).parent / "amends"
    found = shutil.which("amends")
    if found and Path(found).resolve() == ours.resolve():
        return "amends"
    with contextlib.suppress(ValueError):
        return os.path.relpath(ours) if not os.path.relpath(ours).startswith("..") else str(ours)
    return str(ours)


def next_commands(case_id: str | None, started_at: datetime | None = None) -> list[str]:
    """What to type next; they read this run's data (cli/target.py). The database is
    new each run but the dead-letter topics keep earlier runs' entries: --since."""
    amends = amends_command()
    commands = [f"{amends} case {case_id}"] if case_id else []
    since = f" --since {started_at:%Y-%m-%dT%H:%M:%SZ}" if started_at else ""
    return [*commands, f"{amends} stats", f"{amends} dlq list{since}"]


def print_summary(result: dict[str, Any]) -> None:
    print("\namends run summary")
    print(f"  inputs sent ..................... {result['sent']} of {result['inputs']}")
    print(f"  became new cases ................ {result['new_cases']}")
    print(f"  merged into an existing case .... {result['merged_into_existing_case']}")
    print(f"  exact duplicates dropped ........ {result['exact_duplicates_dropped']}")
    print(f"  praise recorded (no case) ....... {result['praise_recorded']}")
    print(f"  dead-lettered ................... {result['dead_lettered']}")
    for reason, n in sorted(result["dead_letter_reasons"].items()):
        print(f"      {reason}: {n}")
    print(f"  missing ......................... {result['missing']}")
    print(f"  cases classified ................ {result['classified']} of {result['cases']}")
    print(f"  cases assigned .................. {result['assigned']}")
    print(f"  cases queued for capacity ....... {result['queued_waiting_for_capacity']}")
    print(f"  follow-up scheduled ............. {result['followup_scheduled']}")
    if result["downstream_dead_letters"]:
        print(f"  downstream dead letters ......... {result['downstream_dead_letters']}")
    print(f"  elapsed ......................... {result['elapsed_seconds']} s")
    print(
        f"\ntry next (they read this run: database {result['database']}, "
        f"topic prefix {result['topic_prefix']!r}):"
    )
    notes = ["the most urgent case: its whole timeline", "the figures", "this run's dead letters"]
    if not result["example_case_id"]:
        notes = notes[1:]
    for command, note in zip(result["next_commands"], notes, strict=True):
        print(f"  {command:<60} # {note}")


async def run_pipeline(
    count: int, rate: float, exit_when_done: bool, as_json: bool, timeout: float
) -> int:
    stop_on_hangup_and_term()
    external = bool(infra.external("kafka")) and bool(infra.external("mongodb"))
    if not external and infra.infra("up", quiet=as_json) != 0:
        return 2
    env = {
        **os.environ,
        "AMENDS_MONGODB_DATABASE": os.environ.get("AMENDS_MONGODB_DATABASE", DEMO_DATABASE),
        "AMENDS_TOPIC_PREFIX": os.environ.get("AMENDS_TOPIC_PREFIX", DEMO_TOPIC_PREFIX),
        "AMENDS_ROUTE_SEED_PATH": str(REPO_ROOT / "services/route/seed/people.json"),
        "PYTHONPATH": str(REPO_ROOT),
    }
    settings = Settings(
        mongodb_database=env["AMENDS_MONGODB_DATABASE"], topic_prefix=env["AMENDS_TOPIC_PREFIX"]
    )
    if infra.external("kafka"):  # nobody started it here: say at once when it does not answer
        await kafka_topics(settings)
    store = await open_store(settings)
    # A fresh demo database each run: the summary speaks of this run alone.
    if "AMENDS_MONGODB_DATABASE" not in os.environ:
        await store.client.drop_database(settings.mongodb_database)
    # From now on `amends case|stats|dlq|replay` without settings read this run's data.
    remember_demo(settings)
    run_id = f"run{uuid.uuid4().hex[:8]}"
    procs = ServiceProcesses(env, free_base_port())  # another run may hold the defaults
    log = (lambda *a: None) if as_json else (lambda *a: print(*a, file=sys.stderr, flush=True))
    started = time.monotonic()
    started_at = datetime.now(UTC).replace(microsecond=0)
    progress = Progress()
    try:
        log("starting ingest, classify, route, followup ...")
        procs.start()
        # The local Prometheus (`make observe`) scrapes the ports this run really uses.
        scrape.write_targets(procs.ports())
        await procs.wait_ready()
        log(f"services ready in {time.monotonic() - started:.1f} s; feeding {count} complaints")
        feeder = asyncio.create_task(feed(settings, run_id, count, rate, progress))
        deadline = time.monotonic() + timeout
        last_line = 0.0
        while True:
            await asyncio.sleep(0.5)
            await observe(store, run_id, progress)
            line = (
                f"  sent {progress.sent}/{count}  accounted {progress.accounted}  "
                f"cases {progress.cases}  classified {progress.classified}  "
                f"assigned {progress.assigned}  queued {progress.queued}  "
                f"follow-up {progress.followup_scheduled}  "
                f"dead-lettered {sum(progress.dead_letters.values())}"
            )
            if not as_json and sys.stderr.isatty():
                print("\r" + line, end="", file=sys.stderr, flush=True)  # one live line
            elif time.monotonic() - last_line >= 2:
                log(line)
                last_line = time.monotonic()
            if feeder.done():
                feeder.result()  # raise a feeding error
                if progress.accounted >= count and progress.pipeline_settled():
                    break
            if time.monotonic() > deadline:
                log(f"timed out after {timeout:.0f} s; the summary shows where things stand")
                break
        if not as_json and sys.stderr.isatty():
            print(file=sys.stderr)
        result = summary(
            progress,
            count,
            time.monotonic() - started,
            settings.mongodb_database,
            settings.topic_prefix,
            started_at,
        )
        if as_json:
            print(orjson.dumps(result, option=orjson.OPT_INDENT_2).decode())
        else:
            print_summary(result)
        if not exit_when_done:
            log("services keep running (logs in .local/logs/); Ctrl-C stops them")
            with contextlib.suppress(asyncio.CancelledError):
                await asyncio.Event().wait()
        return 0 if result["missing"] == 0 and progress.pipeline_settled() else 1
    finally:
        # First stop the services (started in sessions of their own, so no signal
        # reaches them but ours), then say so: a closed stdout (`| head`) must not
        # leave them running.
        with contextlib.suppress(OSError):
            log("stopping services ...")
        scrape.clear_targets()
        procs.stop()
        await store.close()


def main(count: int, rate: float, exit_when_done: bool, as_json: bool, timeout: float) -> int:
    try:
        return asyncio.run(run_pipeline(count, rate, exit_when_done, as_json, timeout))
    except (KeyboardInterrupt, asyncio.CancelledError):
        return 130


def stop_on_hangup_and_term() -> None:
    """A closed terminal (SIGHUP) or `kill` (SIGTERM) stops the services as Ctrl-C does:
    the running task is cancelled, so its ``finally`` stops them."""
    loop = asyncio.get_running_loop()
    task = asyncio.current_task()
    if task is None:
        return
    for sig in (signal.SIGTERM, signal.SIGHUP):
        with contextlib.suppress(NotImplementedError, RuntimeError, ValueError):
            loop.add_signal_handler(sig, task.cancel)


__all__ = ["main"]
