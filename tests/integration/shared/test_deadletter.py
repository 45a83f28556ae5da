"""Dead letters against the real broker and database: the queryable copy is stored even
when the database is away for a moment (retried like an outage), and a record dead-lettered
twice (its poll redelivered) is stored once."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from pymongo.errors import AutoReconnect

from shared.batch import DeadLetter
from shared.deadletter import DeadLetters
from shared.events import catalogue
from shared.events.catalogue import dead_letter_topic
from shared.kafka import build_broker, ensure_topics
from shared.settings import Settings
from shared.store import Store
from tests.support import consume_all


@dataclass
class Record:
    topic: str
    partition: int
    offset: int
    value: bytes
    key: bytes | None = b"k"
    headers: tuple[tuple[str, bytes], ...] = (("ce_id", b"intake-7"),)


class AwayAtFirst:
    """The dead_letters collection of a database that refuses the first ``failures``
    writes as unreachable, then is back."""

    def __init__(self, store: Store, failures: int) -> None:
        self.store = store
        self.failures = failures

    def __getitem__(self, name: str) -> Any:
        return self if name == "dead_letters" else self.store[name]

    async def update_one(self, *args: Any, **kwargs: Any) -> Any:
        if self.failures:
            self.failures -= 1
            raise AutoReconnect("connection refused")
        return await self.store["dead_letters"].update_one(*args, **kwargs)


async def test_the_copy_waits_for_the_database_and_is_stored_once(
    settings: Settings, store: Store
) -> None:
    spec = catalogue.INTAKE
    await ensure_topics(settings, [dead_letter_topic(spec.topic)])
    broker = build_broker(settings, "dlq-test")
    await broker.connect()
    away = AwayAtFirst(store, failures=2)
    letters = DeadLetters("ingest", settings, broker, away)  # type: ignore[arg-type]
    record = Record(settings.topic(spec.topic), 1, 7, b"\xff not utf-8")
    try:
        await letters.send(spec, record, DeadLetter("bad_encoding", "payload is not utf-8", 0))
        assert away.failures == 0  # refused twice, then written
        await letters.send(spec, record, DeadLetter("bad_encoding", "payload is not utf-8", 0))
    finally:
        await broker.stop()
    copies = [d async for d in store["dead_letters"].find({})]
    assert len(copies) == 1
    assert copies[0]["event_id"] == "intake-7" and copies[0]["reason"] == "bad_encoding"
    sent = await consume_all(settings, dead_letter_topic(spec.topic), expect=2)
    assert {dict(r.headers)["x-dlq-reason"] for r in sent} == {b"bad_encoding"}
