"""`amends replay`: a 10,000-row CSV, interrupted and resumed, reaches the intake topic
once per row (plus at most one in-flight window after a crash)."""

from __future__ import annotations

import asyncio
import io
import os
import signal
import subprocess
import sys
import time
from datetime import UTC, datetime
from pathlib import Path

import orjson
from rich.console import Console

from cli.replay import Checkpoint, file_sha256, load_mapping, replay
from shared.events import catalogue, envelope
from shared.kafka import ensure_topics
from shared.settings import REPO_ROOT, Settings
from tests.integration.cli.replay_support import ce_ids, read_topic, write_cfpb_csv

ROWS = 10_000
QUIET = Console(file=io.StringIO())


async def test_stopped_after_3000_then_resumed(settings: Settings, tmp_path: Path) -> None:
    path = write_cfpb_csv(tmp_path / "cfpb.csv", ROWS)
    mapping = load_mapping("cfpb")
    checkpoints = tmp_path / "checkpoints"
    first = await replay(
        settings, path, mapping=mapping, limit=3000, checkpoint_dir=checkpoints, console=QUIET
    )
    assert (first.sent, first.last_acked, first.complete) == (3000, 3000, False)
    sha = file_sha256(path)
    target = f"{settings.kafka_bootstrap_servers} {settings.topic(catalogue.INTAKE.topic)}"
    assert Checkpoint.load(checkpoints, path, sha).last_acked(target) == 3000

    second = await replay(
        settings, path, mapping=mapping, checkpoint_dir=checkpoints, console=QUIET
    )
    assert (second.resumed_after, second.sent, second.complete) == (3000, 7000, True)
    third = await replay(settings, path, mapping=mapping, checkpoint_dir=checkpoints, console=QUIET)
    assert third.complete and third.sent == 0

    records = await read_topic(settings, catalogue.INTAKE.topic)
    ids = ce_ids(records)
    assert len(records) == ROWS and len(set(ids)) == ROWS
    assert set(ids) == {envelope.derived_id(sha, str(n)) for n in range(1, ROWS + 1)}
    sample = next(
        r for r in records if dict(r.headers)["ce_id"].decode() == envelope.derived_id(sha, "42")
    )
    headers = {k: v.decode() for k, v in sample.headers}
    payload = orjson.loads(sample.value)
    assert payload["id"] == "cfpb-5000042" and headers["ce_sourceformat"] == "webform"
    assert payload["submitted_at"] == "2019-02-12T00:00:00Z"
    assert datetime.fromisoformat(headers["ce_time"]) == datetime(2019, 2, 12, tzinfo=UTC)


async def test_killed_mid_way_then_resumed(settings: Settings, tmp_path: Path) -> None:
    path = write_cfpb_csv(tmp_path / "cfpb.csv", ROWS)
    checkpoints = tmp_path / "checkpoints"
    window = 200
    env = {
        **os.environ,
        "AMENDS_TOPIC_PREFIX": settings.topic_prefix,
        "AMENDS_MONGODB_DATABASE": settings.mongodb_database,
        "PYTHONPATH": str(REPO_ROOT),
    }
    command = [
        sys.executable,
        "-m",
        "cli.main",
        "replay",
        str(path),
        "--mapping",
        "cfpb",
        "--rate",
        "2500",
        "--window",
        str(window),
        "--checkpoint-dir",
        str(checkpoints),
    ]
    # `amends replay` refuses a prefix no pipeline uses: give this one its intake topic.
    await ensure_topics(settings, [catalogue.INTAKE.topic])
    proc = subprocess.Popen(
        command, cwd=REPO_ROOT, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
    )
    checkpoint_file = checkpoints / f"{file_sha256(path)}.json"
    try:
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline and proc.poll() is None:
            if checkpoint_file.is_file():
                targets = orjson.loads(checkpoint_file.read_bytes())["targets"]
                if any(t["last_acked"] >= 3000 for t in targets.values()):
                    break
            await asyncio.sleep(0.01)
        assert proc.poll() is None, "the replay ended before it could be interrupted"
        proc.send_signal(signal.SIGKILL)
    finally:
        proc.wait(timeout=10)
    resumed = await replay(
        settings,
        path,
        mapping=load_mapping("cfpb"),
        checkpoint_dir=checkpoints,
        window=window,
        console=QUIET,
    )
    assert resumed.resumed_after >= 3000 and resumed.complete
    records = await read_topic(settings, catalogue.INTAKE.topic)
    ids = ce_ids(records)
    assert len(set(ids)) == ROWS
    assert ROWS <= len(records) <= ROWS + window, len(records)
