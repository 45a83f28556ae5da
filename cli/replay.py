"""`amends replay FILE`: backfill historical complaints into the intake topic.

Input is JSONL or CSV:

* JSONL: each line is ``{"sourceformat": ..., "payload": ..., "time"?: ..., "key"?: ...,
  "content_type"?: ...}`` or, with ``--source S``, a bare payload of format S. A payload
  that is a JSON object is sent as JSON; a string is sent as its UTF-8 bytes (a raw
  e-mail, a transcript).
* CSV: a helpdesk or CFPB-style export, turned into one JSON record per row by a column
  mapping (``--mapping M.json``, or ``--mapping cfpb`` for the built-in CFPB mapping).
  Without a mapping of its own, the target is the ingest ``webform`` format:
  ``{"id", "submitted_at", "name", "email", "subject", "message", "channel"}``.

Exactly-once in effect, at-least-once on the wire:

* every record's CloudEvent id is ``derived_id(file sha256, record number)``, so a line
  sent twice carries the same ``ce_id`` and ingest's intake log drops the copy;
* records go out in windows of ``--window`` (default 500); after every window is
  acknowledged by Kafka, ``.local/replay/<file sha256>.json`` records the last record
  number, and ``--resume`` (the default) starts after it. After a crash at most one
  window is sent again.

Historical complaints keep their time: the original time is the payload's own time field
(``submitted_at`` for CSV mappings) and the CloudEvent's ``ce_time``. The Kafka record
timestamp stays "now" on purpose (old CreateTime timestamps would make the broker's
time-based retention delete the backfill at once).
"""

from __future__ import annotations

import asyncio
import csv
import hashlib
import os
import time
from argparse import Namespace
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import orjson
from aiokafka import AIOKafkaProducer
from pydantic import BaseModel, Field, ValidationError
from rich.console import Console
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    TextColumn,
    TimeRemainingColumn,
)

from shared.events import catalogue, envelope
from shared.kafka import kafka_client_options
from shared.settings import REPO_ROOT, Settings

from .format import (
    CONNECT_TIMEOUT_SECONDS,
    CliError,
    as_utc,
    kafka_topics,
    kafka_unreachable,
    make_console,
    parse_iso,
    require_topics,
    to_json,
)

DEFAULT_CHECKPOINT_DIR = REPO_ROOT / ".local" / "replay"
DEFAULT_WINDOW = 500
TIME_KEYS = ("submitted_at", "created_at", "received_at", "timestamp", "time", "date")
KEY_FIELDS = ("email", "phone", "customer_email", "from")

# -- CSV column mappings ---------------------------------------------------------------

Rule = str | dict[str, str] | list[Any]


class CsvMapping(BaseModel):
    """How a CSV row becomes one JSON intake payload.

    ``fields`` maps a target key (dots make nested objects) to a rule: a column name,
    ``{"template": "{Product}: {Issue}"}``, ``{"const": "value"}``, or a list of rules
    of which the first non-empty one wins. ``values`` translates a target's values
    (e.g. CFPB ``Submitted via`` -> channel).
    """

    sourceformat: str = "webform"
    fields: dict[str, Rule]
    values: dict[str, dict[str, str]] = Field(default_factory=dict)
    time_field: str = "submitted_at"
    time_format: str | None = Field(
        default=None, description="strptime format; default ISO 8601 date or date-time"
    )
    id_field: str = "id"
    id_prefix: str = ""
    required: list[str] = Field(default_factory=lambda: ["message"])
    delimiter: str = ","
    encoding: str = "utf-8-sig"


CFPB_MAPPING: dict[str, Any] = {
    "sourceformat": "webform",
    "fields": {
        "id": "Complaint ID",
        "submitted_at": "Date received",
        "subject": {"template": "{Product}: {Issue}"},
        "message": [
            "Consumer complaint narrative",
            {"template": "{Issue}. {Sub-issue}"},
            "Issue",
        ],
        "channel": "Submitted via",
        "metadata.product": "Product",
        "metadata.company": "Company",
        "metadata.state": "State",
        "metadata.zip": "ZIP code",
    },
    "values": {
        "channel": {
            "Web": "web",
            "Web Referral": "web",
            "Phone": "phone",
            "Email": "email",
            "Fax": "crm",
            "Postal mail": "crm",
            "Referral": "crm",
        }
    },
    "id_prefix": "cfpb-",
}
BUILTIN_MAPPINGS = {"cfpb": CFPB_MAPPING}


def load_mapping(spec: str | None) -> CsvMapping | None:
    if spec is None:
        return None
    if spec in BUILTIN_MAPPINGS:
        return CsvMapping.model_validate(BUILTIN_MAPPINGS[spec])
    path = Path(spec)
    if not path.is_file():
        raise CliError(
            f"mapping {spec!r} not found: give a JSON file or one of {', '.join(BUILTIN_MAPPINGS)}"
        )
    try:
        return CsvMapping.model_validate_json(path.read_bytes())
    except ValidationError as exc:
        raise CliError(
            f"mapping {spec} is not valid: {exc.errors()[0]['msg']} at "
            f"{'.'.join(map(str, exc.errors()[0]['loc']))}"
        ) from exc


def apply_rule(rule: Rule, row: Mapping[str, str]) -> str | None:
    """The value a rule gives for one row (None when empty)."""
    if isinstance(rule, list):
        for option in rule:
            value = apply_rule(option, row)
            if value:
                return value
        return None
    if isinstance(rule, dict):
        if "const" in rule:
            return rule["const"]
        if "template" in rule:
            text = rule["template"].format_map(_Blank(row))
            text = text.strip(" .:-/")
            return text or None
        raise CliError(f"mapping rule {rule!r}: use a column name, template, const or a list")
    value = row.get(rule)
    if value is None:
        return None
    value = value.strip()
    return value or None


class _Blank(dict[str, str]):
    """Template values: missing or empty columns become ''."""

    def __init__(self, row: Mapping[str, str]) -> None:
        super().__init__({k: (v or "").strip() for k, v in row.items() if k is not None})

    def __missing__(self, key: str) -> str:
        return ""


def set_path(target: dict[str, Any], dotted: str, value: Any) -> None:
    parts = dotted.split(".")
    for part in parts[:-1]:
        target = target.setdefault(part, {})
    target[parts[-1]] = value


def parse_record_time(text: str, time_format: str | None) -> datetime:
    """A record's own time: ``time_format`` (strptime) or ISO 8601; ValueError if not."""
    if time_format:
        return as_utc(datetime.strptime(text.strip(), time_format))
    return parse_iso(text)


def map_row(row: Mapping[str, str], mapping: CsvMapping) -> tuple[dict[str, Any], datetime]:
    """One CSV row as a payload and its original time; ValueError when unusable."""
    payload: dict[str, Any] = {}
    for target, rule in mapping.fields.items():
        value = apply_rule(rule, row)
        if value is not None and target in mapping.values:
            value = mapping.values[target].get(value, value)
        if value is not None:
            if target == mapping.id_field:
                value = f"{mapping.id_prefix}{value}"
            set_path(payload, target, value)
    missing = [name for name in mapping.required if not _lookup(payload, name)]
    if missing:
        raise ValueError(f"no value for {', '.join(missing)}")
    raw_time = _lookup(payload, mapping.time_field)
    if not raw_time:
        raise ValueError(f"no value for the time field {mapping.time_field}")
    try:
        at = parse_record_time(str(raw_time), mapping.time_format)
    except ValueError as exc:
        raise ValueError(f"cannot read the time {raw_time!r}") from exc
    set_path(payload, mapping.time_field, at.isoformat().replace("+00:00", "Z"))
    return payload, at


def _lookup(payload: Mapping[str, Any], dotted: str) -> Any:
    value: Any = payload
    for part in dotted.split("."):
        value = value.get(part) if isinstance(value, Mapping) else None
    return value


# -- reading records -------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Record:
    """One intake record to send; ``number`` is its line (JSONL) or row (CSV), from 1."""

    number: int
    sourceformat: str
    value: bytes
    content_type: str
    time: datetime | None
    key: str | None


@dataclass(frozen=True, slots=True)
class Skipped:
    number: int
    reason: str


def is_csv(path: Path) -> bool:
    return path.suffix.lower() in {".csv", ".tsv"}


def read_records(
    path: Path, *, source: str | None, mapping: CsvMapping | None
) -> Iterator[Record | Skipped]:
    if is_csv(path):
        if mapping is None:
            raise CliError(
                f"{path.name} is CSV: give a column mapping with --mapping M.json "
                "(or --mapping cfpb for a CFPB export)"
            )
        yield from read_csv(path, mapping)
    else:
        yield from read_jsonl(path, source)


def read_csv(path: Path, mapping: CsvMapping) -> Iterator[Record | Skipped]:
    delimiter = "\t" if path.suffix.lower() == ".tsv" else mapping.delimiter
    with path.open(newline="", encoding=mapping.encoding) as handle:
        reader = csv.DictReader(handle, delimiter=delimiter)
        for number, row in enumerate(reader, start=1):
            try:
                payload, at = map_row(row, mapping)
            except ValueError as exc:
                yield Skipped(number, str(exc))
                continue
            yield Record(
                number=number,
                sourceformat=mapping.sourceformat,
                value=orjson.dumps(payload),
                content_type="application/json",
                time=at,
                key=_record_key(payload, mapping.sourceformat, mapping.id_field),
            )


def _record_key(payload: Mapping[str, Any], sourceformat: str, id_field: str) -> str | None:
    for name in KEY_FIELDS:
        value = payload.get(name)
        if isinstance(value, str) and value:
            return value.strip().lower()
    ident = _lookup(payload, id_field)
    return f"{sourceformat}:{ident}" if ident else None


def read_jsonl(path: Path, source: str | None) -> Iterator[Record | Skipped]:
    with path.open("rb") as handle:
        for number, line in enumerate(handle, start=1):
            if not line.strip():
                yield Skipped(number, "blank line")
                continue
            try:
                yield jsonl_record(number, orjson.loads(line), source)
            except orjson.JSONDecodeError:
                yield Skipped(number, "not JSON")
            except ValueError as exc:
                yield Skipped(number, str(exc))


def jsonl_record(number: int, item: Any, source: str | None) -> Record:
    enveloped = isinstance(item, dict) and "payload" in item and "sourceformat" in item
    if enveloped:
        payload, sourceformat = item["payload"], str(item["sourceformat"])
    elif source:
        payload, sourceformat = item, source
    else:
        raise ValueError('neither {"sourceformat", "payload"} nor --source')
    if isinstance(payload, str):
        value, content_type = payload.encode(), "text/plain"
    else:
        value, content_type = orjson.dumps(payload), "application/json"
    if enveloped and item.get("content_type"):
        content_type = str(item["content_type"])
    at = _jsonl_time(item if enveloped else {}, payload)
    key = item.get("key") if enveloped else None
    if key is None and isinstance(payload, dict):
        key = _record_key(payload, sourceformat, "id")
    return Record(number, sourceformat, value, content_type, at, key)


def _jsonl_time(envelope_item: Mapping[str, Any], payload: Any) -> datetime | None:
    candidates = [envelope_item.get("time")]
    if isinstance(payload, dict):
        candidates += [payload.get(name) for name in TIME_KEYS]
    for candidate in candidates:
        if isinstance(candidate, str) and candidate[:4].isdigit():
            try:
                return parse_iso(candidate)
            except ValueError:
                continue
    return None


# -- checkpoints -----------------------------------------------------------------------


def file_sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        for chunk in iter(lambda: handle.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


@dataclass
class Checkpoint:
    """Last acknowledged record per target (bootstrap servers + topic) of one file."""

    path: Path
    file: str
    sha256: str
    targets: dict[str, dict[str, Any]] = field(default_factory=dict)

    @classmethod
    def load(cls, directory: Path, source: Path, sha256: str) -> Checkpoint:
        path = directory / f"{sha256}.json"
        checkpoint = cls(path=path, file=str(source), sha256=sha256)
        if path.is_file():
            try:
                checkpoint.targets = dict(orjson.loads(path.read_bytes()).get("targets", {}))
            except (orjson.JSONDecodeError, AttributeError):
                checkpoint.targets = {}
        return checkpoint

    def last_acked(self, target: str) -> int:
        return int(self.targets.get(target, {}).get("last_acked", 0))

    def done(self, target: str) -> bool:
        return bool(self.targets.get(target, {}).get("done", False))

    def save(self, target: str, last_acked: int, *, done: bool = False) -> None:
        self.targets[target] = {
            "last_acked": last_acked,
            "done": done,
            "updated_at": datetime.now(UTC).isoformat(),
        }
        body = {"file": self.file, "sha256": self.sha256, "targets": self.targets}
        self.path.parent.mkdir(parents=True, exist_ok=True)
        temporary = self.path.with_suffix(".tmp")
        temporary.write_bytes(orjson.dumps(body, option=orjson.OPT_INDENT_2))
        os.replace(temporary, self.path)  # atomic: a crash leaves the old or the new one

    def reset(self, target: str) -> None:
        self.targets.pop(target, None)


# -- sending ---------------------------------------------------------------------------


@dataclass
class ReplayResult:
    file: str
    sha256: str
    records: int = 0
    skipped: int = 0
    skipped_examples: list[str] = field(default_factory=list)
    resumed_after: int = 0
    sent: int = 0
    last_acked: int = 0
    complete: bool = False
    elapsed_seconds: float = 0.0


def event_for(record: Record, sha256: str, file_name: str) -> envelope.CloudEvent:
    return envelope.CloudEvent(
        type=catalogue.INTAKE.event_type,
        source=f"/amends/replay/{file_name}",
        id=envelope.derived_id(sha256, str(record.number)),
        data=record.value,
        time=record.time or envelope.utcnow(),
        extensions={"sourceformat": record.sourceformat},
    )


async def start_producer(settings: Settings) -> AIOKafkaProducer:
    producer = AIOKafkaProducer(
        **kafka_client_options(settings),
        enable_idempotence=True,
        acks="all",
        linger_ms=5,
        request_timeout_ms=30_000,
    )
    try:
        await asyncio.wait_for(producer.start(), timeout=CONNECT_TIMEOUT_SECONDS)
    except Exception as exc:
        await producer.stop()
        raise kafka_unreachable(settings, exc) from exc
    if settings.create_topics:
        from shared.kafka import ensure_topics

        await ensure_topics(settings, [catalogue.INTAKE.topic])
    return producer


class Pacer:
    """Keeps to ``rate`` records per second (0: as fast as possible)."""

    def __init__(self, rate: float) -> None:
        self.rate = rate
        self.started = time.monotonic()
        self.count = 0

    async def tick(self) -> None:
        self.count += 1
        if self.rate > 0:
            ahead = self.count / self.rate - (time.monotonic() - self.started)
            if ahead > 0:
                await asyncio.sleep(ahead)


async def send_window(
    producer: AIOKafkaProducer, topic: str, window: list[tuple[Record, envelope.CloudEvent]]
) -> None:
    """Send one window and wait until Kafka acknowledged every record of it."""
    futures = []
    for record, event in window:
        headers = event.headers()
        headers["content-type"] = record.content_type
        futures.append(
            await producer.send(
                topic,
                record.value,
                key=record.key.encode() if record.key else None,
                headers=[(name, value.encode()) for name, value in headers.items()],
            )
        )
    await asyncio.gather(*futures)


def require_file(path: Path) -> None:
    if not path.is_file():
        raise CliError(f"{path} is not a file: give the path of a JSONL or CSV export")


async def replay(
    settings: Settings,
    path: Path,
    *,
    source: str | None = None,
    mapping: CsvMapping | None = None,
    rate: float = 0.0,
    restart: bool = False,
    window: int = DEFAULT_WINDOW,
    limit: int | None = None,
    checkpoint_dir: Path = DEFAULT_CHECKPOINT_DIR,
    console: Console | None = None,
) -> ReplayResult:
    """Send ``path`` to the intake topic; see the module docstring."""
    require_file(path)
    started = time.monotonic()
    sha256 = file_sha256(path)
    result = ReplayResult(file=str(path), sha256=sha256)
    result.records, result.skipped = count_records(path, source, mapping, result)
    topic = settings.topic(catalogue.INTAKE.topic)
    target = f"{settings.kafka_bootstrap_servers} {topic}"
    checkpoint = Checkpoint.load(checkpoint_dir, path, sha256)
    if restart:
        checkpoint.reset(target)
    result.resumed_after = checkpoint.last_acked(target)
    result.last_acked = result.resumed_after
    total = result.records + result.skipped
    if checkpoint.done(target) and result.resumed_after >= total:
        result.complete = True
        return result
    producer = await start_producer(settings)
    try:
        await _send_all(
            producer,
            topic,
            path,
            sha256,
            source,
            mapping,
            rate,
            window,
            limit,
            checkpoint,
            target,
            result,
            console,
        )
    finally:
        await producer.stop()
    result.elapsed_seconds = round(time.monotonic() - started, 2)
    return result


def count_records(
    path: Path, source: str | None, mapping: CsvMapping | None, result: ReplayResult
) -> tuple[int, int]:
    """Records and skipped lines, with the first few skip reasons (one pass, no sends)."""
    records = skipped = 0
    for item in read_records(path, source=source, mapping=mapping):
        if isinstance(item, Skipped):
            skipped += 1
            if len(result.skipped_examples) < 10 and item.reason != "blank line":
                result.skipped_examples.append(f"{item.number}: {item.reason}")
        else:
            records += 1
    return records, skipped


async def _send_all(
    producer: AIOKafkaProducer,
    topic: str,
    path: Path,
    sha256: str,
    source: str | None,
    mapping: CsvMapping | None,
    rate: float,
    window_size: int,
    limit: int | None,
    checkpoint: Checkpoint,
    target: str,
    result: ReplayResult,
    console: Console | None,
) -> None:
    pacer = Pacer(rate)
    progress = Progress(
        TextColumn("replay {task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeRemainingColumn(),
        console=console or Console(stderr=True),
        transient=False,
    )
    total = result.records + result.skipped
    window: list[tuple[Record, envelope.CloudEvent]] = []
    last_seen = result.resumed_after
    with progress:
        task = progress.add_task(path.name, total=total, completed=result.resumed_after)
        for item in read_records(path, source=source, mapping=mapping):
            if item.number <= result.resumed_after:
                continue
            if limit is not None and result.sent + len(window) >= limit:
                break
            last_seen = item.number
            if isinstance(item, Record):
                window.append((item, event_for(item, sha256, path.name)))
                await pacer.tick()
            if len(window) >= window_size:
                await _flush(producer, topic, window, last_seen, checkpoint, target, result)
                progress.update(task, completed=last_seen)
        await _flush(producer, topic, window, last_seen, checkpoint, target, result)
        result.complete = last_seen >= total
        checkpoint.save(target, result.last_acked, done=result.complete)
        progress.update(task, completed=last_seen)


async def _flush(
    producer: AIOKafkaProducer,
    topic: str,
    window: list[tuple[Record, envelope.CloudEvent]],
    last_seen: int,
    checkpoint: Checkpoint,
    target: str,
    result: ReplayResult,
) -> None:
    if window:
        await send_window(producer, topic, window)
        result.sent += len(window)
        window.clear()
    result.last_acked = last_seen
    checkpoint.save(target, last_seen)


def print_result(result: ReplayResult, console: Console, *, as_json: bool) -> None:
    if as_json:
        console.out(to_json(result.__dict__), highlight=False)
        return
    if result.complete and result.sent == 0:
        console.print(
            f"{result.file} was already replayed to this target (checkpoint at record "
            f"{result.last_acked}); --restart sends it again (ingest drops what it has)"
        )
        return
    resumed = f", resumed after record {result.resumed_after}" if result.resumed_after else ""
    console.print(
        f"sent {result.sent} of {result.records} records{resumed} in "
        f"{result.elapsed_seconds} s; {result.skipped} lines skipped"
    )
    for example in result.skipped_examples:
        console.print(f"  skipped {example}")
    if not result.complete:
        console.print(
            f"stopped at record {result.last_acked}; run the same command again to resume"
        )


async def run(settings: Settings, args: Namespace) -> int:
    """`amends replay` from its parsed arguments."""
    if args.window < 1:
        raise CliError("--window must be at least 1")
    require_file(Path(args.file))  # before asking Kafka anything
    # Records sent under a prefix no amends pipeline uses would wait there for nobody.
    require_topics(settings, await kafka_topics(settings))
    result = await replay(
        settings,
        Path(args.file),
        source=args.source,
        mapping=load_mapping(args.mapping),
        rate=args.rate,
        restart=args.restart,
        window=args.window,
        limit=args.limit,
        checkpoint_dir=Path(args.checkpoint_dir) if args.checkpoint_dir else DEFAULT_CHECKPOINT_DIR,
    )
    print_result(result, make_console(), as_json=args.json)
    return 0
