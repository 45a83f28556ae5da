"""`amends replay`: CSV mappings, JSONL lines, deterministic ids and checkpoints."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

import orjson
import pytest

from cli.format import CliError
from cli.replay import (
    Checkpoint,
    CsvMapping,
    Record,
    Skipped,
    apply_rule,
    event_for,
    load_mapping,
    map_row,
    read_records,
)
from shared.events import envelope

FIXTURES = Path(__file__).resolve().parents[2] / "fixtures" / "cli"


def test_rules() -> None:
    row = {"A": " x ", "B": "", "C": "c"}
    assert apply_rule("A", row) == "x"
    assert apply_rule("B", row) is None
    assert apply_rule("missing", row) is None
    assert apply_rule({"template": "{A}: {C}"}, row) == "x: c"
    assert apply_rule({"template": "{B}. {missing}"}, row) is None
    assert apply_rule(["B", {"template": "{C}!"}, "A"], row) == "c!"
    assert apply_rule({"const": "web"}, row) == "web"


def test_cfpb_rows_become_webform_payloads() -> None:
    records = list(
        read_records(FIXTURES / "cfpb_sample.csv", source=None, mapping=load_mapping("cfpb"))
    )
    sent = [r for r in records if isinstance(r, Record)]
    skipped = [r for r in records if isinstance(r, Skipped)]
    assert [r.number for r in sent] == [1, 2, 3, 5]
    assert [(s.number, s.reason) for s in skipped] == [
        (4, "no value for the time field submitted_at")
    ]
    first = orjson.loads(sent[0].value)
    assert first["id"] == "cfpb-9224135"
    assert first["submitted_at"] == "2024-05-21T00:00:00Z"
    assert first["channel"] == "web"
    assert first["subject"] == (
        "Credit reporting or other personal consumer reports: Incorrect information on your report"
    )
    assert first["message"].startswith("I am formally disputing") and '"fix it"' in first["message"]
    assert first["metadata"] == {
        "product": first["subject"].split(":")[0],
        "company": "EXAMPLE BANK",
        "state": "MI",
        "zip": "48111",
    }
    assert sent[0].time == datetime(2024, 5, 21, tzinfo=UTC)
    assert sent[0].sourceformat == "webform" and sent[0].key == "webform:cfpb-9224135"
    no_narrative = orjson.loads(sent[1].value)
    assert no_narrative["message"] == "Trouble using the card. Problem adding money"
    assert no_narrative["channel"] == "crm"
    assert orjson.loads(sent[2].value)["message"] == "Managing an account"
    assert orjson.loads(sent[3].value)["channel"] == "crm"


def test_mapping_file_equals_builtin() -> None:
    assert load_mapping(str(FIXTURES / "cfpb_mapping.json")) == load_mapping("cfpb")


def test_mapping_errors_name_the_fix(tmp_path: Path) -> None:
    with pytest.raises(CliError, match="not found"):
        load_mapping(str(tmp_path / "nope.json"))
    bad = tmp_path / "bad.json"
    bad.write_text('{"fields": 3}')
    with pytest.raises(CliError, match="not valid"):
        load_mapping(str(bad))
    with pytest.raises(CliError, match="--mapping"):
        list(read_records(FIXTURES / "cfpb_sample.csv", source=None, mapping=None))


def test_custom_time_format_and_required() -> None:
    mapping = CsvMapping(
        fields={"id": "Ticket", "submitted_at": "Created", "message": "Body"},
        time_format="%d.%m.%Y %H:%M",
    )
    payload, at = map_row({"Ticket": "7", "Created": "03.02.2024 14:30", "Body": "hi"}, mapping)
    assert at == datetime(2024, 2, 3, 14, 30, tzinfo=UTC)
    assert payload == {"id": "7", "submitted_at": "2024-02-03T14:30:00Z", "message": "hi"}
    with pytest.raises(ValueError, match="message"):
        map_row({"Ticket": "8", "Created": "03.02.2024 14:30", "Body": ""}, mapping)


def test_jsonl_lines() -> None:
    items = list(read_records(FIXTURES / "replay_sample.jsonl", source=None, mapping=None))
    webform, email, blank, not_json, bare = items
    assert isinstance(webform, Record) and webform.sourceformat == "webform"
    assert webform.key == "ann@example.com"
    assert webform.time == datetime(2023, 3, 1, 10, tzinfo=UTC)
    assert isinstance(email, Record) and email.value.startswith(b"From: bob@")
    assert email.content_type == "message/rfc822" and email.key == "bob@example.com"
    assert email.time == datetime(2023, 3, 2, 6, 30, tzinfo=UTC)
    assert isinstance(blank, Skipped) and isinstance(not_json, Skipped)
    assert isinstance(bare, Skipped) and "--source" in bare.reason
    with_source = list(
        read_records(FIXTURES / "replay_sample.jsonl", source="webform", mapping=None)
    )[-1]
    assert isinstance(with_source, Record) and with_source.number == 5
    assert with_source.time == datetime(2023, 3, 3, tzinfo=UTC)


def test_event_ids_are_derived_from_file_and_line() -> None:
    record = Record(7, "webform", b"{}", "application/json", datetime(2020, 1, 1, tzinfo=UTC), None)
    event = event_for(record, "abc", "f.csv")
    assert event.id == envelope.derived_id("abc", "7") == event_for(record, "abc", "g.csv").id
    assert event.id != event_for(record, "abd", "f.csv").id
    headers = event.headers()
    assert headers["ce_time"] == "2020-01-01T00:00:00+00:00"
    assert headers["ce_sourceformat"] == "webform"
    assert headers["ce_type"] == "amends.intake.v1"


def test_checkpoint_round_trip(tmp_path: Path) -> None:
    checkpoint = Checkpoint.load(tmp_path, Path("f.csv"), "abc")
    assert checkpoint.last_acked("t") == 0 and not checkpoint.done("t")
    checkpoint.save("t", 1500)
    checkpoint.save("other", 10, done=True)
    again = Checkpoint.load(tmp_path, Path("f.csv"), "abc")
    assert again.last_acked("t") == 1500 and not again.done("t")
    assert again.done("other")
    assert (tmp_path / "abc.json").is_file() and not (tmp_path / "abc.tmp").exists()
    again.reset("t")
    assert again.last_acked("t") == 0
