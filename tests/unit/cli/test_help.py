"""Every operator command and subcommand has a complete --help."""

from __future__ import annotations

import pytest

from cli.main import build_parser, main

COMMANDS = [
    ["case"],
    ["stats"],
    ["replay"],
    ["dlq"],
    ["dlq", "list"],
    ["dlq", "show"],
    ["dlq", "redrive"],
]


@pytest.mark.parametrize("command", COMMANDS, ids=" ".join)
def test_help(command: list[str], capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exit_info:
        build_parser().parse_args([*command, "--help"])
    assert exit_info.value.code == 0
    out = capsys.readouterr().out
    assert f"usage: amends {' '.join(command)}" in out
    assert "--json" in out or command == ["dlq"]
    description = out.split("\n\n")[1]
    assert len(description) > 60, description


def test_bad_time_names_the_fix(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["stats", "--since", "last tuesday"]) == 2
    assert "relative time like 30m, 24h, 7d" in capsys.readouterr().err


def test_redrive_without_a_selection_names_the_fix(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["dlq", "redrive"]) == 2
    assert "--all" in capsys.readouterr().err
