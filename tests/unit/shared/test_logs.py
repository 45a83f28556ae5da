"""Log hygiene: repeated library errors are collapsed with a count; personal data masked."""

from __future__ import annotations

import logging

import orjson

from shared.logs import JsonFormatter, RepeatFilter


def record(name: str, msg: str, *args: object, level: int = logging.ERROR) -> logging.LogRecord:
    return logging.LogRecord(name, level, __file__, 1, msg, args, None)


def test_repeats_of_one_library_message_are_collapsed_with_a_count() -> None:
    now = [0.0]
    repeat = RepeatFilter(window=30, clock=lambda: now[0])
    template = "Unable connect to node with id %s: %s"
    passed = [repeat.filter(record("aiokafka", template, 1, f"refused {i}")) for i in range(50)]
    assert passed == [True] + [False] * 49
    now[0] = 31.0
    later = record("aiokafka", template, 1, "refused again")
    assert repeat.filter(later)
    assert later.suppressed_repeats == 49  # type: ignore[attr-defined]
    line = orjson.loads(JsonFormatter("ingest").format(later))
    assert line["suppressed_repeats"] == 49


def test_other_messages_and_our_own_loggers_pass() -> None:
    repeat = RepeatFilter(window=30, clock=lambda: 0.0)
    assert repeat.filter(record("aiokafka", "first %s", 1))
    assert repeat.filter(record("aiokafka.consumer", "first %s", 1))  # another logger
    assert repeat.filter(record("aiokafka", "other %s", 1))  # another template
    assert repeat.filter(record("aiokafka", "first %s", 1, level=logging.WARNING))
    for _ in range(5):
        assert repeat.filter(record("shared.service", "handler failed %s", 1))


def test_personal_data_is_masked() -> None:
    line = orjson.loads(
        JsonFormatter("ingest").format(record("shared.service", "from %s", "jane@example.com"))
    )
    assert "jane@example.com" not in line["msg"]
