"""The batch-handler contract: a handler takes one Kafka poll of a topic as one unit.

A handler is ``(records) -> Handled``: it gets the poll's valid records of its topic (in
offset order per partition, so per key), loads the state it needs with one ``$in`` read
per collection, decides in memory, writes with at most one unordered ``bulk_write`` per
collection, and returns the events to publish plus the records it rejects. The scaffold
(``PollRunner``) owns everything around it:

* decoding and validating every record first: one that fails goes to the dead-letter
  topic with its reason and the rest of the poll goes on;
* an outage of Kafka or MongoDB retries the whole poll with backoff; past the budget the
  poll is NACKed (not committed) and Kafka redelivers it. Handlers write with guarded,
  idempotent updates and deterministic event ids, so a retried poll changes nothing twice;
* any other error retries the poll ``max_attempts`` times, then bisects it until the one
  record at fault is found and dead-lettered with the reason: one poison record never
  holds back, or takes down, the records polled with it;
* publishing what the handlers return after their writes, then committing the offsets.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections import defaultdict
from collections.abc import Awaitable, Callable, Hashable, Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any, TypeVar

from aiokafka.errors import (
    KafkaConnectionError,
    KafkaTimeoutError,
    LeaderNotAvailableError,
    NodeNotReadyError,
    NotLeaderForPartitionError,
    RequestTimedOutError,
    UnknownTopicOrPartitionError,
)
from pydantic import BaseModel
from pymongo.errors import (
    AutoReconnect,
    ConnectionFailure,
    NetworkTimeout,
    ServerSelectionTimeoutError,
)

from . import metrics
from .events import envelope
from .events.catalogue import EventSpec
from .settings import Settings

log = logging.getLogger(__name__)

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

# How long an outage may last before the poll is given back to Kafka (NACK).
OUTAGE_BUDGET_SECONDS = 60.0


class Rejected(Exception):
    """Input that can never succeed: dead-letter it, no retry."""

    def __init__(self, reason: str, detail: str, attempts: int = 1) -> None:
        super().__init__(f"{reason}: {detail}")
        self.reason = reason
        self.detail = detail
        self.attempts = attempts


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
    record: Any = None  # the consumer record, for dead-lettering its original bytes


@dataclass(frozen=True, slots=True)
class Outgoing:
    """An event a handler wants published once its effects are stored."""

    spec: EventSpec
    payload: BaseModel
    key: str
    event_id: str
    subject: str | None = None
    extensions: dict[str, str] = field(default_factory=dict)


@dataclass(slots=True)
class Handled:
    """What a handler made of its records: events to publish, records to dead-letter."""

    outgoing: list[Outgoing] = field(default_factory=list)
    rejected: list[tuple[Incoming, Rejected]] = field(default_factory=list)

    def extend(self, other: Handled) -> None:
        self.outgoing.extend(other.outgoing)
        self.rejected.extend(other.rejected)


@dataclass(frozen=True, slots=True)
class DeadLetter:
    reason: str
    detail: str
    attempts: int


BatchHandler = Callable[[Sequence[Incoming]], Awaitable[Handled]]
DeadLetterSink = Callable[[EventSpec, Any, DeadLetter], Awaitable[None]]

K = TypeVar("K", bound=Hashable)
R = TypeVar("R")


def group_by(records: Iterable[R], key: Callable[[R], K]) -> dict[K, list[R]]:
    """Records by ``key``, each group in the order the records came (offset order)."""
    groups: dict[K, list[R]] = defaultdict(list)
    for record in records:
        groups[key(record)].append(record)
    return dict(groups)


def decode(spec: EventSpec, record: Any) -> Incoming:
    """The record's CloudEvent and payload; raises ``envelope.EnvelopeError``."""
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
        record=record,
    )


T = TypeVar("T")


async def retrying(
    call: Callable[[], Awaitable[T]],
    settings: Settings,
    *,
    attempts: int,
    count_retry: Callable[[str], None],
) -> T | Exception:
    """``call()`` until it succeeds. An outage is waited out with backoff (and re-raised
    past ``OUTAGE_BUDGET_SECONDS``, so the poll is NACKed); ``Rejected`` is returned at
    once; any other error is retried ``attempts`` times, then returned."""
    attempt = 0
    outage_wait = settings.retry_backoff_seconds
    outage_started: float | None = None
    while True:
        attempt += 1
        try:
            return await call()
        except Rejected as exc:
            exc.attempts = attempt
            return exc
        except OUTAGE_ERRORS as exc:
            # Not the records' fault: wait and retry; past the budget, give the poll back
            # to Kafka (NACK) instead of dead-lettering good records.
            count_retry("outage")
            outage_started = outage_started or time.monotonic()
            if time.monotonic() - outage_started > OUTAGE_BUDGET_SECONDS:
                log.error("outage outlasted the retry budget; poll will be redelivered")
                raise
            log.warning("outage: %r; retrying", exc)
            await asyncio.sleep(outage_wait)
            outage_wait = min(outage_wait * 2, settings.outage_backoff_max_seconds)
            attempt -= 1
        except Exception as exc:
            count_retry("error")
            if attempt >= attempts:
                return exc
            log.warning("handler error (attempt %d of %d): %r", attempt, attempts, exc)
            await asyncio.sleep(settings.retry_backoff_seconds * 2 ** (attempt - 1))


def _handler_error(exc: Exception, attempts: int) -> Rejected:
    if isinstance(exc, Rejected):
        return exc
    return Rejected("handler_error", f"{type(exc).__name__}: {exc}"[:1000], attempts)


class PollRunner:
    """Runs one topic's handler over one poll with the retry, bisect and dead-letter
    rules above. Needs no broker: dead letters go to ``dead_letter``, outputs are
    returned for the caller to publish."""

    def __init__(self, service: str, settings: Settings, dead_letter: DeadLetterSink) -> None:
        self.service = service
        self.settings = settings
        self.dead_letter = dead_letter

    async def run(
        self, spec: EventSpec, handler: BatchHandler, records: Sequence[Any]
    ) -> list[Outgoing]:
        started = time.perf_counter()
        metrics.batch_size.labels(self.service, spec.topic).observe(len(records))
        valid: list[Incoming] = []
        for record in records:
            try:
                valid.append(decode(spec, record))
            except envelope.EnvelopeError as exc:
                await self._dead_letter(spec, record, DeadLetter(exc.reason, exc.detail, 0))
        handled = await self._handle(spec, handler, valid) if valid else Handled()
        for incoming, rejection in handled.rejected:
            letter = DeadLetter(rejection.reason, rejection.detail, rejection.attempts)
            await self._dead_letter(spec, incoming.record, letter)
        ok = len(valid) - len(handled.rejected)
        metrics.messages_processed.labels(self.service, spec.topic, "ok").inc(ok)
        # Every record of the poll waited for the whole poll: that is its handling time.
        elapsed = time.perf_counter() - started
        histogram = metrics.handling_seconds.labels(self.service, spec.topic)
        for _ in records:
            histogram.observe(elapsed)
        return handled.outgoing

    async def _dead_letter(self, spec: EventSpec, record: Any, letter: DeadLetter) -> None:
        await self.dead_letter(spec, record, letter)
        metrics.messages_processed.labels(self.service, spec.topic, "dead_lettered").inc()

    async def _handle(
        self,
        spec: EventSpec,
        handler: BatchHandler,
        records: Sequence[Incoming],
        *,
        whole_poll: bool = True,
    ) -> Handled:
        """The handler's result for ``records``; on a repeated error, bisect. The whole
        poll and a single record get ``max_attempts``; a half, found while bisecting for
        an error that already repeated, gets one."""
        attempts = self.settings.max_attempts if whole_poll or len(records) == 1 else 1
        result = await retrying(
            lambda: handler(records),
            self.settings,
            attempts=attempts,
            count_retry=lambda kind: metrics.retries.labels(self.service, spec.topic, kind).inc(),
        )
        if isinstance(result, Handled):
            return result
        if len(records) == 1:
            log.error("%s@%d failed; dead-lettering: %r", spec.topic, records[0].offset, result)
            return Handled(rejected=[(records[0], _handler_error(result, attempts))])
        # Halves in order, so the first half's effects land before the second half's;
        # every half is retried in full, which the handlers' guarded writes make safe.
        middle = len(records) // 2
        handled = await self._handle(spec, handler, records[:middle], whole_poll=False)
        handled.extend(await self._handle(spec, handler, records[middle:], whole_poll=False))
        return handled
