"""The database server killed (SIGKILL) while writers on several collections keep it busy,
several times over. After each restart every acknowledged write is there, and the data
and its _id index agree: every document is found by its key, and retrying every write
whose outcome was unknown succeeds and stores it once.

They used to disagree: a command writes a document and its index entries as separate
MVStore maps, and the server committed after another thread's write while this one was
between the two. A kill then left a document its index did not know (every later upsert
of it failed with "already existed", a case stuck unassigned) or a key with no document
(the upsert was refused as a duplicate: an intake outcome never stored). Uses a private
database server (tests/faults/infra.py), never the shared one."""

from __future__ import annotations

import asyncio
import os
import signal

from pymongo import AsyncMongoClient, UpdateOne
from pymongo.errors import PyMongoError

from .infra import HOME, private_servers, script

WRITERS = 8  # one collection each: commands on one collection never run at once
DOCS_PER_WRITE = 40
KILLS = 5
WRITE_SECONDS = 1.5


def upsert(doc_id: str, writer: int) -> UpdateOne:
    return UpdateOne({"_id": doc_id}, {"$setOnInsert": {"writer": writer}}, upsert=True)


async def test_killed_server_keeps_documents_and_index_whole() -> None:
    async with private_servers(("mongo",)) as servers:
        client: AsyncMongoClient = AsyncMongoClient(
            servers["mongodb_url"], serverSelectionTimeoutMS=60_000
        )
        db = client["killed_under_writes"]
        acknowledged: dict[int, set[str]] = {w: set() for w in range(WRITERS)}
        unknown: dict[int, set[str]] = {w: set() for w in range(WRITERS)}

        async def writer(w: int, stop: asyncio.Event, round_: int) -> None:
            batch = 0
            while not stop.is_set():
                ids = [f"{round_}-{batch}-{k}" for k in range(DOCS_PER_WRITE)]
                batch += 1
                try:
                    await db[f"c{w}"].bulk_write([upsert(i, w) for i in ids], ordered=False)
                    acknowledged[w].update(ids)
                except PyMongoError:
                    unknown[w].update(ids)  # the server went away mid-write
                    return

        for round_ in range(KILLS):
            stop = asyncio.Event()
            tasks = [asyncio.create_task(writer(w, stop, round_)) for w in range(WRITERS)]
            await asyncio.sleep(WRITE_SECONDS)
            pid = int((HOME / "run" / "mongo.pid").read_text())
            os.kill(pid, signal.SIGKILL)
            stop.set()
            await asyncio.gather(*tasks)
            await asyncio.to_thread(script, "mongo", "up")

            problems: list[str] = []
            for w in range(WRITERS):
                collection = db[f"c{w}"]
                # A filter no unique index serves: a scan of the documents themselves.
                scanned = {str(d["_id"]) async for d in collection.find({"writer": w})}
                if missing := acknowledged[w] - scanned:
                    problems.append(f"c{w}: {len(missing)} acknowledged writes lost")
                by_key = {
                    str(d["_id"]) async for d in collection.find({"_id": {"$in": sorted(scanned)}})
                }
                if unindexed := scanned - by_key:
                    problems.append(f"c{w}: {len(unindexed)} documents not found by _id")
                # The retry every writer of the pipeline does after an unknown outcome.
                retry = sorted(unknown[w] - scanned)
                try:
                    if retry:
                        await collection.bulk_write([upsert(i, w) for i in retry], ordered=False)
                    acknowledged[w] |= unknown[w]
                    unknown[w].clear()
                except PyMongoError as exc:
                    problems.append(f"c{w}: retrying {len(retry)} writes failed: {exc}"[:400])
                stored = {str(d["_id"]) async for d in collection.find({"writer": w})}
                if acknowledged[w] - stored:
                    problems.append(f"c{w}: {len(acknowledged[w] - stored)} retried not stored")
            assert problems == [], f"after kill {round_ + 1}: {problems}"
        assert all(len(ids) > DOCS_PER_WRITE * KILLS for ids in acknowledged.values())
        await client.close()
