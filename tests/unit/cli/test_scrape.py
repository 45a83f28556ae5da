"""The scrape-targets file `amends run` writes for the local Prometheus (file_sd format)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from cli import SERVICES, scrape
from cli.run import ServiceProcesses


def test_targets_name_every_service_with_the_podmonitor_labels(tmp_path: Path) -> None:
    processes = ServiceProcesses({}, base_port=8420)
    path = scrape.write_targets(processes.ports(), tmp_path / "run" / "targets.json")
    groups = json.loads(path.read_text())
    assert [g["labels"]["service"] for g in groups] == list(SERVICES)
    assert [g["targets"] for g in groups] == [[f"127.0.0.1:{8420 + i}"] for i in range(4)]
    assert {g["labels"]["namespace"] for g in groups} == {"local"}
    assert not list(path.parent.glob(".*")), "the partial file is renamed into place"


def test_clearing_leaves_an_empty_list_not_a_missing_file(tmp_path: Path) -> None:
    path = scrape.write_targets([("ingest", 8101)], tmp_path / "targets.json", namespace="x")
    scrape.clear_targets(path)
    assert json.loads(path.read_text()) == []
    scrape.clear_targets(tmp_path / "never-written.json")
    assert not (tmp_path / "never-written.json").exists()


def test_the_environment_moves_the_file(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("PROMETHEUS_TARGETS", raising=False)
    monkeypatch.delenv("AMENDS_HOME", raising=False)
    assert scrape.targets_file() == scrape.TARGETS_FILE
    monkeypatch.setenv("PROMETHEUS_TARGETS", str(tmp_path / "elsewhere.json"))
    assert scrape.write_targets([("route", 9)]) == tmp_path / "elsewhere.json"
    monkeypatch.delenv("PROMETHEUS_TARGETS")
    monkeypatch.setenv("AMENDS_HOME", str(tmp_path / "home"))
    assert scrape.targets_file() == tmp_path / "home" / "run" / "scrape-targets.json"
