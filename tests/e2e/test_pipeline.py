"""End to end: the four services as their own processes, over the real Kafka and
MongoDB-protocol server, from an intake record to a stored, scored, assigned case with
its follow-up scheduled."""

from __future__ import annotations

import json
import re
import shlex
import subprocess
import sys
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest

from cli.run import ServiceProcesses
from cli.target import DEMO_STATE_ENV
from shared.settings import REPO_ROOT, Settings
from shared.store import Store
from tests.support import intake_headers, isolated_settings, produce, service_env, wait_for

FINNISH_LEGAL_THREAT = b"""\
From: =?utf-8?q?Aino_Virtanen?= <aino.virtanen@example.fi>
To: asiakaspalvelu@example.com
Subject: =?utf-8?q?Rikkin=C3=A4inen_pesukone_-_kolmas_yhteydenotto?=
Message-ID: <e2e-aino-1@example.fi>
Date: Tue, 24 Nov 2026 09:15:00 +0200
MIME-Version: 1.0
Content-Type: text/plain; charset="utf-8"
Content-Transfer-Encoding: 8bit

Hei,

pesukone, jonka ostin teilt\xc3\xa4 kaksi viikkoa sitten, on taas rikki ja vesi
valuu lattialle. Olen soittanut teille jo kahdesti eik\xc3\xa4 kukaan ole vastannut.
Jos asiaa ei korjata t\xc3\xa4ll\xc3\xa4 viikolla, otan yhteytt\xc3\xa4
asianajajaan ja kuluttajariitalautakuntaan.

Terveisin
Aino Virtanen
"""


@pytest.fixture
async def pipeline(servers_up: None) -> AsyncIterator[tuple[Settings, Store]]:
    settings = isolated_settings()
    processes = ServiceProcesses(service_env(settings), base_port=8211)
    store = Store(settings)
    processes.start()
    try:
        await processes.wait_ready()
        yield settings, store
    finally:
        processes.stop()
        await store.client.drop_database(settings.mongodb_database)
        await store.close()


async def test_email_complaint_becomes_a_scored_assigned_case_with_followup(
    pipeline: tuple[Settings, Store],
) -> None:
    settings, store = pipeline
    await produce(
        settings,
        "complaints.intake",
        FINNISH_LEGAL_THREAT,
        headers=intake_headers("email", "e2e-email-1"),
        key=b"aino.virtanen@example.fi",
    )

    async def followed_up() -> dict[str, Any] | None:
        return await store["cases"].find_one({"stages.followup_scheduled_at": {"$exists": True}})

    case = await wait_for(followed_up, timeout=60)
    contact = case["contacts"][0]
    assert contact["channel"] == "email" and contact["language"] == "fi"
    assert case["customer_id"]
    classification = case["classification"]
    assert 0 <= classification["urgency"]["score"] <= 100
    assert classification["urgency"]["contributions"], "the score must explain itself"
    assert classification["flags"]["legal_threat"] is True
    assert case["priority"] in {"P1", "P2"}
    assert case["sla"]["first_response_due"] < case["sla"]["resolution_due"]
    assignment = case["assignment"]
    assert assignment["person_id"] and assignment["reasons"]
    assert case["stages"]["assigned_at"] <= case["stages"]["followup_scheduled_at"]

    # "What happened to this complaint?" answered from the case that went through all four.
    env = service_env(settings)
    by_email = subprocess.run(
        [sys.executable, "-m", "cli.main", "case", "aino.virtanen@example.fi", "--json"],
        cwd=REPO_ROOT,
        env=env,
        capture_output=True,
        timeout=60,
        check=False,
    )
    assert by_email.returncode == 0, by_email.stderr.decode()
    assert json.loads(by_email.stdout)["_id"] == case["_id"]
    view = subprocess.run(
        [sys.executable, "-m", "cli.main", "case", case["_id"]],
        cwd=REPO_ROOT,
        env={**env, "COLUMNS": "160"},
        capture_output=True,
        timeout=60,
        check=False,
    )
    assert view.returncode == 0, view.stderr.decode()
    text = view.stdout.decode()
    assert assignment["name"] in text and "legal" in text.lower()
    assert classification["urgency"]["contributions"][0]["signal"] in text


async def test_amends_run_accounts_for_every_input_and_its_next_commands_find_it(
    servers_up: None, tmp_path: Path
) -> None:
    settings = isolated_settings()
    env = {**service_env(settings), DEMO_STATE_ENV: str(tmp_path / "demo.json")}
    env.pop("AMENDS_ROUTE_SEED_PATH")
    try:
        completed = subprocess.run(
            [
                sys.executable,
                "-m",
                "cli.main",
                "run",
                "--count",
                "120",
                "--rate",
                "0",
                "--exit-when-done",
                "--json",
                "--timeout",
                "240",
            ],
            cwd=REPO_ROOT,
            env=env,
            capture_output=True,
            timeout=360,
            check=False,
        )
        assert completed.returncode == 0, completed.stderr.decode()[-3000:]
        summary = json.loads(completed.stdout)
        # The commands it prints, typed as printed: no database, prefix or other flag.
        user_env = {
            k: v
            for k, v in env.items()
            if k
            not in (
                "AMENDS_MONGODB_DATABASE",
                "AMENDS_TOPIC_PREFIX",
                "AMENDS_CONSUMER_GROUP_PREFIX",
            )
        }

        def typed(command: list[str]) -> subprocess.CompletedProcess[str]:
            return subprocess.run(
                command,
                cwd=REPO_ROOT,
                env={**user_env, "COLUMNS": "80"},  # a small terminal
                capture_output=True,
                text=True,
                timeout=90,
                check=False,
            )

        outputs = [typed(shlex.split(command)) for command in summary["next_commands"]]
        # The entries it lists can be copied into `amends dlq show`.
        listed = re.findall(r"^(complaints\.intake\.dlq:\d+:\d+) ", outputs[2].stdout, re.M)
        shown = typed([*shlex.split(summary["next_commands"][2])[:1], "dlq", "show", listed[0]])
    finally:
        store = Store(settings)
        await store.client.drop_database(settings.mongodb_database)
        await store.close()
    assert summary["missing"] == 0
    accounted = (
        summary["new_cases"]
        + summary["merged_into_existing_case"]
        + summary["exact_duplicates_dropped"]
        + summary["praise_recorded"]
        + summary["dead_lettered"]
    )
    assert accounted == summary["inputs"] == 120
    assert summary["dead_lettered"] > 0 and summary["dead_letter_reasons"]
    assert summary["classified"] == summary["cases"] > 0
    assert (
        summary["followup_scheduled"] + summary["queued_waiting_for_capacity"] == summary["cases"]
    )

    case, stats, dlq = outputs
    for result in outputs:
        assert result.returncode == 0, (result.args, result.stderr)
        # One line says where they read, and it is this run's database.
        assert result.stderr.count("\n") == 1 and settings.mongodb_database in result.stderr
    assert summary["next_commands"][0].endswith(f"case {summary['example_case_id']}")
    assert f"case {summary['example_case_id']}" in case.stdout
    assert "assigned" in case.stdout  # the example is an assigned case: a full timeline
    assert f"cases: {summary['cases']} " in stats.stdout
    dead = summary["dead_lettered"] + sum(summary["downstream_dead_letters"].values())
    assert dlq.stdout.startswith(f"{dead} dead letters"), dlq.stdout[:200]
    assert len(listed) == summary["dead_lettered"]
    assert shown.returncode == 0, shown.stderr
    assert f"dead letter {listed[0]}" in shown.stdout
