"""Two scaffold fixes found by the fault and hostile-input tests (no servers):

* a record header that is not UTF-8 made FastStream's batch parser fail the whole batch,
  which was NACKed and redelivered for ever (a poison pill): the scaffold's parser now
  parses a readable copy and hands the handler the original records;
* the consumer-lag metric, computed after a batch was handled and published, raised
  for a partition revoked by a rebalance meanwhile, which NACKed a handled batch.
"""

from __future__ import annotations

from types import SimpleNamespace
from typing import Any

from aiokafka import TopicPartition
from aiokafka.structs import ConsumerRecord

from shared.kafka import lenient_parser
from shared.service import Service
from shared.settings import Settings


def record(headers: list[tuple[str, bytes]]) -> ConsumerRecord[bytes, bytes]:
    return ConsumerRecord(
        topic="t",
        partition=0,
        offset=7,
        timestamp=0,
        timestamp_type=0,
        key=None,
        value=b"{}",
        checksum=None,
        serialized_key_size=0,
        serialized_value_size=2,
        headers=headers,
    )


async def strict_parser(records: Any) -> Any:
    """FastStream's behaviour: every header decoded as UTF-8."""
    for r in records:
        {k: v.decode() for k, v in r.headers}
    return SimpleNamespace(raw_message=records)


async def test_a_header_that_is_not_utf8_does_not_fail_the_batch() -> None:
    good = record([("ce_id", b"a")])
    bad = record([("ce_id", b"\xff\xfe")])
    message = await lenient_parser((good, bad), strict_parser)
    assert message.raw_message == (good, bad)  # the originals reach the handler
    assert message.raw_message[1].headers == [("ce_id", b"\xff\xfe")]


async def test_readable_batches_are_parsed_as_before() -> None:
    good = record([("ce_id", b"a")])
    message = await lenient_parser((good,), strict_parser)
    assert message.raw_message == (good,)


class RevokedConsumer:
    def assignment(self) -> set[TopicPartition]:
        return {TopicPartition("t", 1)}

    def highwater(self, tp: TopicPartition) -> int:
        raise AssertionError("Partition is not assigned")


class MovingConsumer(RevokedConsumer):
    def assignment(self) -> set[TopicPartition]:
        return {TopicPartition("t", 0)}  # listed, then revoked before highwater()


def test_lag_of_a_revoked_partition_is_skipped_not_raised() -> None:
    service = Service("lag-test", Settings())
    for consumer in (RevokedConsumer(), MovingConsumer()):
        service.broker = SimpleNamespace(subscribers=[SimpleNamespace(consumer=consumer)])  # type: ignore[assignment]
        service._record_lag("t", 0, record([]))  # must not raise
