"""The alert rules and the Grafana dashboards against a real Prometheus.

Prometheus and promtool are built once from the Go module proxy by
deploy/local/prometheus.sh (cached in .local/bin), and the running Prometheus is started
by the same script `make observe` uses, on a free loopback port with a home of its own.
Three checks:

* ``promtool check rules`` passes on the rule file and on the PrometheusRule manifest;
* every PromQL expression of the dashboards and rules parses (promtool, as rules);
* with the four services under a short load that drives every path a panel shows (CRM
  activity and resolutions with lessons, a dissatisfied survey, a public complaint after
  resolution, HTTP intake, malformed records, a spike, and a database outage of classify
  longer than its retry budget), every dashboard query returns at least one series from
  Prometheus' HTTP API. A renamed metric or label breaks this test, not a dashboard.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import socket
import subprocess
import time
import uuid
from collections.abc import AsyncIterator, Sequence
from dataclasses import dataclass
from functools import cache
from pathlib import Path
from typing import Any

import httpx
import pytest
import yaml
from aiokafka import AIOKafkaProducer
from pydantic import BaseModel

from cli import scrape
from cli.run import Progress, ServiceProcesses, feed, free_base_port
from cli.run import observe as account
from cli.samples import load_stream
from shared.events import envelope
from shared.events.catalogue import ACTIVITY, RESOLVED, EventSpec
from shared.events.common import Category
from shared.events.lifecycle import CaseActivity, CaseResolved, Lesson
from shared.settings import Settings
from shared.store import Store
from tests.support import isolated_settings, service_env, wait_for
from tests.unit.deploy.support import (
    DEPLOY,
    GRAFANA_VARIABLES,
    RULE_FILES,
    dashboard_expressions,
    plain_promql,
    rule_expressions,
)

SCRIPT = DEPLOY / "local/prometheus.sh"
PROMETHEUS_RULE = DEPLOY / "kubernetes/base/monitoring/prometheusrule.yaml"
SAMPLE_CYCLE = len(load_stream())  # cli/samples/stream.jsonl: every channel, six malformed


@cache
def tools() -> Path:
    """The folder holding prometheus and promtool (built on first use)."""
    done = subprocess.run(
        ["bash", str(SCRIPT), "install"],
        capture_output=True,
        text=True,
        timeout=3600,  # a cold build on a busy 2-core machine took 27 min (full build)
        check=False,
    )
    if done.returncode != 0:
        raise RuntimeError(f"prometheus.sh install failed:\n{done.stderr[-4000:]}")
    return Path(done.stdout.strip().splitlines()[-1])


def promtool(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [str(tools() / "promtool"), *args], capture_output=True, text=True, timeout=120
    )


# -- rules and parsing ---------------------------------------------------------------------


def test_promtool_checks_the_rule_file_and_the_prometheusrule_manifest(tmp_path: Path) -> None:
    assert RULE_FILES
    checked = promtool("check", "rules", *map(str, RULE_FILES))
    assert checked.returncode == 0, checked.stdout + checked.stderr
    rules = len(list(rule_expressions()))
    assert f"SUCCESS: {rules} rules found" in checked.stdout, checked.stdout
    # The manifest the Prometheus Operator loads carries the same groups.
    manifest = yaml.safe_load(PROMETHEUS_RULE.read_text())
    groups = tmp_path / "prometheusrule.rules.yaml"
    groups.write_text(yaml.safe_dump({"groups": manifest["spec"]["groups"]}))
    checked = promtool("check", "rules", str(groups))
    assert checked.returncode == 0, checked.stdout + checked.stderr
    assert f"SUCCESS: {rules} rules found" in checked.stdout, checked.stdout


def test_every_dashboard_and_rule_expression_parses(tmp_path: Path) -> None:
    # promtool parses each expression as a recording rule: the real PromQL parser, offline.
    expressions = [*dashboard_expressions(), *rule_expressions()]
    assert len(expressions) > 50
    rules = [
        {"record": f"amends:parse_check_{i}", "expr": plain_promql(expr)}
        for i, (_, _, expr) in enumerate(expressions)
    ]
    path = tmp_path / "expressions.rules.yaml"
    path.write_text(yaml.safe_dump({"groups": [{"name": "parse", "rules": rules}]}))
    checked = promtool("check", "rules", "--lint=none", str(path))
    where = "\n".join(f"  parse_check_{i}: {s}: {t}" for i, (s, t, _) in enumerate(expressions))
    assert checked.returncode == 0, f"{checked.stdout}{checked.stderr}\nindex:\n{where}"
    assert f"SUCCESS: {len(rules)} rules found" in checked.stdout
    # A variable left unreplaced would have failed above; none may be unknown to the map.
    for source, title, expr in expressions:
        assert "$" not in plain_promql(expr), f"{source}: {title}: unknown variable in {expr}"


# -- the running Prometheus ----------------------------------------------------------------


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


@dataclass
class Prometheus:
    url: str
    targets: Path
    env: dict[str, str]

    async def query(self, client: httpx.AsyncClient, expr: str) -> list[dict[str, Any]]:
        answer = (await client.get(f"{self.url}/api/v1/query", params={"query": expr})).json()
        assert answer["status"] == "success", f"{expr}: {answer}"
        result: list[dict[str, Any]] = answer["data"]["result"]
        return result


@pytest.fixture
async def prometheus(tmp_path: Path) -> AsyncIterator[Prometheus]:
    tools()  # build outside the start timeout
    port = free_port()
    env = {
        **os.environ,
        "PROMETHEUS_HOME": str(tmp_path / "prometheus"),
        "PROMETHEUS_PORT": str(port),
        "PROMETHEUS_SCRAPE_INTERVAL": "1s",
        "PROMETHEUS_TARGETS": str(tmp_path / "scrape-targets.json"),
    }
    up = subprocess.run(
        ["bash", str(SCRIPT), "up"], env=env, capture_output=True, text=True, timeout=120
    )
    assert up.returncode == 0, up.stderr
    try:
        yield Prometheus(f"http://127.0.0.1:{port}", tmp_path / "scrape-targets.json", env)
    finally:
        subprocess.run(["bash", str(SCRIPT), "down"], env=env, capture_output=True, timeout=60)


class Switch:
    """A loopback TCP proxy to MongoDB that can be cut: a real outage for one service."""

    def __init__(self, mongodb_url: str) -> None:
        hosts = mongodb_url.split("//", 1)[1].split("/", 1)[0].rsplit("@", 1)[-1]
        self.target_host, _, port = hosts.split(",")[0].rpartition(":")
        self.target_port = int(port or 27017)
        self.port = free_port()
        self.url = mongodb_url.replace(hosts, f"127.0.0.1:{self.port}", 1)
        self.server: asyncio.Server | None = None
        self.writers: set[asyncio.StreamWriter] = set()

    async def restore(self) -> None:
        if self.server is None:
            self.server = await asyncio.start_server(self._handle, "127.0.0.1", self.port)

    async def cut(self) -> None:
        if self.server is not None:
            self.server.close()
            self.server = None
        for writer in list(self.writers):
            writer.close()
        self.writers.clear()

    async def _handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            up_r, up_w = await asyncio.open_connection(self.target_host, self.target_port)
        except OSError:
            writer.close()
            return
        self.writers |= {writer, up_w}

        async def pipe(src: asyncio.StreamReader, dst: asyncio.StreamWriter) -> None:
            with contextlib.suppress(ConnectionError, OSError):
                while chunk := await src.read(65536):
                    dst.write(chunk)
                    await dst.drain()
            dst.close()

        await asyncio.gather(pipe(reader, up_w), pipe(up_r, writer))
        self.writers -= {writer, up_w}


def load_env(settings: Settings) -> dict[str, str]:
    """Production code with its periods shortened, so a minute shows a CRM's day."""
    return service_env(
        settings,
        AMENDS_LOG_JSON="false",
        AMENDS_ROUTE_METRICS_SECONDS="1",
        AMENDS_ROUTE_SPIKE_CHECK_SECONDS="1",  # a fresh database: the feed is a burst
        AMENDS_ROUTE_SLA_SWEEP_SECONDS="1",
        AMENDS_FOLLOWUP_POLL_INTERVAL_SECONDS="0.2",
        AMENDS_FOLLOWUP_INTERIM_SHARE="0.000001",  # an interim update within a second
        AMENDS_FOLLOWUP_SURVEY_DELAY_SECONDS="0.5",
    )


async def publish(settings: Settings, spec: EventSpec, payloads: Sequence[BaseModel]) -> None:
    """Events as the CRM sends them: binary-mode CloudEvents keyed by case id."""
    producer = AIOKafkaProducer(bootstrap_servers=settings.kafka_bootstrap_servers)
    await producer.start()
    try:
        for payload in payloads:
            event = envelope.CloudEvent(
                type=spec.event_type,
                source="/tests/crm",
                id=uuid.uuid4().hex,
                data=payload.model_dump_json().encode(),
            )
            await producer.send(
                settings.topic(spec.topic),
                event.data,
                key=str(payload.case_id).encode(),  # type: ignore[attr-defined]
                headers=[(k, v.encode()) for k, v in event.headers().items()],
            )
        await producer.flush()
    finally:
        await producer.stop()


async def feed_samples(settings: Settings, run_id: str) -> None:
    """One cycle of the sample stream, as `amends run` feeds it, every input accounted."""
    progress = Progress()
    await feed(settings, run_id, SAMPLE_CYCLE, 0, progress)
    store = Store(settings)
    try:

        async def accounted() -> bool:
            await account(store, run_id, progress)
            return progress.accounted >= SAMPLE_CYCLE

        await wait_for(accounted, timeout=90, interval=0.5)
    finally:
        await store.close()


def dashboard_queries(namespace: str) -> list[tuple[str, str, str]]:
    """(dashboard, panel, query) with the variables as Grafana sets them for 'All'."""
    values = {**GRAFANA_VARIABLES, "$namespace": namespace, "$service": ".+"}
    queries = []
    for source, title, expr in dashboard_expressions():
        for variable, value in values.items():
            expr = expr.replace(variable, value)
        queries.append((source, title, expr))
    return queries


async def test_every_dashboard_query_returns_series_under_load(
    servers_up: None, prometheus: Prometheus
) -> None:
    settings = isolated_settings()
    namespace = f"test-{settings.consumer_group_prefix}"
    url = os.environ.get("MONGODB_URL") or os.environ.get("AMENDS_MONGODB_URL")
    url = url or Settings().mongodb_url.get_secret_value()
    switch = Switch(url)
    await switch.restore()
    processes = ClassifyViaSwitch(load_env(settings), free_base_port(8411), switch)
    processes.start()
    scrape.write_targets(processes.ports(), prometheus.targets, namespace=namespace)
    store = Store(settings)
    started = time.monotonic()
    try:
        await processes.wait_ready()
        async with httpx.AsyncClient(timeout=10) as client:

            async def all_up() -> bool:
                up = await prometheus.query(client, f'up{{namespace="{namespace}"}} == 1')
                return len(up) == len(processes.ports())

            await wait_for(all_up, timeout=30, interval=0.5)
            # 1. The sample stream: every channel and language, six malformed records.
            await feed_samples(settings, "obsA")
            await wait_for(lambda: settled(store), timeout=90, interval=0.5)
            # 2. classify loses its database for longer than its 60 s retry budget, while
            #    the CRM works on the cases and new complaints arrive.
            await switch.cut()
            cases = [c async for c in store["cases"].find({"assignment": {"$exists": True}})]
            assert cases, "no case was assigned"
            await crm_day(settings, cases)
            refused = await client.post(
                f"http://127.0.0.1:{processes.base_port}/intake/zendesk",
                content=b'{"ticket": {"id": 1}}',
                headers={"content-type": "application/json"},
            )
            assert refused.status_code in {401, 403}, refused.text
            # 3. The same customers again: a dissatisfied survey answer and public posts
            #    after resolution reopen their cases.
            await feed_samples(settings, "obsB")
            await wait_for(
                lambda: store["cases"].find_one({"followup.cycle": {"$gte": 1}}), timeout=60
            )
            await wait_for(
                lambda: prometheus.query(
                    client,
                    "faststream_received_processed_messages_exceptions_total"
                    f'{{namespace="{namespace}", service="classify"}}',
                ),
                timeout=150,
                interval=1,
            )
            await switch.restore()
            # 4. Every query of every panel answers with at least one series.
            queries = dashboard_queries(namespace)
            missing: list[tuple[str, str, str]] = []
            deadline = time.monotonic() + 60
            while True:
                missing = [q for q in queries if not await prometheus.query(client, q[2])]
                if not missing or time.monotonic() > deadline:
                    break
                await asyncio.sleep(2)
            assert not missing, "dashboard queries without a series:\n" + "\n".join(
                f"  {source}: {title}: {expr}" for source, title, expr in missing
            )
            # The alert rules are loaded and evaluated by the same Prometheus.
            rules = (await client.get(f"{prometheus.url}/api/v1/rules")).json()["data"]
            loaded = {r["name"] for g in rules["groups"] for r in g["rules"]}
            assert loaded == {name for _, name, _ in rule_expressions()}
            assert all(r["health"] == "ok" for g in rules["groups"] for r in g["rules"]), rules
            # The overview page (a console template) renders from the same data.
            page = await client.get(f"{prometheus.url}/consoles/amends.html")
            assert page.status_code == 200, page.text[-2000:]
            for name, port in processes.ports():
                assert f"<td>{name}</td><td>127.0.0.1:{port}</td>" in page.text, page.text
            assert "DOWN" not in page.text
            home = await client.get(f"{prometheus.url}/", follow_redirects=True)
            assert home.status_code == 200 and "/consoles/amends.html" in home.text
            # The load set two rules off: the spike fires at once, the outage is pending
            # its `for: 5m`. The page lists both.
            alerts = (await client.get(f"{prometheus.url}/api/v1/alerts")).json()["data"]
            states = {a["labels"]["alertname"]: a["state"] for a in alerts["alerts"]}
            assert states.get("AmendsComplaintSpike") == "firing", states
            assert states.get("AmendsInfrastructureOutage") in {"pending", "firing"}, states
            for name in ("AmendsComplaintSpike", "AmendsInfrastructureOutage"):
                assert f"<td>{name}</td>" in page.text, page.text
            print(
                f"\n{len(queries)} dashboard queries answered, {len(loaded)} rules loaded, "
                f"load phase {time.monotonic() - started:.0f} s"
            )
    finally:
        await switch.restore()
        scrape.clear_targets(prometheus.targets)
        processes.stop()
        await switch.cut()  # closes the proxy for good
        await store.client.drop_database(settings.mongodb_database)
        await store.close()


class ClassifyViaSwitch(ServiceProcesses):
    """The four services; classify reaches MongoDB through the switch."""

    def __init__(self, env: dict[str, str], base_port: int, switch: Switch) -> None:
        super().__init__(env, base_port)
        self.switch = switch

    def service_env(self, name: str, port: int) -> dict[str, str]:
        env = super().service_env(name, port)
        if name == "classify":
            env.pop("AMENDS_MONGODB_URL", None)
            env["MONGODB_URL"] = self.switch.url
        return env


async def settled(store: Store) -> bool:
    """Every stored case classified and either followed up or queued."""
    total = await store["cases"].count_documents({})
    classified = await store["cases"].count_documents({"stages.classified_at": {"$exists": 1}})
    done = await store["cases"].count_documents(
        {"$or": [{"stages.followup_scheduled_at": {"$exists": 1}}, {"status": "queued"}]}
    )
    return total > 0 and classified == total == done


async def crm_day(settings: Settings, cases: list[dict[str, Any]]) -> None:
    """First response, then resolution with a lesson, for every assigned case."""
    now = envelope.utcnow()
    await publish(
        settings,
        ACTIVITY,
        [
            CaseActivity(
                case_id=c["_id"],
                kind="first_response",
                at=now,
                by_person_id=c["assignment"]["person_id"],
            )
            for c in cases
        ],
    )
    categories = {c.value for c in Category}
    await publish(
        settings,
        RESOLVED,
        [
            CaseResolved(
                case_id=c["_id"],
                resolved_at=envelope.utcnow(),
                resolved_by=c["assignment"]["person_id"],
                lesson=Lesson(
                    category=Category(category)
                    if (category := c.get("category")) in categories
                    else Category.DELIVERY,
                    root_cause="courier lost the parcel",
                    fix="resent with tracking",
                ),
            )
            for c in cases
        ],
    )
