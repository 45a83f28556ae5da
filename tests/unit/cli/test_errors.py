"""The CLI's error boundary: every failure becomes one line on stderr and an exit code,
never a traceback (cli/errors.py, cli/main.py). Server-dependent cases are in
tests/integration/cli/test_bad_input.py."""

from __future__ import annotations

from pathlib import Path

import pytest
from aiokafka.errors import KafkaConnectionError
from pymongo.errors import InvalidURI, ServerSelectionTimeoutError

from cli.errors import explain
from cli.format import CliError, NoData, amends_prefixes, ranked, require_topics, suggestion
from cli.main import main
from cli.target import DEMO_STATE_ENV
from shared.kafka import TopicCreationError
from shared.settings import Settings


@pytest.fixture(autouse=True)
def no_demo(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(DEMO_STATE_ENV, str(tmp_path / "demo.json"))


def one_error_line(capsys: pytest.CaptureFixture[str]) -> str:
    err = capsys.readouterr().err
    lines = err.strip().splitlines()
    assert len(lines) == 1, err
    assert lines[0].startswith("amends: error: ") and "Traceback" not in err
    return lines[0]


@pytest.mark.parametrize(
    ("exc", "code", "words"),
    [
        (CliError("say it", exit_code=3), 3, "say it"),
        (NoData("nothing here"), 1, "nothing here"),
        (KeyboardInterrupt(), 130, "interrupted"),
        (FileNotFoundError(2, "No such file or directory", "/x.jsonl"), 2, "/x.jsonl"),
        (IsADirectoryError(21, "Is a directory", "/tmp"), 2, "Is a directory: /tmp"),
        (TopicCreationError("Kafka refused to create t: bad"), 2, "refused"),
        (KafkaConnectionError("no"), 2, "Kafka not reachable"),
        (ServerSelectionTimeoutError("no"), 2, "MongoDB not reachable"),
        (InvalidURI("Invalid URI scheme"), 2, "MONGODB_URL is not usable"),
    ],
)
def test_known_failures_get_their_own_line(exc: BaseException, code: int, words: str) -> None:
    explained = explain(exc)
    assert explained.exit_code == code and explained.expected
    assert words in explained.message and "\n" not in explained.message


def test_a_bug_is_named_with_the_way_to_its_traceback() -> None:
    explained = explain(ZeroDivisionError("division by zero"))
    assert explained.exit_code == 1 and not explained.expected
    assert "ZeroDivisionError" in explained.message and "AMENDS_DEBUG=1" in explained.message


def test_an_invalid_setting_names_its_variable(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("AMENDS_HTTP_PORT", "abc")
    assert main(["stats"]) == 2
    line = one_error_line(capsys)
    assert "AMENDS_HTTP_PORT='abc'" in line and "integer" in line


def test_a_secret_setting_is_not_echoed(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("AMENDS_WEBHOOK_SECRETS", "{not json s3cr3t")
    from services.ingest.settings import IngestSettings

    with pytest.raises(ValueError) as caught:
        IngestSettings()
    message = explain(caught.value).message
    assert "AMENDS_WEBHOOK_SECRETS" in message and "s3cr3t" not in message


@pytest.mark.parametrize(
    ("argv", "words"),
    [
        (["triage-eval", "/nonexistent/rows.jsonl"], "No such file or directory"),
        (["asyncapi", "--out", "/proc/amends-cannot-write-here"], "/proc/amends-cannot"),
        (["case", "   "], "give a case id"),
    ],
)
def test_bad_arguments_without_servers(
    argv: list[str], words: str, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(argv) == 2
    assert words in one_error_line(capsys)


def test_triage_eval_names_the_line_that_is_not_json(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    rows = tmp_path / "rows.jsonl"
    rows.write_text('{"text": "fine"}\n{broken\n')
    assert main(["triage-eval", str(rows)]) == 2
    assert f"{rows}:2: not JSON" in one_error_line(capsys)


def test_prefixes_are_found_from_topic_names() -> None:
    topics = ["demo.complaints.intake", "complaints.intake", "demo.complaints.intake.dlq", "x"]
    assert amends_prefixes(topics) == ["", "demo."]
    assert ranked(["b.", "a.", "demo."], ["demo.", "missing"]) == ["demo.", "a.", "b."]


def test_a_prefix_without_topics_suggests_one_that_has_them() -> None:
    settings = Settings(topic_prefix="typo.")
    with pytest.raises(NoData) as caught:
        require_topics(settings, ["demo.complaints.intake", "t1.complaints.intake", "other"])
    assert "no amends topics under prefix 'typo.'" in caught.value.message
    assert "`--topic-prefix demo.`" in caught.value.message
    require_topics(Settings(topic_prefix="demo."), ["demo.complaints.intake.dlq"])  # no error


def test_suggestions_quote_the_empty_prefix_and_count_the_rest() -> None:
    text = suggestion("prefixes", "--topic-prefix", ["", "a.", "b.", "c.", "d."])
    assert "`--topic-prefix ''`" in text and "and 2 more" in text
    assert "no other database" in suggestion("databases", "--database", [])
