"""Kafka access shared by the services and the CLI: the broker every service publishes and
consumes with, plain aiokafka client options with the same security settings, the batch
parser that survives unreadable headers, and topic creation that waits for leaders."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Awaitable, Callable, Sequence
from typing import Any

from aiokafka import AIOKafkaProducer
from faststream.kafka import KafkaBroker
from faststream.kafka.prometheus import KafkaPrometheusMiddleware
from faststream.security import BaseSecurity, SASLPlaintext, SASLScram256, SASLScram512

from . import metrics
from .settings import Settings


def build_broker(settings: Settings, client_id: str) -> KafkaBroker:
    security: BaseSecurity | None = None
    if settings.kafka_security_protocol.startswith("SASL"):
        user = settings.kafka_sasl_username or ""
        password = (
            settings.kafka_sasl_password.get_secret_value() if settings.kafka_sasl_password else ""
        )
        use_ssl = settings.kafka_security_protocol == "SASL_SSL"
        ssl_context = _ssl_context(settings) if use_ssl else None
        mechanism = settings.kafka_sasl_mechanism.upper()
        if mechanism == "SCRAM-SHA-256":
            security = SASLScram256(user, password, ssl_context=ssl_context, use_ssl=use_ssl)
        elif mechanism == "SCRAM-SHA-512":
            security = SASLScram512(user, password, ssl_context=ssl_context, use_ssl=use_ssl)
        else:
            security = SASLPlaintext(user, password, ssl_context=ssl_context, use_ssl=use_ssl)
    elif settings.kafka_security_protocol == "SSL":
        security = BaseSecurity(ssl_context=_ssl_context(settings), use_ssl=True)
    return KafkaBroker(
        settings.kafka_bootstrap_servers,
        client_id=client_id,
        security=security,
        enable_idempotence=True,
        acks="all",
        linger_ms=5,
        max_batch_size=256 * 1024,
        request_timeout_ms=30_000,
        middlewares=[_prometheus_middleware()],
        log_level=logging.DEBUG,  # per-message logs only when debugging
    )


def current_producer(broker: KafkaBroker) -> Any:
    """The aiokafka producer ``broker`` publishes with now (None before it connects)."""
    return getattr(getattr(broker.config.producer, "_producer", None), "producer", None)


async def replace_producer(broker: KafkaBroker, failed: Any) -> bool:
    """Give ``broker`` a fresh idempotent producer (a new producer id, sequences from 0)
    in place of ``failed``; False when another caller replaced it already.

    aiokafka never resets an idempotent producer's sequence numbers: once the broker has
    lost batches the producer counted as sent (a broker restart while they were in
    flight), every later batch to that partition is refused with
    ``OutOfOrderSequenceNumber``, for good (seen in the kafka-long-outage scenario: a
    service stuck for minutes, its output refused). FastStream has no public call for
    this, so it swaps the producer inside the broker's config the way its own connect
    builds it (faststream.kafka.configs.broker.KafkaBrokerConfig.connect)."""
    if current_producer(broker) is not failed:
        return False
    config = broker.config
    fast_producer: Any = config.producer  # AioKafkaFastProducerImpl (connect/disconnect)
    with contextlib.suppress(Exception):
        # Its batches can never be delivered: stop it without waiting on them for long.
        await asyncio.wait_for(fast_producer.disconnect(), timeout=10)
    producer = AIOKafkaProducer(**broker._connection_kwargs)
    await fast_producer.connect(
        producer, serializer=config.fd_config._serializer, codec=config.broker_codec
    )
    return True


def kafka_client_options(settings: Settings) -> dict[str, Any]:
    """Connection options for plain aiokafka clients (admin, CLI producers and consumers),
    with the same security settings the services' broker uses."""
    options: dict[str, Any] = {
        "bootstrap_servers": settings.kafka_bootstrap_servers,
        "security_protocol": settings.kafka_security_protocol,
    }
    if settings.kafka_security_protocol.startswith("SASL"):
        options["sasl_mechanism"] = settings.kafka_sasl_mechanism.upper()
        options["sasl_plain_username"] = settings.kafka_sasl_username or ""
        options["sasl_plain_password"] = (
            settings.kafka_sasl_password.get_secret_value() if settings.kafka_sasl_password else ""
        )
    if settings.kafka_security_protocol in ("SSL", "SASL_SSL"):
        options["ssl_context"] = _ssl_context(settings)
    return options


def kafka_unreachable_message(settings: Settings, exc: BaseException | None = None) -> str:
    cause = f" ({type(exc).__name__})" if exc else ""
    return (
        f"Kafka not reachable at {settings.kafka_bootstrap_servers}{cause}: "
        "run `amends infra up` or set KAFKA_BOOTSTRAP_SERVERS"
    )


def _ssl_context(settings: Settings) -> Any:
    import ssl

    return ssl.create_default_context(cafile=settings.kafka_ssl_cafile)


async def raw_body(message: Any) -> Any:
    # The scaffold decodes and validates each record itself (so a bad one is dead-lettered
    # with a reason); FastStream's JSON decoding would only cost time and fail on bad bytes.
    return message.body


async def lenient_parser(records: Any, original_parser: Callable[[Any], Awaitable[Any]]) -> Any:
    # FastStream's batch parser decodes every header as UTF-8 and fails the whole batch
    # on one that is not: the batch is NACKed, redelivered, fails again -- a poison pill
    # that stalls the partition for good. Parse a copy whose headers are made decodable,
    # and hand the handler the original records, so the scaffold dead-letters the bad one
    # (reason ``invalid_header``) with its original bytes.
    try:
        return await original_parser(records)
    except UnicodeDecodeError:
        import dataclasses

        batch = records if isinstance(records, tuple) else (records,)
        readable = tuple(
            dataclasses.replace(
                r,
                headers=[
                    (k, v.decode("utf-8", "replace").encode() if isinstance(v, bytes) else v)
                    for k, v in (r.headers or [])
                ],
            )
            for r in batch
        )
        message = await original_parser(readable if isinstance(records, tuple) else readable[0])
        message.raw_message = records
        return message


_PROMETHEUS: KafkaPrometheusMiddleware | None = None


def _prometheus_middleware() -> KafkaPrometheusMiddleware:
    # One per process: its metrics live on the default registry and may be created once.
    global _PROMETHEUS
    if _PROMETHEUS is None:
        _PROMETHEUS = KafkaPrometheusMiddleware(registry=metrics.registry, app_name="amends")
    return _PROMETHEUS


class TopicCreationError(Exception):
    """Kafka refused to create a topic (bad partition count or replication factor, no
    permission...): retrying will not help, the settings must change."""


TOPIC_READY_TIMEOUT_SECONDS = 30.0


async def ensure_topics(
    settings: Settings,
    names: Sequence[str],
    *,
    create: bool = True,
    ready_timeout: float = TOPIC_READY_TIMEOUT_SECONDS,
) -> None:
    """Create missing topics and return once every partition of them has a working leader,
    so no client meets a topic that is "not found in cluster metadata" or "not leader"
    while the broker is still setting it up. With ``create=False`` (topics managed
    elsewhere, e.g. Strimzi) only check Kafka answers."""
    from aiokafka.admin import AIOKafkaAdminClient, NewTopic
    from aiokafka.errors import TopicAlreadyExistsError

    admin = AIOKafkaAdminClient(**kafka_client_options(settings))
    try:
        await admin.start()
        if not create:
            await admin.list_topics()
            return
        wanted = [settings.topic(n) for n in names]
        existing = set(await admin.list_topics())
        missing = [n for n in wanted if n not in existing]
        response = None
        if missing:
            response = await admin.create_topics(
                [
                    NewTopic(n, settings.topic_partitions, settings.topic_replication_factor)
                    for n in missing
                ]
            )
        # Per-topic errors come back in the response, not as exceptions. Another replica
        # creating the same topic first is fine.
        refused = [
            f"{entry[0]}: {entry[2] if len(entry) > 2 and entry[2] else f'error {entry[1]}'}"
            for entry in (response.topic_errors if response else [])
            if entry[1] not in (0, TopicAlreadyExistsError.errno)
        ]
        if refused:
            raise TopicCreationError(
                "Kafka refused to create " + "; ".join(refused) + " (check "
                "AMENDS_TOPIC_PARTITIONS / AMENDS_TOPIC_REPLICATION_FACTOR)"
            )
        # Also topics another replica or service created a moment ago.
        async with asyncio.timeout(ready_timeout):
            await _wait_until_usable(settings, admin, wanted)
    finally:
        with contextlib.suppress(Exception):
            await admin.close()


async def _wait_until_usable(settings: Settings, admin: Any, topics: Sequence[str]) -> None:
    """Wait for the topics' metadata, then for every partition leader to answer a
    ListOffsets request: a new partition shows a leader in the metadata about a second
    before that leader takes reads and writes."""
    from aiokafka import AIOKafkaConsumer, TopicPartition

    while True:
        described = await admin.describe_topics(list(topics))
        if len(described) == len(topics) and all(
            topic["error_code"] == 0
            and topic["partitions"]
            and all(p["leader"] >= 0 and p["error_code"] == 0 for p in topic["partitions"])
            for topic in described
        ):
            break
        await asyncio.sleep(0.05)
    partitions = [
        TopicPartition(topic["topic"], partition["partition"])
        for topic in described
        for partition in topic["partitions"]
    ]
    consumer = AIOKafkaConsumer(
        **kafka_client_options(settings), group_id=None, enable_auto_commit=False
    )
    await consumer.start()
    try:
        await consumer.end_offsets(partitions)  # retries "not leader" quietly
    finally:
        await consumer.stop()
