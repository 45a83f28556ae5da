"""Which database and topic prefix the operator commands read.

`amends run` (the demo behind `make run`) writes to its own database and topic prefix so
it never touches real data. It remembers them in ``.local/run/demo.json`` so that the
next commands a user types (`amends stats`, `amends case ID`, `amends dlq list`) show
what the demo just did. Order, first wins:

1. ``--database`` / ``--topic-prefix`` on the command line;
2. ``AMENDS_MONGODB_DATABASE`` / ``AMENDS_TOPIC_PREFIX`` (or a secrets file);
3. the remembered demo, only when neither of those is given *and* the Kafka and MongoDB
   URLs are the very ones the demo used (a CLI pointed at another cluster is never
   redirected to demo data), announced by one line on stderr;
4. the defaults (database ``amends``, no prefix).

The file holds no secret: the MongoDB URL is kept as a SHA-256 digest.
"""

from __future__ import annotations

import hashlib
import os
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import orjson

from shared.settings import REPO_ROOT, Settings
from shared.store import mongo_hosts

DEMO_STATE_ENV = "AMENDS_DEMO_STATE"
TARGET_FIELDS = ("mongodb_database", "topic_prefix")


def demo_state_path() -> Path:
    """Where the demo's settings are remembered (tests point it elsewhere)."""
    return Path(os.environ.get(DEMO_STATE_ENV) or REPO_ROOT / ".local" / "run" / "demo.json")


def url_digest(settings: Settings) -> str:
    return hashlib.sha256(settings.mongodb_url.get_secret_value().encode()).hexdigest()


def remember_demo(settings: Settings) -> Path:
    """Record the demo's database and prefix, and the servers they live on."""
    path = demo_state_path()
    path.parent.mkdir(parents=True, exist_ok=True)
    state = {
        "mongodb_database": settings.mongodb_database,
        "topic_prefix": settings.topic_prefix,
        "kafka_bootstrap_servers": settings.kafka_bootstrap_servers,
        "mongodb_hosts": mongo_hosts(settings),
        "mongodb_url_sha256": url_digest(settings),
        "written_at": datetime.now(UTC).isoformat(),
    }
    temporary = path.with_suffix(".tmp")
    temporary.write_bytes(orjson.dumps(state, option=orjson.OPT_INDENT_2))
    temporary.replace(path)  # a reader never sees half a file
    return path


def read_demo() -> dict[str, Any] | None:
    try:
        state = orjson.loads(demo_state_path().read_bytes())
    except (OSError, orjson.JSONDecodeError):
        return None
    if not isinstance(state, dict) or not all(isinstance(state.get(f), str) for f in TARGET_FIELDS):
        return None
    return state


@dataclass(frozen=True)
class Target:
    settings: Settings
    notice: str | None = None  # one line for stderr when the demo was chosen


def resolve(
    base: Settings, *, database: str | None = None, topic_prefix: str | None = None
) -> Target:
    """The settings an operator command reads (see the module docstring)."""
    flags = {
        name: value
        for name, value in zip(TARGET_FIELDS, (database, topic_prefix), strict=True)
        if value is not None
    }
    explicit = bool(flags) or any(name in base.model_fields_set for name in TARGET_FIELDS)
    if explicit:
        return Target(base.model_copy(update=flags))
    demo = read_demo()
    if (
        demo is None
        or demo.get("kafka_bootstrap_servers") != base.kafka_bootstrap_servers
        or demo.get("mongodb_url_sha256") != url_digest(base)
    ):
        return Target(base)
    settings = base.model_copy(update={name: demo[name] for name in TARGET_FIELDS})
    notice = (
        f"amends: reading the `amends run` demo (database {settings.mongodb_database}, "
        f"topic prefix {settings.topic_prefix!r}); --database / --topic-prefix choose another"
    )
    return Target(settings, notice)


__all__ = ["Target", "demo_state_path", "read_demo", "remember_demo", "resolve"]
