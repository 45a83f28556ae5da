"""`amends triage-eval`: report shape, metrics, speed; the targets on the real test splits."""

from __future__ import annotations

import gzip
import json
from pathlib import Path

import pytest

from services.classify.evaluation import (
    binary_scores,
    calibration_scores,
    evaluate,
    main,
    multiclass_scores,
)
from services.classify.training.datasets import DEFAULT_EVAL_DIR, rows_of_split, split_of

ROWS = [
    {
        "text": "I am furious, this is unacceptable!",
        "language": "en",
        "labels": {"upset": True, "anger": True},
    },
    {
        "text": "Thank you, lovely service.",
        "language": "en",
        "labels": {"upset": False, "anger": False},
    },
    {"text": "My lawyer will sue you.", "language": "en", "labels": {"legal_threat": True}},
    {"text": "Irtisanon sopimuksen.", "language": "fi", "labels": {"churn": True}},
    {"text": "Dasar goblok", "language": "id", "labels": {"abusive": True}},
    {
        "text": "Mein Paket ist nie angekommen.",
        "language": "de",
        "labels": {"category": "delivery"},
        "dataset": "mine",
    },
]


def test_metrics() -> None:
    s = binary_scores([(True, True), (True, False), (False, False), (False, True)])
    assert s["precision"] == s["recall"] == s["f1"] == 0.5 and s["macro_f1"] == 0.5
    assert s["confusion"] == {"tp": 1, "fp": 1, "fn": 1, "tn": 1}
    perfect = calibration_scores([(True, 1.0), (False, 0.0)])
    assert perfect == {"brier": 0.0, "ece": 0.0}
    # Always 0.5 on a balanced set: Brier 0.25, and well calibrated on average (ECE 0).
    assert calibration_scores([(True, 0.5), (False, 0.5)]) == {"brier": 0.25, "ece": 0.0}
    overconfident = calibration_scores([(True, 0.9), (False, 0.9)])
    assert overconfident["ece"] == pytest.approx(0.4)
    m = multiclass_scores([("a", "a"), ("b", "a"), ("b", "b")])
    assert m["support"] == 3 and 0 < m["macro_f1"] < 1


def test_report() -> None:
    report = evaluate(ROWS)
    assert report["rows"] == len(ROWS) and report["texts_per_second"] > 0
    en = report["by_language"]["en"]
    assert en["upset"]["support"] == 2 and en["legal_threat"]["recall"] == 1.0
    assert report["by_language"]["fi"]["churn"]["recall"] == 1.0
    assert report["by_language"]["id"]["abusive"]["recall"] == 1.0
    assert report["by_language"]["de"]["category"]["accuracy"] == 1.0
    assert report["by_dataset"]["mine"]["category"]["support"] == 1
    assert report["baseline"]["by_language"]["en"]["anger"]["support"] == 2
    assert set(en["upset"]["calibration"]) == {"brier", "ece"}
    assert sum(en["upset"]["confusion"].values()) == 2
    assert report["cascade_share"] == 0.0  # no cascade on


def test_groups_per_set_and_customer_text() -> None:
    rows = [
        {**ROWS[0], "source": "en_shop", "domain": "product_reviews"},
        {**ROWS[1], "source": "xed_en", "domain": "film_subtitles"},
        {
            "text": "Go to hell, idiots",
            "language": "en",
            "labels": {"abusive": 1, "threat": 0},
            "source": "en_offensive",
            "domain": "offensive_tweets",
        },
    ]
    report = evaluate(rows)
    assert set(report["by_dataset"]) == {"en_shop", "xed_en", "en_offensive"}
    assert report["in_domain_by_language"]["en"]["upset"]["support"] == 1
    assert report["by_dataset"]["en_offensive"]["abusive"]["recall"] == 1.0
    assert report["by_dataset"]["en_offensive"]["threat"]["support"] == 1


def test_main_json(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = tmp_path / "rows.jsonl"
    path.write_text("\n".join(json.dumps(r) for r in ROWS) + "\n")
    assert main([str(path), "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["rows"] == len(ROWS)
    assert main([str(path)]) == 0
    out = capsys.readouterr().out
    assert "texts/s" in out and "cascade share" in out and "Brier" in out
    packed = tmp_path / "rows.jsonl.gz"
    packed.write_bytes(gzip.compress(path.read_bytes()))
    assert main([str(packed), "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["rows"] == len(ROWS)


def test_split_is_deterministic_and_ignores_case_and_spacing() -> None:
    assert split_of("Hello  World") == split_of("hello world")


needs_eval = pytest.mark.skipif(not DEFAULT_EVAL_DIR.is_dir(), reason="../shared/eval is not here")


@needs_eval
def test_the_model_beats_the_keywords_on_the_real_test_splits() -> None:
    # The targets (SmSA >= 0.85, per-language figures, speed) are measured and reported,
    # held or missed, by `make triage` (bench/results/triage.json); this guards against a
    # broken model: far above the keyword-only baseline on SmSA, anger above it everywhere.
    report = evaluate(rows_of_split("test"))
    by = report["by_dataset"]
    smsa, smsa_keywords = by["indonlu_smsa"]["upset"], report["baseline"]["by_dataset"]
    assert smsa["macro_f1"] >= 0.80
    assert smsa["macro_f1"] > smsa_keywords["indonlu_smsa"]["upset"]["macro_f1"] + 0.05
    languages = ("de", "en", "es", "et", "fa", "fi", "fr", "id", "tr")
    for dataset in ("indonlu_emot", *(f"xed_{x}" for x in languages)):
        model, keyword = by[dataset]["anger"], report["baseline"]["by_dataset"][dataset]["anger"]
        assert model["f1"] > keyword["f1"], dataset
