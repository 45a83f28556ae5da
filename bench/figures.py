"""Where the results go and the shape of every figure (a value with its unit)."""

from __future__ import annotations

import sys
import time
from typing import Any

from shared.settings import REPO_ROOT

RESULTS = REPO_ROOT / "bench" / "results"
RESULT_FILE = RESULTS / "bench.json"
WORK = REPO_ROOT / ".local" / "bench"


def fig(value: Any, unit: str, **extra: Any) -> dict[str, Any]:
    """Every figure carries its unit."""
    if isinstance(value, float):
        value = round(value, 3 if abs(value) < 10 else 1)
    return {"value": value, "unit": unit, **extra}


def log(*parts: Any) -> None:
    print(f"[bench {time.strftime('%H:%M:%S')}]", *parts, file=sys.stderr, flush=True)


def percentiles(values: list[float]) -> dict[str, Any]:
    if not values:
        return {}
    ordered = sorted(values)

    def pick(q: float) -> float:
        return ordered[min(len(ordered) - 1, max(0, round(q * len(ordered) + 0.5) - 1))]

    return {
        "p50": fig(pick(0.50), "ms"),
        "p95": fig(pick(0.95), "ms"),
        "p99": fig(pick(0.99), "ms"),
        "max": fig(ordered[-1], "ms"),
        "samples": fig(len(ordered), "cases"),
    }
