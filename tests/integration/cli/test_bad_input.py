"""Bad input to `amends` against the real servers: one clear line on stderr and a
non-zero exit, never a traceback. Each command runs as its own process, as a user
types it; "not running" servers are a closed loopback port."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import uuid
from pathlib import Path

import pytest

from cli.target import DEMO_STATE_ENV, remember_demo
from shared.settings import REPO_ROOT, Settings
from shared.store import Store

SAMPLE = REPO_ROOT / "tests/fixtures/cli/replay_sample.jsonl"


def closed_port() -> int:
    """A loopback port nothing listens on (bound, then released)."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


@pytest.fixture
def demo_state(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """The demo memory of these tests (never the user's .local/run/demo.json)."""
    path = tmp_path / "demo.json"
    monkeypatch.setenv(DEMO_STATE_ENV, str(path))
    return path


def amends(demo_state: Path, *args: str, **env: str) -> subprocess.CompletedProcess[str]:
    """`amends ARGS` as a user types it: no database or prefix unless given."""
    base = {
        k: v
        for k, v in os.environ.items()
        if k not in ("AMENDS_MONGODB_DATABASE", "AMENDS_TOPIC_PREFIX")
    }
    return subprocess.run(
        [sys.executable, "-m", "cli.main", *args],
        cwd=REPO_ROOT,
        env={
            **base,
            "PYTHONPATH": str(REPO_ROOT),
            DEMO_STATE_ENV: str(demo_state),
            "COLUMNS": "160",
            **env,
        },
        capture_output=True,
        text=True,
        timeout=90,
        check=False,
    )


def error_line(result: subprocess.CompletedProcess[str], code: int) -> str:
    assert "Traceback" not in result.stderr, result.stderr
    lines = [line for line in result.stderr.splitlines() if line.strip()]
    assert len(lines) == 1, result.stderr
    assert result.returncode == code, (result.returncode, result.stderr)
    assert lines[0].startswith("amends: error: ")
    return lines[0]


def closed_mongo() -> str:
    return f"mongodb://127.0.0.1:{closed_port()}/?directConnection=true"


@pytest.mark.parametrize("args", [["stats"], ["case", "c-1"], ["dlq", "redrive", "--all"]])
def test_database_not_running(servers_up: None, demo_state: Path, args: list[str]) -> None:
    url = closed_mongo()
    line = error_line(amends(demo_state, *args, MONGODB_URL=url), 2)
    port = url.split(":")[2].split("/")[0]
    # Refused at once (ConnectionRefusedError), not after the driver's selection timeout.
    assert f"MongoDB not reachable at 127.0.0.1:{port} (ConnectionRefusedError)" in line


def test_database_url_that_is_not_one(servers_up: None, demo_state: Path) -> None:
    line = error_line(amends(demo_state, "stats", MONGODB_URL="http://db.example.net"), 2)
    assert "MONGODB_URL is not usable" in line


@pytest.mark.parametrize(
    "args",
    [
        ["dlq", "list"],
        ["dlq", "show", "complaints.intake.dlq:0:0"],
        ["replay", str(SAMPLE), "--restart"],
        ["run", "--count", "5", "--exit-when-done", "--timeout", "30"],
    ],
)
def test_kafka_not_running(
    servers_up: None, demo_state: Path, tmp_path: Path, args: list[str]
) -> None:
    if args[0] == "replay":
        args = [*args, "--checkpoint-dir", str(tmp_path)]
    settings_env = {"KAFKA_BOOTSTRAP_SERVERS": f"127.0.0.1:{closed_port()}"}
    if args[0] == "run":  # a database of its own, dropped by nobody else
        settings_env["AMENDS_MONGODB_DATABASE"] = f"amends_test_{uuid.uuid4().hex[:10]}"
    line = error_line(amends(demo_state, *args, **settings_env), 2)
    assert f"Kafka not reachable at {settings_env['KAFKA_BOOTSTRAP_SERVERS']}" in line
    assert not demo_state.exists(), "a run that could not start must not be remembered"


def test_run_with_the_database_not_running(servers_up: None, demo_state: Path) -> None:
    result = amends(
        demo_state, "run", "--count", "5", "--exit-when-done", MONGODB_URL=closed_mongo()
    )
    assert "MongoDB not reachable" in error_line(result, 2)


async def test_a_database_without_amends_data_names_one_with_data(
    store: Store, settings: Settings, demo_state: Path
) -> None:
    await store["cases"].insert_one({"_id": "c-seeded", "status": "new"})
    empty = f"amends_test_{uuid.uuid4().hex[:10]}"
    for args in (["stats"], ["case", "c-seeded"]):
        line = error_line(amends(demo_state, *args, "--database", empty), 1)
        assert f"no amends data in database '{empty}'" in line
        assert "did you mean `--database " in line and settings.mongodb_database in line


async def test_unknown_and_malformed_case_ids(
    store: Store, settings: Settings, demo_state: Path
) -> None:
    await store["cases"].insert_one({"_id": "c-seeded", "status": "new"})
    where = ["--database", settings.mongodb_database]
    for query in ("c-00000000-0000-0000-0000-000000000000", "zendesk:", "not an id"):
        line = error_line(amends(demo_state, "case", query, *where), 1)
        assert f"no case matches {query!r}" in line
    assert "give a case id" in error_line(amends(demo_state, "case", " ", *where), 2)


def test_a_prefix_without_topics_names_one_with_topics(
    servers_up: None, demo_state: Path, tmp_path: Path
) -> None:
    prefix = f"nosuch{uuid.uuid4().hex[:8]}."
    replay = ["replay", str(SAMPLE), "--checkpoint-dir", str(tmp_path)]
    for args in (["dlq", "list"], ["dlq", "show", "complaints.intake.dlq:0:0"], replay):
        line = error_line(amends(demo_state, *args, "--topic-prefix", prefix), 1)
        assert f"no amends topics under prefix {prefix!r}" in line


@pytest.mark.parametrize(
    ("args", "words"),
    [
        (["dlq", "show", "complaints.intake.dlq:zero"], "cannot read the entry"),
        (["replay", "/nonexistent/export.jsonl"], "is not a file"),
        (["triage-eval", "/nonexistent/rows.jsonl"], "No such file or directory"),
        (["stats", "--since", "last tuesday"], "cannot read the time"),
    ],
)
def test_malformed_arguments(
    servers_up: None, demo_state: Path, args: list[str], words: str
) -> None:
    assert words in error_line(amends(demo_state, *args), 2)


async def test_the_remembered_demo_is_read_only_on_the_same_servers(
    store: Store, settings: Settings, demo_state: Path
) -> None:
    await store["cases"].insert_one({"_id": "c-demo", "status": "new"})
    remember_demo(settings)  # as `amends run` does, on the servers the tests use
    found = amends(demo_state, "case", "c-demo", "--json")
    assert found.returncode == 0, found.stderr
    assert '"_id": "c-demo"' in found.stdout
    assert f"database {settings.mongodb_database}" in found.stderr  # announced, one line
    # The same server under another URL stands for "another cluster": never redirected.
    other = Settings().mongodb_url.get_secret_value() + "&appname=elsewhere"
    line = error_line(amends(demo_state, "case", "c-demo", MONGODB_URL=other), 1)  # no notice
    # It read the default database: c-demo is not there (or nothing is).
    assert "no case matches 'c-demo'" in line or "no amends data in database 'amends'" in line
