"""Convert the real labelled sets in ../shared/eval into triage-eval JSONL files.

    python -m bench.triage.convert_eval [--eval-dir ../shared/eval] [--out DIR]

Writes ``test.jsonl`` (measuring only), ``valid.jsonl`` (thresholds, calibration and
options were chosen on it) and ``train.jsonl`` (what the model was fitted on) to DIR
(default: a folder in the system temp dir, so the data stays out of the repository).
The mapping of each source's labels is in ``services/classify/training/datasets.py``
and ``bench/triage/README.md``.
"""

from __future__ import annotations

import argparse
import json
import tempfile
from pathlib import Path

from services.classify.training.datasets import DEFAULT_EVAL_DIR, all_rows

DEFAULT_OUT = Path(tempfile.gettempdir()) / "amends-triage-eval"


def convert(eval_dir: Path, out: Path) -> dict[str, int]:
    out.mkdir(parents=True, exist_ok=True)
    counts: dict[str, int] = {}
    splits = ("train", "valid", "test")
    handles = {s: (out / f"{s}.jsonl").open("w", encoding="utf-8") for s in splits}
    try:
        for row in all_rows(eval_dir):
            split = row["split"]
            record = {k: row[k] for k in ("text", "language", "labels", "dataset")}
            handles[split].write(json.dumps(record, ensure_ascii=False) + "\n")
            counts[split] = counts.get(split, 0) + 1
    finally:
        for handle in handles.values():
            handle.close()
    return counts


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="Convert ../shared/eval to triage JSONL.")
    parser.add_argument("--eval-dir", type=Path, default=DEFAULT_EVAL_DIR)
    parser.add_argument("--out", type=Path, default=DEFAULT_OUT)
    args = parser.parse_args(argv)
    if not args.eval_dir.is_dir():
        parser.error(f"{args.eval_dir} not found")
    counts = convert(args.eval_dir, args.out)
    for split, n in sorted(counts.items()):
        print(f"{args.out / (split + '.jsonl')}: {n} rows")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
