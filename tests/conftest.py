"""Fixtures shared by all tests.

Integration and end-to-end tests need the real local servers (``make test`` starts
them; ``KAFKA_BOOTSTRAP_SERVERS`` / ``MONGODB_URL`` point at others). They fail, not
skip, when the servers are unreachable: a skipped integration test proves nothing.
"""

from __future__ import annotations

import asyncio
import os
import tempfile
from collections.abc import AsyncIterator
from contextlib import suppress
from pathlib import Path

import pytest
from aiokafka.admin import AIOKafkaAdminClient

from shared.settings import Settings
from shared.store import Store
from tests.support import ISSUED_TOPIC_PREFIXES, isolated_settings


def pytest_configure(config: pytest.Config) -> None:
    # `amends run` in a test must not replace the user's remembered demo (cli/target.py),
    # and a CLI command in a test must not read it.
    os.environ.setdefault("AMENDS_DEMO_STATE", str(Path(tempfile.mkdtemp()) / "demo.json"))


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    for item in items:
        path = str(item.fspath)
        if "/tests/integration/" in path:
            item.add_marker(pytest.mark.integration)
        elif "/tests/e2e/" in path:
            item.add_marker(pytest.mark.e2e)


@pytest.fixture(scope="session")
async def servers_up() -> AsyncIterator[None]:
    """Fail fast with the fix when Kafka or MongoDB is not reachable; when the session
    ends, delete the topics its tests created (see ISSUED_TOPIC_PREFIXES)."""
    base = Settings()
    admin = AIOKafkaAdminClient(bootstrap_servers=base.kafka_bootstrap_servers)
    try:
        await asyncio.wait_for(admin.start(), timeout=10)
        await admin.close()
    except Exception as exc:
        pytest.fail(
            f"Kafka not reachable at {base.kafka_bootstrap_servers} ({exc!r}): "
            "run `amends infra up` or set KAFKA_BOOTSTRAP_SERVERS",
            pytrace=False,
        )
    store = Store(base)
    try:
        await store.ping()
    except Exception as exc:
        pytest.fail(
            f"MongoDB not reachable ({exc!r}): run `amends infra up` or set MONGODB_URL",
            pytrace=False,
        )
    finally:
        await store.close()
    yield
    await delete_session_topics(base)


async def delete_session_topics(base: Settings) -> None:
    """Best effort: a cleanup failure must never fail the run it follows."""
    admin = AIOKafkaAdminClient(bootstrap_servers=base.kafka_bootstrap_servers)
    with suppress(Exception):
        await asyncio.wait_for(admin.start(), timeout=10)
        try:
            prefixes = tuple(ISSUED_TOPIC_PREFIXES)
            ours = [t for t in await admin.list_topics() if t.startswith(prefixes)]
            for start in range(0, len(ours), 500):
                await admin.delete_topics(ours[start : start + 500], timeout_ms=60_000)
        finally:
            await admin.close()


@pytest.fixture
def settings() -> Settings:
    return isolated_settings()


@pytest.fixture
async def store(servers_up: None, settings: Settings) -> AsyncIterator[Store]:
    store = Store(settings)
    await store.connect()
    yield store
    await store.client.drop_database(settings.mongodb_database)
    await store.close()
