"""Which database and prefix the operator commands read: flags, then env, then the
remembered `amends run` demo (only on the very same servers), then the defaults."""

from __future__ import annotations

from pathlib import Path

import orjson
import pytest

from cli.target import DEMO_STATE_ENV, read_demo, remember_demo, resolve
from shared.settings import Settings

LOCAL = {
    "kafka_bootstrap_servers": "127.0.0.1:9092",
    "mongodb_url": "mongodb://127.0.0.1:27017/?retryWrites=false",
}


@pytest.fixture(autouse=True)
def demo_file(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    path = tmp_path / "run" / "demo.json"
    monkeypatch.setenv(DEMO_STATE_ENV, str(path))
    for name in ("AMENDS_MONGODB_DATABASE", "AMENDS_TOPIC_PREFIX", "AMENDS_SECRETS_DIR"):
        monkeypatch.delenv(name, raising=False)
    return path


def remember_local_demo() -> None:
    remember_demo(Settings(**LOCAL, mongodb_database="amends_demo", topic_prefix="demo."))


def test_the_demo_is_read_on_the_same_servers_and_announced() -> None:
    remember_local_demo()
    target = resolve(Settings(**LOCAL))
    assert target.settings.mongodb_database == "amends_demo"
    assert target.settings.topic_prefix == "demo."
    assert target.notice is not None and "amends_demo" in target.notice
    assert "--database" in target.notice and "\n" not in target.notice


def test_flags_win_over_the_demo() -> None:
    remember_local_demo()
    target = resolve(Settings(**LOCAL), database="amends", topic_prefix="")
    assert (target.settings.mongodb_database, target.settings.topic_prefix) == ("amends", "")
    assert target.notice is None


def test_one_flag_alone_keeps_the_defaults_for_the_other() -> None:
    remember_local_demo()
    target = resolve(Settings(**LOCAL), database="other")
    assert (target.settings.mongodb_database, target.settings.topic_prefix) == ("other", "")


def test_environment_wins_over_the_demo(monkeypatch: pytest.MonkeyPatch) -> None:
    remember_local_demo()
    monkeypatch.setenv("AMENDS_TOPIC_PREFIX", "tenant.")
    target = resolve(Settings(**LOCAL))
    assert target.settings.topic_prefix == "tenant."
    assert target.settings.mongodb_database == "amends"  # not silently mixed with the demo
    assert target.notice is None


@pytest.mark.parametrize(
    "other",
    [
        {"mongodb_url": "mongodb+srv://ops:secret@prod.example.net/"},
        {"kafka_bootstrap_servers": "kafka.prod.example.net:9093"},
    ],
)
def test_another_cluster_is_never_redirected_to_the_demo(other: dict[str, str]) -> None:
    remember_local_demo()
    target = resolve(Settings(**{**LOCAL, **other}))
    assert target.settings.mongodb_database == "amends"
    assert target.settings.topic_prefix == ""
    assert target.notice is None


def test_without_a_demo_the_defaults_apply() -> None:
    target = resolve(Settings(**LOCAL))
    assert (target.settings.mongodb_database, target.settings.topic_prefix) == ("amends", "")
    assert target.notice is None


def test_a_damaged_demo_file_is_ignored(demo_file: Path) -> None:
    demo_file.parent.mkdir(parents=True)
    demo_file.write_text('{"mongodb_database": 3')
    assert read_demo() is None
    assert resolve(Settings(**LOCAL)).settings.mongodb_database == "amends"


def test_the_file_keeps_no_credentials(demo_file: Path) -> None:
    url = "mongodb://amends:s3cr3t-pw@db.example.net:27017/?tls=true"
    remember_demo(Settings(**{**LOCAL, "mongodb_url": url}, mongodb_database="d"))
    text = demo_file.read_text()
    assert "s3cr3t-pw" not in text and "amends:" not in text
    assert orjson.loads(text)["mongodb_hosts"] == "db.example.net:27017"
    assert resolve(Settings(**{**LOCAL, "mongodb_url": url})).settings.mongodb_database == "d"
