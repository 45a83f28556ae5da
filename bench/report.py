"""Print the markdown table of bench/results/bench.json (for the README).

    python -m bench.report [path/to/bench.json] [--readme]

``--readme`` also writes the table into README.md (between ``<!-- bench:start -->`` and
``<!-- bench:end -->``); ``make bench`` does that after a full run.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

from bench.figures import RESULT_FILE


def _v(figure: Any) -> str:
    if not isinstance(figure, dict) or figure.get("value") is None:
        return "n/a"
    value = figure["value"]
    if isinstance(value, float):
        value = f"{value:,.1f}" if abs(value) >= 10 else f"{value:.3g}"
    elif isinstance(value, int):
        value = f"{value:,}"
    return f"{value} {figure.get('unit', '')}".strip()


def _get(data: dict[str, Any], *path: str) -> Any:
    for key in path:
        if not isinstance(data, dict):
            return None
        data = data.get(key)  # type: ignore[assignment]
    return data


def table(results: dict[str, Any]) -> str:
    rows: list[tuple[str, str]] = []
    m = results.get("machine", {})
    growth = _get(results, "growth", "sizes")
    rows.append(
        (
            "machine",
            f"{_v(m.get('cores'))}, {_v(m.get('memory_total'))} RAM, {m.get('cpu_model', '')}; "
            "1-min load average during the throughput part "
            f"{(_get(results, 'throughput', 'load_average') or ['?'])[0]}, growth "
            f"{max((r.get('load_average') or [0])[0] for r in growth or [{}])}"
            " (shared machine)",
        )
    )
    vers = m.get("versions", {})
    rows.append(
        (
            "versions",
            f"Kafka {vers.get('kafka_broker')}, {vers.get('mongodb_server')}, aiokafka "
            f"{vers.get('aiokafka')}, pymongo {vers.get('pymongo')}, faststream "
            f"{vers.get('faststream')}",
        )
    )
    rows.append(
        (
            "commit",
            f"{results.get('commit', '')[:12]}"
            + (" (dirty)" if results.get("worktree_dirty") else ""),
        )
    )
    b = results.get("baseline", {})
    rows.append(("raw Kafka produce-then-consume, one hop", _v(_get(b, "kafka", "one_hop_rate"))))
    rows.append(("raw Kafka produce only", _v(_get(b, "kafka", "produce_rate"))))
    rows.append(
        (
            "raw DB upsert of a case by _id (1 in flight)",
            _v(_get(b, "mongodb", "upsert_new_sequential")),
        )
    )
    rows.append(
        (
            "raw DB upsert of a case by _id (8 in flight)",
            _v(_get(b, "mongodb", "upsert_new_8_in_flight")),
        )
    )
    rows.append(("raw DB upsert, bulk_write of 500", _v(_get(b, "mongodb", "upsert_new_bulk_500"))))
    t = results.get("throughput", {})
    rows.append(("sustained end-to-end rate (60 s, lag flat)", _v(t.get("sustained_rate"))))
    rows.append(("  of which new cases reaching follow-up", _v(t.get("sustained_case_rate"))))
    rows.append(("ratio to raw one-hop Kafka", _v(t.get("ratio_to_kafka_one_hop"))))
    lat = results.get("latency", {})
    lr = lat.get("ingest_received_to_assigned", {})
    rows.append(
        (
            f"latency ingest-to-assigned at {_v(lat.get('rate'))}",
            f"p50 {_v(lr.get('p50'))}, p95 {_v(lr.get('p95'))}, p99 {_v(lr.get('p99'))}",
        )
    )
    for row in _get(results, "growth", "sizes") or []:
        stored = _get(row, "preload", "stored")
        rows.append(
            (
                f"sustained rate with {_v(stored or row.get('cases_stored'))} stored"
                + (
                    f" (asked {_v(row.get('cases_stored'))})"
                    if stored and stored.get("value") != _get(row, "cases_stored", "value")
                    else ""
                ),
                _v(row.get("sustained_rate"))
                + (
                    f" (preloaded {_v(stored)} in {_v(_get(row, 'preload', 'preload_time'))})"
                    if stored
                    else ""
                )
                + (f" error: {row['error']}" if row.get("error") else ""),
            )
        )
    rows += _ops_rows(results.get("db_ops") or {})
    at_load = t.get("db_ops_at_sustained_rate")
    if at_load:
        rows += _ops_rows({**at_load, "complaints": None, "rate": t.get("sustained_rate")})
    rss = t.get("peak_rss") or {}
    if rss:
        rows.append(
            (
                "peak RSS during throughput run",
                ", ".join(f"{k} {_v(v.get('peak_rss'))}" for k, v in rss.items()),
            )
        )
    lines = ["| measure | result |", "|---|---|"]
    lines += [f"| {a} | {b_} |" for a, b_ in rows]
    tg = results.get("targets") or []
    if tg:
        lines += ["", "| target | measured | met |", "|---|---|---|"]
        for item in tg:
            lines.append(
                f"| {item['target']} | {item['measured']} | {'yes' if item['met'] else 'no'} |"
            )
    return "\n".join(lines)


def _ops_rows(ops: dict[str, Any]) -> list[tuple[str, str]]:
    """Database commands and documents written per complaint, whole system and per service."""
    if not ops:
        return []
    services = ops.get("services") or {}
    at = f"{_v(ops.get('complaints'))} at {_v(ops.get('rate'))}"
    if not ops.get("complaints"):
        at = f"confirm window at {_v(ops.get('rate'))}"

    def by_service(key: str) -> str:
        return ", ".join(f"{name} {v[key]}" for name, v in services.items() if key in v)

    rows = [
        (
            f"DB commands per complaint ({at})",
            f"{_v(ops.get('round_trips_per_complaint'))}: "
            f"{by_service('round_trips_per_complaint')}",
        )
    ]
    if ops.get("documents_written_per_complaint"):
        rows.append(
            (
                f"documents written per complaint ({at})",
                f"{_v(ops['documents_written_per_complaint'])}: "
                f"{by_service('documents_written_per_complaint')}; "
                f"{_v(ops.get('documents_written_per_new_case'))}",
            )
        )
    return rows


README = RESULT_FILE.parents[2] / "README.md"
START, END = "<!-- bench:start -->", "<!-- bench:end -->"
PLACEHOLDER = "BENCH_RESULTS"


def update_readme(results: dict[str, Any], readme: Path = README) -> bool:
    """Put the table between the bench markers of the README (or on its placeholder)."""
    if not readme.exists():
        return False
    text = readme.read_text(encoding="utf-8")
    block = (
        f"{START}\n### Pipeline (`make bench`, `bench/results/bench.json`)\n\n"
        f"{table(results)}\n\nHow it is measured, the profile and what limits the rate: "
        f"[docs/performance.md](docs/performance.md).\n{END}"
    )
    if START in text and END in text:
        head, rest = text.split(START, 1)
        new = head + block + rest.split(END, 1)[1]
    elif f"\n{PLACEHOLDER}\n" in text:
        new = text.replace(f"\n{PLACEHOLDER}\n", f"\n{block}\n", 1)
    else:
        return False
    if new != text:
        readme.write_text(new, encoding="utf-8")
    return True


def main() -> int:
    args = [a for a in sys.argv[1:] if not a.startswith("--")]
    path = Path(args[0]) if args else RESULT_FILE
    results = json.loads(path.read_text())
    print(table(results))
    if "--readme" in sys.argv and not update_readme(results):
        print("README.md has no bench markers or placeholder", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
