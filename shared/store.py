"""MongoDB access: one AsyncMongoClient per process, collections by name, indexes at start.

Only what both real MongoDB and the local MongoDB-protocol server support is used:
single-document atomic updates (find_one_and_update, $inc with guards, upserts),
aggregation, unique and TTL indexes. No multi-document transactions, no change streams.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from pymongo import AsyncMongoClient, IndexModel
from pymongo.asynchronous.collection import AsyncCollection
from pymongo.asynchronous.database import AsyncDatabase
from pymongo.errors import BulkWriteError, OperationFailure
from pymongo.results import BulkWriteResult

from .settings import Settings

log = logging.getLogger(__name__)

Document = dict[str, Any]


@dataclass(frozen=True)
class IndexSpec:
    """Indexes one collection needs; declared by whichever code queries it."""

    collection: str
    indexes: tuple[IndexModel, ...] = field(default_factory=tuple)


# Indexes every service relies on. Services add their own with Store(extra_indexes=...).
COMMON_INDEXES: tuple[IndexSpec, ...] = (
    IndexSpec(
        "cases",
        (
            IndexModel([("customer_id", 1), ("status", 1)], name="customer_status"),
            IndexModel([("contacts.contact_id", 1)], name="contact_id"),
            IndexModel([("status", 1), ("priority", 1)], name="status_priority"),
            IndexModel([("opened_at", 1)], name="opened_at"),
            IndexModel([("external_ids", 1)], name="external_ids"),
        ),
    ),
    IndexSpec("customers", (IndexModel([("identities", 1)], unique=True, name="identities"),)),
    IndexSpec(
        "dead_letters",
        (
            IndexModel([("reason", 1), ("failed_at", -1)], name="reason_failed_at"),
            IndexModel([("failed_at", -1)], name="failed_at"),
        ),
    ),
)


class Store:
    """The database of one process. Create once, ``await connect()`` at start-up."""

    def __init__(
        self,
        settings: Settings,
        extra_indexes: Iterable[IndexSpec] = (),
        *,
        server_selection_timeout_ms: int = 5_000,
    ) -> None:
        self._settings = settings
        self._indexes = (*COMMON_INDEXES, *extra_indexes)
        self._server_selection_timeout_ms = server_selection_timeout_ms
        self._client: AsyncMongoClient[Document] | None = None

    @property
    def client(self) -> AsyncMongoClient[Document]:
        if self._client is None:
            self._client = AsyncMongoClient(
                self._settings.mongodb_url.get_secret_value(),
                tz_aware=True,
                serverSelectionTimeoutMS=self._server_selection_timeout_ms,
                connectTimeoutMS=5_000,
                appname="amends",
            )
        return self._client

    @property
    def db(self) -> AsyncDatabase[Document]:
        return self.client[self._settings.mongodb_database]

    def __getitem__(self, name: str) -> AsyncCollection[Document]:
        return self.db[name]

    async def connect(self) -> None:
        await self.ping()
        await self.ensure_indexes()

    async def ping(self) -> bool:
        await self.client.admin.command("ping")
        return True

    async def ensure_indexes(self) -> None:
        by_collection: dict[str, list[IndexModel]] = {}
        for spec in self._indexes:
            by_collection.setdefault(spec.collection, []).extend(spec.indexes)
        for name, models in by_collection.items():
            unique_models = list({m.document["name"]: m for m in models}.values())
            try:
                await self.db[name].create_indexes(unique_models)
            except OperationFailure as exc:
                # An index of that name with other options exists (an older release):
                # report it rather than fail start-up; the operator decides to rebuild.
                log.warning("index creation on %s failed: %s", name, exc)

    async def close(self) -> None:
        if self._client is not None:
            await self._client.close()
            self._client = None


def without_none(values: Mapping[str, Any]) -> Document:
    return {k: v for k, v in values.items() if v is not None}


def mongo_unreachable_message(settings: Settings, exc: BaseException | None = None) -> str:
    cause = f" ({type(exc).__name__})" if exc else ""
    return (
        f"MongoDB not reachable at {mongo_hosts(settings)}{cause}: "
        "run `amends infra up` or set MONGODB_URL"
    )


def mongo_hosts(settings: Settings) -> str:
    """The host list of the MongoDB URL, without credentials."""
    from pymongo.uri_parser import parse_uri

    try:
        nodes = parse_uri(settings.mongodb_url.get_secret_value())["nodelist"]
    except Exception:
        return "the configured URL"
    return ",".join(f"{host}:{port}" for host, port in nodes)


def stored_now() -> datetime:
    """Now at BSON's millisecond precision: an event built from a decision is then equal
    to the one rebuilt from what was stored (a redelivery announces the same thing)."""
    now = datetime.now(UTC)
    return now.replace(microsecond=now.microsecond // 1000 * 1000)


DUPLICATE_KEY = 11000


async def bulk_write_conflicts(
    collection: AsyncCollection[Document], ops: Sequence[Any]
) -> tuple[BulkWriteResult | None, set[int]]:
    """One unordered bulk write of guarded updates: (its result, or None when some
    failed; the indexes of the ops that failed on a duplicate key). A guarded upsert
    whose guard no longer holds fails that way (it tries to insert an _id that exists):
    a conflict for the caller to decide again. Any other error raises."""
    if not ops:
        return None, set()
    try:
        return await collection.bulk_write(list(ops), ordered=False), set()
    except BulkWriteError as exc:
        errors = exc.details.get("writeErrors") or []
        if exc.details.get("writeConcernErrors") or any(
            e.get("code") != DUPLICATE_KEY for e in errors
        ):
            raise
        return None, {int(e["index"]) for e in errors}


async def bulk_write_retrying_duplicates(
    collection: AsyncCollection[Document], ops: Sequence[Any], attempts: int = 2
) -> None:
    """An unordered bulk write of idempotent upserts; those that fail on a duplicate key
    (two first inserts of one _id at once) are sent again, as they then update."""
    for _ in range(attempts):
        _, failed = await bulk_write_conflicts(collection, ops)
        if not failed:
            return
        ops = [op for i, op in enumerate(ops) if i in failed]
    raise RuntimeError(f"{collection.name}: {len(ops)} upserts kept failing on duplicate keys")
