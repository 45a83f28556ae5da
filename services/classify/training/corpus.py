"""The training corpus: converted in-domain sets plus the ``../shared/eval`` sets, de-duplicated.

Sources:
- every ``$AMENDS_TRIAGE_DATA/<set_id>.jsonl.gz`` (written by the converters in
  ``convert/``; described by ``sets/<set_id>.yaml``), rows
  ``{"text", "language", "labels", "source", "split", "domain"}``;
- ``../shared/eval`` (``datasets.py``): IndoNLU SmSA (in-domain: comments on products
  and services), IndoNLU EmoT and XED subtitles ("general" emotion text, not customers
  writing to a company; whether they help is chosen on validation), CFPB (measuring only).

Cross-set de-duplication by ``convert.common.normalise``: a text that occurs in any
valid or test split is removed from every train split, and a text in any test split from
every valid split, so nothing a choice is made on, or measured on, was fitted on.
"""

from __future__ import annotations

import gzip
import json
import os
from collections import Counter, defaultdict
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from services.classify.evaluation import GENERAL_DOMAINS
from services.classify.training import datasets
from services.classify.training.convert.common import data_dir, normalise

Row = dict[str, Any]
SETS_DIR = Path(__file__).resolve().parent / "sets"
SHARED_SETS: dict[str, dict[str, Any]] = {
    "id_smsa": {
        "language": "id",
        "domain": "service_reviews",
        "source": "IndoNLP/indonlu@ce728f6:dataset/smsa_doc-sentiment-prosa/",
        "licence": "Apache-2.0",
        "citation": "Wilie et al., IndoNLU: Benchmark and Resources for Evaluating "
        "Indonesian Natural Language Understanding, AACL 2020",
        "label_mapping": "negative -> upset 1; positive, neutral -> upset 0",
        "splits": "official train/valid/test",
    },
    "id_emot": {
        "language": "id",
        "domain": "emotion_tweets",
        "source": "IndoNLP/indonlu@ce728f6:dataset/emot_emotion-twitter/",
        "licence": "Apache-2.0",
        "citation": "Wilie et al., AACL 2020 (EmoT: Saputri et al., IALP 2018)",
        "label_mapping": "anger -> anger 1; anger, sadness, fear -> upset 1; happy, love -> 0",
        "splits": "official train/valid/test",
    },
    "xed": {
        "language": "de en es et fa fi fr id tr",
        "domain": "film_subtitles",
        "source": "Helsinki-NLP/XED@76666d2:AnnotatedData/, Projections/",
        "licence": "CC-BY-4.0",
        "citation": "Öhman, Pàmies, Kajava, Tiedemann, XED: A Multilingual Dataset for "
        "Sentiment Analysis and Emotion Detection, COLING 2020",
        "label_mapping": "anger -> anger 1; anger/disgust/fear/sadness and no "
        "joy/trust/anticipation -> upset 1; the reverse -> upset 0; mixed: no upset label",
        "splits": "hash of normalised text: 80/10/10",
    },
    "en_cfpb": {
        "language": "en",
        "domain": "complaints",
        "source": "Ujjwal260/complaint-intelligence-dashboard@75e76c5:data/complaints_sample.csv",
        "licence": "MIT (CFPB data: public domain)",
        "citation": "US Consumer Financial Protection Bureau, Consumer Complaint Database",
        "label_mapping": "Issue -> category (measuring only)",
        "splits": "all test",
    },
}


class MissingData(SystemExit):
    """The data a training run needs is not there: the message names what and how."""


@dataclass
class Corpus:
    rows: list[Row]
    removed: dict[str, int] = field(default_factory=dict)  # per source: train rows dropped
    removed_valid: dict[str, int] = field(default_factory=dict)
    sets: dict[str, dict[str, Any]] = field(default_factory=dict)  # manifest per source

    def split(self, name: str) -> list[Row]:
        return [r for r in self.rows if r["split"] == name]

    def counts(self) -> dict[str, dict[str, int]]:
        out: dict[str, Counter[str]] = defaultdict(Counter)
        for row in self.rows:
            out[row["source"]][row["split"]] += 1
        return {source: dict(sorted(c.items())) for source, c in sorted(out.items())}


def sets_dirs() -> list[Path]:
    """``sets/`` plus any folders in ``$AMENDS_TRIAGE_SETS`` (colon-separated): manifests
    of sets being written on another branch can be read before they are merged."""
    extra = [Path(p) for p in os.environ.get("AMENDS_TRIAGE_SETS", "").split(":") if p]
    return [SETS_DIR, *extra]


def manifests(dirs: Iterable[Path] | None = None) -> dict[str, dict[str, Any]]:
    """``<set_id>.yaml`` manifests by id."""
    out: dict[str, dict[str, Any]] = {}
    for directory in sets_dirs() if dirs is None else dirs:
        for path in sorted(directory.glob("*.yaml")):
            entry = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
            out[str(entry.get("id") or path.stem)] = entry
    return out


def read_jsonl_gz(path: Path) -> Iterator[Row]:
    with gzip.open(path, "rt", encoding="utf-8") as lines:
        for number, line in enumerate(lines, 1):
            if not line.strip():
                continue
            row = json.loads(line)
            if not isinstance(row, dict) or not isinstance(row.get("text"), str):
                raise ValueError(f"{path}:{number}: a row needs a 'text' string")
            yield row


def converted_rows(directory: Path) -> Iterator[Row]:
    for path in sorted(directory.glob("*.jsonl.gz")):
        set_id = path.name.removesuffix(".jsonl.gz")
        for row in read_jsonl_gz(path):
            yield {
                "text": row["text"],
                "language": row.get("language") or "und",
                "labels": {k: v for k, v in (row.get("labels") or {}).items() if v is not None},
                "source": row.get("source") or set_id,
                "split": row.get("split") or "train",
                "domain": row.get("domain") or "unknown",
            }


def shared_rows(eval_dir: Path) -> Iterator[Row]:
    """The ../shared/eval sets in the same row shape (XED and EmoT with a valid split)."""
    names = {"indonlu_smsa": "id_smsa", "indonlu_emot": "id_emot", "cfpb": "en_cfpb"}
    for row in datasets.all_rows(eval_dir):
        source = str(names.get(row["dataset"], row["dataset"]))
        domain = SHARED_SETS["xed" if source.startswith("xed_") else source]["domain"]
        yield {
            "text": row["text"],
            "language": row["language"],
            "labels": {
                k: (v if k == "category" else int(bool(v))) for k, v in row["labels"].items()
            },
            "source": source,
            "split": row["split"],
            "domain": domain,
        }


def deduplicate(rows: Iterable[Row]) -> tuple[list[Row], dict[str, int], dict[str, int]]:
    """Drop from train every text in a valid/test split, from valid every text in test."""
    rows = list(rows)
    keys = [normalise(r["text"]) for r in rows]
    held: dict[str, set[str]] = {"valid": set(), "test": set()}
    for key, row in zip(keys, rows, strict=True):
        if row["split"] in held:
            held[row["split"]].add(key)
    blocked = {"train": held["valid"] | held["test"], "valid": held["test"]}
    kept: list[Row] = []
    removed: dict[str, Counter[str]] = {"train": Counter(), "valid": Counter()}
    for key, row in zip(keys, rows, strict=True):
        if not key:
            continue
        if key in blocked.get(row["split"], ()):
            removed[row["split"]][row["source"]] += 1
            continue
        kept.append(row)
    return kept, dict(sorted(removed["train"].items())), dict(sorted(removed["valid"].items()))


def load(
    eval_dir: Path = datasets.DEFAULT_EVAL_DIR,
    triage_dir: Path | None = None,
    *,
    require: bool = True,
    dirs: Iterable[Path] | None = None,
) -> Corpus:
    """Every set, de-duplicated. With ``require``, missing data fails with a message
    naming each missing set and the command that makes it. A converted set with the id
    of a ../shared/eval set (e.g. ``id_smsa``) replaces the built-in reading of it."""
    triage_dir = triage_dir or data_dir()
    listed = manifests(dirs)
    present = {p.name.removesuffix(".jsonl.gz") for p in triage_dir.glob("*.jsonl.gz")}
    problems = []
    if not eval_dir.is_dir():
        problems.append(f"  ../shared/eval not found at {eval_dir} (XED, IndoNLU SmSA)")
    if not present:
        problems.append(
            f"  no converted set (*.jsonl.gz) in {triage_dir}: set AMENDS_TRIAGE_DATA or run "
            "the converters (python -m services.classify.training.convert.<set_id>)"
        )
    for set_id in sorted(set(listed) - present):
        problems.append(
            f"  {set_id}: {triage_dir / (set_id + '.jsonl.gz')} is missing; make it with "
            f"python -m services.classify.training.convert.{set_id}"
        )
    if require and problems:
        raise MissingData("training data is missing:\n" + "\n".join(problems))
    rows = list(converted_rows(triage_dir))
    converted = {r["source"] for r in rows}
    if eval_dir.is_dir():
        rows += [r for r in shared_rows(eval_dir) if r["source"] not in converted]
    kept, removed, removed_valid = deduplicate(rows)
    sets: dict[str, dict[str, Any]] = {}
    for sid in sorted({r["source"] for r in kept}):
        if sid in listed:
            sets[sid] = dict(listed[sid])
        elif sid in SHARED_SETS or sid.startswith("xed_"):
            sets[sid] = dict(SHARED_SETS["xed" if sid.startswith("xed_") else sid])
        else:
            sets[sid] = {"id": sid, "licence": "unknown (no manifest)"}
    return Corpus(rows=kept, removed=removed, removed_valid=removed_valid, sets=sets)


def in_domain(row: Row) -> bool:
    """Customer text (reviews, complaints, tweets to companies), not the general sets."""
    return row["domain"] not in GENERAL_DOMAINS
