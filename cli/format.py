"""Terminal helpers shared by the operator commands: errors that name the fix, time
parsing (ISO 8601 or relative like 24h / 7d), JSON output, durations, connections."""

from __future__ import annotations

import asyncio
import logging
import re
import sys
from collections.abc import Coroutine
from datetime import UTC, date, datetime, timedelta
from typing import Any

import orjson
from rich.console import Console

from shared.service import kafka_unreachable_message, mongo_unreachable_message
from shared.settings import Settings
from shared.store import Store

CONNECT_TIMEOUT_SECONDS = 10.0
_RELATIVE = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*([smhdw])\s*$", re.IGNORECASE)
_UNIT_SECONDS = {"s": 1, "m": 60, "h": 3600, "d": 86400, "w": 7 * 86400}


class CliError(Exception):
    """A problem the operator can fix: the message names the problem and the fix."""

    def __init__(self, message: str, exit_code: int = 2) -> None:
        super().__init__(message)
        self.message = message
        self.exit_code = exit_code


# -- time ------------------------------------------------------------------------------


def parse_time(text: str, now: datetime | None = None) -> datetime:
    """``24h``, ``7d``, ``30m``, ``90s``, ``2w`` ago, or an ISO 8601 date / date-time.

    A date-time without a zone is taken as UTC; a bare date means its midnight UTC.
    """
    now = now or datetime.now(UTC)
    match = _RELATIVE.match(text)
    if match:
        amount, unit = float(match.group(1)), match.group(2).lower()
        return now - timedelta(seconds=amount * _UNIT_SECONDS[unit])
    try:
        return parse_iso(text)
    except ValueError:
        raise CliError(
            f"cannot read the time {text!r}: use ISO 8601 (2024-05-01, "
            "2024-05-01T08:00:00+03:00) or a relative time like 30m, 24h, 7d, 2w"
        ) from None


def parse_iso(text: str) -> datetime:
    """An ISO 8601 date or date-time as an aware UTC datetime; ValueError otherwise."""
    cleaned = text.strip()
    if not cleaned[:4].isdigit():
        raise ValueError(f"not an ISO 8601 time: {text!r}")
    try:
        parsed = datetime.fromisoformat(cleaned)
    except ValueError:
        day = date.fromisoformat(cleaned)
        parsed = datetime(day.year, day.month, day.day)
    return as_utc(parsed)


def as_utc(value: datetime) -> datetime:
    return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


def iso(value: datetime | None) -> str:
    return as_utc(value).isoformat().replace("+00:00", "Z") if value else "—"


def short_time(value: datetime | None) -> str:
    return as_utc(value).strftime("%Y-%m-%d %H:%M") if value else "—"


def duration(seconds: float | None) -> str:
    """``3d 04h``, ``2h 05m``, ``4m 10s``, ``12s``; negative durations get a minus sign."""
    if seconds is None:
        return "—"
    sign = "-" if seconds < 0 else ""
    left = int(abs(seconds))
    days, left = divmod(left, 86400)
    hours, left = divmod(left, 3600)
    minutes, secs = divmod(left, 60)
    if days:
        return f"{sign}{days}d {hours:02d}h"
    if hours:
        return f"{sign}{hours}h {minutes:02d}m"
    if minutes:
        return f"{sign}{minutes}m {secs:02d}s"
    return f"{sign}{secs}s"


# -- text and JSON ---------------------------------------------------------------------


def excerpt(text: str | None, limit: int = 120) -> str:
    """One line, at most ``limit`` characters, with an ellipsis when cut."""
    flat = " ".join((text or "").split())
    return flat if len(flat) <= limit else flat[: limit - 1].rstrip() + "…"


def _json_default(value: Any) -> Any:
    if isinstance(value, bytes | bytearray):
        return bytes(value).decode("utf-8", "replace")
    if isinstance(value, set | frozenset | tuple):
        return list(value)
    return str(value)  # ObjectId, Decimal128, UUID...


def to_json(value: Any, *, indent: bool = True) -> str:
    """JSON with ISO date-times (UTC ``Z``); unknown types as strings."""
    option = orjson.OPT_NAIVE_UTC | orjson.OPT_UTC_Z | orjson.OPT_NON_STR_KEYS
    if indent:
        option |= orjson.OPT_INDENT_2
    return orjson.dumps(value, default=_json_default, option=option).decode()


def make_console(file: Any = None, width: int | None = None) -> Console:
    return Console(file=file, width=width, highlight=False, soft_wrap=False)


# -- connections -----------------------------------------------------------------------


def kafka_unreachable(settings: Settings, exc: BaseException | None = None) -> CliError:
    return CliError(kafka_unreachable_message(settings, exc))


def mongo_unreachable(settings: Settings, exc: BaseException | None = None) -> CliError:
    return CliError(mongo_unreachable_message(settings, exc))


async def open_store(settings: Settings) -> Store:
    """A connected store (no index creation), or a CliError naming the fix."""
    store = Store(settings)
    try:
        await asyncio.wait_for(store.ping(), timeout=CONNECT_TIMEOUT_SECONDS)
    except Exception as exc:
        await store.close()
        raise mongo_unreachable(settings, exc) from exc
    return store


def run_command(coro: Coroutine[Any, Any, int]) -> int:
    """Run a command's coroutine; print a CliError as ``amends: error: ...``."""
    logging.getLogger("aiokafka").setLevel(logging.CRITICAL)  # our errors say it better
    try:
        return asyncio.run(coro)
    except CliError as exc:
        print(f"amends: error: {exc.message}", file=sys.stderr)
        return exc.exit_code
    except KeyboardInterrupt:
        print("amends: interrupted", file=sys.stderr)
        return 130
