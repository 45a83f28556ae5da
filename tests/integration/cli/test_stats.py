"""`amends stats` on known seeded cases: exact figures, all time and with --since."""

from __future__ import annotations

import io
from datetime import UTC, datetime, timedelta
from typing import Any

import orjson
from rich.console import Console

from cli.format import parse_time
from cli.stats import collect, show_stats
from shared.settings import Settings
from shared.store import Store

NOW = datetime(2026, 1, 10, 12, 0, tzinfo=UTC)
H = timedelta(hours=1)
D = timedelta(days=1)


def case(case_id: str, status: str, opened: timedelta, **fields: Any) -> dict[str, Any]:
    return {"_id": case_id, "status": status, "opened_at": NOW - opened, **fields}


def measures(
    fr: float | None = None,
    fr_met: bool | None = None,
    res: float | None = None,
    res_met: bool | None = None,
) -> dict[str, Any]:
    def outcome(met: bool | None) -> str | None:
        return None if met is None else ("met" if met else "breached")

    values = {
        "ttfr_seconds": fr,
        "first_response_sla": outcome(fr_met),
        "ttr_seconds": res,
        "resolution_sla": outcome(res_met),
    }
    return {"measures": {k: v for k, v in values.items() if v is not None}}


def csat(score: int) -> dict[str, Any]:
    return {"satisfaction": {"survey_kind": "csat", "score": score, "scale_max": 5}}


CASES = [
    case(
        "c1",
        "open",
        2 * H,
        priority="P2",
        channels=["email"],
        sla={"first_response_due": NOW - H, "resolution_due": NOW + 2 * D},
    ),
    case(
        "c2",
        "queued",
        D,
        priority="P1",
        channels=["chat", "email"],
        sla={"first_response_due": NOW + H, "resolution_due": NOW + 2 * D},
    ),
    case(
        "c3",
        "assigned",
        3 * D,
        priority="P1",
        channels=["phone"],
        assignment={"team": "billing"},
        stages={"first_response_at": NOW - 2 * D},
        sla={"first_response_due": NOW - 2 * D + H, "resolution_due": NOW - H},
        **measures(600, True),
    ),
    case(
        "c4",
        "assigned",
        10 * D,
        priority="P3",
        channels=["web"],
        assignment={"team": "billing"},
        **measures(1200, True),
    ),
    case(
        "c5",
        "resolved",
        20 * D,
        priority="P2",
        channels=["email"],
        assignment={"team": "delivery"},
        **measures(3600, False, 86400, True),
        **csat(5),
    ),
    case(
        "c6",
        "closed",
        40 * D,
        priority="P4",
        channels=["email"],
        **measures(300, True, 172800, False),
        **csat(2),
    ),
    case("c7", "closed", 60 * D, channels=["chat"], **measures(900, True, 43200, True), **csat(4)),
    case(
        "c8",
        "reopened",
        5 * D,
        priority="P1",
        channels=["social"],
        assignment={"team": "delivery"},
        **measures(60, True),
        **csat(1),
    ),
]
DEAD_LETTERS = [
    {"_id": "a:0:1", "reason": "invalid_schema", "failed_at": NOW - H},
    {"_id": "a:0:2", "reason": "invalid_schema", "failed_at": NOW - 30 * D},
    {"_id": "b:0:1", "reason": "handler_error", "failed_at": NOW - 2 * D},
]


def with_measured_csat(doc: dict[str, Any]) -> dict[str, Any]:
    """followup keeps the 1-5 score in the answer and in measures.csat."""
    if "satisfaction" in doc:
        doc = {**doc, "measures": {**doc.get("measures", {}), "csat": doc["satisfaction"]["score"]}}
    return doc


async def seed(store: Store) -> None:
    await store["cases"].insert_many([with_measured_csat(doc) for doc in CASES])
    await store["dead_letters"].insert_many(DEAD_LETTERS)


async def test_all_time(store: Store) -> None:
    await seed(store)
    result = await collect(store, None, NOW)
    assert result["cases"] == {
        "total": 8,
        "by_status": {
            "assigned": 2,
            "closed": 2,
            "open": 1,
            "queued": 1,
            "reopened": 1,
            "resolved": 1,
        },
    }
    assert result["open"] == {
        "total": 5,
        "by_status": {"assigned": 2, "open": 1, "queued": 1, "reopened": 1},
        "by_priority": {"P1": 3, "P2": 1, "P3": 1},
        "by_team": {"billing": 2, "unassigned": 2, "delivery": 1},
        "by_channel": {"email": 2, "chat": 1, "phone": 1, "social": 1, "web": 1},
    }
    assert result["sla"] == {
        "first_response": {"met": 5, "breached": 2, "breached_done_late": 1, "overdue_open": 1},
        "resolution": {"met": 2, "breached": 2, "breached_done_late": 1, "overdue_open": 1},
    }
    assert result["median_seconds"] == {
        "first_response": 750.0,
        "first_response_cases": 6,
        "resolution": 86400.0,
        "resolution_cases": 3,
    }
    assert result["csat"] == {
        "responses": 4,
        "mean": 3.0,
        "scale_max": 5,
        "distribution": {"1": 1, "2": 1, "4": 1, "5": 1},
    }
    assert result["dead_letters"] == {
        "total": 3,
        "by_reason": {"invalid_schema": 2, "handler_error": 1},
    }


async def test_since_seven_days(store: Store) -> None:
    await seed(store)
    result = await collect(store, parse_time("7d", now=NOW), NOW)
    assert result["cases"]["by_status"] == {"assigned": 1, "open": 1, "queued": 1, "reopened": 1}
    assert result["open"]["by_team"] == {"unassigned": 2, "billing": 1, "delivery": 1}
    assert result["sla"]["first_response"] == {
        "met": 2,
        "breached": 1,
        "breached_done_late": 0,
        "overdue_open": 1,
    }
    assert result["sla"]["resolution"] == {
        "met": 0,
        "breached": 1,
        "breached_done_late": 0,
        "overdue_open": 1,
    }
    assert result["median_seconds"] == {
        "first_response": 330.0,
        "first_response_cases": 2,
        "resolution": None,
        "resolution_cases": 0,
    }
    assert result["csat"]["mean"] == 1.0 and result["csat"]["responses"] == 1
    assert result["dead_letters"] == {
        "total": 2,
        "by_reason": {"handler_error": 1, "invalid_schema": 1},
    }


async def test_terminal_and_json_output(settings: Settings, store: Store) -> None:
    await seed(store)
    buffer = io.StringIO()
    out = Console(file=buffer, width=120, color_system=None)
    assert await show_stats(settings, None, console=out, now=NOW) == 0
    text = buffer.getvalue()
    for expected in (
        "cases: 8  open (unresolved): 5",
        "billing",
        "first response",
        "median time to first response: 12m 30s (6 cases)",
        "median time to resolution:     1d 00h (3 cases)",
        "CSAT: mean 3.00/5 over 4 answers",
        "invalid_schema",
    ):
        assert expected in text, expected
    buffer = io.StringIO()
    await show_stats(
        settings, NOW - 7 * D, as_json=True, console=Console(file=buffer, width=120), now=NOW
    )
    result = orjson.loads(buffer.getvalue())
    assert result["since"] == "2026-01-03T12:00:00Z" and result["cases"]["total"] == 4
    indexes = {i["name"] async for i in await store["cases"].list_indexes()}
    assert {"measures_ttfr_seconds", "measures_ttr_seconds"} <= indexes
    await show_stats(
        settings, None, as_json=True, console=Console(file=io.StringIO()), now=NOW
    )  # a second run finds the indexes in place
