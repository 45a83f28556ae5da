"""What bench.opcount counts as written, from commands and replies as the servers send them
(mongod's shape and mongo-java-server's, which differ for insert errors and findAndModify)."""

from __future__ import annotations

from typing import Any

import pytest

from bench.dbcounts import per_complaint, summarise
from bench.opcount import Listener, Writes, writes_of
from cli import SERVICES

DUP = {"code": 11000, "errmsg": "E11000 duplicate key"}


@pytest.mark.parametrize(
    ("name", "command", "reply", "expected"),
    [
        # update: nModified, not n (a no-op match writes nothing), plus each upsert.
        ("update", {}, {"n": 1, "nModified": 0, "ok": 1.0}, Writes()),
        ("update", {}, {"n": 4, "nModified": 4, "ok": 1.0}, Writes(modified=4)),
        (
            "update",
            {},
            {"n": 3, "nModified": 1, "upserted": [{"index": 1}, {"index": 2}], "ok": 1.0},
            Writes(upserted=2, modified=1),
        ),
        # insert: documents sent less the failed ones; mongo-java-server's n counts all.
        ("insert", {"documents": [1, 2, 3]}, {"n": 3, "ok": 1.0}, Writes(inserted=3)),
        (
            "insert",
            {"documents": [1, 2, 3], "ordered": False},
            {"n": 3, "writeErrors": [{"index": 1, **DUP}], "ok": 1.0},
            Writes(inserted=2),
        ),
        # ordered: stops at the first error (mongo-java-server still says n 3; mongod 1).
        (
            "insert",
            {"documents": [1, 2, 3], "ordered": True},
            {"n": 3, "writeErrors": [{"index": 1, **DUP}], "ok": 1.0},
            Writes(inserted=1),
        ),
        (
            "insert",
            {"documents": [1, 2, 3]},
            {"n": 1, "writeErrors": [{"index": 1, **DUP}], "ok": 1.0},
            Writes(inserted=1),
        ),
        ("delete", {}, {"n": 7, "ok": 1.0}, Writes(deleted=7)),
        # findAndModify, mongod's replies
        (
            "findAndModify",
            {"upsert": True},
            {"lastErrorObject": {"n": 1, "updatedExisting": False, "upserted": 5}, "ok": 1},
            Writes(upserted=1),
        ),
        (
            "findAndModify",
            {},
            {"lastErrorObject": {"n": 0, "updatedExisting": False}, "value": None, "ok": 1},
            Writes(),
        ),
        (
            "findAndModify",
            {"remove": True},
            {"lastErrorObject": {"n": 1}, "value": {"_id": 1}, "ok": 1},
            Writes(deleted=1),
        ),
        # findAndModify, mongo-java-server's: no lastErrorObject unless a document matched
        (
            "findAndModify",
            {},
            {"lastErrorObject": {"updatedExisting": True, "n": 1}, "value": {}, "ok": 1},
            Writes(modified=1),
        ),
        ("findAndModify", {"upsert": True}, {"value": None, "ok": 1.0}, Writes(upserted=1)),
        ("findAndModify", {}, {"value": None, "ok": 1.0}, Writes()),
        ("findAndModify", {"remove": True}, {"value": {"_id": 3}, "ok": 1.0}, Writes(deleted=1)),
        ("findAndModify", {"remove": True}, {"value": None, "ok": 1.0}, Writes()),
        # reads and failures write nothing
        ("find", {}, {"cursor": {"firstBatch": [{}]}, "ok": 1.0}, Writes()),
        ("update", {}, {"ok": 0, "nModified": 3}, Writes()),
    ],
)
def test_writes_of(
    name: str, command: dict[str, Any], reply: dict[str, Any], expected: Writes
) -> None:
    assert writes_of(name, command, reply) == expected


def test_written_is_inserted_upserted_modified_not_deleted() -> None:
    assert Writes(inserted=1, upserted=2, modified=4, deleted=8).written == 7


def test_per_complaint_divides_the_window_by_service_and_command() -> None:
    before = {
        "count": {"find cases": 10, "update cases": 10},
        "micros": {"find cases": 1000, "update cases": 5000},
        "inserted": {},
        "upserted": {"update cases": 2},
        "modified": {"update cases": 6},
        "deleted": {},
    }
    after = {
        "count": {"find cases": 30, "update cases": 30, "insert intake_log": 10},
        "micros": {"find cases": 3000, "update cases": 25000, "insert intake_log": 2000},
        "inserted": {"insert intake_log": 10},
        "upserted": {"update cases": 12},
        "modified": {"update cases": 16},
        "deleted": {},
    }
    out = per_complaint(before, after, 10)
    assert out["round_trips_per_complaint"] == 5.0
    assert out["documents_written_per_complaint"] == 3.0
    assert out["documents_written"] == {
        "inserted": 1.0,
        "upserted": 1.0,
        "modified": 1.0,
        "deleted": 0.0,
    }
    update = out["by_command"]["update cases"]
    assert update == {"per_complaint": 2.0, "mean_ms": 1.0, "written_per_complaint": 2.0}
    assert out["by_command"]["find cases"]["written_per_complaint"] == 0.0


def test_listener_counts_a_command_by_its_reply_and_keeps_no_documents() -> None:
    class Event:
        def __init__(self, name: str, command: dict[str, Any], reply: dict[str, Any]) -> None:
            self.command_name = name
            self.command = command
            self.reply = reply
            self.request_id = 7
            self.duration_micros = 1500

    listener = Listener()
    docs = [{"_id": i, "text": "x" * 100} for i in range(4)]
    event = Event("insert", {"insert": "cases", "documents": docs, "ordered": False}, {})
    listener.started(event)  # type: ignore[arg-type]
    assert listener.pending[7][2]["documents"] == [None] * 4
    event.reply = {"n": 4, "writeErrors": [{"index": 0, **DUP}], "ok": 1.0}
    listener.succeeded(event)  # type: ignore[arg-type]
    snap = listener.snapshot()
    assert snap["count"] == {"insert cases": 1}
    assert snap["micros"] == {"insert cases": 1500}
    assert snap["inserted"] == {"insert cases": 3}
    assert not listener.pending


def test_summarise_totals_the_raw_counts_not_the_rounded_per_service_figures() -> None:
    empty: dict[str, dict[str, int]] = {}
    one = {"count": {"update cases": 1}, "modified": {"update cases": 1}}
    before = {name: empty for name in SERVICES}
    after = {name: one for name in SERVICES}
    out = summarise(before, after, 300, 150)
    # 1/300 rounds to 0.0 per service; four of them are 0.013 per complaint.
    assert all(s["round_trips_per_complaint"] == 0.0 for s in out["services"].values())
    assert out["round_trips_per_complaint"]["value"] == 0.013
    assert out["documents_written_per_complaint"]["value"] == 0.013
    assert out["documents_written_per_new_case"]["value"] == 0.027
    assert out["documents_written"]["modified"]["value"] == 0.013
    assert out["documents_written"]["inserted"]["value"] == 0.0
