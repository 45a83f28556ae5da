"""Terminal helpers shared by the operator commands: errors that name the fix, time
parsing (ISO 8601 or relative like 24h / 7d), JSON output, durations, connections, and
the "is there any amends data here?" checks behind "no data under prefix X"."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import re
import shlex
from collections.abc import Coroutine, Iterable
from datetime import UTC, date, datetime, timedelta
from typing import Any

import orjson
from rich.console import Console

from shared.events.catalogue import CATALOGUE, INTAKE, dead_letter_topic
from shared.kafka import kafka_client_options, kafka_unreachable_message
from shared.settings import Settings
from shared.store import Store, mongo_hosts, mongo_unreachable_message

CONNECT_TIMEOUT_SECONDS = 10.0
# A command waits this long for MongoDB to answer before it says it is not reachable
# (the services wait longer; a person at a terminal should not).
SERVER_SELECTION_TIMEOUT_MS = 3_000
_RELATIVE = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*([smhdw])\s*$", re.IGNORECASE)
_UNIT_SECONDS = {"s": 1, "m": 60, "h": 3600, "d": 86400, "w": 7 * 86400}


class CliError(Exception):
    """A problem the operator can fix: the message names the problem and the fix."""

    def __init__(self, message: str, exit_code: int = 2) -> None:
        super().__init__(message)
        self.message = message
        self.exit_code = exit_code


class NoData(CliError):
    """The servers answer but hold no amends data where the command looks."""

    def __init__(self, message: str) -> None:
        super().__init__(message, exit_code=1)


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
    from pymongo.errors import ConfigurationError

    refused = await _refused_everywhere(settings)
    if refused is not None:
        raise mongo_unreachable(settings, refused)
    store = Store(settings, server_selection_timeout_ms=SERVER_SELECTION_TIMEOUT_MS)
    try:
        await asyncio.wait_for(store.ping(), timeout=CONNECT_TIMEOUT_SECONDS)
    except ConfigurationError as exc:  # InvalidURI, unknown option: no server is at fault
        await store.close()
        raise CliError(f"MONGODB_URL is not usable: {exc}") from exc
    except Exception as exc:
        await store.close()
        raise mongo_unreachable(settings, exc) from exc
    return store


async def _refused_everywhere(settings: Settings) -> ConnectionRefusedError | None:
    """The refusal when every host of a plain mongodb:// URL refuses TCP connections (no
    server there: say so now rather than after the driver's server-selection timeout);
    None when one accepts or anything is unclear (the driver then decides)."""
    from pymongo.uri_parser import parse_uri

    url = settings.mongodb_url.get_secret_value()
    if not url.startswith("mongodb://"):
        return None
    try:
        nodes = parse_uri(url)["nodelist"]
    except Exception:
        return None
    refusal: ConnectionRefusedError | None = None
    for host, port in nodes:
        try:
            _, writer = await asyncio.wait_for(asyncio.open_connection(host, port), 1.0)
        except ConnectionRefusedError as exc:
            refusal = exc
            continue
        except Exception:
            return None
        writer.close()
        return None
    return refusal


async def kafka_topics(settings: Settings) -> set[str]:
    """The topic names of the cluster; a CliError naming the fix when Kafka is away."""
    from aiokafka.admin import AIOKafkaAdminClient

    # aiokafka logs each failed connection attempt; the error below says it once.
    quiet = logging.getLogger("aiokafka")
    level = quiet.level
    quiet.setLevel(logging.CRITICAL)
    admin = AIOKafkaAdminClient(**kafka_client_options(settings))
    try:
        await asyncio.wait_for(admin.start(), timeout=CONNECT_TIMEOUT_SECONDS)
        return set(await asyncio.wait_for(admin.list_topics(), timeout=CONNECT_TIMEOUT_SECONDS))
    except Exception as exc:
        raise kafka_unreachable(settings, exc) from exc
    finally:
        with contextlib.suppress(Exception):
            await admin.close()
        quiet.setLevel(level)


# -- is there any amends data here? ----------------------------------------------------

# Collections every pipeline that ever handled one input has written to.
DATA_COLLECTIONS = ("intake_log", "cases", "dead_letters")
SYSTEM_DATABASES = frozenset({"admin", "local", "config"})
MAX_SUGGESTIONS = 3


def ranked(candidates: Iterable[str], preferred: Iterable[str] = ()) -> list[str]:
    """Suggestions: the preferred ones first (the demo, the defaults), then by name."""
    pool = sorted(set(candidates))
    first = [c for c in dict.fromkeys(preferred) if c in pool]
    return first + [c for c in pool if c not in first]


def suggestion(kinds: str, flag: str, candidates: list[str]) -> str:
    """``did you mean `--database amends_demo`? (databases with amends data: ...)``"""
    if not candidates:
        return f"no other {kinds[:-1]} holds amends data either"
    shown = ", ".join(repr(c) for c in candidates[:MAX_SUGGESTIONS])
    more = len(candidates) - MAX_SUGGESTIONS
    extra = f" and {more} more" if more > 0 else ""
    return (
        f"did you mean `{flag} {shlex.quote(candidates[0])}`? "
        f"({kinds} with amends data: {shown}{extra})"
    )


def amends_prefixes(topics: Iterable[str]) -> list[str]:
    """Prefixes under which an amends pipeline has topics (``<prefix>complaints.intake``)."""
    return sorted({t[: -len(INTAKE.topic)] for t in topics if t.endswith(INTAKE.topic)})


def known_topics(settings: Settings) -> set[str]:
    names = {spec.topic for spec in CATALOGUE}
    return {settings.topic(n) for n in names | {dead_letter_topic(n) for n in names}}


def require_topics(settings: Settings, topics: Iterable[str]) -> None:
    """NoData when no amends topic exists under the prefix, naming prefixes that have some."""
    existing = set(topics)
    if known_topics(settings) & existing:
        return
    from cli.target import read_demo

    demo = read_demo() or {}
    candidates = ranked(amends_prefixes(existing), [demo.get("topic_prefix", ""), "", "demo."])
    raise NoData(
        f"no amends topics under prefix {settings.topic_prefix!r} on "
        f"{settings.kafka_bootstrap_servers}; "
        + suggestion("prefixes", "--topic-prefix", candidates)
    )


async def has_data(store: Store, database: str) -> bool:
    db = store.client[database]
    for name in DATA_COLLECTIONS:
        if await db[name].find_one({}, {"_id": 1}) is not None:
            return True
    return False


async def require_data(store: Store, settings: Settings) -> None:
    """NoData when the database holds no amends data, naming databases that do."""
    if await has_data(store, settings.mongodb_database):
        return
    from cli.target import read_demo

    names = [
        n
        for n in await store.client.list_database_names()
        if n not in SYSTEM_DATABASES and n != settings.mongodb_database
    ]
    with_data = [n for n in names[:100] if await has_data(store, n)]
    demo = read_demo() or {}
    candidates = ranked(with_data, [demo.get("mongodb_database", ""), "amends", "amends_demo"])
    raise NoData(
        f"no amends data in database {settings.mongodb_database!r} on {mongo_hosts(settings)}; "
        + suggestion("databases", "--database", candidates)
    )


def run_command(coro: Coroutine[Any, Any, int]) -> int:
    """Run a command's coroutine; errors are printed by the boundary in cli.main."""
    logging.getLogger("aiokafka").setLevel(logging.CRITICAL)  # our errors say it better
    return asyncio.run(coro)
