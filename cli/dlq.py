"""`amends dlq list|show|redrive`: the dead-letter topics, read straight from Kafka.

Every topic T of the catalogue has ``T.dlq`` (with the settings' topic prefix). A dead
letter is the original record (value, key, headers) plus ``x-dlq-*`` headers: reason,
detail, service, original topic/partition/offset, attempts, failed-at.

An entry is named ``<dlq topic>:<partition>:<offset>`` without the topic prefix, e.g.
``complaints.intake.dlq:0:12``.

Redrive sends the original value, key and headers (without ``x-dlq-*``) back to the
original topic, then records ``<dlq topic>:<partition>:<offset>`` in ``dlq_redrives`` and
skips recorded entries next time. Produce first, record second: a crash in between sends
the record again on the next redrive, and since the CloudEvent id (``ce_id``) is
unchanged, the consumer's idempotency drops the copy. Recording first would lose the
record for good if the send then failed.
"""

from __future__ import annotations

import asyncio
import contextlib
from argparse import Namespace
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import orjson
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, TopicPartition
from pymongo.errors import DuplicateKeyError
from rich.console import Console
from rich.syntax import Syntax
from rich.table import Table

from shared.events.catalogue import CATALOGUE, DEAD_LETTER_SUFFIX, dead_letter_topic
from shared.kafka import kafka_client_options
from shared.settings import Settings
from shared.store import Store

from .format import (
    CONNECT_TIMEOUT_SECONDS,
    CliError,
    excerpt,
    kafka_unreachable,
    make_console,
    open_store,
    parse_iso,
    parse_time,
    require_topics,
    short_time,
    to_json,
)

REDRIVES = "dlq_redrives"
DLQ_HEADER_PREFIX = "x-dlq-"


@dataclass(frozen=True, slots=True)
class Entry:
    """One dead letter as read from its ``.dlq`` topic."""

    topic: str  # the Kafka topic, prefix included
    name: str  # the topic without the prefix
    partition: int
    offset: int
    key: bytes | None
    value: bytes
    raw_headers: tuple[tuple[str, bytes], ...]
    timestamp_ms: int

    @property
    def headers(self) -> dict[str, str]:
        return {name: value.decode("utf-8", "replace") for name, value in self.raw_headers}

    @property
    def ref(self) -> str:
        return f"{self.name}:{self.partition}:{self.offset}"

    @property
    def redrive_id(self) -> str:
        return f"{self.topic}:{self.partition}:{self.offset}"

    @property
    def reason(self) -> str:
        return self.headers.get("x-dlq-reason", "unknown")

    @property
    def failed_at(self) -> datetime:
        text = self.headers.get("x-dlq-failed-at")
        try:
            return parse_iso(text) if text else self._timestamp()
        except ValueError:
            return self._timestamp()

    def _timestamp(self) -> datetime:
        return datetime.fromtimestamp(self.timestamp_ms / 1000, UTC)

    def summary(self) -> dict[str, Any]:
        headers = self.headers
        return {
            "ref": self.ref,
            "topic": self.topic,
            "partition": self.partition,
            "offset": self.offset,
            "reason": self.reason,
            "detail": headers.get("x-dlq-detail"),
            "service": headers.get("x-dlq-service"),
            "failed_at": self.failed_at,
            "attempts": headers.get("x-dlq-attempts"),
            "original": (
                f"{headers.get('x-dlq-original-topic')}[{headers.get('x-dlq-original-partition')}]"
                f"@{headers.get('x-dlq-original-offset')}"
            ),
            "event_id": headers.get("ce_id"),
        }


@dataclass(frozen=True, slots=True)
class Selection:
    topic: str | None = None
    reason: str | None = None
    since: datetime | None = None
    limit: int | None = None

    def matches(self, entry: Entry) -> bool:
        if self.reason and entry.reason != self.reason:
            return False
        return not (self.since and entry.failed_at < self.since)


# -- reading ---------------------------------------------------------------------------


def dlq_name(settings: Settings, topic: str) -> str:
    """Any spelling (``complaints.intake``, ``...dlq``, with prefix) -> unprefixed .dlq."""
    name = topic.strip()
    if settings.topic_prefix and name.startswith(settings.topic_prefix):
        name = name[len(settings.topic_prefix) :]
    return name if name.endswith(DEAD_LETTER_SUFFIX) else dead_letter_topic(name)


def known_dlq_names() -> list[str]:
    return [dead_letter_topic(spec.topic) for spec in CATALOGUE]


async def start_consumer(settings: Settings) -> AIOKafkaConsumer:
    consumer = AIOKafkaConsumer(
        **kafka_client_options(settings),
        group_id=None,
        enable_auto_commit=False,
        auto_offset_reset="earliest",
    )
    try:
        await asyncio.wait_for(consumer.start(), timeout=CONNECT_TIMEOUT_SECONDS)
    except Exception as exc:
        await consumer.stop()
        raise kafka_unreachable(settings, exc) from exc
    return consumer


async def partitions_of(
    settings: Settings, consumer: AIOKafkaConsumer, topics: Iterable[str]
) -> dict[str, list[int]]:
    """Partitions of each existing topic, from fresh cluster metadata.

    ``consumer.topics()`` fetches the metadata but does not keep it, so
    ``partitions_for_topic`` would not know a topic it never subscribed to.
    """
    cluster = await consumer._client.fetch_all_metadata()
    require_topics(settings, cluster.topics())
    found: dict[str, list[int]] = {}
    for topic in topics:
        partitions = cluster.partitions_for_topic(topic)
        if partitions:
            found[topic] = sorted(partitions)
    return found


async def existing_dlq_topics(
    settings: Settings, consumer: AIOKafkaConsumer, topic: str | None
) -> dict[str, list[int]]:
    """Kafka names of the .dlq topics to read (those that exist), with their partitions."""
    if topic:
        full = settings.topic(dlq_name(settings, topic))
        found = await partitions_of(settings, consumer, [full])
        if not found:
            raise CliError(
                f"no dead-letter topic {full!r}: nothing was dead-lettered there yet, or "
                f"the name is wrong (known: {', '.join(known_dlq_names())})",
                exit_code=1,
            )
        return found
    return await partitions_of(settings, consumer, [settings.topic(n) for n in known_dlq_names()])


async def read_entries(
    settings: Settings, consumer: AIOKafkaConsumer, selection: Selection
) -> list[Entry]:
    """Every matching entry that exists now (from the beginning, or from --since)."""
    topics = await existing_dlq_topics(settings, consumer, selection.topic)
    partitions = [TopicPartition(t, p) for t, numbers in topics.items() for p in numbers]
    if not partitions:
        return []
    consumer.assign(partitions)
    end = await consumer.end_offsets(partitions)
    await _seek_start(consumer, partitions, selection.since)
    entries: list[Entry] = []
    pending = {tp for tp in partitions if await consumer.position(tp) < end[tp]}
    while pending:
        batch = await consumer.getmany(*pending, timeout_ms=500)
        for tp, records in batch.items():
            for record in records:
                if record.offset < end[tp]:
                    entry = _entry(settings, record)
                    if selection.matches(entry):
                        entries.append(entry)
            if await consumer.position(tp) >= end[tp]:
                pending.discard(tp)
    entries.sort(key=lambda e: (e.failed_at, e.topic, e.partition, e.offset))
    return entries[-selection.limit :] if selection.limit else entries


async def _seek_start(
    consumer: AIOKafkaConsumer, partitions: Sequence[TopicPartition], since: datetime | None
) -> None:
    if since is None:
        await consumer.seek_to_beginning(*partitions)
        return
    found = await consumer.offsets_for_times(
        {tp: int(since.timestamp() * 1000) for tp in partitions}
    )
    ends = await consumer.end_offsets(list(partitions))
    for tp in partitions:
        at = found.get(tp)
        consumer.seek(tp, at.offset if at is not None else ends[tp])


def _entry(settings: Settings, record: Any) -> Entry:
    name = record.topic
    if settings.topic_prefix and name.startswith(settings.topic_prefix):
        name = name[len(settings.topic_prefix) :]
    return Entry(
        topic=record.topic,
        name=name,
        partition=record.partition,
        offset=record.offset,
        key=record.key,
        value=record.value or b"",
        raw_headers=tuple((k, bytes(v or b"")) for k, v in record.headers or ()),
        timestamp_ms=record.timestamp,
    )


def parse_ref(settings: Settings, ref: str) -> tuple[str, int, int]:
    """``complaints.intake.dlq:0:12`` -> (Kafka topic, partition, offset)."""
    topic, _, rest = ref.strip().rpartition(":")
    topic, _, partition = topic.rpartition(":")
    if not topic or not partition.isdigit() or not rest.isdigit():
        raise CliError(
            f"cannot read the entry {ref!r}: use <dlq topic>:<partition>:<offset>, e.g. "
            "complaints.intake.dlq:0:12 (`amends dlq list` shows them)"
        )
    return settings.topic(dlq_name(settings, topic)), int(partition), int(rest)


async def read_one(settings: Settings, consumer: AIOKafkaConsumer, ref: str) -> Entry:
    topic, partition, offset = parse_ref(settings, ref)
    tp = TopicPartition(topic, partition)
    if partition not in (await partitions_of(settings, consumer, [topic])).get(topic, []):
        raise _missing(ref)
    consumer.assign([tp])
    end = (await consumer.end_offsets([tp]))[tp]
    start = (await consumer.beginning_offsets([tp]))[tp]
    if not start <= offset < end:
        raise _missing(ref)
    consumer.seek(tp, offset)
    while True:
        batch = await consumer.getmany(tp, timeout_ms=1000, max_records=1)
        for record in batch.get(tp, []):
            if record.offset >= offset:
                if record.offset != offset:
                    raise _missing(ref)
                return _entry(settings, record)


def _missing(ref: str) -> CliError:
    return CliError(f"no dead letter {ref}: `amends dlq list` shows the entries", exit_code=1)


# -- redrive ---------------------------------------------------------------------------


@dataclass
class RedriveResult:
    redriven: list[str] = field(default_factory=list)
    already_redriven: list[str] = field(default_factory=list)
    not_redrivable: list[str] = field(default_factory=list)


def original_headers(entry: Entry) -> list[tuple[str, bytes]]:
    return [(k, v) for k, v in entry.raw_headers if not k.lower().startswith(DLQ_HEADER_PREFIX)]


async def redriven_ids(store: Store, entries: Iterable[Entry]) -> set[str]:
    ids = [entry.redrive_id for entry in entries]
    done: set[str] = set()
    for start in range(0, len(ids), 500):
        cursor = store[REDRIVES].find({"_id": {"$in": ids[start : start + 500]}}, {"_id": 1})
        done.update([doc["_id"] async for doc in cursor])
    return done


async def redrive(
    store: Store,
    producer: AIOKafkaProducer | None,
    entries: Sequence[Entry],
    *,
    dry_run: bool = False,
) -> RedriveResult:
    """Send each entry back once: produce, wait for the ack, then record it."""
    result = RedriveResult()
    done = await redriven_ids(store, entries)
    for entry in entries:
        target = entry.headers.get("x-dlq-original-topic")
        if entry.redrive_id in done:
            result.already_redriven.append(entry.ref)
        elif not target:
            result.not_redrivable.append(entry.ref)
        else:
            if not dry_run and producer is not None:
                await producer.send_and_wait(
                    target, entry.value, key=entry.key, headers=original_headers(entry)
                )
                await record_redrive(store, entry, target)
            result.redriven.append(entry.ref)
    return result


async def record_redrive(store: Store, entry: Entry, target: str) -> None:
    # DuplicateKeyError: another redrive recorded it first; the consumer drops the copy.
    with contextlib.suppress(DuplicateKeyError):
        await store[REDRIVES].insert_one(
            {
                "_id": entry.redrive_id,
                "dlq_topic": entry.topic,
                "partition": entry.partition,
                "offset": entry.offset,
                "original_topic": target,
                "event_id": entry.headers.get("ce_id"),
                "reason": entry.reason,
                "redriven_at": datetime.now(UTC),
            }
        )


async def start_producer(settings: Settings) -> AIOKafkaProducer:
    producer = AIOKafkaProducer(
        **kafka_client_options(settings), enable_idempotence=True, acks="all"
    )
    try:
        await asyncio.wait_for(producer.start(), timeout=CONNECT_TIMEOUT_SECONDS)
    except Exception as exc:
        await producer.stop()
        raise kafka_unreachable(settings, exc) from exc
    return producer


# -- rendering -------------------------------------------------------------------------


# Below this width the table squeezes the entry names (what `dlq show` needs) to "comp…".
TABLE_MIN_WIDTH = 140


def entries_lines(entries: Sequence[Entry], redriven: set[str] | None, width: int) -> list[str]:
    """The list for a narrow terminal: entry, time, reason, service; the detail beneath."""
    lines = [f"{len(entries)} dead letters"]
    for entry in entries:
        row = entry.summary()
        done = " redriven" if redriven is not None and entry.redrive_id in redriven else ""
        lines.append(
            f"{entry.ref}  {short_time(entry.failed_at)}  {entry.reason}  "
            f"{row['service'] or '—'}{done}"
        )
        event = f" (event {row['event_id']})" if row["event_id"] else ""
        lines.append("    " + excerpt(f"{row['detail'] or '—'}{event}", max(20, width - 4)))
    return lines


def entries_table(entries: Sequence[Entry], redriven: set[str] | None) -> Table:
    table = Table(title=f"{len(entries)} dead letters", title_justify="left")
    for column in ("entry", "failed at", "reason", "detail", "service", "event id"):
        table.add_column(column)
    if redriven is not None:
        table.add_column("redriven")
    for entry in entries:
        row = entry.summary()
        cells = [
            entry.ref,
            short_time(entry.failed_at),
            entry.reason,
            excerpt(row["detail"], 60),
            row["service"] or "—",
            row["event_id"] or "—",
        ]
        if redriven is not None:
            cells.append("yes" if entry.redrive_id in redriven else "")
        table.add_row(*cells)
    return table


def render_entry(entry: Entry, console: Console) -> None:
    headers = Table(title=f"dead letter {entry.ref}", title_justify="left")
    headers.add_column("header", style="bold cyan")
    headers.add_column("value")
    for name, value in entry.headers.items():
        headers.add_row(name, value)
    console.print(headers)
    key = entry.key.decode("utf-8", "replace") if entry.key else "—"
    console.print(f"key: {key}    original bytes: {len(entry.value)}")
    console.print(pretty_value(entry.value))


def pretty_value(value: bytes) -> Syntax | str:
    try:
        parsed = orjson.loads(value)
    except orjson.JSONDecodeError:
        return value.decode("utf-8", "replace")
    return Syntax(
        orjson.dumps(parsed, option=orjson.OPT_INDENT_2).decode(),
        "json",
        word_wrap=True,
        theme="ansi_dark",
    )


def entry_json(entry: Entry) -> dict[str, Any]:
    try:
        value: Any = orjson.loads(entry.value)
    except orjson.JSONDecodeError:
        value = entry.value.decode("utf-8", "replace")
    return {
        **entry.summary(),
        "key": entry.key.decode("utf-8", "replace") if entry.key else None,
        "headers": entry.headers,
        "value": value,
    }


# -- the commands ----------------------------------------------------------------------


async def list_command(
    settings: Settings,
    selection: Selection,
    *,
    as_json: bool = False,
    console: Console | None = None,
) -> int:
    console = console or make_console()
    consumer = await start_consumer(settings)
    try:
        entries = await read_entries(settings, consumer, selection)
    finally:
        await consumer.stop()
    redriven = await _redriven_or_none(settings, entries)
    if as_json:
        rows = [
            {**e.summary(), "redriven": None if redriven is None else e.redrive_id in redriven}
            for e in entries
        ]
        console.out(to_json(rows), highlight=False)
    elif console.width < TABLE_MIN_WIDTH:
        for line in entries_lines(entries, redriven, console.width):
            console.out(line, highlight=False)
    else:
        console.print(entries_table(entries, redriven))
    return 0


async def _redriven_or_none(settings: Settings, entries: Sequence[Entry]) -> set[str] | None:
    """Which entries were redriven; None when MongoDB is not reachable (list still works)."""
    if not entries:
        return set()
    try:
        store = await open_store(settings)
    except CliError:
        return None
    try:
        return await redriven_ids(store, entries)
    finally:
        await store.close()


async def show_command(
    settings: Settings, ref: str, *, as_json: bool = False, console: Console | None = None
) -> int:
    console = console or make_console()
    consumer = await start_consumer(settings)
    try:
        entry = await read_one(settings, consumer, ref)
    finally:
        await consumer.stop()
    if as_json:
        console.out(to_json(entry_json(entry)), highlight=False)
    else:
        render_entry(entry, console)
    return 0


async def redrive_command(
    settings: Settings,
    refs: Sequence[str],
    selection: Selection,
    *,
    everything: bool = False,
    dry_run: bool = False,
    as_json: bool = False,
    console: Console | None = None,
) -> int:
    console = console or make_console()
    filtered = bool(selection.topic or selection.reason or selection.since)
    if not refs and not filtered and not everything:
        raise CliError(
            "say what to redrive: entries (complaints.intake.dlq:0:12), a filter "
            "(--topic, --reason, --since), or --all for every dead letter"
        )
    store = await open_store(settings)
    consumer = await start_consumer(settings)
    try:
        if refs:
            entries = [await read_one(settings, consumer, ref) for ref in refs]
        else:
            entries = await read_entries(settings, consumer, selection)
    finally:
        await consumer.stop()
    producer = await start_producer(settings) if not dry_run else None
    try:
        result = await redrive(store, producer, entries, dry_run=dry_run)
    finally:
        if producer is not None:
            await producer.stop()
        await store.close()
    print_redrive(result, console, as_json=as_json, dry_run=dry_run)
    return 0


def print_redrive(result: RedriveResult, console: Console, *, as_json: bool, dry_run: bool) -> None:
    if as_json:
        console.out(to_json({**result.__dict__, "dry_run": dry_run}), highlight=False)
        return
    verb = "would redrive" if dry_run else "redriven"
    console.print(
        f"{verb}: {len(result.redriven)}; already redriven before: {len(result.already_redriven)}"
    )
    for ref in result.redriven:
        console.print(f"  {verb} {ref}")
    for ref in result.not_redrivable:
        console.print(f"  skipped {ref}: no x-dlq-original-topic header")


async def run(settings: Settings, args: Namespace) -> int:
    """`amends dlq ...` from its parsed arguments."""
    if args.dlq_action == "show":
        return await show_command(settings, args.ref, as_json=args.json)
    selection = Selection(
        topic=args.topic,
        reason=args.reason,
        since=parse_time(args.since) if args.since else None,
        limit=args.limit,
    )
    if args.dlq_action == "list":
        return await list_command(settings, selection, as_json=args.json)
    return await redrive_command(
        settings,
        args.refs,
        selection,
        everything=args.all,
        dry_run=args.dry_run,
        as_json=args.json,
    )
