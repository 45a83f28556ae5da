"""Parsing shared by the OffensEval-style abuse sets (OLID for English, OffensEval-TR 2020).

Both ship a training TSV with an ``id, tweet, subtask_a`` header and a test set split
in two files: the tweets (``id, tweet``) and the gold labels (``id,label`` CSV).
subtask_a is OFF / NOT (some copies write 1 / 0): OFF -> abusive 1, NOT -> abusive 0.
"""

from __future__ import annotations

import csv
import io
from collections.abc import Iterator

from services.classify.training.convert.common import Row, clean, hash_split, make_row

ABUSIVE = {"OFF": 1, "NOT": 0, "1": 1, "0": 0}


def _abusive(label: str, where: str) -> int:
    if label.strip() not in ABUSIVE:
        raise ValueError(f"{where}: label {label!r} is not OFF/NOT")
    return ABUSIVE[label.strip()]


def _tweets(raw: str, where: str) -> Iterator[dict[str, str]]:
    reader = csv.DictReader(io.StringIO(raw), delimiter="\t", quoting=csv.QUOTE_NONE)
    for record in reader:
        if record.get("id") is None or record.get("tweet") is None:
            raise ValueError(f"{where}: line {reader.line_num} has no id/tweet")
        yield record


def parse_training(raw: str, set_id: str, language: str) -> Iterator[Row]:
    """The training TSV -> train 90 % / valid 10 % by hash (no official dev set)."""
    for record in _tweets(raw, set_id):
        text = clean(record["tweet"])
        labels = {"abusive": _abusive(record.get("subtask_a") or "", set_id)}
        split = hash_split(text, (0.9, 0.1))
        yield make_row(text, language, labels, set_id, split, "offensive_tweets")


def parse_test(tweets: str, gold: str, set_id: str, language: str) -> Iterator[Row]:
    """Test tweets joined with their gold labels by id; every tweet must have one."""
    labels: dict[str, int] = {}
    for pair in csv.reader(io.StringIO(gold)):
        if not pair:
            continue
        if len(pair) != 2:
            raise ValueError(f"{set_id}: gold label line {pair!r} is not id,label")
        labels[pair[0].strip()] = _abusive(pair[1], set_id)
    for record in _tweets(tweets, set_id):
        key = record["id"].strip()
        if key not in labels:
            raise ValueError(f"{set_id}: test tweet {key} has no gold label")
        text = clean(record["tweet"])
        yield make_row(text, language, {"abusive": labels[key]}, set_id, "test", "offensive_tweets")
