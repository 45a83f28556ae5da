"""ensure_topics: topics are usable when it returns, so no client of ours logs "Topic ...
not found in cluster metadata" or retries "not leader" on a topic amends just created;
and a topic Kafka refuses to create is an error, not silence."""

from __future__ import annotations

import logging

import pytest
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer

from shared.events.catalogue import CATALOGUE
from shared.kafka import TopicCreationError, ensure_topics, kafka_client_options
from tests.support import isolated_settings


async def test_new_topics_take_writes_and_reads_at_once(
    servers_up: None, caplog: pytest.LogCaptureFixture
) -> None:
    settings = isolated_settings()
    names = [spec.topic for spec in CATALOGUE]
    await ensure_topics(settings, names)
    caplog.set_level(logging.DEBUG, logger="aiokafka")
    producer = AIOKafkaProducer(**kafka_client_options(settings))
    consumer = AIOKafkaConsumer(**kafka_client_options(settings), group_id=None)
    await producer.start()
    await consumer.start()
    try:
        for name in names:
            for partition in range(settings.topic_partitions):
                await producer.send_and_wait(settings.topic(name), b"x", partition=partition)
        partitions = consumer.partitions_for_topic(settings.topic(names[0]))
        assert partitions is None or len(partitions) == settings.topic_partitions
    finally:
        await producer.stop()
        await consumer.stop()
    noisy = [r.getMessage() for r in caplog.records if r.levelno >= logging.WARNING]
    assert noisy == []
    retried = [r.getMessage() for r in caplog.records if "NotLeaderForPartition" in r.getMessage()]
    assert retried == []


async def test_topics_that_exist_are_left_alone(servers_up: None) -> None:
    settings = isolated_settings()
    await ensure_topics(settings, ["complaints.intake"])
    await ensure_topics(settings, ["complaints.intake"])  # no TopicAlreadyExists, no wait


async def test_a_topic_kafka_refuses_is_an_error(servers_up: None) -> None:
    settings = isolated_settings(topic_replication_factor=3)  # the local Kafka has 1 broker
    with pytest.raises(TopicCreationError, match="AMENDS_TOPIC_REPLICATION_FACTOR"):
        await ensure_topics(settings, ["complaints.intake"])
