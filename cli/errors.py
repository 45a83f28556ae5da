"""One line for whatever stops a command: the error boundary of `amends` (cli/main.py).

Commands raise ``CliError`` (or ``NoData``) for problems they recognise; everything else
that bad input or an absent server causes (an invalid setting, a missing file, Kafka or
MongoDB not answering, a topic Kafka refused) is translated here, so no command needs
its own try/except and none ends in a traceback.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass

from aiokafka.errors import KafkaConnectionError, KafkaTimeoutError
from pydantic import SecretStr, ValidationError
from pydantic_settings import SettingsError
from pymongo.errors import ConfigurationError, ConnectionFailure

from cli.format import CliError
from shared.kafka import TopicCreationError, kafka_unreachable_message
from shared.settings import Settings
from shared.store import mongo_unreachable_message

# Values of these settings are never echoed back (they may carry credentials).
_SECRET_HINTS = ("password", "secret", "token", "url", "sasl")


@dataclass(frozen=True)
class Explained:
    message: str
    exit_code: int
    expected: bool = True  # False: a bug, worth a traceback under AMENDS_DEBUG=1


def explain(exc: BaseException) -> Explained:
    if isinstance(exc, CliError):
        return Explained(exc.message, exc.exit_code)
    if isinstance(exc, KeyboardInterrupt):
        return Explained("interrupted", 130)
    if isinstance(exc, ValidationError) and exc.title.endswith("Settings"):
        return Explained(settings_message(exc), 2)
    if isinstance(exc, SettingsError):  # a JSON-valued setting that is not JSON
        field = re.search(r'field "(\w+)"', str(exc))
        name = f"AMENDS_{field.group(1).upper()}" if field else "a setting"
        cause = f": {exc.__cause__}" if exc.__cause__ else ""
        return Explained(f"invalid setting {name}{cause}", 2)
    if isinstance(exc, OSError) and exc.filename is not None:
        return Explained(f"{exc.strerror or exc}: {exc.filename}", 2)
    if isinstance(exc, TopicCreationError):
        return Explained(str(exc), 2)
    if isinstance(exc, KafkaConnectionError | KafkaTimeoutError):
        return Explained(_with_settings(kafka_unreachable_message, exc, "Kafka"), 2)
    if isinstance(exc, ConnectionFailure):
        return Explained(_with_settings(mongo_unreachable_message, exc, "MongoDB"), 2)
    if isinstance(exc, ConfigurationError):
        return Explained(f"MONGODB_URL is not usable: {exc}", 2)
    return Explained(
        f"unexpected {type(exc).__name__}: {exc} (AMENDS_DEBUG=1 shows the traceback)",
        1,
        expected=False,
    )


def settings_message(exc: ValidationError) -> str:
    """``invalid setting AMENDS_HTTP_PORT='abc': Input should be a valid integer...``"""
    problems = []
    for error in exc.errors():
        field = ".".join(str(part) for part in error.get("loc", ())) or exc.title
        name = (
            field.upper()
            if field.upper().startswith(("AMENDS_", "KAFKA_", "MONGODB_"))
            else (f"AMENDS_{field.upper()}")
        )
        value = error.get("input")
        secret = isinstance(value, SecretStr) or any(h in field.lower() for h in _SECRET_HINTS)
        shown = "" if secret or isinstance(value, dict) else f"={value!r}"
        problems.append(f"{name}{shown}: {error.get('msg', 'invalid')}")
    return "invalid setting " + "; ".join(problems)


def _with_settings(
    message: Callable[[Settings, BaseException], str], exc: BaseException, server: str
) -> str:
    try:
        return message(Settings(), exc)
    except Exception:  # the settings themselves are unreadable
        return f"{server} not reachable ({type(exc).__name__}): run `amends infra up`"


__all__ = ["Explained", "explain", "settings_message"]
