"""Run one service with a pymongo command listener that counts database round trips.

    python -m bench.opcount <service>     (what `bench.run --only ops` starts)

Counts (command, collection) pairs and their total time, written every 2 s to
``.local/bench/ops-<service>.json``. Only the benchmark uses it; the service itself is
unchanged.
"""

from __future__ import annotations

import json
import os
import runpy
import sys
import threading
import time
from collections import Counter
from pathlib import Path
from typing import Any

from pymongo import monitoring

from shared.settings import REPO_ROOT


class Listener(monitoring.CommandListener):
    def __init__(self) -> None:
        self.count: Counter[str] = Counter()
        self.micros: Counter[str] = Counter()
        self.pending: dict[int, str] = {}
        self.lock = threading.Lock()

    def started(self, event: monitoring.CommandStartedEvent) -> None:
        name = event.command_name
        if name in ("ping", "isMaster", "hello", "endSessions", "buildInfo"):
            return
        coll = event.command.get(name)
        key = f"{name} {coll}" if isinstance(coll, str) else name
        with self.lock:
            self.pending[event.request_id] = key
            self.count[key] += 1

    def _done(self, event: Any) -> None:
        with self.lock:
            key = self.pending.pop(event.request_id, None)
            if key is not None:
                self.micros[key] += event.duration_micros

    succeeded = _done
    failed = _done


def route_as_before() -> None:
    """BENCH_ROUTE_BASELINE=1: route's case mirror and outbox flush as they were before the
    bench's optimisations (commit 62e1ecd), for the before/after op counts."""
    from services.route import handlers

    FINAL = handlers.FINAL_CASE_STATUSES

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
            await self.store[handlers.PENDING].delete_one({"_id": marker})
        if not entries:
            return dict(doc)
        await self.publish([handlers.to_outgoing(eid, e) for eid, e in entries.items()])
        coll = self.store[collection]
        await coll.update_one(
            {"_id": doc["_id"]}, {"$unset": {f"outbox.{eid}": "" for eid in entries}}
        )
        await coll.update_one({"_id": doc["_id"], "outbox": {}}, {"$unset": {"outbox_at": ""}})
        return {**doc, "outbox": {}}

    handlers.Router._project = _project  # type: ignore[method-assign]
    handlers.Router._flush = _flush  # type: ignore[method-assign]


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
            with listener.lock:
                data = {"count": dict(listener.count), "micros": dict(listener.micros)}
            Path(out).write_text(json.dumps(data))

    threading.Thread(target=dump, daemon=True).start()
    sys.argv = [f"services.{service}"]
    runpy.run_module(f"services.{service}", run_name="__main__", alter_sys=True)


if __name__ == "__main__":
    main()
