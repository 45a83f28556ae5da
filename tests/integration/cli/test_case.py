"""`amends case` against a case document seeded in the real MongoDB-protocol server."""

from __future__ import annotations

import asyncio
import io
from datetime import UTC, datetime

import orjson
import pytest
from rich.console import Console

from cli.case import show_case
from cli.format import CliError
from cli.main import main
from shared.settings import Settings
from shared.store import Store
from tests.fixtures.cli.case_document import CASE_ID, customer, full_case


def console() -> tuple[Console, io.StringIO]:
    buffer = io.StringIO()
    return Console(file=buffer, width=220, color_system=None), buffer


@pytest.fixture
async def seeded(store: Store) -> datetime:
    now = datetime.now(UTC).replace(microsecond=0)
    await store["customers"].insert_one(customer())
    await store["cases"].insert_one(full_case(now))
    return now


@pytest.mark.parametrize(
    "query",
    [
        CASE_ID,
        "aino.virtanen@example.fi",
        "AINO.Virtanen@example.fi ",
        "+358 40 123 4567",
        "00358401234567",
        "zendesk:98765",
        "callcentre:call-555",
        "twitter:@ainov",
    ],
)
async def test_terminal_view(settings: Settings, seeded: datetime, query: str) -> None:
    out, buffer = console()
    assert await show_case(settings, query, console=out) == 0
    text = buffer.getvalue()
    for expected in (
        "case case-cli-full",
        "Timeline",
        "Contacts",
        "Urgency 87/100",
        "legal_threat",
        "Classification",
        "SLA (P1-gold",
        "Mikko Mäkinen",
        "Escalations",
        "Promises",
        "Follow-up",
        "Satisfaction",
        "Lesson",
        "faulty inlet valve batch",
    ):
        assert expected in text, (query, expected)


async def test_json_is_the_raw_document(settings: Settings, seeded: datetime) -> None:
    out, buffer = console()
    assert await show_case(settings, "+358401234567", as_json=True, console=out) == 0
    doc = orjson.loads(buffer.getvalue())
    expected = orjson.loads(orjson.dumps(full_case(seeded), option=orjson.OPT_UTC_Z))
    assert doc == expected
    assert doc["opened_at"].endswith("Z") and doc["contacts"][2]["channel"] == "phone"


async def test_several_cases_newest_first(
    settings: Settings, store: Store, seeded: datetime
) -> None:
    older = full_case(seeded, case_id="case-older", opened_hours_ago=24 * 40)
    newer = full_case(seeded, case_id="case-newer", opened_hours_ago=1)
    await store["cases"].insert_many([older, newer])
    out, buffer = console()
    await show_case(settings, "aino.virtanen@example.fi", console=out)
    text = buffer.getvalue()
    assert "3 cases match (newest first)" in text
    assert text.index("case-newer") < text.index(CASE_ID) < text.index("case-older")
    assert "case case-newer" in text and "case case-older" not in text
    out, buffer = console()
    await show_case(settings, "aino.virtanen@example.fi", as_json=True, show_all=True, console=out)
    assert [d["_id"] for d in orjson.loads(buffer.getvalue())] == [
        "case-newer",
        CASE_ID,
        "case-older",
    ]


async def test_no_match_names_the_fix(settings: Settings, seeded: datetime) -> None:
    for query in ("nobody@example.com", "+15550000000", "x:y", "no-such-case"):
        with pytest.raises(CliError, match="try an email, phone or case id"):
            await show_case(settings, query, console=console()[0])


async def test_the_command_line(
    settings: Settings,
    seeded: datetime,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    monkeypatch.setenv("AMENDS_MONGODB_DATABASE", settings.mongodb_database)
    assert await asyncio.to_thread(main, ["case", "zendesk:98765", "--json"]) == 0
    assert orjson.loads(capsys.readouterr().out)["_id"] == CASE_ID
    assert await asyncio.to_thread(main, ["case", "nobody@example.com"]) == 1
    assert "no case matches 'nobody@example.com'" in capsys.readouterr().err
