"""The batch contract's rules without a broker: invalid records dead-lettered while the
rest of the poll goes on, a poison record found by bisecting, outages retried then given
back to Kafka, the per-record adapter's retries."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, datetime
from typing import Any

import pytest
from aiokafka.structs import ConsumerRecord

from shared import batch
from shared.batch import DeadLetter, Handled, Incoming, Outgoing, PollRunner, Rejected
from shared.events import catalogue, envelope
from shared.settings import Settings
from tests.support import complaint_received

SETTINGS = Settings(retry_backoff_seconds=0.0, outage_backoff_max_seconds=0.0)
SPEC = catalogue.RECEIVED


def record(offset: int, text: str, *, partition: int = 0, value: bytes | None = None) -> Any:
    payload = complaint_received(f"case-{offset}", text, at=datetime(2026, 1, 1, tzinfo=UTC))
    headers = envelope.CloudEvent(
        type=SPEC.event_type, source="/tests", id=f"e{offset}", data=b""
    ).headers()
    body = payload.model_dump_json().encode() if value is None else value
    return ConsumerRecord(
        topic="amends.complaint.received",
        partition=partition,
        offset=offset,
        timestamp=0,
        timestamp_type=0,
        key=f"case-{offset}".encode(),
        value=body,
        checksum=None,
        serialized_key_size=0,
        serialized_value_size=len(body),
        headers=[(k, v.encode()) for k, v in headers.items()],
    )


def echo(incoming: Incoming) -> Outgoing:
    return Outgoing(
        spec=catalogue.CLASSIFIED, payload=incoming.payload, key="k", event_id=incoming.event.id
    )


class Sink:
    def __init__(self) -> None:
        self.letters: list[tuple[int, DeadLetter]] = []

    async def __call__(self, spec: Any, rec: Any, letter: DeadLetter) -> None:
        self.letters.append((rec.offset, letter))


class PoisonHandler:
    """Fails the whole call whenever a record saying "poison" is in it; rejects "reject"."""

    def __init__(self) -> None:
        self.calls: list[list[int]] = []

    async def __call__(self, records: Sequence[Incoming]) -> Handled:
        self.calls.append([r.offset for r in records])
        if any(r.payload.contact.text == "poison" for r in records):
            raise ValueError("cannot handle this one")
        handled = Handled()
        for r in records:
            if r.payload.contact.text == "reject":
                handled.rejected.append((r, Rejected("not_a_complaint", "asked to")))
            else:
                handled.outgoing.append(echo(r))
        return handled


async def test_an_invalid_record_is_dead_lettered_and_the_poll_goes_on() -> None:
    sink, handler = Sink(), PoisonHandler()
    records = [
        record(0, "a"),
        record(1, "", value=b"{not json"),
        record(2, "b"),
        record(3, "reject"),
    ]
    out = await PollRunner("t", SETTINGS, sink).run(SPEC, handler, records)
    assert [o.event_id for o in out] == ["e0", "e2"]
    assert handler.calls == [[0, 2, 3]]  # one call for the whole poll
    assert [(offset, letter.reason) for offset, letter in sink.letters] == [
        (1, "invalid_schema"),
        (3, "not_a_complaint"),
    ]


async def test_a_poison_record_is_found_by_bisecting_and_only_it_is_dead_lettered() -> None:
    sink, handler = Sink(), PoisonHandler()
    records = [record(n, "poison" if n == 5 else f"ok {n}") for n in range(8)]
    out = await PollRunner("t", SETTINGS, sink).run(SPEC, handler, records)
    assert [o.event_id for o in out] == [f"e{n}" for n in range(8) if n != 5]  # order kept
    assert [(offset, letter.reason) for offset, letter in sink.letters] == [(5, "handler_error")]
    assert sink.letters[0][1].attempts == SETTINGS.max_attempts
    assert "ValueError: cannot handle this one" in sink.letters[0][1].detail
    assert handler.calls[: SETTINGS.max_attempts] == [list(range(8))] * SETTINGS.max_attempts
    assert handler.calls.count([5]) == SETTINGS.max_attempts


async def test_an_outage_retries_the_poll_and_past_the_budget_gives_it_back(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    calls = 0

    async def flaky(records: Sequence[Incoming]) -> Handled:
        nonlocal calls
        calls += 1
        if calls <= 2:
            raise ConnectionError("database unreachable")
        return Handled(outgoing=[echo(r) for r in records])

    sink = Sink()
    out = await PollRunner("t", SETTINGS, sink).run(SPEC, flaky, [record(0, "a")])
    assert calls == 3 and [o.event_id for o in out] == ["e0"] and not sink.letters

    async def down(records: Sequence[Incoming]) -> Handled:
        raise ConnectionError("database unreachable")

    monkeypatch.setattr(batch, "OUTAGE_BUDGET_SECONDS", 0.0)
    with pytest.raises(ConnectionError):  # NACK: Kafka redelivers the poll
        await PollRunner("t", SETTINGS, sink).run(SPEC, down, [record(0, "a"), record(1, "b")])
    assert not sink.letters  # nothing good was dead-lettered


def test_group_by_keeps_the_order_of_each_group() -> None:
    groups = batch.group_by([("a", 1), ("b", 2), ("a", 3)], lambda item: item[0])
    assert groups == {"a": [("a", 1), ("a", 3)], "b": [("b", 2)]}
