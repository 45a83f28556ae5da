"""The service scaffold against the real broker and database: output after the handler,
dead letters with reasons and original bytes, retries, per-partition order."""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from typing import Any

from aiokafka.errors import OutOfOrderSequenceNumber

from shared import metrics
from shared.events import catalogue, envelope
from shared.events.pipeline import ComplaintReceived
from shared.service import Handled, Incoming, Outgoing, Rejected, Service
from shared.settings import Settings
from tests.support import complaint_received, consume_all, produce, running


def received(case_id: str, text: str) -> ComplaintReceived:
    return complaint_received(case_id, text)


def headers_for(event_id: str) -> dict[str, str]:
    return envelope.CloudEvent(
        type=catalogue.RECEIVED.event_type, source="/tests", id=event_id, data=b""
    ).headers()


class EchoHandler:
    """A batch handler: forwards each event to another topic; fails on demand (a poll
    holding "always fails" always raises, one holding "fails once" raises the first time)."""

    def __init__(self) -> None:
        self.seen: list[str] = []
        self.attempts: dict[str, int] = {}

    async def __call__(self, records: Sequence[Incoming]) -> Handled:
        texts = [incoming.payload.contact.text for incoming in records]
        for text in texts:
            self.attempts[text] = self.attempts.get(text, 0) + 1
        if "always fails" in texts:
            raise RuntimeError("boom")
        if "fails once" in texts and self.attempts["fails once"] == 1:
            raise RuntimeError("transient bug")
        handled = Handled()
        for incoming, text in zip(records, texts, strict=True):
            if text == "reject me":
                reason = Rejected("not_a_complaint", "the text asked to be rejected")
                handled.rejected.append((incoming, reason))
                continue
            self.seen.append(text)
            payload: ComplaintReceived = incoming.payload
            handled.outgoing.append(
                Outgoing(
                    spec=catalogue.CLASSIFIED,  # any other topic: the test reads it back
                    payload=payload,
                    key=payload.case_id,
                    event_id=envelope.derived_id(incoming.event.id, "echo"),
                )
            )
        return handled


async def test_outputs_dead_letters_and_retries(settings: Settings, store: object) -> None:
    handler = EchoHandler()
    service = Service("scaffold-test", settings)
    service.consume_batch(catalogue.RECEIVED, handler)
    service.declare_publisher(catalogue.CLASSIFIED)
    async with running(service):
        topic = catalogue.RECEIVED.topic
        for n, text in enumerate(["ok 1", "reject me", "always fails", "fails once", "ok 2"]):
            body = received(f"case-{n}", text).model_dump_json().encode()
            await produce(settings, topic, body, headers=headers_for(f"e{n}"), key=b"same-key")
        await produce(settings, topic, b"{not json", headers=headers_for("bad-json"), key=b"k")
        await produce(settings, topic, b"{}", headers={"ce_id": "x"}, key=b"k")

        outputs = await consume_all(settings, catalogue.CLASSIFIED.topic, expect=3)
        dead = await consume_all(settings, topic + ".dlq", expect=4)

    assert [r.value for r in outputs] and handler.seen == ["ok 1", "fails once", "ok 2"]
    reasons = {dict(r.headers)["x-dlq-reason"].decode() for r in dead}
    assert reasons == {"not_a_complaint", "handler_error", "invalid_schema", "not_a_cloudevent"}
    by_reason = {dict(r.headers)["x-dlq-reason"].decode(): r for r in dead}
    assert by_reason["invalid_schema"].value == b"{not json"  # the original bytes
    # Retried, then bisected out of whatever poll it came in: at least max_attempts tries.
    assert handler.attempts["always fails"] >= settings.max_attempts
    letters = await store["dead_letters"].count_documents({})  # type: ignore[index]
    assert letters == 4


async def test_outage_redelivers_instead_of_dead_lettering(
    settings: Settings, store: object
) -> None:
    calls: list[str] = []

    async def flaky(records: Sequence[Incoming]) -> Handled:
        calls.extend(incoming.event.id for incoming in records)
        if len(calls) <= 2:
            raise ConnectionError("database unreachable")
        return Handled()

    service = Service("outage-test", settings)
    service.consume_batch(catalogue.RECEIVED, flaky)
    async with running(service):
        body = received("case-x", "hello").model_dump_json().encode()
        await produce(settings, catalogue.RECEIVED.topic, body, headers=headers_for("o1"))
        for _ in range(100):
            if len(calls) >= 3:
                break
            await asyncio.sleep(0.1)
    assert calls == ["o1", "o1", "o1"]
    assert await store["dead_letters"].count_documents({}) == 0  # type: ignore[index]


async def test_a_producer_whose_sequence_is_refused_is_replaced_and_the_poll_retried(
    settings: Settings, store: object
) -> None:
    """Kafka refusing the producer's sequence numbers (OutOfOrderSequenceNumber: a broker
    restart lost batches the producer counted as sent) refuses it for good; the scaffold
    swaps in a fresh producer and the poll is handled again, its output sent once more."""
    handler = EchoHandler()
    service = Service("producer-test", settings)
    service.consume_batch(catalogue.RECEIVED, handler)
    service.declare_publisher(catalogue.CLASSIFIED)
    replaced = metrics.producer_replacements.labels("producer-test")
    before = replaced._value.get()
    async with running(service):
        first = service.broker.config.producer._producer.producer  # type: ignore[attr-defined]
        send = first.send
        refusals = 0

        async def refused_once(*args: Any, **kwargs: Any) -> Any:
            nonlocal refusals
            if refusals:
                return await send(*args, **kwargs)
            refusals += 1
            future = asyncio.get_running_loop().create_future()
            future.set_exception(OutOfOrderSequenceNumber())
            return future

        first.send = refused_once
        body = received("case-p", "ok p").model_dump_json().encode()
        await produce(settings, catalogue.RECEIVED.topic, body, headers=headers_for("p1"))
        outputs = await consume_all(settings, catalogue.CLASSIFIED.topic, expect=1)
        second = service.broker.config.producer._producer.producer  # type: ignore[attr-defined]
    assert refusals == 1 and len(outputs) == 1
    assert second is not first  # a new producer id: its sequences start again
    assert second._txn_manager.producer_id != first._txn_manager.producer_id
    assert handler.attempts["ok p"] == 2  # the poll was handled again
    assert replaced._value.get() == before + 1
    assert await store["dead_letters"].count_documents({}) == 0  # type: ignore[index]
