"""`amends triage-eval FILE.jsonl [--json]`: measure the text part of triage on labelled rows.

Rows are ``{"text", "language", "labels": {...}}`` (an optional ``"dataset"`` or
``"source"`` groups figures per set, an optional ``"domain"`` tells customer text from
the general emotion sets). Labels may hold ``upset``, ``anger``, ``abusive``,
``threat``, ``legal_threat``, ``churn`` (0/1 or booleans) and ``category`` (a string).
For each language, each set, and each language's customer-text (in-domain) rows it
reports, per label: precision, recall and F1 (binary: of the positive class, plus
macro-F1 over both classes; category: macro over classes), the confusion counts, the
support; for ``upset`` and ``anger`` the calibration of the probability (Brier score,
expected calibration error over 10 bins) and the keyword-only baseline. Speed is the
CPU time of the whole text part (``scoring.text_signals``: model, cascade when on,
every lexicon) on one core, in texts per second; the cascade share is the fraction of
texts whose probabilities the encoder cascade refined (0 when no cascade is on).
"""

from __future__ import annotations

import argparse
import gzip
import json
import os
import platform
import sys
import time
from collections import defaultdict
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any

from shared.events.common import Channel

from .scoring import Context, TextSignals, categorise, text_signals
from .text.model import TextModel, default_model

BINARY_LABELS = ("upset", "anger", "abusive", "threat", "legal_threat", "churn")
BASELINE_LABELS = ("upset", "anger")
PROBABILITY_LABELS = ("upset", "anger")
_CUE_OF = {"abusive": "abuse", "threat": "safety", "legal_threat": "legal", "churn": "churn"}
_BATCH = 1000
ECE_BINS = 10
# Domains of sets that are not customers writing to a company (``training/corpus.py``).
GENERAL_DOMAINS = frozenset({"film_subtitles", "emotion_tweets"})
KINDS = ("language", "dataset", "in_domain")


def predict(signals: TextSignals, label: str) -> Any:
    if label == "upset":
        return signals.upset_flag
    if label == "anger":
        return signals.anger_flag
    if label == "category":
        return categorise(signals, Context(channel=Channel.WEB))[0].value
    return signals.has(_CUE_OF[label])


def keyword_baseline(signals: TextSignals, label: str) -> bool:
    """Lexicon words only, no model: what the model must beat."""
    if label == "upset":
        return signals.has("upset") or signals.has("anger")
    return signals.has("anger")


def _safe(num: float, den: float) -> float:
    return num / den if den else 0.0


def binary_scores(pairs: Sequence[tuple[bool, bool]]) -> dict[str, Any]:
    tp = sum(1 for g, p in pairs if g and p)
    fp = sum(1 for g, p in pairs if not g and p)
    fn = sum(1 for g, p in pairs if g and not p)
    tn = len(pairs) - tp - fp - fn
    precision, recall = _safe(tp, tp + fp), _safe(tp, tp + fn)
    f1 = _safe(2 * tp, 2 * tp + fp + fn)
    f1_negative = _safe(2 * tn, 2 * tn + fp + fn)
    return {
        "precision": round(precision, 4),
        "recall": round(recall, 4),
        "f1": round(f1, 4),
        "macro_f1": round((f1 + f1_negative) / 2, 4),
        "support": len(pairs),
        "positives": tp + fn,
        "confusion": {"tp": tp, "fp": fp, "fn": fn, "tn": tn},
    }


def calibration_scores(pairs: Sequence[tuple[bool, float]]) -> dict[str, float]:
    """Brier score and expected calibration error (10 equal-width bins) of probabilities."""
    if not pairs:
        return {"brier": 0.0, "ece": 0.0}
    gold = [1.0 if g else 0.0 for g, _ in pairs]
    prob = [min(1.0, max(0.0, p)) for _, p in pairs]
    brier = sum((p - g) ** 2 for g, p in zip(gold, prob, strict=True)) / len(pairs)
    bins: dict[int, list[tuple[float, float]]] = defaultdict(list)
    for g, p in zip(gold, prob, strict=True):
        bins[min(int(p * ECE_BINS), ECE_BINS - 1)].append((g, p))
    ece = sum(abs(sum(p for _, p in b) - sum(g for g, _ in b)) for b in bins.values()) / len(pairs)
    return {"brier": round(brier, 4), "ece": round(ece, 4)}


def multiclass_scores(pairs: Sequence[tuple[str, str]]) -> dict[str, Any]:
    classes = sorted({g for g, _ in pairs})
    per_class = {}
    for cls in classes:
        scores = binary_scores([(g == cls, p == cls) for g, p in pairs])
        per_class[cls] = {k: scores[k] for k in ("precision", "recall", "f1", "positives")}
    n = len(classes) or 1
    return {
        "precision": round(sum(c["precision"] for c in per_class.values()) / n, 4),
        "recall": round(sum(c["recall"] for c in per_class.values()) / n, 4),
        "f1": round(sum(c["f1"] for c in per_class.values()) / n, 4),
        "macro_f1": round(sum(c["f1"] for c in per_class.values()) / n, 4),
        "accuracy": round(_safe(sum(g == p for g, p in pairs), len(pairs)), 4),
        "support": len(pairs),
        "classes": per_class,
    }


def _scores(label: str, pairs: list[tuple[Any, Any]]) -> dict[str, Any]:
    return multiclass_scores(pairs) if label == "category" else binary_scores(pairs)


def score_rows(
    rows: Sequence[dict[str, Any]], model: TextModel
) -> tuple[list[TextSignals], float, float]:
    """The text part for every row, timed: (signals, CPU seconds, wall seconds)."""
    signals: list[TextSignals] = []
    cpu, wall = time.process_time(), time.perf_counter()
    for start in range(0, len(rows), _BATCH):
        chunk = rows[start : start + _BATCH]
        signals.extend(
            text_signals(
                model,
                [str(r.get("text") or "") for r in chunk],
                [str(r.get("language") or "und") for r in chunk],
            )
        )
    return signals, time.process_time() - cpu, time.perf_counter() - wall


Pairs = dict[str, dict[str, dict[str, list[tuple[Any, Any]]]]]


def _pairs() -> Pairs:
    return {kind: defaultdict(lambda: defaultdict(list)) for kind in KINDS}


def groups_of(row: dict[str, Any]) -> dict[str, str]:
    """The groups a row is counted in: its language, its set, its language's customer text."""
    language = str(row.get("language") or "und")
    groups = {"language": language}
    dataset = row.get("dataset") or row.get("source")
    if dataset:
        groups["dataset"] = str(dataset)
    if row.get("domain") and row["domain"] not in GENERAL_DOMAINS:
        groups["in_domain"] = language
    return groups


def evaluate(rows: Sequence[dict[str, Any]], model: TextModel | None = None) -> dict[str, Any]:
    model = model or default_model()
    signals, cpu_seconds, wall_seconds = score_rows(rows, model)
    model_pairs, base_pairs, prob_pairs = _pairs(), _pairs(), _pairs()
    for row, sig in zip(rows, signals, strict=True):
        groups = groups_of(row)
        for label, gold in (row.get("labels") or {}).items():
            if label not in (*BINARY_LABELS, "category") or gold is None:
                continue
            gold_value = gold if label == "category" else bool(gold)
            for kind, group in groups.items():
                model_pairs[kind][group][label].append((gold_value, predict(sig, label)))
                if label in BASELINE_LABELS:
                    base_pairs[kind][group][label].append(
                        (gold_value, keyword_baseline(sig, label))
                    )
                if label in PROBABILITY_LABELS:
                    prob_pairs[kind][group][label].append((gold_value, getattr(sig, label)))

    def table(kind: str, with_calibration: bool = True) -> dict[str, Any]:
        pairs = (model_pairs if with_calibration else base_pairs)[kind]
        out: dict[str, Any] = {}
        for group, by_label in sorted(pairs.items()):
            out[group] = {}
            for label, p in sorted(by_label.items()):
                scores = _scores(label, p)
                if with_calibration and label in PROBABILITY_LABELS:
                    scores["calibration"] = calibration_scores(prob_pairs[kind][group][label])
                out[group][label] = scores
        return out

    # The cascade share: texts the encoder cascade refined (``refined_by`` set); 0 when
    # no cascade is on.
    refined = sum(1 for s in signals if s.refined_by)
    return {
        "rows": len(rows),
        "model_version": model.version,
        "texts_per_second": round(_safe(len(rows), cpu_seconds)),
        "texts_per_second_wall": round(_safe(len(rows), wall_seconds)),
        "cpu_seconds": round(cpu_seconds, 3),
        "cascade_share": round(_safe(refined, len(rows)), 4),
        "by_language": table("language"),
        "by_dataset": table("dataset"),
        "in_domain_by_language": table("in_domain"),
        "baseline": {
            "kind": "keyword-only (the same lexicons, no model)",
            "by_language": table("language", False),
            "by_dataset": table("dataset", False),
            "in_domain_by_language": table("in_domain", False),
        },
        "machine": machine_facts(),
    }


def machine_facts() -> dict[str, Any]:
    return {
        "python": platform.python_version(),
        "machine": platform.machine(),
        "processor": platform.processor() or platform.machine(),
        "cpus": os.cpu_count(),
        "note": "single process, single thread; CPU-time rate (other work may share cores)",
    }


def read_rows(path: Path) -> list[dict[str, Any]]:
    rows = []
    opener = gzip.open if path.name.endswith(".gz") else open
    with opener(path, "rt", encoding="utf-8") as handle:
        for number, line in enumerate(handle, 1):
            if not line.strip():
                continue
            try:
                row = json.loads(line)
            except json.JSONDecodeError as exc:
                raise ValueError(f"{path}:{number}: not JSON ({exc.msg})") from None
            if not isinstance(row, dict) or "text" not in row:
                raise ValueError(f"{path}:{number}: a row needs at least 'text'")
            rows.append(row)
    return rows


def render(report: dict[str, Any]) -> str:
    lines = [
        f"{report['rows']} rows, model {report['model_version']}, "
        f"{report['texts_per_second']} texts/s (CPU time, one core), "
        f"cascade share {report.get('cascade_share', 0.0):.3f}",
        "",
    ]
    header = f"{'group':<18} {'label':<13} {'P':>6} {'R':>6} {'F1':>6} {'macF1':>6} {'n':>6}"
    header += f" {'tp':>5} {'fp':>5} {'fn':>5} {'tn':>5} {'Brier':>6} {'ECE':>6}"
    header += f" {'kw F1':>6} {'kw mF1':>6}"
    for kind in ("by_language", "by_dataset", "in_domain_by_language"):
        if not report[kind]:
            continue
        lines += [kind.replace("_", " "), header]
        for group, labels in report[kind].items():
            for label, s in labels.items():
                base = report["baseline"][kind].get(group, {}).get(label)
                kw = f" {base['f1']:>6.3f} {base['macro_f1']:>6.3f}" if base else ""
                c = s.get("confusion")
                counts = f" {c['tp']:>5} {c['fp']:>5} {c['fn']:>5} {c['tn']:>5}" if c else " " * 24
                cal = s.get("calibration")
                calib = f" {cal['brier']:>6.3f} {cal['ece']:>6.3f}" if cal else " " * 14
                lines.append(
                    f"{group:<18} {label:<13} {s['precision']:>6.3f} {s['recall']:>6.3f} "
                    f"{s['f1']:>6.3f} {s['macro_f1']:>6.3f} {s['support']:>6}{counts}{calib}{kw}"
                )
        lines.append("")
    return "\n".join(lines)


def main(argv: Iterable[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="amends triage-eval",
        description="Precision, recall, F1 per language and label, and texts per second, "
        "of the classify text model and lexicons on labelled JSONL rows "
        '{"text", "language", "labels": {upset, anger, abusive, threat, legal_threat, churn, '
        'category}} (optional "dataset"/"source", "domain"); a .jsonl.gz file is read too.',
    )
    parser.add_argument("file", type=Path, help="JSONL file of labelled rows")
    parser.add_argument("--json", action="store_true", help="print the report as JSON")
    args = parser.parse_args(list(sys.argv[1:] if argv is None else argv))
    report = evaluate(read_rows(args.file))
    if args.json:
        print(json.dumps(report, indent=2, ensure_ascii=False))
    else:
        print(render(report))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
