"""Start-up while the servers are not there yet: a service waits for Kafka (created topics
and all) instead of exiting, and gives up with a message naming the fix when they never
come. Real Kafka behind a TCP forwarder that opens late; no mocks."""

from __future__ import annotations

import asyncio
import contextlib
import socket
from collections.abc import AsyncIterator

import pytest
from aiokafka.admin import AIOKafkaAdminClient

from shared.events import catalogue
from shared.service import Service
from shared.settings import Settings
from tests.support import isolated_settings


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@contextlib.asynccontextmanager
async def forwarder(listen_port: int, target: str) -> AsyncIterator[None]:
    """Accept on ``listen_port`` and pipe every connection to ``target`` (host:port)."""
    host, port = target.rsplit(":", 1)

    async def pipe(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        with contextlib.suppress(Exception):
            while data := await reader.read(65536):
                writer.write(data)
                await writer.drain()
        writer.close()

    async def handle(client_r: asyncio.StreamReader, client_w: asyncio.StreamWriter) -> None:
        server_r, server_w = await asyncio.open_connection(host, int(port))
        await asyncio.gather(pipe(client_r, server_w), pipe(server_r, client_w))

    server = await asyncio.start_server(handle, "127.0.0.1", listen_port)
    try:
        yield
    finally:
        server.close()


async def test_service_waits_for_kafka_that_comes_up_late(settings: Settings) -> None:
    port = free_port()
    late = isolated_settings(
        kafka_bootstrap_servers=f"127.0.0.1:{port}",
        startup_wait_seconds=60,
        outage_backoff_max_seconds=0.5,
    )
    service = Service("startup-test", late)
    service.declare_publisher(catalogue.RECEIVED)
    starting = asyncio.create_task(service.start())
    await asyncio.sleep(2)
    assert not starting.done(), "start-up must wait while Kafka does not answer"
    async with forwarder(port, settings.kafka_bootstrap_servers.split(",")[0]):
        await asyncio.wait_for(starting, timeout=30)
        admin = AIOKafkaAdminClient(bootstrap_servers=settings.kafka_bootstrap_servers)
        await admin.start()
        try:
            topics = set(await admin.list_topics())
        finally:
            await admin.close()
    await service.stop()
    assert late.topic(catalogue.RECEIVED.topic) in topics


async def test_service_gives_up_naming_the_fix(settings: Settings) -> None:
    port = free_port()
    never = isolated_settings(
        kafka_bootstrap_servers=f"127.0.0.1:{port}",
        startup_wait_seconds=1,
        outage_backoff_max_seconds=0.2,
    )
    service = Service("startup-test", never)
    with pytest.raises(RuntimeError) as failure:
        await service.start()
    await service.stop()
    message = str(failure.value)
    assert f"Kafka not reachable at 127.0.0.1:{port}" in message
    assert "KAFKA_BOOTSTRAP_SERVERS" in message
    assert "AMENDS_STARTUP_WAIT_SECONDS" in message
