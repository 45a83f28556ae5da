"""The scaffold every service is built from.

A service is a name, its settings, its store and a list of ``consume(spec, handler)``
registrations. The scaffold owns everything around the handler:

* decoding the CloudEvent and validating its schema (bad input: dead-letter, no retry);
* retries: an outage of Kafka or MongoDB is retried with backoff and, past the budget,
  the batch is NACKed (not committed) so Kafka redelivers it: nothing is lost;
  any other error is retried ``max_attempts`` times, then dead-lettered with the reason;
* publishing what the handler returns *after* its effects are stored, then committing
  the offsets (at-least-once; handlers are idempotent, so redelivery changes nothing twice);
* per-partition ordering (records of one partition are handled one after another);
* /healthz, /readyz, /metrics and the AsyncAPI document; JSON logs; graceful shutdown.

Handlers are plain async functions ``(Incoming) -> list[Outgoing]`` that need no broker.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections import defaultdict
from collections.abc import Awaitable, Callable, Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any

import orjson
from aiokafka.errors import (
    KafkaConnectionError,
    KafkaTimeoutError,
    LeaderNotAvailableError,
    NodeNotReadyError,
    NotLeaderForPartitionError,
    RequestTimedOutError,
    UnknownTopicOrPartitionError,
)
from faststream.asgi import AsgiFastStream, AsgiResponse, get
from faststream.kafka import KafkaBroker, KafkaMessage
from faststream.kafka.prometheus import KafkaPrometheusMiddleware
from faststream.middlewares import AckPolicy
from faststream.security import BaseSecurity, SASLPlaintext, SASLScram256, SASLScram512
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest
from pydantic import BaseModel
from pymongo.errors import (
    AutoReconnect,
    ConnectionFailure,
    NetworkTimeout,
    ServerSelectionTimeoutError,
)

from . import metrics
from .events import envelope
from .events.catalogue import EventSpec, dead_letter_topic
from .logs import configure_logging
from .settings import Settings
from .store import IndexSpec, Store

log = logging.getLogger(__name__)

VERSION = "0.1.0"

# Errors that say "the infrastructure is away", not "this message is bad".
OUTAGE_ERRORS: tuple[type[BaseException], ...] = (
    AutoReconnect,
    ConnectionFailure,
    NetworkTimeout,
    ServerSelectionTimeoutError,
    KafkaConnectionError,
    KafkaTimeoutError,
    NodeNotReadyError,
    # What aiokafka raises while a broker restarts or its metadata is not back yet
    # (topics exist: they were created at start-up); the message is not at fault.
    UnknownTopicOrPartitionError,
    NotLeaderForPartitionError,
    LeaderNotAvailableError,
    RequestTimedOutError,
    ConnectionError,
    asyncio.TimeoutError,
)


class Rejected(Exception):
    """Raised by a handler for input that can never succeed: dead-letter it, no retry."""

    def __init__(self, reason: str, detail: str) -> None:
        super().__init__(f"{reason}: {detail}")
        self.reason = reason
        self.detail = detail


@dataclass(frozen=True, slots=True)
class Incoming:
    """One consumed record: its CloudEvent, the validated payload, where it came from."""

    event: envelope.CloudEvent
    payload: Any  # the spec's schema instance, or None for source formats (intake)
    topic: str
    partition: int
    offset: int
    key: bytes | None
    timestamp_ms: int


@dataclass(frozen=True, slots=True)
class Outgoing:
    """An event a handler wants published once its effects are stored."""

    spec: EventSpec
    payload: BaseModel
    key: str
    event_id: str
    subject: str | None = None
    extensions: dict[str, str] = field(default_factory=dict)


Handler = Callable[[Incoming], Awaitable[Sequence[Outgoing]]]


@dataclass(frozen=True, slots=True)
class DeadLetter:
    reason: str
    detail: str
    attempts: int


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


def mongo_unreachable_message(settings: Settings, exc: BaseException | None = None) -> str:
    cause = f" ({type(exc).__name__})" if exc else ""
    return (
        f"MongoDB not reachable at {mongo_hosts(settings)}{cause}: "
        "run `amends infra up` or set MONGODB_URL"
    )


def mongo_hosts(settings: Settings) -> str:
    """The host list of the MongoDB URL, without credentials."""
    from pymongo.uri_parser import parse_uri

    try:
        nodes = parse_uri(settings.mongodb_url.get_secret_value())["nodelist"]
    except Exception:
        return "the configured URL"
    return ",".join(f"{host}:{port}" for host, port in nodes)


def _ssl_context(settings: Settings) -> Any:
    import ssl

    return ssl.create_default_context(cafile=settings.kafka_ssl_cafile)


async def _raw_body(message: Any) -> Any:
    # The scaffold decodes and validates each record itself (so a bad one is dead-lettered
    # with a reason); FastStream's JSON decoding would only cost time and fail on bad bytes.
    return message.body


async def _lenient_parser(records: Any, original_parser: Callable[[Any], Awaitable[Any]]) -> Any:
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


class Service:
    """One amends service: broker, store, consumers and HTTP endpoints."""

    def __init__(
        self,
        name: str,
        settings: Settings,
        *,
        indexes: Iterable[IndexSpec] = (),
        store: Store | None = None,
    ) -> None:
        self.name = name
        self.settings = settings
        self.store = store or Store(settings, indexes)
        self.broker = build_broker(settings, client_id=f"amends-{name}")
        self._startup: list[Callable[[], Awaitable[None]]] = []
        self._shutdown: list[Callable[[], Awaitable[None]]] = []
        self._background: list[Callable[[], Awaitable[None]]] = []
        self._tasks: list[asyncio.Task[None]] = []
        self._routes: list[tuple[str, Any]] = []
        self._topics: set[str] = set()
        self._consumers: dict[str, tuple[EventSpec, Handler]] = {}
        self._subscribed = False
        metrics.service_info.labels(name, VERSION).set(1)

    # -- registration -----------------------------------------------------------------

    def consume(self, spec: EventSpec, handler: Handler) -> None:
        """Handle every record of ``spec.topic`` with ``handler``, in per-partition order."""
        if self._subscribed:
            raise RuntimeError("consume() must be called before the service starts")
        self._consumers[self.settings.topic(spec.topic)] = (spec, handler)
        self._topics.update({spec.topic, dead_letter_topic(spec.topic)})
        self.broker.publisher(
            self.settings.topic(dead_letter_topic(spec.topic)),
            title=f"{self.name}:{spec.topic}.dlq",
            description="Records that failed validation or handling.",
        )

    def _subscribe(self) -> None:
        """One Kafka consumer for all the service's topics: one group join, one rebalance."""
        if self._subscribed or not self._consumers:
            return
        self._subscribed = True
        topics = sorted(self._consumers)

        @self.broker.subscriber(
            *topics,
            group_id=self.settings.group_id(self.name),
            batch=True,
            max_records=self.settings.batch_max_records,
            batch_timeout_ms=self.settings.batch_timeout_ms,
            auto_offset_reset="earliest",
            ack_policy=AckPolicy.NACK_ON_ERROR,
            parser=_lenient_parser,
            decoder=_raw_body,
            title=f"{self.name}:consumer",
            description="Consumes: "
            + ", ".join(spec.topic for spec, _ in self._consumers.values()),
        )
        async def subscriber(body: Any, message: KafkaMessage) -> None:
            records = message.raw_message
            await self.process_batch(records if isinstance(records, Sequence) else [records])

    def declare_publisher(self, spec: EventSpec) -> None:
        """List an output topic in the AsyncAPI document (and create it at start-up)."""
        self._topics.add(spec.topic)
        self.broker.publisher(
            self.settings.topic(spec.topic),
            title=f"{self.name}:{spec.topic}",
            description=spec.description,
            schema=spec.schema,
        )

    def on_startup(self, fn: Callable[[], Awaitable[None]]) -> None:
        self._startup.append(fn)

    def on_shutdown(self, fn: Callable[[], Awaitable[None]]) -> None:
        self._shutdown.append(fn)

    def background(self, fn: Callable[[], Awaitable[None]]) -> None:
        """A loop that runs while the service runs (timers, sweeps); cancelled at shutdown."""
        self._background.append(fn)

    def route(self, path: str, app: Any) -> None:
        self._routes.append((path, app))

    # -- processing -------------------------------------------------------------------

    async def process_batch(self, records: Sequence[Any]) -> None:
        """Handle one batch; raises (so the batch is NACKed) only on an outage."""
        by_partition: dict[tuple[str, int], list[Any]] = defaultdict(list)
        for record in records:
            by_partition[(record.topic, record.partition)].append(record)
        for (topic, _), recs in by_partition.items():
            spec = self._consumers[topic][0]
            metrics.batch_size.labels(self.name, spec.topic).observe(len(recs))
        outgoing_lists = await asyncio.gather(
            *(
                self._process_partition(*self._consumers[topic], recs)
                for (topic, _), recs in by_partition.items()
            )
        )
        await self.publish([o for outs in outgoing_lists for o in outs])
        for (topic, partition), recs in by_partition.items():
            self._record_lag(self._consumers[topic][0].topic, partition, recs[-1])

    async def _process_partition(
        self, spec: EventSpec, handler: Handler, records: Sequence[Any]
    ) -> list[Outgoing]:
        outgoing: list[Outgoing] = []
        for record in records:
            started = time.perf_counter()
            result = await self._handle_record(spec, handler, record)
            metrics.handling_seconds.labels(self.name, spec.topic).observe(
                time.perf_counter() - started
            )
            if isinstance(result, DeadLetter):
                await self.dead_letter(spec, record, result)
                metrics.messages_processed.labels(self.name, spec.topic, "dead_lettered").inc()
            else:
                outgoing.extend(result)
                metrics.messages_processed.labels(self.name, spec.topic, "ok").inc()
        return outgoing

    async def _handle_record(
        self, spec: EventSpec, handler: Handler, record: Any
    ) -> Sequence[Outgoing] | DeadLetter:
        try:
            incoming = self.decode(spec, record)
        except envelope.EnvelopeError as exc:
            return DeadLetter(exc.reason, exc.detail, 0)
        attempt = 0
        outage_wait = self.settings.retry_backoff_seconds
        outage_started: float | None = None
        while True:
            attempt += 1
            try:
                return await handler(incoming)
            except Rejected as exc:
                return DeadLetter(exc.reason, exc.detail, attempt)
            except OUTAGE_ERRORS as exc:
                # Not the message's fault: wait and retry; past the budget, give the batch
                # back to Kafka (NACK) instead of dead-lettering good messages.
                metrics.retries.labels(self.name, spec.topic, "outage").inc()
                outage_started = outage_started or time.monotonic()
                if time.monotonic() - outage_started > 60:
                    log.error("outage outlasted the retry budget; batch will be redelivered")
                    raise
                log.warning("outage while handling %s: %r; retrying", spec.topic, exc)
                await asyncio.sleep(outage_wait)
                outage_wait = min(outage_wait * 2, self.settings.outage_backoff_max_seconds)
                attempt -= 1
            except Exception as exc:
                metrics.retries.labels(self.name, spec.topic, "error").inc()
                if attempt >= self.settings.max_attempts:
                    log.exception("handler failed %d times; dead-lettering", attempt)
                    return DeadLetter(
                        "handler_error", f"{type(exc).__name__}: {exc}"[:1000], attempt
                    )
                await asyncio.sleep(self.settings.retry_backoff_seconds * 2 ** (attempt - 1))

    def decode(self, spec: EventSpec, record: Any) -> Incoming:
        headers = envelope.decode_headers(record.headers or [])
        event = envelope.parse(
            record.value, headers, spec.event_type if spec.schema is not None else None
        )
        payload = event.model(spec.schema) if spec.schema is not None else None
        return Incoming(
            event=event,
            payload=payload,
            topic=record.topic,
            partition=record.partition,
            offset=record.offset,
            key=record.key,
            timestamp_ms=record.timestamp,
        )

    # -- output -----------------------------------------------------------------------

    async def publish(self, outgoing: Sequence[Outgoing]) -> None:
        """Publish in order and wait for every acknowledgement."""
        if not outgoing:
            return
        sends = []
        for item in outgoing:
            event = envelope.encode(
                item.payload,
                event_type=item.spec.event_type,
                source=f"/amends/{self.name}",
                event_id=item.event_id,
                subject=item.subject,
                extensions=item.extensions,
            )
            sends.append(
                self.broker.publish(
                    event.data,
                    self.settings.topic(item.spec.topic),
                    key=item.key.encode(),
                    headers=event.headers(),
                )
            )
            metrics.events_published.labels(self.name, item.spec.topic).inc()
        await asyncio.gather(*sends)

    async def dead_letter(self, spec: EventSpec, record: Any, letter: DeadLetter) -> None:
        """Send the original bytes and headers to ``<topic>.dlq`` with the reason."""
        failed_at = envelope.utcnow()
        headers = {name: value.decode("utf-8", "replace") for name, value in record.headers or []}
        headers.update(
            {
                "x-dlq-reason": letter.reason,
                "x-dlq-detail": letter.detail[:2000],
                "x-dlq-service": self.name,
                "x-dlq-original-topic": record.topic,
                "x-dlq-original-partition": str(record.partition),
                "x-dlq-original-offset": str(record.offset),
                "x-dlq-attempts": str(letter.attempts),
                "x-dlq-failed-at": failed_at.isoformat(),
            }
        )
        await self.broker.publish(
            record.value or b"",
            self.settings.topic(dead_letter_topic(spec.topic)),
            key=record.key,
            headers=headers,
        )
        metrics.dead_letters.labels(self.name, spec.topic, letter.reason).inc()
        log.warning(
            "dead-lettered %s[%d]@%d: %s: %s",
            record.topic,
            record.partition,
            record.offset,
            letter.reason,
            letter.detail[:300],
        )
        # A queryable copy for `amends stats` and the run summary; Kafka's copy is the truth.
        try:
            await self.store["dead_letters"].update_one(
                {"_id": f"{record.topic}:{record.partition}:{record.offset}"},
                {
                    "$setOnInsert": {
                        "topic": record.topic,
                        "partition": record.partition,
                        "offset": record.offset,
                        "service": self.name,
                        "reason": letter.reason,
                        "detail": letter.detail[:2000],
                        "event_id": headers.get("ce_id"),
                        "failed_at": failed_at,
                    }
                },
                upsert=True,
            )
        except OUTAGE_ERRORS:
            log.warning("dead letter recorded in Kafka only; database unreachable")

    def _record_lag(self, topic: str, partition: int, last_record: Any) -> None:
        # Best effort, after the batch was handled and published: a partition revoked by
        # a rebalance meanwhile has no high-water mark, and a metric must never turn a
        # handled batch into a NACKed (redelivered) one.
        from aiokafka import TopicPartition

        wanted = TopicPartition(last_record.topic, partition)
        consumer = None
        for sub in self.broker.subscribers:
            candidate = getattr(sub, "consumer", None)
            try:
                if candidate is not None and wanted in candidate.assignment():
                    consumer = candidate
                    break
            except Exception:
                continue
        if consumer is None:
            return
        try:
            highwater = consumer.highwater(wanted)
        except Exception:  # AssertionError: "Partition is not assigned" (revoked)
            return
        if highwater is not None:
            metrics.consumer_lag.labels(self.name, topic, str(partition)).set(
                max(0, highwater - last_record.offset - 1)
            )

    # -- lifecycle --------------------------------------------------------------------

    async def start(self) -> None:
        self._subscribe()
        await self._wait_for_dependencies()
        for fn in self._startup:
            await fn()

    async def _wait_for_dependencies(self) -> None:
        """Create topics and indexes, waiting (with backoff) while Kafka or MongoDB do not
        answer yet: a service started before its servers, or restarted during an outage,
        comes up when they do instead of exiting."""
        settings = self.settings
        deadline = time.monotonic() + settings.startup_wait_seconds
        delay = settings.retry_backoff_seconds
        kafka_done = mongo_done = False
        while True:
            problems = []
            if not kafka_done:
                try:
                    await ensure_topics(
                        settings, sorted(self._topics), create=settings.create_topics
                    )
                    kafka_done = True
                except TopicCreationError:
                    raise  # the settings are wrong; waiting will not fix them
                except Exception as exc:
                    problems.append(kafka_unreachable_message(settings, exc))
            if not mongo_done:
                try:
                    await self.store.connect()
                    mongo_done = True
                except Exception as exc:
                    problems.append(mongo_unreachable_message(settings, exc))
            if not problems:
                return
            if time.monotonic() + delay > deadline:
                raise RuntimeError(
                    f"{self.name} gave up after {settings.startup_wait_seconds:.0f} s "
                    f"(AMENDS_STARTUP_WAIT_SECONDS): " + "; ".join(problems)
                )
            log.warning("%s waiting at start-up: %s", self.name, "; ".join(problems))
            await asyncio.sleep(delay)
            delay = min(delay * 2, settings.outage_backoff_max_seconds)

    async def started(self) -> None:
        for fn in self._background:
            self._tasks.append(asyncio.create_task(self._run_forever(fn)))

    async def stop(self) -> None:
        for task in self._tasks:
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        self._tasks.clear()
        for fn in self._shutdown:
            await fn()
        await self.store.close()

    async def _run_forever(self, fn: Callable[[], Awaitable[None]]) -> None:
        while True:
            try:
                await fn()
                return
            except asyncio.CancelledError:
                raise
            except Exception:
                log.exception("background loop %s failed; restarting in 1 s", fn.__name__)
                await asyncio.sleep(1)

    async def readiness(self) -> dict[str, bool]:
        async def check(coro: Awaitable[Any]) -> bool:
            try:
                return bool(await asyncio.wait_for(coro, timeout=2))
            except Exception:
                return False

        kafka_ok, mongo_ok = await asyncio.gather(
            check(self.broker.ping(timeout=2)), check(self.store.ping())
        )
        return {"kafka": kafka_ok, "mongodb": mongo_ok}

    def asgi(self) -> AsgiFastStream:
        self._subscribe()
        service = self

        @get(include_in_schema=False)
        async def healthz(scope: Any) -> AsgiResponse:
            return AsgiResponse(
                b'{"status":"ok"}', 200, headers={"content-type": "application/json"}
            )

        @get(include_in_schema=False)
        async def readyz(scope: Any) -> AsgiResponse:
            checks = await service.readiness()
            ready = all(checks.values())
            body = orjson.dumps({"status": "ready" if ready else "not_ready", **checks})
            return AsgiResponse(
                body, 200 if ready else 503, headers={"content-type": "application/json"}
            )

        @get(include_in_schema=False)
        async def metrics_endpoint(scope: Any) -> AsgiResponse:
            return AsgiResponse(
                generate_latest(metrics.registry),
                200,
                headers={"content-type": CONTENT_TYPE_LATEST},
            )

        return AsgiFastStream(
            self.broker,
            asgi_routes=[
                ("/healthz", healthz),
                ("/readyz", readyz),
                ("/metrics", metrics_endpoint),
                *self._routes,
            ],
            asyncapi_path="/asyncapi",
            on_startup=[self.start],
            after_startup=[self.started],
            on_shutdown=[self.stop],
        )


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


def run(service: Service) -> None:
    """Serve one service with uvicorn until SIGTERM/SIGINT (graceful shutdown)."""
    import uvicorn

    settings = service.settings
    configure_logging(service.name, settings.log_level, settings.log_json)
    uvicorn.run(
        service.asgi(),
        host=settings.http_host,
        port=settings.http_port,
        log_config=None,
        access_log=False,
        loop="auto",
        lifespan="on",
        timeout_graceful_shutdown=20,
    )
