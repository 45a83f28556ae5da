"""py-spy profiles of every service at a given rate, summarised by library and frame."""

from __future__ import annotations

import asyncio
import shutil
import sys
from collections import Counter
from pathlib import Path
from typing import Any

from bench.figures import RESULTS, fig
from bench.pipeline import Pipeline
from bench.probe import judge
from shared.settings import REPO_ROOT


async def profile_services(pipe: Pipeline, rate: float, seconds: float) -> dict[str, Any]:
    py_spy = shutil.which("py-spy") or str(Path(sys.executable).parent / "py-spy")
    if not Path(py_spy).exists():
        return {"error": "py-spy not installed (pip install py-spy)"}
    out_dir = RESULTS / "profiles"
    out_dir.mkdir(parents=True, exist_ok=True)
    jobs = {}
    for name, proc in pipe.procs.procs.items():
        out = out_dir / f"{name}.txt"
        jobs[name] = (
            await asyncio.create_subprocess_exec(
                py_spy,
                "record",
                "--pid",
                str(proc.pid),
                "--duration",
                str(int(seconds)),
                "--rate",
                "50",
                "--format",
                "raw",
                "--nonblocking",
                "--output",
                str(out),
                stdout=asyncio.subprocess.DEVNULL,
                stderr=asyncio.subprocess.PIPE,
            ),
            out,
        )
    await asyncio.sleep(1)
    window = await pipe.run_window(rate, seconds - 2, 60)
    summaries: dict[str, Any] = {"rate": fig(rate, "complaints/s"), "services": {}}
    for name, (job, out) in jobs.items():
        _, err = await job.communicate()
        if not out.exists():
            summaries["services"][name] = {"error": err.decode()[-300:]}
            continue
        summaries["services"][name] = summarise_profile(out.read_text())
    summaries["cpu_mean"] = judge(window)["cpu_mean"]
    return summaries


CATEGORIES = (
    ("pymongo/bson (driver)", ("pymongo/", "bson/")),
    ("aiokafka", ("aiokafka/",)),
    ("faststream", ("faststream/",)),
    ("pydantic", ("pydantic/", "pydantic_core/")),
    ("asyncio/uvloop", ("asyncio/", "uvloop/")),
    ("prometheus", ("prometheus_client/",)),
    ("logging", ("logging/",)),
    ("classify model/scoring", ("services/classify/",)),
    ("service code", ("services/",)),
    ("shared scaffold", ("shared/",)),
)


def _category(frame: str) -> str:
    for name, needles in CATEGORIES:
        if any(n in frame for n in needles):
            return name
    return "other"


def summarise_profile(raw: str) -> dict[str, Any]:
    """Top self and inclusive costs from py-spy's collapsed stacks (on-CPU samples)."""
    self_cost: Counter[str] = Counter()
    incl: Counter[str] = Counter()
    cat: Counter[str] = Counter()
    total = 0
    for line in raw.splitlines():
        stack, _, count = line.rpartition(" ")
        if not stack or not count.isdigit():
            continue
        n = int(count)
        total += n
        frames = [f for f in stack.split(";") if not f.startswith(("process ", "thread "))]
        if not frames:
            continue
        self_cost[_short(frames[-1])] += n
        for f in {_short(f) for f in frames}:
            incl[f] += n
        # Charge the sample to the innermost frame that is in a known category.
        chosen = "other"
        for f in reversed(frames):
            c = _category(f)
            if c != "other":
                chosen = c
                break
        cat[chosen] += n
    if not total:
        return {"samples": 0}

    def pct(c: Counter[str], k: int) -> list[list[Any]]:
        return [[name, round(100 * n / total, 1)] for name, n in c.most_common(k)]

    return {
        "samples": total,
        "by_category_percent": dict(pct(cat, 20)),
        "top_self_percent": pct(self_cost, 12),
        "top_inclusive_percent": [
            row for row in pct(incl, 60) if "services/" in row[0] or "shared/" in row[0]
        ][:15],
    }


def _short(frame: str) -> str:
    # "func (path/to/file.py:123)" -> "func (pkg/file.py)"
    name, _, where = frame.partition(" (")
    where = where.rstrip(")")
    path = where.rsplit(":", 1)[0]
    for marker in ("site-packages/", f"{REPO_ROOT}/", "lib/python3"):
        if marker in path:
            path = path.split(marker, 1)[1]
    return f"{name} ({path})"
