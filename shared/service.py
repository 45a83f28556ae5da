"""The scaffold every service is built from.

A service is a name, its settings, its store and a list of
``consume_batch(spec, handler)`` registrations. One Kafka consumer takes polls of all
the service's topics; each topic's records of a poll go to its handler as one unit
(``shared.batch``: the contract, retries, bisecting, dead letters). After the handlers'
writes, the scaffold publishes what they returned, then the offsets are committed
(at-least-once delivery; guarded writes and deterministic event ids make the effects
exactly once). It also serves /healthz, /readyz, /metrics and the AsyncAPI document,
JSON logs and graceful shutdown.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable, Iterable, Sequence
from typing import Any

import orjson
from aiokafka.errors import KafkaConnectionError, OutOfOrderSequenceNumber
from faststream.asgi import AsgiFastStream, AsgiResponse, get
from faststream.kafka import KafkaMessage
from faststream.middlewares import AckPolicy
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest

from . import metrics
from .batch import (
    OUTAGE_ERRORS,
    BatchHandler,
    DeadLetter,
    Handled,
    Incoming,
    Outgoing,
    PollRunner,
    Rejected,
    group_by,
)
from .deadletter import DeadLetters
from .events import envelope
from .events.catalogue import EventSpec, dead_letter_topic
from .kafka import (
    TopicCreationError,
    build_broker,
    current_producer,
    ensure_topics,
    kafka_unreachable_message,
    lenient_parser,
    raw_body,
    replace_producer,
)
from .logs import configure_logging
from .settings import Settings
from .store import IndexSpec, Store, mongo_unreachable_message

__all__ = [
    "OUTAGE_ERRORS",
    "BatchHandler",
    "DeadLetter",
    "Handled",
    "Incoming",
    "Outgoing",
    "Rejected",
    "Service",
    "group_by",
    "run",
]

log = logging.getLogger(__name__)

VERSION = "0.1.0"


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
        self.dead_letters = DeadLetters(name, settings, self.broker, self.store)
        self.polls = PollRunner(name, settings, self.dead_letters.send)
        self._startup: list[Callable[[], Awaitable[None]]] = []
        self._shutdown: list[Callable[[], Awaitable[None]]] = []
        self._background: list[Callable[[], Awaitable[None]]] = []
        self._tasks: list[asyncio.Task[None]] = []
        self._routes: list[tuple[str, Any]] = []
        self._topics: set[str] = set()
        self._consumers: dict[str, tuple[EventSpec, BatchHandler]] = {}
        self._subscribed = False
        self._producer_lock = asyncio.Lock()
        metrics.service_info.labels(name, VERSION).set(1)

    # -- registration -----------------------------------------------------------------

    def consume_batch(self, spec: EventSpec, handler: BatchHandler) -> None:
        """Handle each poll's records of ``spec.topic`` with ``handler``, as one unit."""
        if self._subscribed:
            raise RuntimeError("consume_batch() must be called before the service starts")
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
            parser=lenient_parser,
            decoder=raw_body,
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
        """Handle one poll: each topic's records by its handler (topics side by side),
        then publish every output. Raises (so the poll is NACKed) only on an outage."""
        by_topic = group_by(records, lambda r: r.topic)
        outgoing_lists = await asyncio.gather(
            *(self.polls.run(*self._consumers[topic], recs) for topic, recs in by_topic.items())
        )
        await self.publish([o for outs in outgoing_lists for o in outs])
        for topic, recs in by_topic.items():
            last: dict[int, Any] = {r.partition: r for r in recs}
            for partition, record in last.items():
                self._record_lag(self._consumers[topic][0].topic, partition, record)

    async def dead_letter(self, spec: EventSpec, record: Any, letter: DeadLetter) -> None:
        await self.dead_letters.send(spec, record, letter)

    # -- output -----------------------------------------------------------------------

    async def publish(self, outgoing: Sequence[Outgoing]) -> None:
        """Publish in order and wait for every acknowledgement."""
        if not outgoing:
            return
        producer = current_producer(self.broker)
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
        results = await asyncio.gather(*sends, return_exceptions=True)
        errors = [r for r in results if isinstance(r, BaseException)]
        if any(isinstance(e, OutOfOrderSequenceNumber) for e in errors):
            await self._replace_producer(producer)
            # An outage as far as the poll is concerned: retried, then redelivered; the
            # fresh producer sends the same event ids again.
            raise KafkaConnectionError("producer replaced after OutOfOrderSequenceNumber")
        if errors:
            raise errors[0]

    async def _replace_producer(self, failed: Any) -> None:
        async with self._producer_lock:  # publishes failing at once: the first one swaps
            if await replace_producer(self.broker, failed):
                log.warning("%s: Kafka refused the producer's sequence; replaced it", self.name)
                metrics.producer_replacements.labels(self.name).inc()

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

    async def stop_background(self) -> None:
        """Shutdown, first phase (before the broker stops): end the background loops."""
        for task in self._tasks:
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        self._tasks.clear()

    async def stop(self) -> None:
        """Shutdown, last phase: after the broker stopped, so after its in-flight poll
        (which FastStream lets finish, up to its graceful timeout) wrote, published and
        committed -- closing the store before would fail that poll half way."""
        await self.stop_background()
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
            on_shutdown=[self.stop_background],
            after_shutdown=[self.stop],
        )


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
