"""`amends dlq`: entry names, topic spellings and what a redrive sends."""

from __future__ import annotations

import pytest

from cli.dlq import Entry, dlq_name, original_headers, parse_ref
from cli.format import CliError
from shared.settings import Settings

SETTINGS = Settings(topic_prefix="t1.")


def test_topic_spellings() -> None:
    assert dlq_name(SETTINGS, "complaints.intake") == "complaints.intake.dlq"
    assert dlq_name(SETTINGS, "complaints.intake.dlq") == "complaints.intake.dlq"
    assert dlq_name(SETTINGS, "t1.complaints.intake.dlq") == "complaints.intake.dlq"


def test_refs() -> None:
    assert parse_ref(SETTINGS, "complaints.intake.dlq:2:15") == ("t1.complaints.intake.dlq", 2, 15)
    assert parse_ref(SETTINGS, "t1.complaints.received:0:0") == ("t1.complaints.received.dlq", 0, 0)
    for bad in ("complaints.intake.dlq", "x:1", "x:a:1", ":1:2"):
        with pytest.raises(CliError, match="amends dlq list"):
            parse_ref(SETTINGS, bad)


def test_redrive_sends_the_original_headers_only() -> None:
    entry = Entry(
        topic="t1.complaints.intake.dlq",
        name="complaints.intake.dlq",
        partition=1,
        offset=9,
        key=b"k",
        value=b"{}",
        timestamp_ms=0,
        raw_headers=(
            ("ce_id", b"e1"),
            ("x-dlq-reason", b"invalid_schema"),
            ("content-type", b"application/json"),
            ("X-DLQ-Detail", b"d"),
        ),
    )
    assert original_headers(entry) == [("ce_id", b"e1"), ("content-type", b"application/json")]
    assert entry.ref == "complaints.intake.dlq:1:9"
    assert entry.redrive_id == "t1.complaints.intake.dlq:1:9"
    assert entry.reason == "invalid_schema"
