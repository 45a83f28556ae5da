"""`amends run` ends with the commands to try next, filled in with this run's case."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from cli.run import Progress, next_commands, print_summary, summary


def test_next_commands_name_the_case_and_this_runs_dead_letters() -> None:
    started = datetime(2026, 12, 7, 2, 14, 3, tzinfo=UTC)
    commands = next_commands("c-1", started)
    assert [c.split()[1:] for c in commands] == [
        ["case", "c-1"],
        ["stats"],
        ["dlq", "list", "--since", "2026-12-07T02:14:03Z"],
    ]
    assert all(c.split()[0].endswith("amends") for c in commands)
    assert [c.split()[1] for c in next_commands(None)] == ["stats", "dlq"]


def test_the_summary_ends_with_them(capsys: pytest.CaptureFixture[str]) -> None:
    progress = Progress(sent=3, cases=1, classified=1, assigned=1, followup_scheduled=1)
    progress.outcomes.update({"new_case": 2, "merged": 1})
    progress.example_case_id = "c-42"
    started = datetime(2026, 12, 7, 2, 0, tzinfo=UTC)
    result = summary(progress, 3, 1.5, "amends_demo", "demo.", started)
    assert result["example_case_id"] == "c-42" and result["missing"] == 0
    print_summary(result)
    tail = capsys.readouterr().out.strip().splitlines()[-4:]
    assert "database amends_demo" in tail[0] and "'demo.'" in tail[0]
    assert "case c-42" in tail[1] and "stats" in tail[2] and "dlq list --since" in tail[3]
