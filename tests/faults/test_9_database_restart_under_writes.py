"""The database server's own shutdown under load: writers keep sending acknowledged bulk
writes while ``mongo.sh down`` / ``up`` restarts it. Every write the server acknowledged
is in the restarted server's data, and no command reached the store after it was closed
(the server used to close its store while clients were still connected: a write applied
then was acknowledged and lost on restart, seen as cases classified without a trace).
Uses a private database server (tests/faults/infra.py), never the shared one."""

from __future__ import annotations

import asyncio
import contextlib

from pymongo import AsyncMongoClient, UpdateOne
from pymongo.errors import PyMongoError

from .infra import HOME, private_servers, script

WRITERS = 8
DOCS_PER_WRITE = 20


async def test_acknowledged_writes_survive_a_restart_under_load() -> None:
    async with private_servers(("mongo",)) as servers:
        log = HOME / "logs" / "mongo.log"
        client: AsyncMongoClient = AsyncMongoClient(
            servers["mongodb_url"], serverSelectionTimeoutMS=60_000
        )
        counters = client["restart_under_writes"]["counters"]
        acknowledged = dict.fromkeys(range(WRITERS), 0)  # bulk writes acknowledged
        seen_lost: list[str] = []
        stop = asyncio.Event()

        async def writer(w: int) -> None:
            ops = [
                UpdateOne({"_id": f"{w}-{k}"}, {"$inc": {"n": 1}}, upsert=True)
                for k in range(DOCS_PER_WRITE)
            ]
            while not stop.is_set():
                try:
                    await counters.bulk_write(ops, ordered=False)
                    acknowledged[w] += 1
                except PyMongoError:
                    # Outcome unknown (the server went away mid-write): re-read once it is
                    # back. Fewer than acknowledged is a lost write; one more is this one.
                    while True:
                        with contextlib.suppress(PyMongoError):
                            doc = await counters.find_one({"_id": f"{w}-0"})
                            break
                        await asyncio.sleep(0.2)
                    stored = int(doc["n"]) if doc else 0
                    if stored < acknowledged[w]:
                        seen_lost.append(f"writer {w}: {stored} stored < {acknowledged[w]}")
                    acknowledged[w] = max(stored, acknowledged[w])

        tasks = [asyncio.create_task(writer(w)) for w in range(WRITERS)]
        try:
            await asyncio.sleep(3)
            before = sum(acknowledged.values())
            log_offset = log.stat().st_size
            await asyncio.to_thread(script, "mongo", "down")
            shutdown_log = log.read_text(errors="replace")[log_offset:]
            await asyncio.sleep(1)
            await asyncio.to_thread(script, "mongo", "up")
            await asyncio.sleep(3)
        finally:
            stop.set()
            await asyncio.gather(*tasks)
        assert before > 0 and sum(acknowledged.values()) > before  # wrote on both sides
        assert "store is closed" not in shutdown_log, shutdown_log[-3000:]
        assert seen_lost == []
        short = []
        async for doc in counters.find({}):
            w = int(str(doc["_id"]).split("-")[0])
            if doc["n"] < acknowledged[w]:
                short.append(f"{doc['_id']}: {doc['n']} < {acknowledged[w]}")
        assert short == []
        await client.close()
