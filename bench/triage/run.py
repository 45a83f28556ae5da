"""Measure triage on every test split and write bench/results/triage.json (`make triage`).

    python -m bench.triage.run [--no-lodo] [--allow-missing] [--out bench/results/triage.json]

Same code path as `amends triage-eval` (``services.classify.evaluation.evaluate``) on the
test splits of the training corpus (``services/classify/training/corpus.py``: the
converted sets in $AMENDS_TRIAGE_DATA and ../shared/eval), with the shipped model.
Adds: the targets of issue 15 and whether each holds (measured, never rounded up); the
abuse/threat cues on the labelled offensive-language sets; a speed baseline measured in
the same run (the lexicons alone on the same texts); and leave-one-domain-out figures:
for each language with customer text from two or more domains, a model trained (same
options) without one of its sets, calibrated on what remains, tested on that set.
Then regenerates the model card and the classify README table.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from services.classify.evaluation import evaluate
from services.classify.text.cues import find_cues
from services.classify.text.model import TextModel, default_model
from services.classify.training import card, corpus
from services.classify.training.corpus import Row, in_domain
from services.classify.training.datasets import DEFAULT_EVAL_DIR
from shared.settings import REPO_ROOT

DEFAULT_OUT = REPO_ROOT / "bench" / "results" / "triage.json"
TARGET_MACRO_F1 = 0.85
TARGET_PRECISION = TARGET_RECALL = 0.75
TARGET_SPEED = 5000
SMSA = "id_smsa"
CUE_LABELS = ("abusive", "threat")


def lexicon_rate(rows: Sequence[Row]) -> float:
    """Texts per CPU-second of the lexicons alone: the baseline the text part is put beside."""
    started = time.process_time()
    for row in rows:
        find_cues(row["text"], row["language"])
    return len(rows) / max(time.process_time() - started, 1e-9)


def upset_sets(rows: Sequence[Row]) -> dict[str, dict[str, str]]:
    """In-domain sets with upset labels: set -> {language, domain}."""
    out: dict[str, dict[str, str]] = {}
    for r in rows:
        if "upset" in r["labels"] and in_domain(r):
            out.setdefault(r["source"], {"language": r["language"], "domain": r["domain"]})
    return out


def leave_one_domain_out(rows: Sequence[Row], shipped: dict[str, Any]) -> list[dict[str, Any]]:
    from services.classify.training.train import MatrixCache, Options, build

    options = Options.read()
    sets = upset_sets(rows)
    cache = MatrixCache()
    out = []
    for language in sorted({s["language"] for s in sets.values()}):
        mine = {sid: s for sid, s in sets.items() if s["language"] == language}
        if len({s["domain"] for s in mine.values()}) < 2:
            continue
        for held, info in sorted(mine.items()):
            print(f"leave-one-domain-out: {language} without {held}", file=sys.stderr, flush=True)
            # Without the held-out set, and without any other set of the same language and
            # domain (the domain is what is held out).
            drop = {sid for sid, s in mine.items() if s["domain"] == info["domain"]}
            remaining = [r for r in rows if r["source"] not in drop]
            model, _ = build(remaining, options, heads=("upset",), cache=cache)
            test = [r for r in rows if r["source"] == held and r["split"] == "test"]
            report = evaluate(test, model)
            out.append(
                {
                    "language": language,
                    "set": held,
                    "domain": info["domain"],
                    "trained_without": sorted(drop),
                    "scores": report["by_dataset"][held]["upset"],
                    "with_domain_macro_f1": shipped.get(held, {}).get("upset", {}).get("macro_f1"),
                }
            )
    return out


def cue_figures(report: dict[str, Any]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for set_id, labels in report["by_dataset"].items():
        found = {label: labels[label] for label in CUE_LABELS if label in labels}
        if found:
            out[set_id] = found
    return out


def targets(report: dict[str, Any]) -> list[dict[str, Any]]:
    out: list[dict[str, Any]] = []

    def add(target: str, measured: float, holds: bool, **extra: Any) -> None:
        out.append({"target": target, "measured": measured, "holds": holds, **extra})

    for language, labels in report["in_domain_by_language"].items():
        s = labels.get("upset")
        if not s:
            continue
        add(
            f"{language}: upset macro-F1 >= {TARGET_MACRO_F1} (customer-text test splits)",
            s["macro_f1"],
            s["macro_f1"] >= TARGET_MACRO_F1,
            n=s["support"],
        )
        add(
            f"{language}: upset precision >= {TARGET_PRECISION}",
            s["precision"],
            s["precision"] >= TARGET_PRECISION,
            n=s["support"],
        )
        add(
            f"{language}: upset recall >= {TARGET_RECALL}",
            s["recall"],
            s["recall"] >= TARGET_RECALL,
            n=s["support"],
        )
    smsa = report["by_dataset"].get(SMSA, {}).get("upset")
    if smsa:
        add(
            f"IndoNLU SmSA test upset macro-F1 >= {TARGET_MACRO_F1}",
            smsa["macro_f1"],
            smsa["macro_f1"] >= TARGET_MACRO_F1,
        )
    add(
        f">= {TARGET_SPEED} texts per CPU-second (whole text part, fast path)",
        report["texts_per_second"],
        report["texts_per_second"] >= TARGET_SPEED,
    )
    return out


def measure(rows: Sequence[Row], model: TextModel, lodo: bool = True) -> dict[str, Any]:
    test = [r for r in rows if r["split"] == "test"]
    report = evaluate(test, model)
    baseline = lexicon_rate(test)
    result: dict[str, Any] = {
        "measured_at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        "command": "make triage  (= python -m bench.triage.run)",
        "splits": "the test split of every set (official test files where a set has them, "
        "else 10 % by a hash of the normalised text); never used for fitting or choosing",
        "targets": targets(report),
        "speed_baseline": {
            "kind": "lexicons alone (find_cues) on the same texts, same run",
            "texts_per_second": round(baseline),
            "text_part_ratio": round(report["texts_per_second"] / baseline, 3),
        },
        "cues": cue_figures(report),
        "leave_one_domain_out": leave_one_domain_out(rows, report["by_dataset"]) if lodo else [],
        **report,
    }
    return result


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="Write bench/results/triage.json.")
    parser.add_argument("--eval-dir", type=Path, default=DEFAULT_EVAL_DIR)
    parser.add_argument("--data", type=Path, default=None, help="default $AMENDS_TRIAGE_DATA")
    parser.add_argument("--out", type=Path, default=DEFAULT_OUT)
    parser.add_argument("--no-lodo", action="store_true", help="skip leave-one-domain-out")
    parser.add_argument("--allow-missing", action="store_true", help="measure what is present")
    args = parser.parse_args(argv)
    data = corpus.load(args.eval_dir, args.data, require=not args.allow_missing)
    result = measure(data.rows, default_model(), lodo=not args.no_lodo)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(result, indent=1, ensure_ascii=False) + "\n")
    if args.out == DEFAULT_OUT:
        card.write()
        from bench.triage import table

        table.update()
    for t in result["targets"]:
        print(f"{'ok  ' if t['holds'] else 'MISS'} {t['target']}: {t['measured']}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
