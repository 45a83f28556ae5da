"""Structured JSON logs on stderr, with personal data masked before it is written."""

from __future__ import annotations

import logging
import sys
import time
from collections.abc import Callable
from typing import Any

import orjson

from .privacy import mask_pii

_RESERVED = set(logging.LogRecord("", 0, "", 0, "", (), None).__dict__) | {"message", "asctime"}


class JsonFormatter(logging.Formatter):
    def __init__(self, service: str) -> None:
        super().__init__()
        self.service = service

    def format(self, record: logging.LogRecord) -> str:
        entry: dict[str, Any] = {
            "ts": self.formatTime(record, "%Y-%m-%dT%H:%M:%S") + f".{int(record.msecs):03d}Z",
            "level": record.levelname.lower(),
            "service": self.service,
            "logger": record.name,
            "msg": mask_pii(record.getMessage()),
        }
        for key, value in record.__dict__.items():
            if key not in _RESERVED and not key.startswith("_"):
                entry[key] = mask_pii(value) if isinstance(value, str) else value
        if record.exc_info:
            entry["exc"] = mask_pii(self.formatException(record.exc_info))
        return orjson.dumps(entry, default=str).decode()


class RepeatFilter(logging.Filter):
    """Lets one record per (logger, message template) through every ``window`` seconds for
    the noisy libraries (``prefixes``); the next one let through carries
    ``suppressed_repeats``. During a Kafka outage aiokafka logs the same connection error
    several times a second per client: this keeps the first and a count, not thousands."""

    def __init__(
        self,
        prefixes: tuple[str, ...] = ("aiokafka",),
        window: float = 30.0,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        super().__init__()
        self.prefixes = prefixes
        self.window = window
        self.clock = clock
        self._last: dict[tuple[str, int, str], float] = {}
        self._suppressed: dict[tuple[str, int, str], int] = {}

    def filter(self, record: logging.LogRecord) -> bool:
        if not record.name.startswith(self.prefixes):
            return True
        key = (record.name, record.levelno, str(record.msg))
        now = self.clock()
        last = self._last.get(key)
        if last is not None and now - last < self.window:
            self._suppressed[key] = self._suppressed.get(key, 0) + 1
            return False
        self._last[key] = now
        suppressed = self._suppressed.pop(key, 0)
        if suppressed:
            record.suppressed_repeats = suppressed
        return True


def configure_logging(service: str, level: str = "INFO", json: bool = True) -> None:
    handler = logging.StreamHandler(sys.stderr)
    if json:
        handler.setFormatter(JsonFormatter(service))
        logging.Formatter.converter = __import__("time").gmtime
    else:
        handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s %(message)s"))
    handler.addFilter(RepeatFilter())
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level.upper())
    # aiokafka logs every rebalance and retry at INFO/WARNING; keep the signal, not the noise.
    logging.getLogger("aiokafka").setLevel(max(logging.WARNING, root.level))
