"""`amends dlq list|show|redrive` end to end: a record dead-lettered by the scaffold,
listed and shown from Kafka, redriven to its original topic exactly once."""

from __future__ import annotations

import asyncio
import io
from typing import Any

import orjson
import pytest
from rich.console import Console

from cli import dlq
from cli.dlq import Selection
from cli.format import CliError
from cli.main import main
from shared.events import catalogue
from shared.service import DeadLetter, Service
from shared.settings import Settings
from shared.store import Store
from tests.support import consume_all, intake_headers, produce, running

BODY = b'{"id": "w-1", "message": "broken", "submitted_at": "2024-01-01T00:00:00Z"}'


def output() -> tuple[Console, io.StringIO]:
    buffer = io.StringIO()
    return Console(file=buffer, width=220, color_system=None), buffer


async def dead_letter_one(settings: Settings, event_id: str, reason: str) -> Any:
    """Produce an intake record, read it back, and dead-letter it the scaffold's way."""
    await produce(
        settings,
        catalogue.INTAKE.topic,
        BODY,
        headers=intake_headers("webform", event_id),
        key=b"ann@example.com",
    )
    records = await consume_all(settings, catalogue.INTAKE.topic, expect=1)
    record = next(r for r in records if dict(r.headers).get("ce_id") == event_id.encode())
    service = Service("dlq-test", settings)
    service._topics.add(catalogue.INTAKE.topic)
    service._topics.add(catalogue.dead_letter_topic(catalogue.INTAKE.topic))
    async with running(service):
        await service.dead_letter(catalogue.INTAKE, record, DeadLetter(reason, "bad input", 1))
    return record


def copies(records: list[Any], event_id: str) -> int:
    return sum(1 for r in records if dict(r.headers).get("ce_id") == event_id.encode())


async def test_list_show_redrive_once(settings: Settings, store: Store) -> None:
    original = await dead_letter_one(settings, "evt-dlq-1", "invalid_schema")

    out, buffer = output()
    await dlq.list_command(settings, Selection(), as_json=True, console=out)
    [entry] = orjson.loads(buffer.getvalue())
    ref = entry["ref"]
    assert ref.startswith("complaints.intake.dlq:")
    assert entry["reason"] == "invalid_schema" and entry["event_id"] == "evt-dlq-1"
    assert entry["service"] == "dlq-test" and entry["redriven"] is False
    assert entry["original"] == (f"{original.topic}[{original.partition}]@{original.offset}")

    out, buffer = output()
    await dlq.list_command(settings, Selection(reason="handler_error"), as_json=True, console=out)
    assert orjson.loads(buffer.getvalue()) == []

    out, buffer = output()
    await dlq.show_command(settings, ref, as_json=True, console=out)
    shown = orjson.loads(buffer.getvalue())
    assert shown["value"] == orjson.loads(BODY) and shown["key"] == "ann@example.com"
    assert shown["headers"]["x-dlq-detail"] == "bad input"
    out, buffer = output()
    await dlq.show_command(settings, ref, console=out)
    assert '"message": "broken"' in buffer.getvalue() and "x-dlq-reason" in buffer.getvalue()

    out, buffer = output()
    await dlq.redrive_command(
        settings, [], Selection(reason="invalid_schema"), as_json=True, console=out
    )
    assert orjson.loads(buffer.getvalue())["redriven"] == [ref]
    intake = await consume_all(settings, catalogue.INTAKE.topic, expect=2)
    assert copies(intake, "evt-dlq-1") == 2  # the original and one redrive
    redriven = intake[-1] if intake[-1].offset > original.offset else intake[0]
    assert redriven.value == BODY and redriven.key == b"ann@example.com"
    headers = dict(redriven.headers)
    assert not [h for h in headers if h.startswith("x-dlq-")]
    assert headers["ce_sourceformat"] == b"webform"
    assert await store["dlq_redrives"].count_documents({}) == 1

    out, buffer = output()
    await dlq.redrive_command(settings, [ref], Selection(), as_json=True, console=out)
    second = orjson.loads(buffer.getvalue())
    assert second["redriven"] == [] and second["already_redriven"] == [ref]
    await asyncio.sleep(1)
    assert copies(await consume_all(settings, catalogue.INTAKE.topic, expect=2), "evt-dlq-1") == 2

    out, buffer = output()
    await dlq.list_command(settings, Selection(), console=out)
    assert "yes" in buffer.getvalue() and ref in buffer.getvalue()


async def test_filters_and_errors(settings: Settings, store: Store) -> None:
    await dead_letter_one(settings, "evt-dlq-2", "handler_error")
    out, buffer = output()
    await dlq.list_command(
        settings, Selection(topic="complaints.intake", limit=5), as_json=True, console=out
    )
    assert [e["reason"] for e in orjson.loads(buffer.getvalue())] == ["handler_error"]
    with pytest.raises(CliError, match="no dead-letter topic"):
        await dlq.list_command(settings, Selection(topic="complaints.resolved"))
    with pytest.raises(CliError, match=r"no dead letter complaints\.intake\.dlq:0:99"):
        await dlq.show_command(settings, "complaints.intake.dlq:0:99")
    out, buffer = output()
    await dlq.redrive_command(
        settings, [], Selection(), everything=True, dry_run=True, as_json=True, console=out
    )
    assert len(orjson.loads(buffer.getvalue())["redriven"]) == 1
    assert await store["dlq_redrives"].count_documents({}) == 0


async def test_the_command_line(
    settings: Settings,
    store: Store,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    await dead_letter_one(settings, "evt-dlq-3", "invalid_schema")
    monkeypatch.setenv("AMENDS_TOPIC_PREFIX", settings.topic_prefix)
    monkeypatch.setenv("AMENDS_MONGODB_DATABASE", settings.mongodb_database)
    assert await asyncio.to_thread(main, ["dlq", "list", "--since", "1h"]) == 0
    assert "1 dead letters" in capsys.readouterr().out  # a narrow table: cells wrap
    assert await asyncio.to_thread(main, ["dlq", "redrive", "--all", "--json"]) == 0
    assert len(orjson.loads(capsys.readouterr().out)["redriven"]) == 1
    monkeypatch.setenv("KAFKA_BOOTSTRAP_SERVERS", "127.0.0.1:1")
    assert await asyncio.to_thread(main, ["dlq", "list"]) == 2
    assert "Kafka not reachable at 127.0.0.1:1" in capsys.readouterr().err
