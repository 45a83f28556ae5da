"""Read the real labelled sets in ``../shared/eval`` as triage rows, split for fitting/measuring.

A row is ``{"text", "language", "labels": {...}, "dataset", "split"}``; ``labels`` holds
only what the source really says (see ``bench/triage/README.md`` for each mapping).

Splits: IndoNLU ships train/valid/test files; we fit on ``train``, choose options,
thresholds and calibration on ``valid`` and measure on ``test``. XED ships no split, so
each line goes 80/10/10 to train/valid/test by a hash of its normalised text
(``convert.common.hash_split``): deterministic, and duplicates land on the same side.
The CFPB sample is measuring-only (too few narratives to fit on). IndoNLU HoASA is
not used: 99 % of its reviews have some negative aspect, so it has no "not upset" class.
"""

from __future__ import annotations

import csv
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from services.classify.training.convert.common import SHARED_EVAL, hash_split

DEFAULT_EVAL_DIR = SHARED_EVAL

Row = dict[str, Any]

# XED emotion numbers (1..8, alphabetical order of Plutchik's emotions).
ANGER, ANTICIPATION, DISGUST, FEAR, JOY, SADNESS, SURPRISE, TRUST = range(1, 9)
XED_NEGATIVE = {ANGER, DISGUST, FEAR, SADNESS}
XED_POSITIVE = {ANTICIPATION, JOY, TRUST}

XED_FILES = {
    "en": "en-annotated.tsv",
    "fi": "fi-annotated.tsv",
    "de": "de-projections.tsv",
    "es": "es-projections.tsv",
    "et": "et-projections.tsv",
    "fa": "fa-projections.tsv",
    "fr": "fr-projections.tsv",
    "id": "id-projections.tsv",
    "tr": "tr-projections2.tsv",
}

# CFPB "Issue" (the consumer's own choice of form field) -> our category. Issues that
# do not say what went wrong in our terms stay unmapped (the row is then skipped).
CFPB_ISSUES: dict[str, str] = {
    "Billing disputes": "billing_refund",
    "Fees or interest": "billing_refund",
    "Problem with a purchase shown on your statement": "billing_refund",
    "Charged fees or interest you didn't expect": "billing_refund",
    "Unexpected or other fees": "billing_refund",
    "Problem with fraud alerts or security freezes": "account_access",
    "Managing an account": "account_access",
    "Opening an account": "account_access",
    "Closing an account": "account_access",
    "Closing your account": "account_access",
    "Problem accessing account": "account_access",
    "Problem with customer service": "staff_behaviour",
    "Problem with a company's investigation into an existing problem": "lack_of_follow_up",
    "Problem with a company's investigation into an existing issue": "lack_of_follow_up",
    "Problem with a credit reporting company's investigation into an existing problem": (
        "lack_of_follow_up"
    ),
    "Trouble during payment process": "billing_refund",
    "Problem when making payments": "billing_refund",
    "Attempts to collect debt not owed": "billing_refund",
    "Money was not available when promised": "lack_of_follow_up",
    # Credit-report content and use: none of our kinds of complaint.
    "Incorrect information on your report": "other",
    "Improper use of your report": "other",
}


def split_of(text: str) -> str:
    """Deterministic train/valid/test split (80/10/10) by a hash of the normalised text."""
    return hash_split(text)


def xed_rows(eval_dir: Path) -> Iterator[Row]:
    """XED subtitles: anger (label 1) for every line; upset only when the line is clearly
    negative (anger/disgust/fear/sadness and no joy/trust/anticipation) or clearly
    positive ("true binary" of the XED paper; mixed and surprise-only lines carry none)."""
    for language, name in XED_FILES.items():
        path = eval_dir / "xed_emotion" / name
        if not path.exists():
            continue
        with path.open(encoding="utf-8") as handle:
            for line in handle:
                parts = line.rstrip("\n").split("\t")
                if len(parts) != 2:
                    continue
                text, raw = parts
                try:
                    emotions = {int(x) for x in raw.replace(" ", "").split(",") if x}
                except ValueError:
                    continue  # the header line of tr-projections2.tsv
                if not text.strip() or not emotions:
                    continue
                labels: dict[str, Any] = {"anger": ANGER in emotions}
                negative, positive = emotions & XED_NEGATIVE, emotions & XED_POSITIVE
                if negative and not positive:
                    labels["upset"] = True
                elif positive and not negative:
                    labels["upset"] = False
                yield {
                    "text": text,
                    "language": language,
                    "labels": labels,
                    "dataset": f"xed_{language}",
                    "split": split_of(text),
                }


def smsa_rows(eval_dir: Path) -> Iterator[Row]:
    """IndoNLU SmSA: document sentiment; negative = upset."""
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
                        "labels": {"upset": label == "negative"},
                        "dataset": "indonlu_smsa",
                        "split": split,
                    }


def emot_rows(eval_dir: Path) -> Iterator[Row]:
    """IndoNLU EmoT tweets: anger vs the other four emotions; upset = anger/sadness/fear."""
    for split in ("train", "valid", "test"):
        path = eval_dir / "id_indonlu" / f"emot_emotion-twitter_{split}_preprocess.csv"
        if not path.exists():
            continue
        with path.open(encoding="utf-8", newline="") as handle:
            for record in csv.DictReader(handle):
                label, text = record["label"], record["tweet"]
                yield {
                    "text": text,
                    "language": "id",
                    "labels": {
                        "anger": label == "anger",
                        "upset": label in ("anger", "sadness", "fear"),
                    },
                    "dataset": "indonlu_emot",
                    "split": split,
                }


def cfpb_rows(eval_dir: Path) -> Iterator[Row]:
    """CFPB complaint narratives (English) whose Issue maps to a category; measuring only."""
    path = eval_dir / "en_cfpb" / "complaints_sample.csv"
    if not path.exists():
        return
    with path.open(encoding="utf-8", newline="") as handle:
        for record in csv.DictReader(handle):
            text = (record.get("Consumer complaint narrative") or "").strip()
            category = CFPB_ISSUES.get(record.get("Issue") or "")
            if text and category:
                yield {
                    "text": text,
                    "language": "en",
                    "labels": {"category": category},
                    "dataset": "cfpb",
                    "split": "test",
                }


def all_rows(eval_dir: Path = DEFAULT_EVAL_DIR) -> Iterator[Row]:
    yield from xed_rows(eval_dir)
    yield from smsa_rows(eval_dir)
    yield from emot_rows(eval_dir)
    yield from cfpb_rows(eval_dir)


def rows_of_split(split: str, eval_dir: Path = DEFAULT_EVAL_DIR) -> list[Row]:
    return [row for row in all_rows(eval_dir) if row["split"] == split]
