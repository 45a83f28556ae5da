"""The rows the cascade is fitted and chosen on: converted triage sets plus ../shared/eval.

Every row is ``{"text", "language", "labels", "split", "source"}`` with split ``train``,
``valid`` or ``test``. Sources:
- ``$AMENDS_TRIAGE_DATA/*.jsonl.gz`` (the in-domain sets, see ``convert/common.py``);
- IndoNLU SmSA and EmoT train / valid / test (official splits);
- XED (train side of ``datasets.split_of`` only: the shipped fast model was fitted on
  all of it, so none of it may choose the band; its test side stays for measuring).
A normalised text that occurs in any valid/test row is dropped from every train split,
so nothing the band or the head is judged on was fitted on.
"""

from __future__ import annotations

import csv
import gzip
import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from services.classify.training.convert.common import data_dir, normalise
from services.classify.training.datasets import DEFAULT_EVAL_DIR, xed_rows

Row = dict[str, Any]


def triage_rows(directory: Path | None = None) -> Iterator[Row]:
    for path in sorted((directory or data_dir()).glob("*.jsonl.gz")):
        with gzip.open(path, "rt", encoding="utf-8") as handle:
            for line in handle:
                row = json.loads(line)
                if "upset" in row.get("labels", {}) and row.get("text"):
                    yield row


def smsa_rows(eval_dir: Path) -> Iterator[Row]:
    for split in ("train", "valid", "test"):
        path = eval_dir / "id_indonlu" / f"smsa_doc-sentiment-prosa_{split}_preprocess.tsv"
        if not path.exists():
            continue
        with path.open(encoding="utf-8") as handle:
            for line in handle:
                text, _, label = line.rstrip("\n").rpartition("\t")
                if text and label in ("positive", "neutral", "negative"):
                    yield {
                        "text": text,
                        "language": "id",
                        "labels": {"upset": int(label == "negative")},
                        "split": split,
                        "source": "id_indonlu_smsa",
                    }


def emot_rows(eval_dir: Path) -> Iterator[Row]:
    """EmoT tweets: anger, sadness, fear = upset; happy, love = not."""
    for split in ("train", "valid", "test"):
        path = eval_dir / "id_indonlu" / f"emot_emotion-twitter_{split}_preprocess.csv"
        if not path.exists():
            continue
        with path.open(encoding="utf-8", newline="") as handle:
            for record in csv.DictReader(handle):
                yield {
                    "text": record["tweet"],
                    "language": "id",
                    "labels": {"upset": int(record["label"] in ("anger", "sadness", "fear"))},
                    "split": split,
                    "source": "id_indonlu_emot",
                }


def shared_rows(eval_dir: Path) -> Iterator[Row]:
    yield from smsa_rows(eval_dir)
    yield from emot_rows(eval_dir)
    for row in xed_rows(eval_dir):
        if "upset" in row["labels"]:
            yield {
                "text": row["text"],
                "language": row["language"],
                "labels": {"upset": int(row["labels"]["upset"])},
                "split": row["split"],
                "source": row["dataset"],
            }


def load(eval_dir: Path = DEFAULT_EVAL_DIR, triage_dir: Path | None = None) -> list[Row]:
    # A set both converted and read here (SmSA) counts once: the converted copy first.
    rows, seen = [], set()
    for row in (*triage_rows(triage_dir), *shared_rows(eval_dir)):
        key = (normalise(row["text"]), row["language"])
        if key not in seen:
            seen.add(key)
            rows.append(row)
    held = {normalise(r["text"]) for r in rows if r["split"] != "train"}
    return [r for r in rows if r["split"] != "train" or normalise(r["text"]) not in held]
