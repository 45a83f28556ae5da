"""Time parsing, durations, excerpts and JSON output of the operator commands."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone

import orjson
import pytest

from cli.format import CliError, duration, excerpt, parse_time, to_json

NOW = datetime(2026, 1, 10, 12, 0, tzinfo=UTC)


@pytest.mark.parametrize(
    ("text", "ago"),
    [
        ("24h", timedelta(hours=24)),
        ("7d", timedelta(days=7)),
        ("30m", timedelta(minutes=30)),
        ("90s", timedelta(seconds=90)),
        ("2w", timedelta(weeks=2)),
        (" 1.5H ", timedelta(hours=1.5)),
    ],
)
def test_relative_times(text: str, ago: timedelta) -> None:
    assert parse_time(text, now=NOW) == NOW - ago


def test_iso_times() -> None:
    assert parse_time("2024-05-01") == datetime(2024, 5, 1, tzinfo=UTC)
    assert parse_time("2024-05-01T08:00:00") == datetime(2024, 5, 1, 8, tzinfo=UTC)
    assert parse_time("2024-05-01T08:00:00Z") == datetime(2024, 5, 1, 8, tzinfo=UTC)
    helsinki = parse_time("2024-05-01T08:00:00+03:00")
    assert helsinki == datetime(2024, 5, 1, 5, tzinfo=UTC) and helsinki.tzinfo == UTC


@pytest.mark.parametrize("text", ["yesterday", "7 days", "", "2024-13-01", "h24"])
def test_bad_times_name_the_fix(text: str) -> None:
    with pytest.raises(CliError, match=r"ISO 8601.*24h"):
        parse_time(text)


def test_durations() -> None:
    assert duration(None) == "—"
    assert duration(12) == "12s"
    assert duration(250) == "4m 10s"
    assert duration(7500) == "2h 05m"
    assert duration(3 * 86400 + 4 * 3600) == "3d 04h"
    assert duration(-90) == "-1m 30s"


def test_excerpt_flattens_and_cuts() -> None:
    assert excerpt("a\n  b\tc") == "a b c"
    cut = excerpt("word " * 50, 20)
    assert len(cut) == 20 and cut.endswith("…")
    assert excerpt(None) == ""


def test_json_has_iso_utc_datetimes() -> None:
    naive = datetime(2024, 1, 2, 3, 4, 5)
    aware = datetime(2024, 1, 2, 5, 4, 5, tzinfo=timezone(timedelta(hours=2)))
    out = orjson.loads(to_json({"a": naive, "b": aware, "c": b"raw", 1: {"x"}}))
    assert out["a"] == "2024-01-02T03:04:05Z"
    assert out["b"] == "2024-01-02T05:04:05+02:00"
    assert out["c"] == "raw" and out["1"] == ["x"]
