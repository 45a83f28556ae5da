"""Every metric a Grafana panel or an alert rule uses is exported by the services.

The four services run as their own processes (`python -m services.<name>`, as in the
container) against the real local Kafka and MongoDB; one complaint goes through the
pipeline; then each /metrics is scraped. A labelled metric shows its # HELP/# TYPE lines
before its first sample, so the check does not depend on which code paths ran.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import httpx
import pytest

from cli.run import SERVICES, ServiceProcesses
from shared.settings import Settings
from shared.store import Store
from tests.support import intake_headers, isolated_settings, produce, service_env
from tests.unit.deploy.support import SCRAPE_SERIES, exposed_series, referenced_metrics

BASE_PORT = 8311  # e2e uses 8211, `amends run` 8101

COMPLAINT = b"""\
From: Pat Example <pat@example.com>
To: support@example.com
Subject: Broken kettle, second time asking
Message-ID: <deploy-metrics-1@example.com>
Date: Tue, 24 Nov 2026 09:15:00 +0000
MIME-Version: 1.0
Content-Type: text/plain; charset="utf-8"

The kettle I bought last week stopped working and nobody answered my first email.
Please replace it or refund me.
"""


@pytest.fixture
async def services(servers_up: None) -> AsyncIterator[Settings]:
    settings = isolated_settings()
    env = service_env(settings)
    processes = ServiceProcesses(env, base_port=BASE_PORT)
    processes.start()
    try:
        await processes.wait_ready()
        yield settings
    finally:
        processes.stop()
        store = Store(settings)
        await store.client.drop_database(settings.mongodb_database)
        await store.close()


async def scrape_all() -> dict[str, str]:
    async with httpx.AsyncClient(timeout=5) as client:
        return {
            name: (await client.get(f"http://127.0.0.1:{BASE_PORT + i}/metrics")).text
            for i, name in enumerate(SERVICES)
        }


async def test_every_metric_of_the_dashboards_and_alert_rules_is_exported(
    services: Settings,
) -> None:
    await produce(
        services,
        "complaints.intake",
        COMPLAINT,
        headers=intake_headers("email", "deploy-metrics-1"),
        key=b"pat@example.com",
    )
    used = referenced_metrics()
    wanted = set(used) - SCRAPE_SERIES
    exported: dict[str, set[str]] = {}
    missing = wanted
    for _ in range(60):  # a few seconds for the complaint to pass through
        texts = await scrape_all()
        exported = {name: exposed_series(text) for name, text in texts.items()}
        missing = wanted - set().union(*exported.values())
        handled = all(
            "amends_messages_processed_total{" in texts[name] for name in ("ingest", "classify")
        )
        if not missing and handled:
            break
        await asyncio.sleep(0.5)
    assert not missing, "used by dashboards or alerts but exported by no service:\n" + "\n".join(
        f"  {name}: {sorted(used[name])}" for name in sorted(missing)
    )
    # Each service exports the scaffold's metrics with its own `service` label.
    for name, series in exported.items():
        assert {"amends_messages_processed_total", "amends_consumer_lag_messages"} <= series
        assert "faststream_received_messages_total" in series, name
