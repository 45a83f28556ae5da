"""Dead letters: a record that cannot be handled goes, with its original bytes and
headers, to ``<topic>.dlq`` with the reason in ``x-dlq-*`` headers; a queryable copy goes
to the ``dead_letters`` collection for ``amends stats`` and ``amends dlq``."""

from __future__ import annotations

import logging
from typing import Any

from faststream.kafka import KafkaBroker

from . import metrics
from .batch import DeadLetter, retrying
from .events import envelope
from .events.catalogue import EventSpec, dead_letter_topic
from .settings import Settings
from .store import Store

log = logging.getLogger(__name__)


class DeadLetters:
    """Sends one service's dead letters; ``send`` is the scaffold's dead-letter sink."""

    def __init__(self, service: str, settings: Settings, broker: KafkaBroker, store: Store) -> None:
        self.service = service
        self.settings = settings
        self.broker = broker
        self.store = store

    async def send(self, spec: EventSpec, record: Any, letter: DeadLetter) -> None:
        """Send the original bytes and headers to ``<topic>.dlq`` with the reason."""
        failed_at = envelope.utcnow()
        headers = {name: value.decode("utf-8", "replace") for name, value in record.headers or []}
        headers.update(
            {
                "x-dlq-reason": letter.reason,
                "x-dlq-detail": letter.detail[:2000],
                "x-dlq-service": self.service,
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
        metrics.dead_letters.labels(self.service, spec.topic, letter.reason).inc()
        log.warning(
            "dead-lettered %s[%d]@%d: %s: %s",
            record.topic,
            record.partition,
            record.offset,
            letter.reason,
            letter.detail[:300],
        )
        # The queryable copy that `amends dlq`, `amends stats` and the run summary read.
        # While the database is away it is retried like any outage (then the poll is
        # NACKed and sent again, the Kafka copy twice): a dead letter only in Kafka
        # looked like a complaint lost to everything that reads the database.
        copy = {
            "topic": record.topic,
            "partition": record.partition,
            "offset": record.offset,
            "service": self.service,
            "reason": letter.reason,
            "detail": letter.detail[:2000],
            "event_id": headers.get("ce_id"),
            "failed_at": failed_at,
        }

        async def record_copy() -> None:
            await self.store["dead_letters"].update_one(
                {"_id": f"{record.topic}:{record.partition}:{record.offset}"},
                {"$setOnInsert": copy},
                upsert=True,
            )

        outcome = await retrying(
            record_copy,
            self.settings,
            attempts=self.settings.max_attempts,
            count_retry=lambda kind: metrics.retries.labels(self.service, spec.topic, kind).inc(),
        )
        if isinstance(outcome, Exception):
            raise outcome
