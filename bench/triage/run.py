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
from services.classify.training import card, corpus, train
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


MIN_HELD_OUT = 100  # test rows a held-out domain needs to be reported


def customer_upset(row: Row) -> bool:
    return "upset" in row["labels"] and in_domain(row)


def _held_out(task: tuple[str, str]) -> dict[str, Any]:
    language, domain = task
    print(f"leave-one-domain-out: {language} without {domain}", file=sys.stderr, flush=True)
    rows = train.shared_rows()

    def held(r: Row) -> bool:
        return r["language"] == language and r["domain"] == domain and customer_upset(r)

    remaining = [r for r in rows if not held(r)]
    model, _ = train.build(remaining, train.Options.read(), ("upset",), train.shared_cache())
    test = [r for r in rows if held(r) and r["split"] == "test"]
    return evaluate(test, model)["by_language"][language]["upset"]


def leave_one_domain_out(
    rows: Sequence[Row], shipped: TextModel, workers: int = 2
) -> list[dict[str, Any]]:
    """For each language with customer text of two or more domains, each domain: a model
    trained without that language's rows of that domain (same options; calibrated and
    thresholded on the valid rows that remain), tested on them; beside it, the shipped
    model (trained with them) on the same test rows."""
    test_rows: dict[tuple[str, str], list[Row]] = {}
    domains: dict[str, set[str]] = {}
    for r in rows:
        if customer_upset(r):
            domains.setdefault(r["language"], set()).add(r["domain"])
            if r["split"] == "test":
                test_rows.setdefault((r["language"], r["domain"]), []).append(r)
    tasks = [
        (language, domain)
        for language in sorted(domains)
        if len(domains[language]) >= 2
        for domain in sorted(domains[language])
        if len(test_rows.get((language, domain), [])) >= MIN_HELD_OUT
    ]
    scores = train.fork_map(_held_out, tasks, rows, workers, features=train.Options.read())
    out = []
    for (language, domain), score in zip(tasks, scores, strict=True):
        test = test_rows[(language, domain)]
        with_domain = evaluate(test, shipped)["by_language"][language]["upset"]
        out.append(
            {
                "language": language,
                "domain": domain,
                "sets": sorted({r["source"] for r in test}),
                "scores": score,
                "with_domain_macro_f1": with_domain["macro_f1"],
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


def measure(
    rows: Sequence[Row], model: TextModel, lodo: bool = True, workers: int = 2
) -> dict[str, Any]:
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
        "leave_one_domain_out": (leave_one_domain_out(rows, model, workers) if lodo else []),
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
    parser.add_argument(
        "--workers", type=int, default=2, help="processes for leave-one-domain-out fits"
    )
    args = parser.parse_args(argv)
    data = corpus.load(args.eval_dir, args.data, require=not args.allow_missing)
    result = measure(data.rows, default_model(), lodo=not args.no_lodo, workers=args.workers)
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
