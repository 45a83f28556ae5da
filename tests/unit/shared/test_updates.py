"""shared.updates: updates applied in memory as the server applies them, and the update
that turns one document into another."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from shared.updates import applied, difference

T1 = datetime(2025, 1, 1, tzinfo=UTC)
T2 = datetime(2025, 1, 2, tzinfo=UTC)


def test_operators_on_dotted_paths() -> None:
    doc = {"_id": "a", "n": 1, "tags": ["x"], "at": T2, "sub": {"k": 1}}
    out = applied(
        doc,
        {
            "$set": {"sub.j": 2, "outbox.e1": {"topic": "t"}},
            "$unset": {"sub.k": ""},
            "$inc": {"n": 2, "fresh": 1},
            "$min": {"at": T1},
            "$max": {"n": 10},
            "$addToSet": {"tags": {"$each": ["x", "y"]}},
            "$push": {"log": {"$each": [1, 2]}},
            "$setOnInsert": {"seq": 0},
        },
    )
    assert out == {
        "_id": "a",
        "n": 10,
        "fresh": 1,
        "tags": ["x", "y"],
        "at": T1,
        "sub": {"j": 2},
        "outbox": {"e1": {"topic": "t"}},
        "log": [1, 2],
    }
    assert doc == {"_id": "a", "n": 1, "tags": ["x"], "at": T2, "sub": {"k": 1}}  # untouched


def test_insert_takes_set_on_insert_and_unknown_operators_fail() -> None:
    assert applied(None, {"$setOnInsert": {"seq": 0}, "$inc": {"rev": 1}}) == {
        "seq": 0,
        "rev": 1,
    }
    with pytest.raises(ValueError):
        applied({}, {"$rename": {"a": "b"}})


def test_difference_sets_what_changed_and_unsets_what_went() -> None:
    before = {"_id": "a", "same": 1, "old": 2, "list": [1], "outbox": {"e1": 1, "e2": 2}}
    after = {"_id": "a", "same": 1, "list": [1, 2], "outbox": {"e2": 2, "e3": 3}, "new": {}}
    update = difference(before, after)
    assert update == {
        "$set": {"list": [1, 2], "outbox.e3": 3, "new": {}},
        "$unset": {"old": "", "outbox.e1": ""},
    }
    assert applied(before, update) == after
    assert difference(after, after) == {}
    # A document not stored yet: everything but its _id is set.
    assert difference(None, {"_id": "b", "x": {"y": 1}}) == {"$set": {"x": {"y": 1}}}


def test_sub_documents_with_dotted_keys_are_set_whole() -> None:
    update = difference({"m": {"a.b": 1}}, {"m": {"a.b": 2}})
    assert update == {"$set": {"m": {"a.b": 2}}}
