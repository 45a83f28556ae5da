"""Run one service with a pymongo command listener that counts database round trips.

    python -m bench.opcount <service>     (what `bench.run --only ops` starts)

Counts (command, collection) pairs, their total time and the documents they wrote
(inserted, upserted, modified; deleted apart), written every 2 s to
``.local/bench/ops-<service>.json``. Each service is its own process, so the counts are per
service without any hook in the service: the listener is registered before the service's
module runs and sees every client it creates. Only the benchmark uses it; the service itself
is unchanged.
"""

from __future__ import annotations

import json
import os
import runpy
import sys
import threading
import time
from collections import Counter
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from pymongo import monitoring

from shared.settings import REPO_ROOT


@dataclass(frozen=True)
class Writes:
    """Documents one command wrote, as its reply says."""

    inserted: int = 0
    upserted: int = 0
    modified: int = 0
    deleted: int = 0

    @property
    def written(self) -> int:
        """Documents stored or changed (a delete is counted apart)."""
        return self.inserted + self.upserted + self.modified


KINDS = ("inserted", "upserted", "modified", "deleted")


def writes_of(name: str, command: Mapping[str, Any], reply: Mapping[str, Any]) -> Writes:
    """What a succeeded write command wrote, from the command and the server's reply.

    ``update``: ``nModified`` (an update that changes nothing is not counted) plus the
    ``upserted`` entries. ``insert``: the documents sent less those that failed; an ordered
    insert stops at its first error. The reply's ``n`` bounds it (mongod reports the inserted
    count there; mongo-java-server reports every document sent, even failed ones).
    ``findAndModify``: 1 if it matched or upserted. Neither server says whether a matched
    document changed, so a no-op match counts as written; mongo-java-server sends no
    ``lastErrorObject`` for an upsert, and an upsert that matched nothing and succeeded has
    inserted one. ``delete`` and a removing ``findAndModify`` count as deleted."""
    if not reply.get("ok"):
        return Writes()
    errors = reply.get("writeErrors") or []
    if name == "insert":
        n = int(reply.get("n", 0))
        documents = command.get("documents")
        if documents is None:
            return Writes(inserted=n)
        if errors and command.get("ordered", True):
            done = min(int(e["index"]) for e in errors)
        else:
            done = len(documents) - len(errors)
        return Writes(inserted=max(0, min(n, done)))
    if name == "update":
        return Writes(
            upserted=len(reply.get("upserted") or []), modified=int(reply.get("nModified", 0))
        )
    if name == "delete":
        return Writes(deleted=int(reply.get("n", 0)))
    if name == "findAndModify":
        last = reply.get("lastErrorObject") or {}
        if command.get("remove"):
            found = reply.get("value") is not None
            return Writes(deleted=int(last.get("n", int(found))))
        if last.get("updatedExisting"):
            return Writes(modified=1)
        if last.get("upserted") is not None or command.get("upsert"):
            return Writes(upserted=1)
        return Writes()
    return Writes()


# Fields of a write command that writes_of reads (the command itself is not kept).
_KEPT = ("documents", "ordered", "remove", "upsert")


class Listener(monitoring.CommandListener):
    def __init__(self) -> None:
        self.count: Counter[str] = Counter()
        self.micros: Counter[str] = Counter()
        self.writes: dict[str, Counter[str]] = {kind: Counter() for kind in KINDS}
        self.pending: dict[int, tuple[str, str, dict[str, Any]]] = {}
        self.lock = threading.Lock()

    def started(self, event: monitoring.CommandStartedEvent) -> None:
        name = event.command_name
        if name in ("ping", "isMaster", "hello", "endSessions", "buildInfo"):
            return
        coll = event.command.get(name)
        key = f"{name} {coll}" if isinstance(coll, str) else name
        kept: dict[str, Any] = {}
        if name in ("insert", "findAndModify"):
            for field in _KEPT:
                if field in event.command:
                    value = event.command[field]
                    # Only the number of documents matters, not the documents.
                    kept[field] = [None] * len(value) if field == "documents" else value
        with self.lock:
            self.pending[event.request_id] = (key, name, kept)
            self.count[key] += 1

    def succeeded(self, event: monitoring.CommandSucceededEvent) -> None:
        with self.lock:
            entry = self.pending.pop(event.request_id, None)
            if entry is None:
                return
            key, name, kept = entry
            self.micros[key] += event.duration_micros
            writes = writes_of(name, kept, event.reply)
            for kind in KINDS:
                if value := getattr(writes, kind):
                    self.writes[kind][key] += value

    def failed(self, event: monitoring.CommandFailedEvent) -> None:
        with self.lock:
            entry = self.pending.pop(event.request_id, None)
            if entry is not None:
                self.micros[entry[0]] += event.duration_micros

    def snapshot(self) -> dict[str, dict[str, int]]:
        with self.lock:
            return {
                "count": dict(self.count),
                "micros": dict(self.micros),
                **{kind: dict(c) for kind, c in self.writes.items()},
            }


def route_as_before() -> None:
    """BENCH_ROUTE_BASELINE=1: route's case mirror and outbox flush as they were before the
    bench's optimisations (commit 62e1ecd), for the before/after op counts. Since
    complaints.classified is handled a poll at a time (services/route/classified.py,
    which mirrors and empties outboxes in bulk), this changes the other topics, the
    drain and the sweeps only, and the per-case fallbacks of the poll handler."""
    from services.route import outbox, state

    FINAL = state.FINAL_CASE_STATUSES

    async def _project(self: Any, doc: Any, **_: Any) -> None:
        cases = self.store["cases"]
        case_id = doc["_id"]
        await cases.update_one(
            {"_id": case_id},
            {
                "$addToSet": {
                    "assignment_history": {"$each": doc.get("history", [])},
                    "escalations": {"$each": doc.get("escalations", [])},
                }
            },
            upsert=True,
        )
        state, rev = doc.get("state"), int(doc.get("rev", 0))
        status = {"assigned": "assigned", "waiting": "queued"}.get(state or "")
        if status is None:
            return
        update: dict[str, Any] = {"$set": {"route_rev": rev}}
        if state == "assigned" and doc.get("assignment"):
            update["$set"]["assignment"] = doc["assignment"]
            update["$min"] = {"stages.assigned_at": doc["assignment"]["assigned_at"]}
        else:
            update["$unset"] = {"assignment": ""}
        newer = await cases.update_one(
            {"_id": case_id, "route_rev": {"$not": {"$gt": rev}}}, update
        )
        if newer.matched_count:
            await cases.update_one(
                {"_id": case_id, "route_rev": rev, "status": {"$nin": FINAL}},
                {"$set": {"status": status}},
            )

    async def _flush(
        self: Any, collection: str, doc: Any, *, mirror: bool = True, marker: Any = None, **_: Any
    ) -> Any:
        # The mirror and outbox clear as before; the route_outbox marker and the returned
        # document are what the current Router expects.
        if not doc:
            return dict(doc or {})
        entries = doc.get("outbox") or {}
        if collection == "queue" and "req" in doc:
            await self._project(doc)
        if marker is not None:
            await self.store[state.PENDING].delete_one({"_id": marker})
        if not entries:
            return dict(doc)
        await self.publish([state.to_outgoing(eid, e) for eid, e in entries.items()])
        coll = self.store[collection]
        await coll.update_one(
            {"_id": doc["_id"]}, {"$unset": {f"outbox.{eid}": "" for eid in entries}}
        )
        await coll.update_one({"_id": doc["_id"], "outbox": {}}, {"$unset": {"outbox_at": ""}})
        return {**doc, "outbox": {}}

    outbox.Outbox._project = _project  # type: ignore[method-assign]
    outbox.Outbox._flush = _flush  # type: ignore[method-assign]


def main() -> None:
    service = sys.argv[1]
    if service == "route" and os.environ.get("BENCH_ROUTE_BASELINE") == "1":
        route_as_before()
    listener = Listener()
    monitoring.register(listener)
    out = REPO_ROOT / ".local" / "bench" / f"ops-{service}.json"
    out.parent.mkdir(parents=True, exist_ok=True)

    def dump() -> None:
        while True:
            time.sleep(2)
            # Replaced whole, so the bench never reads a half-written file.
            tmp = out.with_suffix(".tmp")
            tmp.write_text(json.dumps(listener.snapshot()))
            os.replace(tmp, out)

    threading.Thread(target=dump, daemon=True).start()
    sys.argv = [f"services.{service}"]
    runpy.run_module(f"services.{service}", run_name="__main__", alter_sys=True)


if __name__ == "__main__":
    main()
