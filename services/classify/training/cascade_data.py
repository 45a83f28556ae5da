"""The rows the cascade is fitted and chosen on: converted triage sets plus ../shared/eval.

Every row is ``{"text", "language", "labels": {"upset": 0|1}, "split", "source"}`` with
split ``train``, ``valid`` or ``test``. Sources:
- ``$AMENDS_TRIAGE_DATA/*.jsonl.gz``, the in-domain sets (``convert/``), with their
  train / valid / test splits (IndoNLU SmSA among them, official splits);
- ``datasets.py``: XED and IndoNLU EmoT (train / test) and SmSA when it was not
  converted. The shipped fast model was fitted on all their train rows, so none of these
  may choose the band: they fit the head (train) and measure (test).
A text both converted and read here counts once (the converted row first); a normalised
text in any valid/test row is dropped from every train split.
"""

from __future__ import annotations

import gzip
import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from services.classify.training.convert.common import data_dir, normalise
from services.classify.training.datasets import DEFAULT_EVAL_DIR, emot_rows, smsa_rows, xed_rows

Row = dict[str, Any]


def triage_rows(directory: Path | None = None) -> Iterator[Row]:
    for path in sorted((directory or data_dir()).glob("*.jsonl.gz")):
        with gzip.open(path, "rt", encoding="utf-8") as handle:
            for line in handle:
                row = json.loads(line)
                if "upset" in row.get("labels", {}) and row.get("text"):
                    yield row


def shared_rows(eval_dir: Path) -> Iterator[Row]:
    for row in (*xed_rows(eval_dir), *emot_rows(eval_dir), *smsa_rows(eval_dir)):
        if "upset" in row["labels"]:
            yield {
                "text": row["text"],
                "language": row["language"],
                "labels": {"upset": int(row["labels"]["upset"])},
                "split": row["split"],
                "source": row["dataset"],
            }


def load(eval_dir: Path = DEFAULT_EVAL_DIR, triage_dir: Path | None = None) -> list[Row]:
    rows, seen = [], set()
    for row in (*triage_rows(triage_dir), *shared_rows(eval_dir)):
        key = (normalise(row["text"]), row["language"])
        if key not in seen:
            seen.add(key)
            rows.append(row)
    held = {normalise(r["text"]) for r in rows if r["split"] != "train"}
    return [r for r in rows if r["split"] != "train" or normalise(r["text"]) not in held]
